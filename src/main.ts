/** Entry point: reads the configuration, starts the service, stops it on SIGTERM or SIGINT. */
import { ConfigError, loadConfig } from './platform/config.js';
import { createLogger, routeGrpcLogs } from './platform/logger.js';
import { type RunningService, startService } from './service.js';

async function main(): Promise<void> {
  let config;
  try {
    config = loadConfig();
  } catch (error) {
    if (!(error instanceof ConfigError)) throw error;
    console.error(error.message);
    process.exit(2);
  }
  const logger = createLogger(config.LOG_LEVEL);
  routeGrpcLogs(logger);

  // Installed before the service starts: the "listening" line is logged
  // during startService, and a signal sent right after it must not find
  // Node's default handler, which exits at once.
  let service: RunningService | undefined;
  let requestedStop: string | undefined;
  const shutdown = (signal: string) => {
    if (service === undefined) {
      requestedStop = signal;
      return;
    }
    logger.info({ signal }, 'shutting down: no new calls, waiting for running ones');
    service.stop().then(
      () => process.exit(0),
      (error: unknown) => {
        logger.error({ err: error }, 'shutdown failed');
        process.exit(1);
      },
    );
  };
  process.once('SIGTERM', () => shutdown('SIGTERM'));
  process.once('SIGINT', () => shutdown('SIGINT'));

  try {
    service = await startService(config, logger);
  } catch (error) {
    if (error instanceof ConfigError) {
      console.error(error.message);
      process.exit(2);
    }
    logger.fatal({ err: error }, 'image registry failed to start');
    process.exit(1);
  }
  if (requestedStop !== undefined) shutdown(requestedStop);
}

await main();
