/**
 * The calls of the load benchmark as data that the main thread builds and
 * each worker thread receives: which method, with which encoded request
 * and which caller's token. Requests travel as protobuf bytes, so a worker
 * spends its time on calls rather than on encoding.
 */

export const BARE_EMPTY_PATH = '/bench.BareUnary/Empty';

export const METHOD_PATHS = {
  getImage: '/imageregistry.v1.ImageService/GetImage',
  listImages: '/imageregistry.v1.ImageService/ListImages',
  createMember: '/imageregistry.v1.MemberService/CreateMember',
  updateMember: '/imageregistry.v1.MemberService/UpdateMember',
  bareEmpty: BARE_EMPTY_PATH,
} as const;
export type MethodName = keyof typeof METHOD_PATHS;

/** A check of one response, which a worker applies during the warm-up, the only time it decodes responses. */
export type ResponseCheck =
  | { kind: 'image'; id: string }
  | { kind: 'list'; minImages: number }
  | { kind: 'none' };

/** A request sent unchanged on every call, encoded once by the main thread. */
export interface FixedRequest {
  /** The calling project, whose token the call carries. */
  project: string;
  body: Uint8Array;
  check: ResponseCheck;
}

/** A shared image and the project that calls on it: its owner for CreateMember, the member for UpdateMember. */
export interface MemberTarget {
  project: string;
  imageId: string;
}

interface OperationBase {
  /** Name in reports, such as "get-image". */
  label: string;
  /** Relative share of the calls, when a scenario mixes operations. */
  weight: number;
}

export type Operation =
  | (OperationBase & { kind: 'fixed'; method: MethodName; requests: FixedRequest[] })
  /** CreateMember of a new member id on each call, cycling through the targets. */
  | (OperationBase & { kind: 'create-member'; targets: MemberTarget[] })
  /** UpdateMember of the caller's own membership, switching each target between ACCEPTED and REJECTED. */
  | (OperationBase & { kind: 'update-member'; targets: MemberTarget[] });

/** Everything one worker thread needs, given once at its start. */
export interface WorkerPlan {
  address: string;
  workerIndex: number;
  /** Calls this worker keeps in flight. */
  inFlight: number;
  /** Bearer token of each calling project. */
  tokens: Record<string, string>;
  operations: Operation[];
  /** Prefix of the member ids that CreateMember adds, unique to the run and the worker. */
  memberIdPrefix: string;
  /** Latencies kept at most; calls beyond are counted but not timed. */
  maxSamples: number;
}

/** Sent by the main thread once every worker is ready. Times are epoch milliseconds. */
export interface WorkerSchedule {
  warmupStartAt: number;
  measureStartAt: number;
  measureEndAt: number;
}

export interface WorkerResult {
  workerIndex: number;
  /** Latency of each successful call that started and ended within the measured window. */
  latenciesMs: Float64Array;
  /** Index into the plan's operations of each entry of latenciesMs. */
  operationIndexes: Uint8Array;
  /** Successful calls in the window, including any beyond maxSamples. */
  measuredCalls: number;
  warmupCalls: number;
  /** Calls that started in the window and ended after it. They are not counted. */
  lateCalls: number;
  /** Failed calls in the window, by "<operation> <status code name>". */
  errors: Record<string, number>;
  /** Failed calls during the warm-up, by "<operation> <status code name>". */
  warmupErrors: Record<string, number>;
  /** The first few error messages. */
  errorSamples: string[];
  /** Warm-up responses that did not pass their ResponseCheck. */
  checkFailures: string[];
}

/** Splits `total` calls in flight over `workers` as evenly as possible. */
export function inFlightPerWorker(total: number, workers: number): number[] {
  return Array.from({ length: workers }, (_, index) => Math.floor(total / workers) + (index < total % workers ? 1 : 0));
}
