/**
 * The closed set of errors that use cases raise. The transport layer maps each
 * kind to one gRPC status code; anything else is a bug and becomes INTERNAL.
 */
export type ErrorKind =
  | 'INVALID_ARGUMENT'
  | 'NOT_FOUND'
  | 'PERMISSION_DENIED'
  | 'FAILED_PRECONDITION'
  | 'ALREADY_EXISTS'
  | 'RESOURCE_EXHAUSTED'
  | 'UNAUTHENTICATED'
  | 'UNAVAILABLE'
  | 'ABORTED'
  | 'CANCELLED'
  | 'DEADLINE_EXCEEDED';

export class RegistryError extends Error {
  constructor(
    readonly kind: ErrorKind,
    message: string,
    /** A stable UPPER_SNAKE name of the cause, such as IMAGE_NOT_SHARED. */
    readonly reason: string,
    /** The request field at fault, for INVALID_ARGUMENT. */
    readonly field?: string,
  ) {
    super(message);
    this.name = 'RegistryError';
  }
}

/** Formats a value for an error message: quoted, and cut after 80 characters. */
export function quote(value: unknown): string {
  const text = typeof value === 'string' ? value : JSON.stringify(value);
  const shown = [...(text ?? String(value))];
  const cut = shown.length > 80 ? shown.slice(0, 80).join('') + '…' : text;
  return JSON.stringify(cut);
}

export function invalidArgument(field: string, message: string): RegistryError {
  return new RegistryError('INVALID_ARGUMENT', `${field}: ${message}`, 'INVALID_FIELD', field);
}

/**
 * Returns the one error for an image that does not exist, was deleted, or
 * that the caller may not read, so that a caller cannot distinguish them.
 */
export function imageNotFound(imageId: string): RegistryError {
  return new RegistryError('NOT_FOUND', `image ${quote(imageId)} not found`, 'IMAGE_NOT_FOUND');
}

export function permissionDenied(message: string, reason: string): RegistryError {
  return new RegistryError('PERMISSION_DENIED', message, reason);
}

export function failedPrecondition(message: string, reason: string): RegistryError {
  return new RegistryError('FAILED_PRECONDITION', message, reason);
}
