/** The one table from domain errors to gRPC statuses, with their standard error details. */
import { status as GrpcStatus, type StatusObject, Metadata } from '@grpc/grpc-js';
import type { ErrorKind } from '../domain/errors.js';
import { RegistryError } from '../domain/errors.js';
import type { Any } from '../../gen/google/protobuf/any.js';
import { BadRequest, ErrorInfo } from '../../gen/google/rpc/error_details.js';
import { Status } from '../../gen/google/rpc/status.js';
import { InvalidTokenError } from './token-verifier.js';

const STATUS_BY_KIND: Record<ErrorKind, GrpcStatus> = {
  INVALID_ARGUMENT: GrpcStatus.INVALID_ARGUMENT,
  NOT_FOUND: GrpcStatus.NOT_FOUND,
  PERMISSION_DENIED: GrpcStatus.PERMISSION_DENIED,
  FAILED_PRECONDITION: GrpcStatus.FAILED_PRECONDITION,
  ALREADY_EXISTS: GrpcStatus.ALREADY_EXISTS,
  RESOURCE_EXHAUSTED: GrpcStatus.RESOURCE_EXHAUSTED,
  UNAUTHENTICATED: GrpcStatus.UNAUTHENTICATED,
  UNAVAILABLE: GrpcStatus.UNAVAILABLE,
  ABORTED: GrpcStatus.ABORTED,
  CANCELLED: GrpcStatus.CANCELLED,
  DEADLINE_EXCEEDED: GrpcStatus.DEADLINE_EXCEEDED,
};

export const INTERNAL_MESSAGE = 'internal error; the server logged the cause';

/**
 * Characters of a status message sent at most. The message travels in an
 * HTTP/2 trailer, and a trailer of megabytes broke the connection.
 */
const MAX_MESSAGE_CHARS = 1024;

function boundedMessage(message: string): string {
  return message.length > MAX_MESSAGE_CHARS ? `${message.slice(0, MAX_MESSAGE_CHARS - 1)}…` : message;
}

/** The domain of every ErrorInfo this service sends. */
export const ERROR_DOMAIN = 'imageregistry.v1';

/** Facts about the call that failed, sent in ErrorInfo.metadata. */
export interface ErrorFacts {
  imageId?: string;
}

/**
 * Returns the status for an error thrown by a use case, and whether it is
 * unexpected (a bug, returned as INTERNAL with a generic message). Every
 * status carries a google.rpc.Status in the grpc-status-details-bin
 * trailer, with an ErrorInfo and, for a bad field, a BadRequest.
 */
export function statusForError(
  error: unknown,
  facts: ErrorFacts = {},
): { status: Partial<StatusObject>; unexpected: boolean } {
  let code = GrpcStatus.INTERNAL;
  let message = INTERNAL_MESSAGE;
  let reason = 'INTERNAL';
  let field: string | undefined;
  if (error instanceof RegistryError) {
    code = STATUS_BY_KIND[error.kind];
    message = boundedMessage(error.message);
    reason = error.reason;
    field = error.field;
  } else if (error instanceof InvalidTokenError) {
    code = GrpcStatus.UNAUTHENTICATED;
    message = boundedMessage(error.message);
    reason = 'INVALID_TOKEN';
  }
  const metadata = new Metadata();
  metadata.set('grpc-status-details-bin', statusDetails(code, message, reason, field, facts));
  const unexpected = !(error instanceof RegistryError || error instanceof InvalidTokenError);
  return { status: { code, details: message, metadata }, unexpected };
}

function statusDetails(
  code: GrpcStatus,
  message: string,
  reason: string,
  field: string | undefined,
  facts: ErrorFacts,
): Buffer {
  const info: Record<string, string> = {};
  if (facts.imageId !== undefined) info.image_id = facts.imageId;
  const details: Any[] = [
    packAny('google.rpc.ErrorInfo', ErrorInfo.encode({ reason, domain: ERROR_DOMAIN, metadata: new Map(Object.entries(info)) }).finish()),
  ];
  if (field !== undefined) {
    const violation = { field, description: message };
    details.push(packAny('google.rpc.BadRequest', BadRequest.encode({ fieldViolations: [violation] }).finish()));
  }
  return Buffer.from(Status.encode({ code, message, details }).finish());
}

function packAny(typeName: string, value: Uint8Array): Any {
  return { typeUrl: `type.googleapis.com/${typeName}`, value: Buffer.from(value) };
}
