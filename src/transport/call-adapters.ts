/**
 * The adapters that every handler goes through, for unary, client-stream
 * and server-stream calls. grpc-js ignores the promise an async handler
 * returns and sends a synchronous throw's message raw, so no handler may
 * skip them. In order, an adapter verifies the caller's token, checks that
 * its roles allow the method, rejects a request that did not decode, runs
 * the use case, maps its error to a status, and writes one log line.
 */
import {
  type Metadata,
  type ServerReadableStream,
  type ServerUnaryCall,
  type ServerWritableStream,
  type StatusObject,
  type sendUnaryData,
  status as GrpcStatus,
} from '@grpc/grpc-js';
import type { Logger } from 'pino';
import { RegistryError } from '../domain/errors.js';
import type { Caller } from '../domain/model.js';
import { runUntilCallEnds } from '../persistence/call-cancellation.js';
import { statusForError } from './error-status.js';
import { UndecodableRequest } from './strict-decoding.js';
import type { CallMetrics, CallType } from '../platform/metrics.js';
import type { TokenVerifier } from './token-verifier.js';

/** The access a method needs: reading needs any role, writing needs member or admin. */
export type Access = 'read' | 'write';

export interface HandlerDependencies {
  verifier: TokenVerifier;
  logger: Logger;
  running: RunningHandlers;
  /** Receives each call's start and end, for the Prometheus metrics. */
  metrics?: CallMetrics;
}

/**
 * The handlers still running, so that shutdown can end their calls with
 * UNAVAILABLE and wait for their cleanup (an upload returning its image to
 * QUEUED) before it closes the pool.
 */
export class RunningHandlers {
  private readonly handlers = new Map<Promise<void>, (reason: RegistryError) => void>();

  /** Tracks a handler until it settles; `end` ends its call early with a status. */
  track(handler: Promise<void>, end: (reason: RegistryError) => void): void {
    this.handlers.set(handler, end);
    void handler.finally(() => this.handlers.delete(handler));
  }

  /** Ends every running call with UNAVAILABLE, for a shutdown whose grace period is over. */
  endAll(): void {
    const reason = new RegistryError(
      'UNAVAILABLE',
      'the server is shutting down and ended the call; try again',
      'SERVER_SHUTTING_DOWN',
    );
    for (const end of this.handlers.values()) end(reason);
  }

  /** Waits until every running handler has finished, or `timeoutMs` has passed. */
  async settle(timeoutMs: number): Promise<void> {
    let timer: NodeJS.Timeout | undefined;
    const timeout = new Promise<void>((resolve) => {
      timer = setTimeout(resolve, timeoutMs);
    });
    await Promise.race([Promise.allSettled([...this.handlers.keys()]), timeout]);
    clearTimeout(timer);
  }
}

const LOGGED_ID_MAX_CHARS = 64;

/** Returns the image id a request or response names, for the log line, cut after 64 characters. */
function imageIdOf(message: unknown): string | undefined {
  const fields = message as { id?: unknown; imageId?: unknown; image?: { id?: unknown } } | null;
  const id = fields?.id ?? fields?.imageId ?? fields?.image?.id;
  if (typeof id !== 'string' || id === '') return undefined;
  return id.length > LOGGED_ID_MAX_CHARS ? `${id.slice(0, LOGGED_ID_MAX_CHARS)}…` : id;
}

function assertRolesAllow(caller: Caller, method: string, access: Access): void {
  const allowed = access === 'read' ? caller.canRead : caller.canWrite;
  if (!allowed) {
    const needed = access === 'read' ? 'reader, member or admin' : 'member or admin';
    throw new RegistryError(
      'PERMISSION_DENIED',
      `the token's roles do not allow ${method}; it needs the role ${needed}`,
      'ROLE_NOT_ALLOWED',
    );
  }
}

/** Throws INVALID_ARGUMENT for a message whose bytes did not decode, and returns it otherwise. */
function decoded<T>(message: T | UndecodableRequest): T {
  if (message instanceof UndecodableRequest) {
    throw new RegistryError(
      'INVALID_ARGUMENT',
      `request: the message could not be decoded: ${message.reason}`,
      'UNDECODABLE_REQUEST',
    );
  }
  return message;
}

/** One call's log line: what it was, who made it, how it ended. */
class CallRecord {
  private readonly started = performance.now();
  project: string | undefined;
  imageId: string | undefined;

  constructor(
    private readonly dependencies: HandlerDependencies,
    private readonly type: CallType,
    private readonly service: string,
    private readonly methodName: string,
    private readonly access: Access,
  ) {
    dependencies.metrics?.started(type, service, methodName);
  }

  /** The method as logs name it, `Service/Method`. */
  get method(): string {
    return `${this.service.slice(this.service.lastIndexOf('.') + 1)}/${this.methodName}`;
  }

  /** Verifies the token and the roles, and returns the caller. */
  async authorize(metadata: Metadata): Promise<Caller> {
    const authorization = metadata.get('authorization')[0];
    const caller = await this.dependencies.verifier.verify(
      typeof authorization === 'string' ? authorization : undefined,
    );
    this.project = caller.projectId;
    assertRolesAllow(caller, this.method, this.access);
    return caller;
  }

  noteImage(message: unknown): void {
    this.imageId ??= imageIdOf(message);
  }

  succeeded(): void {
    this.count('OK');
    this.dependencies.logger.info({ ...this.fields(), code: 'OK' }, 'call handled');
  }

  /** Logs the failure and returns the status to send. */
  failed(error: unknown): Partial<StatusObject> {
    const { status, unexpected } = statusForError(error, { imageId: this.imageId });
    const code = GrpcStatus[status.code!];
    this.count(code);
    const fields = { ...this.fields(), code };
    if (unexpected) this.dependencies.logger.error({ ...fields, err: error }, 'call failed with an unexpected error');
    else this.dependencies.logger.info({ ...fields, detail: status.details }, 'call rejected');
    return status;
  }

  private count(code: string): void {
    const seconds = (performance.now() - this.started) / 1000;
    this.dependencies.metrics?.handled(this.type, this.service, this.methodName, code, seconds);
  }

  private fields(): object {
    return {
      method: this.method,
      duration_ms: Math.round((performance.now() - this.started) * 100) / 100,
      project: this.project,
      image_id: this.imageId,
    };
  }
}

type Decoded<T> = T | UndecodableRequest;

/** The parts of a grpc-js server call that report when it ends. */
interface EndingCall {
  getDeadline(): Date | number;
  once(event: 'cancelled', listener: () => void): unknown;
  off(event: 'cancelled', listener: () => void): unknown;
}

/** A call's end watch: its controller, and a function that stops the watch once the response is sent. */
interface CallWatch {
  controller: AbortController;
  stopWatching(): void;
}

/**
 * Returns a controller whose signal is aborted when the call's deadline
 * passes or the client cancels it, and a function that stops watching the
 * call.
 */
function watchCallEnd(call: EndingCall): CallWatch {
  const controller = new AbortController();
  const deadline = call.getDeadline();
  const deadlineMs = deadline instanceof Date ? deadline.getTime() : deadline;
  const end = (atDeadline: boolean) => {
    if (controller.signal.aborted) return;
    controller.abort(
      atDeadline
        ? new RegistryError(
            'DEADLINE_EXCEEDED',
            "the call's deadline passed before it finished; its changes were not committed",
            'DEADLINE_EXCEEDED',
          )
        : new RegistryError('CANCELLED', 'the client cancelled the call', 'CANCELLED'),
    );
  };
  // grpc-js reports the end of its own deadline timer as a cancellation,
  // and also emits 'cancelled' after every call whose status was sent.
  const onCancelled = () => end(Date.now() >= deadlineMs);
  call.once('cancelled', onCancelled);
  const remainingMs = deadlineMs - Date.now();
  // setTimeout takes at most 2^31 - 1 ms; a later deadline is left to grpc-js.
  const timer = remainingMs <= 2 ** 31 - 1 ? setTimeout(() => end(true), Math.max(remainingMs, 0)) : undefined;
  return {
    controller,
    stopWatching: () => {
      clearTimeout(timer);
      call.off('cancelled', onCancelled);
    },
  };
}

/**
 * Runs a handler body inside the call's signal, so that its queries stop
 * when the call ends, and tracks it for shutdown. `sendEnd` sends the status
 * of a call that shutdown ends before the body has sent one.
 */
function runTracked(
  running: RunningHandlers,
  watch: CallWatch,
  body: (signal: AbortSignal) => Promise<void>,
  sendEnd: (status: Partial<StatusObject>) => void,
): void {
  const { controller, stopWatching } = watch;
  const handler = runUntilCallEnds(controller.signal, () => body(controller.signal)).finally(stopWatching);
  running.track(handler, (reason) => {
    if (!controller.signal.aborted) controller.abort(reason);
    sendEnd(statusForError(reason).status);
  });
}

/** Wraps a unary callback so that only its first use sends anything, and stops the watch before it does. */
function answerOnce<Res>(callback: sendUnaryData<Res>, watch: CallWatch): sendUnaryData<Res> {
  let answered = false;
  return (error, value) => {
    if (answered) return;
    answered = true;
    watch.stopWatching();
    callback(error, value);
  };
}

/** Returns the builders of one service's handlers, named `service/method` in logs. */
export function handlerBuilder(dependencies: HandlerDependencies, service: string) {
  const fullService = `imageregistry.v1.${service}`;
  const record = (type: CallType, method: string, access: Access) =>
    new CallRecord(dependencies, type, fullService, method, access);

  return {
    unary<Req, Res>(method: string, access: Access, run: (caller: Caller, request: Req) => Promise<Res>) {
      return (call: ServerUnaryCall<Decoded<Req>, Res>, sendResult: sendUnaryData<Res>): void => {
        const log = record('unary', method, access);
        const watch = watchCallEnd(call);
        const callback = answerOnce(sendResult, watch);
        runTracked(dependencies.running, watch, async () => {
          try {
            const caller = await log.authorize(call.metadata);
            log.noteImage(call.request);
            const response = await run(caller, decoded(call.request));
            log.noteImage(response);
            callback(null, response);
            log.succeeded();
          } catch (error) {
            callback(log.failed(error), null);
          }
        }, (status) => callback(status, null));
      };
    },

    /** A client stream; the messages end with an error when the client cancels. */
    clientStream<Req, Res>(
      method: string,
      access: Access,
      run: (
        caller: Caller,
        messages: AsyncIterable<Req>,
        log: { noteImage(message: unknown): void },
        cancellation: AbortSignal,
      ) => Promise<Res>,
    ) {
      return (call: ServerReadableStream<Decoded<Req>, Res>, sendResult: sendUnaryData<Res>): void => {
        const log = record('client_stream', method, access);
        const watch = watchCallEnd(call);
        const callback = answerOnce(sendResult, watch);
        // A reset HTTP/2 stream can end the messages as if the client had
        // finished sending, and only then report the cancellation. The
        // signal lets `run` check before it commits anything.
        call.once('cancelled', () => {
          call.destroy(new RegistryError('CANCELLED', 'the client cancelled the call', 'CANCELLED'));
        });
        runTracked(dependencies.running, watch, async (signal) => {
          try {
            const caller = await log.authorize(call.metadata);
            const response = await run(caller, decodedMessages(call), log, signal);
            log.noteImage(response);
            callback(null, response);
            log.succeeded();
          } catch (error) {
            callback(log.failed(error), null);
          }
        }, (status) => {
          callback(status, null);
          // Ends the body's wait for the next message.
          call.destroy(new RegistryError('UNAVAILABLE', status.details ?? '', 'SERVER_SHUTTING_DOWN'));
        });
      };
    },

    /** A server stream; `run` writes the responses and resolves when all are written. */
    serverStream<Req, Res>(
      method: string,
      access: Access,
      run: (caller: Caller, request: Req, call: ServerWritableStream<Decoded<Req>, Res>) => Promise<void>,
    ) {
      return (call: ServerWritableStream<Decoded<Req>, Res>): void => {
        const log = record('server_stream', method, access);
        const watch = watchCallEnd(call);
        let ended = false;
        const fail = (status: Partial<StatusObject>) => {
          if (ended) return;
          ended = true;
          watch.stopWatching();
          if (!call.destroyed) call.emit('error', status);
        };
        runTracked(dependencies.running, watch, async () => {
          try {
            const caller = await log.authorize(call.metadata);
            log.noteImage(call.request);
            await run(caller, decoded(call.request), call);
            if (ended) return;
            ended = true;
            watch.stopWatching();
            call.end();
            log.succeeded();
          } catch (error) {
            fail(log.failed(error));
          }
        }, fail);
      };
    },
  };
}

async function* decodedMessages<Req>(call: AsyncIterable<Decoded<Req>>): AsyncGenerator<Req> {
  for await (const message of call) yield decoded(message);
}
