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

/**
 * Creates the service's logger, which writes JSON lines to stdout. Writes
 * are asynchronous: lines logged while a write is under way go out together
 * in the next one. A synchronous write per call line took a fifth of the
 * server's CPU under load. The lines still buffered are written when the
 * process exits, except after SIGKILL.
 */
export function createLogger(level: string): Logger {
  const destination = pino.destination({ dest: 1, sync: false });
  process.on('exit', () => {
    try {
      destination.flushSync();
    } catch {
      // stdout is gone or not writable at exit; nothing else can take the lines.
    }
  });
  return pino(
    {
      level,
      base: { service: 'image-registry' },
      serializers: { err: serializeError },
      // Never log credentials, whichever field they travel in.
      redact: ['authorization', '*.authorization', 'token', '*.token'],
    },
    destination,
  );
}

/** Sends grpc-js's internal warnings and errors to the service's log. */
export function routeGrpcLogs(logger: Logger): void {
  const grpcLogger = logger.child({ component: 'grpc-js' });
  grpc.setLogger({
    error: (...args: unknown[]) => grpcLogger.warn(args.map(String).join(' ')),
  } as unknown as Partial<Console>);
  grpc.setLogVerbosity(grpc.logVerbosity.ERROR);
}
