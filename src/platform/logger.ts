/** The pino logger, and grpc-js's own log messages routed into it. */
import * as grpc from '@grpc/grpc-js';
import { pino, type Logger } from 'pino';

export type { Logger };

const LOGGED_ERROR_MAX_CHARS = 2000;

/** Serializes an error with its message and stack cut, because driver errors can quote whole SQL statements. */
function serializeError(error: Error): object {
  const serialized = pino.stdSerializers.err(error) as unknown as Record<string, unknown>;
  for (const field of ['message', 'stack', 'sql']) {
    const text = serialized[field];
    if (typeof text === 'string' && text.length > LOGGED_ERROR_MAX_CHARS) {
      serialized[field] = `${text.slice(0, LOGGED_ERROR_MAX_CHARS)}… (${text.length} characters)`;
    }
  }
  return serialized;
}

export function createLogger(level: string): Logger {
  return pino({
    level,
    base: { service: 'image-registry' },
    serializers: { err: serializeError },
    // Never log credentials, whichever field they travel in.
    redact: ['authorization', '*.authorization', 'token', '*.token'],
  });
}

/** Sends grpc-js's internal warnings and errors to the service's log. */
export function routeGrpcLogs(logger: Logger): void {
  const grpcLogger = logger.child({ component: 'grpc-js' });
  grpc.setLogger({
    error: (...args: unknown[]) => grpcLogger.warn(args.map(String).join(' ')),
  } as unknown as Partial<Console>);
  grpc.setLogVerbosity(grpc.logVerbosity.ERROR);
}
