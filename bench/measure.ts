/**
 * Runs one server's upload and download as timed phases, and turns the RSS
 * readings into a baseline, a peak per phase and the growth between them.
 */
import { setTimeout as sleep } from 'node:timers/promises';
import { type ChildServer } from './child-server.js';
import { RssSampler, type RssSample, now, readCpuSeconds, readPeakRssKiB, resetPeakRss } from './process-stats.js';

const KIB = 1024;
const MIB = 1024 * 1024;

export interface PhaseResult {
  seconds: number;
  mibPerSecond: number;
  /** User plus system CPU time of the server process during the phase. */
  serverCpuSeconds: number;
  /** User plus system CPU time of the benchmark process (the client) during the phase. */
  clientCpuSeconds: number;
  /** Highest VmRSS reading of the sampler during the phase. */
  sampledPeakRssMiB: number | null;
  /** VmHWM at the end of the phase after a reset at its start, or null when the reset is not allowed. */
  kernelPeakRssMiB: number | null;
  /** The larger of the two peaks. */
  peakRssMiB: number;
  /** peakRssMiB minus the baseline. */
  rssGrowthMiB: number;
  samplesInPhase: number;
}

export interface ServerRunResult {
  /** Median VmRSS over the quiet period before the upload. */
  baselineRssMiB: number;
  upload: PhaseResult;
  download: PhaseResult;
  /** Largest gap between two RSS readings in milliseconds, which shows whether the sampler kept its pace. */
  maxSampleGapMs: number;
  /** Every reading: milliseconds since the first one, and VmRSS in KiB. */
  samples: [number, number][];
}

/** A server's steps in a run: setup after listening, then the two timed transfers. */
export interface ServerUnderTest {
  /** Creates clients and anything else the transfers need. Not timed. */
  prepare(address: string): Promise<void>;
  upload(deadline: Date): Promise<void>;
  download(deadline: Date): Promise<void>;
  /** Closes the clients. */
  close(): void;
}

export interface RunSettings {
  sizeBytes: number;
  sampleIntervalMs: number;
  /** Quiet time after setup whose readings give the baseline. */
  settleMs: number;
  transferTimeoutMs: number;
}

interface PhaseWindow {
  startAt: number;
  endAt: number;
  serverCpuSeconds: number;
  clientCpuSeconds: number;
  kernelPeakRssKiB: number | null;
}

async function timePhase(pid: number, transferTimeoutMs: number, run: (deadline: Date) => Promise<void>): Promise<PhaseWindow> {
  const canReadKernelPeak = resetPeakRss(pid);
  const serverCpuBefore = readCpuSeconds(pid);
  const clientCpuBefore = process.cpuUsage();
  const startAt = now();
  await run(new Date(Date.now() + transferTimeoutMs));
  const endAt = now();
  const clientCpu = process.cpuUsage(clientCpuBefore);
  return {
    startAt,
    endAt,
    serverCpuSeconds: readCpuSeconds(pid) - serverCpuBefore,
    clientCpuSeconds: (clientCpu.user + clientCpu.system) / 1e6,
    kernelPeakRssKiB: canReadKernelPeak ? readPeakRssKiB(pid) : null,
  };
}

export function median(values: number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  const middle = Math.floor(sorted.length / 2);
  return sorted.length % 2 === 1 ? sorted[middle]! : (sorted[middle - 1]! + sorted[middle]!) / 2;
}

export function round(value: number, digits = 1): number {
  const factor = 10 ** digits;
  return Math.round(value * factor) / factor;
}

function summarizePhase(window: PhaseWindow, samples: RssSample[], baselineKiB: number, sizeBytes: number): PhaseResult {
  const inPhase = samples.filter((sample) => sample.at >= window.startAt && sample.at <= window.endAt);
  const sampledPeakKiB = inPhase.length > 0 ? inPhase.reduce((peak, sample) => Math.max(peak, sample.rssKiB), 0) : null;
  const peakKiB = Math.max(sampledPeakKiB ?? 0, window.kernelPeakRssKiB ?? 0);
  const seconds = (window.endAt - window.startAt) / 1000;
  return {
    seconds: round(seconds, 3),
    mibPerSecond: round(sizeBytes / MIB / seconds),
    serverCpuSeconds: round(window.serverCpuSeconds, 2),
    clientCpuSeconds: round(window.clientCpuSeconds, 2),
    sampledPeakRssMiB: sampledPeakKiB === null ? null : round(sampledPeakKiB / KIB),
    kernelPeakRssMiB: window.kernelPeakRssKiB === null ? null : round(window.kernelPeakRssKiB / KIB),
    peakRssMiB: round(peakKiB / KIB),
    rssGrowthMiB: round((peakKiB - baselineKiB) / KIB),
    samplesInPhase: inPhase.length,
  };
}

/**
 * Prepares the server's clients, waits `settleMs` while the sampler records
 * the baseline, then times the upload and the download. The caller starts
 * and stops the server.
 */
export async function runServer(server: ChildServer, target: ServerUnderTest, settings: RunSettings): Promise<ServerRunResult> {
  // Enough readings for the settle time, both transfers at their time limit, and a minute of margin.
  const maxSamples = Math.ceil((settings.settleMs + 2 * settings.transferTimeoutMs + 60_000) / settings.sampleIntervalMs);
  const sampler = new RssSampler(server.pid, settings.sampleIntervalMs, maxSamples);
  let samples: RssSample[] | undefined;
  try {
    await target.prepare(server.address);
    await sleep(settings.settleMs);
    console.log(`${server.label}: uploading ${settings.sizeBytes / MIB} MiB`);
    const upload = await timePhase(server.pid, settings.transferTimeoutMs, (deadline) => target.upload(deadline));
    console.log(`${server.label}: downloading ${settings.sizeBytes / MIB} MiB`);
    const download = await timePhase(server.pid, settings.transferTimeoutMs, (deadline) => target.download(deadline));
    samples = await sampler.stop();

    const quiet = samples.filter((sample) => sample.at >= upload.startAt - settings.settleMs && sample.at < upload.startAt);
    if (quiet.length === 0) throw new Error(`no RSS reading of the ${server.label} server before the upload`);
    const baselineKiB = median(quiet.map((sample) => sample.rssKiB));
    const first = samples[0]!.at;
    let maxSampleGapMs = 0;
    for (let index = 1; index < samples.length; index++) {
      maxSampleGapMs = Math.max(maxSampleGapMs, samples[index]!.at - samples[index - 1]!.at);
    }
    return {
      baselineRssMiB: round(baselineKiB / KIB),
      upload: summarizePhase(upload, samples, baselineKiB, settings.sizeBytes),
      download: summarizePhase(download, samples, baselineKiB, settings.sizeBytes),
      maxSampleGapMs: round(maxSampleGapMs),
      samples: samples.map((sample) => [Math.round(sample.at - first), sample.rssKiB]),
    };
  } finally {
    target.close();
    if (samples === undefined) await sampler.stop();
  }
}
