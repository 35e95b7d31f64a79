/**
 * One worker thread of the load generator: its own grpc-js channel and a
 * closed loop of `inFlight` calls, each issued as soon as the previous one
 * of its slot returns. It times the calls that start and end inside the
 * measured window and, to keep its own CPU low, decodes responses only
 * during the warm-up, where it checks them.
 *
 * Started by generator.ts with a WorkerPlan as workerData. It posts
 * 'ready' once its channel is connected, waits for a WorkerSchedule, and
 * posts a WorkerResult after the window, when its last call has returned.
 */
import { parentPort, workerData } from 'node:worker_threads';
import * as grpc from '@grpc/grpc-js';
import { Image } from '../../gen/imageregistry/v1/image.js';
import { ListImagesResponse } from '../../gen/imageregistry/v1/image_service.js';
import {
  CreateMemberRequest,
  Member,
  MemberStatus,
  UpdateMemberRequest,
} from '../../gen/imageregistry/v1/member_service.js';
import {
  METHOD_PATHS,
  type Operation,
  type ResponseCheck,
  type WorkerPlan,
  type WorkerResult,
  type WorkerSchedule,
} from './calls.js';

const CONNECT_TIMEOUT_MS = 10_000;
const INITIAL_SAMPLE_CAPACITY = 65_536;
const KEPT_MESSAGES = 10;

const plan = workerData as WorkerPlan;
const passBuffer = (buffer: Buffer): Buffer => buffer;

function now(): number {
  return performance.timeOrigin + performance.now();
}

/** One call to make: the method, the encoded request, the metadata and the check of its response. */
interface PreparedCall {
  operationIndex: number;
  path: string;
  body: Buffer;
  metadata: grpc.Metadata;
  check: ResponseCheck | { kind: 'member'; memberId: string; status: MemberStatus | null };
}

const metadataByProject = new Map<string, grpc.Metadata>();
function metadataFor(project: string): grpc.Metadata {
  let metadata = metadataByProject.get(project);
  if (metadata === undefined) {
    const token = plan.tokens[project];
    if (token === undefined) throw new Error(`worker ${plan.workerIndex}: no token for project ${project}`);
    metadata = new grpc.Metadata();
    metadata.set('authorization', `Bearer ${token}`);
    metadataByProject.set(project, metadata);
  }
  // grpc-js copies the metadata when a call starts (ResolvingCall.start in 1.14), so one object serves every call.
  return metadata;
}

function asBuffer(bytes: Uint8Array): Buffer {
  return Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength);
}

/** Returns a function that gives the next call of one operation, cycling through its requests or targets. */
function callSource(operation: Operation, operationIndex: number): () => PreparedCall {
  if (operation.kind === 'fixed') {
    const path = METHOD_PATHS[operation.method];
    const bodies = operation.requests.map((request) => asBuffer(request.body));
    // Workers start at different requests, so that they do not all read the same rows at once.
    let next = plan.workerIndex * 7_919;
    return () => {
      const index = next++ % operation.requests.length;
      const request = operation.requests[index]!;
      return { operationIndex, path, body: bodies[index]!, metadata: metadataFor(request.project), check: request.check };
    };
  }
  if (operation.kind === 'create-member') {
    let next = 0;
    let created = 0;
    return () => {
      const target = operation.targets[next++ % operation.targets.length]!;
      const memberId = `${plan.memberIdPrefix}${created++}`;
      const body = Buffer.from(CreateMemberRequest.encode({ imageId: target.imageId, memberId }).finish());
      return {
        operationIndex,
        path: METHOD_PATHS.createMember,
        body,
        metadata: metadataFor(target.project),
        check: { kind: 'member', memberId, status: null },
      };
    };
  }
  let next = 0;
  const accepted = operation.targets.map(() => false);
  return () => {
    const index = next++ % operation.targets.length;
    const target = operation.targets[index]!;
    accepted[index] = !accepted[index];
    const status = accepted[index] ? MemberStatus.MEMBER_STATUS_ACCEPTED : MemberStatus.MEMBER_STATUS_REJECTED;
    const body = Buffer.from(UpdateMemberRequest.encode({ imageId: target.imageId, memberId: target.project, status }).finish());
    return {
      operationIndex,
      path: METHOD_PATHS.updateMember,
      body,
      metadata: metadataFor(target.project),
      check: { kind: 'member', memberId: target.project, status },
    };
  };
}

/** Returns why a warm-up response fails its check, or null when it passes. */
function checkResponse(check: PreparedCall['check'], response: Buffer): string | null {
  switch (check.kind) {
    case 'none':
      return null;
    case 'image': {
      const image = Image.decode(response);
      return image.id === check.id ? null : `GetImage returned image ${image.id}, expected ${check.id}`;
    }
    case 'list': {
      const page = ListImagesResponse.decode(response);
      return page.images.length >= check.minImages
        ? null
        : `ListImages returned ${page.images.length} images, expected at least ${check.minImages}`;
    }
    case 'member': {
      const member = Member.decode(response);
      if (member.memberId !== check.memberId) return `member call returned member ${member.memberId}, expected ${check.memberId}`;
      if (check.status !== null && member.status !== check.status) {
        return `UpdateMember returned status ${member.status}, expected ${check.status}`;
      }
      return null;
    }
  }
}

function pickerFor(operations: Operation[]): () => number {
  if (operations.length === 1) return () => 0;
  const total = operations.reduce((sum, operation) => sum + operation.weight, 0);
  const bounds: number[] = [];
  let sum = 0;
  for (const operation of operations) {
    sum += operation.weight / total;
    bounds.push(sum);
  }
  return () => {
    const u = Math.random();
    const index = bounds.findIndex((bound) => u < bound);
    return index === -1 ? bounds.length - 1 : index;
  };
}

function keep(list: string[], message: string): void {
  if (list.length < KEPT_MESSAGES) list.push(message);
}

function addCount(counts: Record<string, number>, key: string): void {
  counts[key] = (counts[key] ?? 0) + 1;
}

async function run(schedule: WorkerSchedule, client: grpc.Client): Promise<WorkerResult> {
  const sources = plan.operations.map((operation, index) => callSource(operation, index));
  const pickOperation = pickerFor(plan.operations);
  let latencies = new Float64Array(Math.min(INITIAL_SAMPLE_CAPACITY, plan.maxSamples));
  let operationIndexes = new Uint8Array(latencies.length);
  const result: WorkerResult = {
    workerIndex: plan.workerIndex,
    latenciesMs: latencies,
    operationIndexes,
    measuredCalls: 0,
    warmupCalls: 0,
    lateCalls: 0,
    errors: {},
    warmupErrors: {},
    errorSamples: [],
    checkFailures: [],
  };

  function record(operationIndex: number, latencyMs: number): void {
    const index = result.measuredCalls++;
    if (index >= plan.maxSamples) return;
    if (index >= latencies.length) {
      const grown = new Float64Array(Math.min(latencies.length * 2, plan.maxSamples));
      grown.set(latencies);
      latencies = grown;
      const grownIndexes = new Uint8Array(grown.length);
      grownIndexes.set(operationIndexes);
      operationIndexes = grownIndexes;
    }
    latencies[index] = latencyMs;
    operationIndexes[index] = operationIndex;
  }

  function settle(call: PreparedCall, startedAt: number, endedAt: number, error: grpc.ServiceError | null, response?: Buffer): void {
    const label = plan.operations[call.operationIndex]!.label;
    const inWindow = startedAt >= schedule.measureStartAt && endedAt <= schedule.measureEndAt;
    if (error !== null) {
      const key = `${label} ${grpc.status[error.code] ?? error.code}`;
      addCount(startedAt < schedule.measureStartAt ? result.warmupErrors : result.errors, key);
      keep(result.errorSamples, `${key}: ${error.details}`);
      return;
    }
    if (startedAt < schedule.measureStartAt) {
      result.warmupCalls++;
      const failure = checkResponse(call.check, response!);
      if (failure !== null) keep(result.checkFailures, `${label}: ${failure}`);
    } else if (inWindow) {
      record(call.operationIndex, endedAt - startedAt);
    } else {
      result.lateCalls++;
    }
  }

  await new Promise<void>((resolve) => {
    let active = plan.inFlight;
    const issue = (): void => {
      const startedAt = now();
      if (startedAt >= schedule.measureEndAt) {
        if (--active === 0) resolve();
        return;
      }
      const call = sources[pickOperation()]!();
      client.makeUnaryRequest(call.path, passBuffer, passBuffer, call.body, call.metadata, (error, response) => {
        settle(call, startedAt, now(), error, response);
        issue();
      });
    };
    const startLoops = (): void => {
      for (let slot = 0; slot < plan.inFlight; slot++) issue();
    };
    setTimeout(startLoops, Math.max(0, schedule.warmupStartAt - now()));
  });

  result.latenciesMs = latencies.slice(0, Math.min(result.measuredCalls, plan.maxSamples));
  result.operationIndexes = operationIndexes.slice(0, result.latenciesMs.length);
  return result;
}

async function main(): Promise<void> {
  const client = new grpc.Client(plan.address, grpc.credentials.createInsecure(), {
    // A channel of this worker's own, not one shared through grpc-js's global subchannel pool.
    'grpc.use_local_subchannel_pool': 1,
    // No retry bookkeeping per call: a load generator reports failures rather than retrying them.
    'grpc.enable_retries': 0,
  });
  await new Promise<void>((resolve, reject) =>
    client.waitForReady(Date.now() + CONNECT_TIMEOUT_MS, (error) => (error ? reject(error) : resolve())),
  );
  const schedule = await new Promise<WorkerSchedule>((resolve) => {
    parentPort!.once('message', resolve);
    parentPort!.postMessage('ready');
  });
  const result = await run(schedule, client);
  client.close();
  parentPort!.postMessage(result, [result.latenciesMs.buffer as ArrayBuffer, result.operationIndexes.buffer as ArrayBuffer]);
}

await main();
