/**
 * The closed-loop load generator: worker threads (worker.ts), each with its
 * own grpc-js channel, keep a fixed total of calls in flight against one
 * server through a warm-up and a measured window. This module starts them,
 * reads the server's, the client's and the machine's CPU time and the
 * server's RSS around the window, and merges the workers' latencies.
 */
import { availableParallelism } from 'node:os';
import { Worker } from 'node:worker_threads';
import { readCpuSeconds, readPeakRssKiB, readRssKiB, resetPeakRss, RssSampler } from '../process-stats.js';
import { type Operation, type WorkerPlan, type WorkerResult, type WorkerSchedule, inFlightPerWorker } from './calls.js';
import { type MachineTicks, busyPercent, readMachineTicks } from './system-stats.js';

export interface LoadSettings {
  inFlight: number;
  workers: number;
  warmupS: number;
  durationS: number;
  /** Interval of the server's RSS readings in milliseconds. */
  sampleMs: number;
}

export interface LoadTarget {
  address: string;
  serverPid: number;
  /** The database server's pid, whose CPU time is reported too, or null. */
  databasePid: number | null;
  tokens: Record<string, string>;
  operations: Operation[];
  /** Prefix of the member ids that CreateMember calls add. */
  memberIdPrefix: string;
}

export interface LatencySummary {
  p50: number;
  p90: number;
  p99: number;
  max: number;
  mean: number;
}

export interface OperationResult {
  label: string;
  calls: number;
  callsPerSecond: number;
  latencyMs: LatencySummary | null;
}

export interface LoadResult {
  /** Successful calls that started and ended in the window. */
  calls: number;
  seconds: number;
  callsPerSecond: number;
  latencyMs: LatencySummary | null;
  /** Per operation, for scenarios that mix several. */
  operations: OperationResult[];
  warmupCalls: number;
  lateCalls: number;
  errors: Record<string, number>;
  warmupErrors: Record<string, number>;
  errorSamples: string[];
  checkFailures: string[];
  /**
   * CPU time during the window divided by its length: 1.0 is one core kept
   * busy. `others` is what the rest of the machine used: all CPUs' busy time
   * less the server, this process and the database server.
   */
  cores: { server: number; client: number; database: number | null; others: number };
  machineBusyPercent: number;
  rssMiB: {
    /** The larger of the highest reading and VmHWM, from the start of the warm-up to the end of the window. */
    peak: number;
    sampledPeak: number;
    /** VmHWM at the end, or null when it could not be reset at the start. */
    kernelPeak: number | null;
    atEnd: number;
  };
}

/** Time for workers to load their modules and connect. */
const WORKER_START_TIMEOUT_MS = 30_000;
/** Time after the window for the last calls to return. */
const DRAIN_TIMEOUT_MS = 60_000;
/** Latencies kept per worker: 16 MB of doubles. */
const MAX_SAMPLES_PER_WORKER = 2_000_000;
const KIB_PER_MIB = 1024;

const WORKER_URL = new URL('./worker.ts', import.meta.url).href;
const TSX_API_URL = import.meta.resolve('tsx/esm/api');

/**
 * Starts worker.ts in a thread. Node 20 does not pass the parent's tsx
 * loader on to worker threads, so a small script registers it first.
 */
function startWorker(plan: WorkerPlan): Worker {
  const bootstrap =
    `import(${JSON.stringify(TSX_API_URL)})` +
    `.then((api) => { api.register(); return import(${JSON.stringify(WORKER_URL)}); })` +
    '.catch((error) => { console.error(error); process.exit(1); });';
  return new Worker(bootstrap, { eval: true, workerData: plan });
}

function now(): number {
  return performance.timeOrigin + performance.now();
}

function nextMessage<T>(worker: Worker, timeoutMs: number, action: string): Promise<T> {
  return new Promise<T>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`a load worker did not ${action} within ${timeoutMs} ms`)), timeoutMs);
    const cleanUp = () => {
      clearTimeout(timer);
      worker.off('message', onMessage);
      worker.off('error', onError);
      worker.off('exit', onExit);
    };
    const onMessage = (message: T) => {
      cleanUp();
      resolve(message);
    };
    const onError = (error: Error) => {
      cleanUp();
      reject(error);
    };
    const onExit = (code: number) => {
      cleanUp();
      reject(new Error(`a load worker exited with code ${code} before it could ${action}`));
    };
    worker.on('message', onMessage);
    worker.on('error', onError);
    worker.on('exit', onExit);
  });
}

function sleepUntil(at: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, Math.max(0, at - now())));
}

/** Nearest-rank percentile of sorted values. */
function percentile(sorted: Float64Array, p: number): number {
  return sorted[Math.max(0, Math.ceil((p / 100) * sorted.length) - 1)]!;
}

function summarizeLatencies(values: Float64Array): LatencySummary | null {
  if (values.length === 0) return null;
  const sorted = values.slice().sort();
  let sum = 0;
  for (const value of sorted) sum += value;
  return {
    p50: percentile(sorted, 50),
    p90: percentile(sorted, 90),
    p99: percentile(sorted, 99),
    max: sorted[sorted.length - 1]!,
    mean: sum / sorted.length,
  };
}

function mergeCounts(target: Record<string, number>, source: Record<string, number>): void {
  for (const [key, count] of Object.entries(source)) target[key] = (target[key] ?? 0) + count;
}

interface Readings {
  at: number;
  serverCpu: number;
  clientCpu: number;
  databaseCpu: number | null;
  machine: MachineTicks;
}

function takeReadings(target: LoadTarget): Readings {
  const usage = process.cpuUsage();
  return {
    at: now(),
    serverCpu: readCpuSeconds(target.serverPid),
    clientCpu: (usage.user + usage.system) / 1e6,
    databaseCpu: target.databasePid === null ? null : readCpuSeconds(target.databasePid),
    machine: readMachineTicks(),
  };
}

/** Runs one warm-up and measured window against a server and returns the merged figures. */
export async function runLoad(target: LoadTarget, settings: LoadSettings): Promise<LoadResult> {
  const slots = inFlightPerWorker(settings.inFlight, settings.workers);
  const workers = slots.map((inFlight, workerIndex) =>
    startWorker({
      address: target.address,
      workerIndex,
      inFlight,
      tokens: target.tokens,
      operations: target.operations.map((operation) => sliceForWorker(operation, workerIndex, settings.workers)),
      memberIdPrefix: `${target.memberIdPrefix}w${workerIndex}-`,
      maxSamples: MAX_SAMPLES_PER_WORKER,
    }),
  );
  try {
    await Promise.all(workers.map((worker) => nextMessage<string>(worker, WORKER_START_TIMEOUT_MS, 'connect')));
    const warmupStartAt = now() + 50;
    const schedule: WorkerSchedule = {
      warmupStartAt,
      measureStartAt: warmupStartAt + settings.warmupS * 1000,
      measureEndAt: warmupStartAt + (settings.warmupS + settings.durationS) * 1000,
    };
    const results = workers.map((worker) =>
      nextMessage<WorkerResult>(worker, schedule.measureEndAt - now() + DRAIN_TIMEOUT_MS, 'return its results'),
    );
    for (const worker of workers) worker.postMessage(schedule);

    await sleepUntil(warmupStartAt);
    const sampler = new RssSampler(target.serverPid, settings.sampleMs, Math.ceil(((settings.warmupS + settings.durationS) * 1000) / settings.sampleMs) + 100);
    const peakWasReset = resetPeakRss(target.serverPid);
    await sleepUntil(schedule.measureStartAt);
    const before = takeReadings(target);
    await sleepUntil(schedule.measureEndAt);
    const after = takeReadings(target);
    const kernelPeakKiB = peakWasReset ? readPeakRssKiB(target.serverPid) : null;
    const endKiB = readRssKiB(target.serverPid);
    const samples = await sampler.stop();
    return merge(await Promise.all(results), target.operations, settings, before, after, {
      kernelPeakKiB,
      endKiB,
      sampledPeakKiB: Math.max(endKiB, ...samples.map((sample) => sample.rssKiB)),
    });
  } finally {
    await Promise.all(workers.map((worker) => worker.terminate()));
  }
}

/**
 * Gives each worker every read request but only its share of the write
 * targets, so that no two workers change the same membership.
 */
function sliceForWorker(operation: Operation, workerIndex: number, workers: number): Operation {
  if (operation.kind === 'fixed') return operation;
  const targets = operation.targets.filter((_, index) => index % workers === workerIndex);
  if (targets.length === 0) throw new Error(`${operation.label}: ${operation.targets.length} targets are too few for ${workers} workers`);
  return { ...operation, targets };
}

function merge(
  results: WorkerResult[],
  operations: Operation[],
  settings: LoadSettings,
  before: Readings,
  after: Readings,
  rss: { kernelPeakKiB: number | null; endKiB: number; sampledPeakKiB: number },
): LoadResult {
  const seconds = settings.durationS;
  const calls = results.reduce((sum, result) => sum + result.measuredCalls, 0);
  const latencies = new Float64Array(results.reduce((sum, result) => sum + result.latenciesMs.length, 0));
  const operationIndexes = new Uint8Array(latencies.length);
  let offset = 0;
  for (const result of results) {
    latencies.set(result.latenciesMs, offset);
    operationIndexes.set(result.operationIndexes, offset);
    offset += result.latenciesMs.length;
  }
  const errors: Record<string, number> = {};
  const warmupErrors: Record<string, number> = {};
  for (const result of results) {
    mergeCounts(errors, result.errors);
    mergeCounts(warmupErrors, result.warmupErrors);
  }
  const readSeconds = (after.at - before.at) / 1000;
  const server = (after.serverCpu - before.serverCpu) / readSeconds;
  const client = (after.clientCpu - before.clientCpu) / readSeconds;
  const database =
    after.databaseCpu === null || before.databaseCpu === null ? null : (after.databaseCpu - before.databaseCpu) / readSeconds;
  const machineBusyPercent = busyPercent(before.machine, after.machine);
  const machineCores = (machineBusyPercent / 100) * availableParallelism();
  const cores = { server, client, database, others: Math.max(0, machineCores - server - client - (database ?? 0)) };
  const perOperation = operations.map((operation, index) => {
    const own = latencies.filter((_, position) => operationIndexes[position] === index);
    // Calls beyond the kept latencies are shared out in the same proportion as the kept ones.
    const share = latencies.length === 0 ? 0 : own.length / latencies.length;
    return {
      label: operation.label,
      calls: Math.round(calls * share),
      callsPerSecond: (calls * share) / seconds,
      latencyMs: summarizeLatencies(own),
    };
  });
  const kibToMib = (kib: number) => kib / KIB_PER_MIB;
  return {
    calls,
    seconds,
    callsPerSecond: calls / seconds,
    latencyMs: summarizeLatencies(latencies),
    operations: operations.length > 1 ? perOperation : [],
    warmupCalls: results.reduce((sum, result) => sum + result.warmupCalls, 0),
    lateCalls: results.reduce((sum, result) => sum + result.lateCalls, 0),
    errors,
    warmupErrors,
    errorSamples: results.flatMap((result) => result.errorSamples).slice(0, 10),
    checkFailures: results.flatMap((result) => result.checkFailures).slice(0, 10),
    cores,
    machineBusyPercent,
    rssMiB: {
      peak: kibToMib(Math.max(rss.sampledPeakKiB, rss.kernelPeakKiB ?? 0)),
      sampledPeak: kibToMib(rss.sampledPeakKiB),
      kernelPeak: rss.kernelPeakKiB === null ? null : kibToMib(rss.kernelPeakKiB),
      atEnd: kibToMib(rss.endKiB),
    },
  };
}
