/**
 * Starts and stops the whole service: database and migrations, token
 * verification, the gRPC server, health. Used by main.ts and by the tests.
 */
import type { Logger } from 'pino';
import { Metrics, type PoolStatistics, serveMetrics } from './platform/metrics.js';
import { createRegistryContext, type RegistryContext } from './app/registry-context.js';
import { sweepImageData } from './app/image-data.js';
import { Database } from './persistence/database.js';
import { FilesystemImageDataStore } from './persistence/image-data-store.js';
import { parseDatabaseUrl } from './persistence/database-url.js';
import { readFileSync } from 'node:fs';
import type { Server } from 'node:http';
import { type Config, ConfigError } from './platform/config.js';
import { HealthMonitor } from './platform/health.js';
import { loadOrCreateSecret } from './platform/jwt-secret.js';
import { type TlsFiles, bindServer, createGrpcServer, shutdownServer } from './transport/grpc-server.js';
import { RunningHandlers } from './transport/call-adapters.js';
import { TokenVerifier } from './transport/token-verifier.js';

/** How long shutdown waits for cancelled calls to finish their cleanup. */
const HANDLER_CLEANUP_MS = 5_000;

export interface RunningService {
  /** host:port the server listens on, with the real port when 0 was asked for. */
  address: string;
  /** host:port of the metrics endpoint, when METRICS_LISTEN is set. */
  metricsAddress?: string;
  database: Database;
  context: RegistryContext;
  /** Stops taking calls, lets running calls finish within the grace period, closes the pool. */
  stop(): Promise<void>;
}

/**
 * Returns the HS256 secret: AUTH_JWT_SECRET when set. Otherwise, when no
 * public key is configured either, the generated development secret in the
 * data folder.
 */
export function jwtSecretFor(config: Config): string | undefined {
  if (config.AUTH_JWT_SECRET !== undefined) return config.AUTH_JWT_SECRET;
  if (config.AUTH_JWT_PUBLIC_KEY_FILE !== undefined || config.AUTH_JWKS_FILE !== undefined) return undefined;
  return loadOrCreateSecret(config.dataDir);
}

/** Reads the TLS files the configuration names, or returns null to serve without TLS. */
function readTlsFiles(config: Config): TlsFiles | null {
  if (config.GRPC_TLS_CERT === undefined || config.GRPC_TLS_KEY === undefined) return null;
  const read = (variable: string, path: string) => {
    try {
      return readFileSync(path);
    } catch (error) {
      throw new ConfigError(
        `invalid configuration:\n  ${variable}=${JSON.stringify(path)}: cannot read it: ${(error as Error).message}`,
      );
    }
  };
  return {
    certificate: read('GRPC_TLS_CERT', config.GRPC_TLS_CERT),
    privateKey: read('GRPC_TLS_KEY', config.GRPC_TLS_KEY),
    clientCa: config.GRPC_TLS_CLIENT_CA === undefined ? null : read('GRPC_TLS_CLIENT_CA', config.GRPC_TLS_CLIENT_CA),
  };
}

export async function startService(config: Config, logger: Logger): Promise<RunningService> {
  const tls = readTlsFiles(config);
  const verifier = new TokenVerifier({
    secret: jwtSecretFor(config),
    publicKeyFile: config.AUTH_JWT_PUBLIC_KEY_FILE,
    jwksFile: config.AUTH_JWKS_FILE,
    issuer: config.AUTH_JWT_ISSUER,
    audience: config.AUTH_JWT_AUDIENCE,
    clockToleranceSeconds: config.AUTH_CLOCK_TOLERANCE_S,
  });

  const target = parseDatabaseUrl(config.DATABASE_URL);
  const database = new Database(target, {
    log: logger,
    statementTimeoutMs: config.DATABASE_STATEMENT_TIMEOUT_S * 1000,
  });
  const health = new HealthMonitor(() => database.ping(), logger);
  try {
    await database.migrate(logger);
  } catch (error) {
    await database.close();
    throw error;
  }

  const dataStore = new FilesystemImageDataStore(config.IMAGE_STORE_DIR);
  const context = createRegistryContext({
    database,
    dataStore,
    memberQuota: config.IMAGE_MEMBER_QUOTA,
    imageSizeCap: config.IMAGE_SIZE_CAP,
    projectStorageQuota: config.PROJECT_STORAGE_QUOTA,
    uploadLeaseMs: config.UPLOAD_LEASE_S * 1000,
    logger,
  });
  try {
    await dataStore.initialize();
    await sweepImageData(context);
  } catch (error) {
    await database.close();
    throw error;
  }

  const running = new RunningHandlers();
  const metrics = new Metrics(() => database.knex.client.pool as PoolStatistics | undefined);
  const server = createGrpcServer(context, { verifier, logger, running, metrics }, health);
  let port: number;
  try {
    port = await bindServer(server, config.GRPC_LISTEN, tls);
  } catch (error) {
    await database.close();
    throw error;
  }
  const host = config.GRPC_LISTEN.slice(0, config.GRPC_LISTEN.lastIndexOf(':'));
  const address = `${host}:${port}`;
  let metricsServer: Server | undefined;
  let metricsAddress: string | undefined;
  if (config.METRICS_LISTEN !== undefined) {
    try {
      ({ server: metricsServer, address: metricsAddress } = await serveMetrics(metrics.registry, config.METRICS_LISTEN));
    } catch (error) {
      server.forceShutdown();
      await database.close();
      throw new Error(`METRICS_LISTEN=${config.METRICS_LISTEN}: cannot listen: ${(error as Error).message}`);
    }
    logger.info({ address: metricsAddress }, 'metrics served at /metrics');
  }
  health.start();
  // The chosen port is logged even when LOG_LEVEL hides info lines.
  const listening = logger.isLevelEnabled('info') ? logger.info.bind(logger) : logger.warn.bind(logger);
  listening({ address, database: target.redacted }, 'image registry listening');

  let stopping: Promise<void> | undefined;
  const stop = () => {
    stopping ??= (async () => {
      health.stop();
      await shutdownServer(server, config.SHUTDOWN_GRACE_S * 1000, () => running.endAll());
      // Calls cancelled by the shutdown still clean up, and need the pool.
      await running.settle(HANDLER_CLEANUP_MS);
      await dataStore.close();
      await database.close();
      metricsServer?.close();
      logger.info('image registry stopped');
    })();
    return stopping;
  };
  return { address, metricsAddress, database, context, stop };
}
