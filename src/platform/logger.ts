/** The pino logger, and grpc-js's own log messages routed into it. */
import * as grpc from '@grpc/grpc-js';
import { pino, type Logger } from 'pino';

export type { Logger };

export function createLogger(level: string): Logger {
  return pino({
    level,
    base: { service: 'image-registry' },
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
