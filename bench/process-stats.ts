/**
 * Memory and CPU of another process, read from Linux's /proc: resident set
 * size (VmRSS), its peak (VmHWM), and user plus system CPU time.
 */
import { execFileSync } from 'node:child_process';
import { readFileSync, writeFileSync } from 'node:fs';
import { Worker } from 'node:worker_threads';

/** One VmRSS reading. `at` is milliseconds since the Unix epoch, as performance.timeOrigin + performance.now(). */
export interface RssSample {
  at: number;
  rssKiB: number;
}

function statusField(pid: number, field: 'VmRSS' | 'VmHWM'): number {
  const status = readFileSync(`/proc/${pid}/status`, 'latin1');
  const match = new RegExp(`^${field}:\\s+(\\d+) kB$`, 'm').exec(status);
  if (match === null) throw new Error(`/proc/${pid}/status has no ${field} line`);
  return Number(match[1]);
}

export function readRssKiB(pid: number): number {
  return statusField(pid, 'VmRSS');
}

export function readPeakRssKiB(pid: number): number {
  return statusField(pid, 'VmHWM');
}

/**
 * Resets the process's VmHWM to its current RSS by writing 5 to
 * /proc/PID/clear_refs (Linux 4.0 and later). Returns false when the kernel
 * or the sandbox does not allow it, and VmHWM then keeps the peak since start.
 */
export function resetPeakRss(pid: number): boolean {
  try {
    writeFileSync(`/proc/${pid}/clear_refs`, '5');
    return true;
  } catch {
    return false;
  }
}

let clockTicksPerSecond: number | undefined;

function clockTicks(): number {
  if (clockTicksPerSecond === undefined) {
    try {
      clockTicksPerSecond = Number(execFileSync('getconf', ['CLK_TCK'], { encoding: 'utf8' }).trim()) || 100;
    } catch {
      // NOTE: 100 is the value on every mainstream Linux architecture, but this is a guess without getconf.
      clockTicksPerSecond = 100;
    }
  }
  return clockTicksPerSecond;
}

/** Returns the process's user plus system CPU time in seconds, with the resolution of one clock tick. */
export function readCpuSeconds(pid: number): number {
  const stat = readFileSync(`/proc/${pid}/stat`, 'latin1');
  // The command name in brackets may contain spaces, so the fields are counted from after it.
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  const userTicks = Number(fields[11]);
  const systemTicks = Number(fields[12]);
  return (userTicks + systemTicks) / clockTicks();
}

/**
 * Runs in a worker thread, so that the readings keep their pace while the
 * benchmark's main thread is busy encoding, writing and hashing chunks.
 */
const SAMPLER_SOURCE = `
const { parentPort, workerData } = require('node:worker_threads');
const { readFileSync } = require('node:fs');
const { pid, intervalMs, maxSamples } = workerData;
const at = [];
const rssKiB = [];
function sample() {
  if (at.length >= maxSamples) return;
  try {
    const match = /^VmRSS:\\s+(\\d+) kB$/m.exec(readFileSync('/proc/' + pid + '/status', 'latin1'));
    if (match === null) return;
    at.push(performance.timeOrigin + performance.now());
    rssKiB.push(Number(match[1]));
  } catch {
    // The process has exited, and the readings so far are kept.
  }
}
sample();
const timer = setInterval(sample, intervalMs);
parentPort.once('message', () => {
  clearInterval(timer);
  sample();
  parentPort.postMessage({ at, rssKiB });
});
`;

/** Reads a process's VmRSS every `intervalMs` in a worker thread until stopped. */
export class RssSampler {
  private readonly worker: Worker;
  private readonly result: Promise<{ at: number[]; rssKiB: number[] }>;

  /** `maxSamples` bounds the memory and the run time of the sampler, and later readings are dropped. */
  constructor(pid: number, readonly intervalMs: number, maxSamples: number) {
    this.worker = new Worker(SAMPLER_SOURCE, { eval: true, execArgv: [], workerData: { pid, intervalMs, maxSamples } });
    this.result = new Promise((resolve, reject) => {
      this.worker.once('message', resolve);
      this.worker.once('error', reject);
    });
  }

  /** Stops the sampler and returns its readings in time order. */
  async stop(): Promise<RssSample[]> {
    this.worker.postMessage('stop');
    const { at, rssKiB } = await this.result;
    await this.worker.terminate();
    return at.map((time, index) => ({ at: time, rssKiB: rssKiB[index]! }));
  }
}

/** Returns the current time on the samplers' clock. */
export function now(): number {
  return performance.timeOrigin + performance.now();
}
