/** The one table from domain errors to gRPC status codes. */
import { status as GrpcStatus, type StatusObject, Metadata } from '@grpc/grpc-js';
import type { ErrorKind } from '../domain/errors.js';
import { RegistryError } from '../domain/errors.js';
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

/**
 * Returns the status for an error thrown by a use case, and whether it is
 * unexpected (a bug, returned as INTERNAL with a generic message).
 */
export function statusForError(error: unknown): { status: Partial<StatusObject>; unexpected: boolean } {
  if (error instanceof RegistryError) {
    return {
      status: { code: STATUS_BY_KIND[error.kind], details: boundedMessage(error.message), metadata: new Metadata() },
      unexpected: false,
    };
  }
  if (error instanceof InvalidTokenError) {
    return { status: { code: GrpcStatus.UNAUTHENTICATED, details: boundedMessage(error.message) }, unexpected: false };
  }
  return { status: { code: GrpcStatus.INTERNAL, details: INTERNAL_MESSAGE }, unexpected: true };
}
