/**
 * The adapter that every unary handler goes through. grpc-js ignores the
 * promise an async handler returns and sends a synchronous throw's message
 * raw, so no handler may skip this. In order, it verifies the caller's
 * token, checks that its roles allow the method, rejects a request that did
 * not decode, runs the use case, maps its error to a status, and writes one
 * log line.
 */
import { type ServerUnaryCall, type sendUnaryData, status as GrpcStatus } from '@grpc/grpc-js';
import type { Logger } from 'pino';
import { RegistryError } from '../domain/errors.js';
import type { Caller } from '../domain/model.js';
import { statusForError } from './error-status.js';
import { UndecodableRequest } from './strict-decoding.js';
import type { TokenVerifier } from './token-verifier.js';

/** The access a method needs: reading needs any role, writing needs member or admin. */
export type Access = 'read' | 'write';

export interface HandlerDependencies {
  verifier: TokenVerifier;
  logger: Logger;
}

export type UnaryHandler<Req, Res> = (
  call: ServerUnaryCall<Req | UndecodableRequest, Res>,
  callback: sendUnaryData<Res>,
) => void;

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

const LOGGED_ID_MAX_CHARS = 64;

/** Returns the image id a request or response names, for the log line, cut after 64 characters. */
function imageIdOf(message: unknown): string | undefined {
  const fields = message as { id?: unknown; imageId?: unknown; image?: { id?: unknown } } | null;
  const id = fields?.id ?? fields?.imageId ?? fields?.image?.id;
  if (typeof id !== 'string' || id === '') return undefined;
  return id.length > LOGGED_ID_MAX_CHARS ? `${id.slice(0, LOGGED_ID_MAX_CHARS)}…` : id;
}

export function unaryHandler<Req, Res>(
  dependencies: HandlerDependencies,
  method: string,
  access: Access,
  run: (caller: Caller, request: Req) => Promise<Res>,
): UnaryHandler<Req, Res> {
  return (call, callback) => {
    void handle(dependencies, method, access, run, call, callback);
  };
}

async function handle<Req, Res>(
  { verifier, logger }: HandlerDependencies,
  method: string,
  access: Access,
  run: (caller: Caller, request: Req) => Promise<Res>,
  call: ServerUnaryCall<Req | UndecodableRequest, Res>,
  callback: sendUnaryData<Res>,
): Promise<void> {
  const started = performance.now();
  const request = call.request;
  let project: string | undefined;
  try {
    const authorization = call.metadata.get('authorization')[0];
    const caller = await verifier.verify(typeof authorization === 'string' ? authorization : undefined);
    project = caller.projectId;
    assertRolesAllow(caller, method, access);
    if (request instanceof UndecodableRequest) {
      throw new RegistryError('INVALID_ARGUMENT', `request: the message could not be decoded: ${request.reason}`, 'UNDECODABLE_REQUEST');
    }
    const response = await run(caller, request);
    callback(null, response);
    logger.info(
      {
        method,
        code: 'OK',
        duration_ms: elapsed(started),
        project,
        image_id: imageIdOf(request) ?? imageIdOf(response),
      },
      'call handled',
    );
  } catch (error) {
    const { status, unexpected } = statusForError(error);
    callback(status, null);
    const fields = {
      method,
      code: GrpcStatus[status.code!],
      duration_ms: elapsed(started),
      project,
      image_id: request instanceof UndecodableRequest ? undefined : imageIdOf(request),
    };
    if (unexpected) logger.error({ ...fields, err: error }, 'call failed with an unexpected error');
    else logger.info({ ...fields, detail: status.details }, 'call rejected');
  }
}

/** Returns a function that builds the handlers of one service, named `service/method` in logs. */
export function handlerBuilder(dependencies: HandlerDependencies, service: string) {
  return <Req, Res>(method: string, access: Access, run: (caller: Caller, request: Req) => Promise<Res>) =>
    unaryHandler<Req, Res>(dependencies, `${service}/${method}`, access, run);
}

function elapsed(started: number): number {
  return Math.round((performance.now() - started) * 100) / 100;
}
