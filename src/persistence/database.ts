/**
 * The connection pool, migrations at start, and the two ways use cases reach
 * the database: `read` for single queries and `write` for transactions. Both
 * turn driver errors into RegistryErrors, so no database text reaches a
 * caller.
 */
import knexFactory, { type Knex } from 'knex';
import { RegistryError } from '../domain/errors.js';
import { DISPOSED_ON_PURPOSE, callAwareClient, throwIfCallEnded } from './call-cancellation.js';
import { type DatabaseTarget, type Dialect, ensureSqliteFolder } from './database-url.js';
import { migrationSource } from './migrations.js';

export type Queryable = Knex | Knex.Transaction;

export interface DatabaseLogger {
  info(fields: object, message: string): void;
  warn(fields: object, message: string): void;
  debug(fields: object, message: string): void;
}

export interface DatabaseOptions {
  /** Receives Knex's own warnings, which it otherwise prints to the console. */
  log?: DatabaseLogger;
  /** How long a MySQL statement may go unanswered before it fails with UNAVAILABLE. */
  statementTimeoutMs?: number;
}

export const DEFAULT_STATEMENT_TIMEOUT_MS = 5_000;

/** How often a transaction that hit a deadlock or lock timeout is tried in all. */
// Concurrent creates with common tags deadlock on InnoDB's index gap locks,
// and on a loaded machine 4 attempts a few milliseconds apart ran out.
const MAX_TRANSACTION_ATTEMPTS = 6;
const MIGRATION_LOCK_WAIT_MS = 120_000;
/** Name of the MySQL advisory lock, one per database and at most 64 characters. */
const ADVISORY_LOCK_NAME_SQL = "CONCAT('image-registry:', LEFT(SHA1(DATABASE()), 40))";

export class Database {
  readonly knex: Knex;
  readonly dialect: Dialect;

  constructor(
    private readonly target: DatabaseTarget,
    options: DatabaseOptions = {},
  ) {
    ensureSqliteFolder(target);
    const { log, statementTimeoutMs = DEFAULT_STATEMENT_TIMEOUT_MS } = options;
    this.knex = knexFactory({
      ...target.knexConfig,
      client: callAwareClient(target.dialect, statementTimeoutMs) as never,
      ...(log === undefined ? {} : { log: knexLog(log) }),
    });
    this.dialect = target.dialect;
  }

  /**
   * Applies pending migrations. Several instances may start at once: on
   * MySQL they queue on an advisory lock, and on SQLite a start that finds
   * Knex's migration lock taken waits and tries again.
   */
  async migrate(log: DatabaseLogger): Promise<void> {
    const applied =
      this.dialect === 'mysql'
        ? await this.withMigrationKnex((knex) => migrateUnderAdvisoryLock(knex))
        : await this.migrateWithRetries(log);
    if (applied.length > 0) log.info({ migrations: applied }, 'applied database migrations');
  }

  /**
   * Runs `work` with a Knex of its own whose statements have no time limit,
   * since a migration's ALTER or backfill of a large table takes minutes.
   */
  private async withMigrationKnex<T>(work: (knex: Knex) => Promise<T>): Promise<T> {
    const knex = knexFactory(this.target.knexConfig);
    try {
      return await work(knex);
    } finally {
      await knex.destroy();
    }
  }

  private async migrateWithRetries(log: DatabaseLogger): Promise<string[]> {
    const started = Date.now();
    for (;;) {
      try {
        return await applyPendingMigrations(this.knex);
      } catch (error) {
        if (!isMigrationRace(error)) throw error;
        if (Date.now() - started > MIGRATION_LOCK_WAIT_MS) {
          throw new Error(
            `the migration lock was still taken after ${MIGRATION_LOCK_WAIT_MS / 1000} s. If no other ` +
              'instance is starting, a crashed start left it: run ' +
              '"UPDATE knex_migrations_lock SET is_locked = 0" on the database and start again',
          );
        }
        log.warn({ err: (error as Error).message }, 'migrations are locked by another instance; waiting');
        await sleep(250 + Math.random() * 500);
      }
    }
  }


  /** Runs a query outside a transaction. */
  async read<T>(work: (db: Knex) => Promise<T>): Promise<T> {
    try {
      return await work(this.knex);
    } catch (error) {
      throw translateDatabaseError(error);
    }
  }

  /**
   * Runs `work` in a transaction, and runs it again when MySQL reports a
   * deadlock or a lock wait timeout, a bounded number of times. Nothing is
   * committed once the call it runs for has ended.
   */
  async write<T>(work: (trx: Knex.Transaction) => Promise<T>): Promise<T> {
    for (let attempt = 1; ; attempt++) {
      try {
        return await this.knex.transaction(async (trx) => {
          const result = await work(trx);
          throwIfCallEnded();
          return result;
        });
      } catch (error) {
        if (isLockConflict(error) && attempt < MAX_TRANSACTION_ATTEMPTS) {
          // Random backoff that doubles, up to about 320 ms before the last attempt.
          await sleep(5 + Math.random() * 10 * 2 ** attempt);
          continue;
        }
        throw translateDatabaseError(error);
      }
    }
  }

  /** Appends FOR UPDATE on MySQL. SQLite transactions hold the only connection already. */
  forUpdate<T extends Knex.QueryBuilder>(query: T): T {
    return this.dialect === 'mysql' ? (query.forUpdate() as T) : query;
  }

  /** Runs a trivial query, for the health service's database probe. */
  async ping(): Promise<void> {
    await this.knex.raw('SELECT 1');
  }

  async close(): Promise<void> {
    await this.knex.destroy();
  }
}

function knexLog(log: DatabaseLogger): Knex.Logger {
  return {
    warn: (message: unknown) => {
      const detail = String(message);
      // One per cancelled call: Knex reports each connection this service closed on purpose.
      if (detail.includes(DISPOSED_ON_PURPOSE)) log.debug({ detail }, 'database connection closed after a cancelled query');
      else log.warn({ detail }, 'database driver warning');
    },
    error: (message: unknown) => log.warn({ detail: String(message) }, 'database driver error'),
    deprecate: (method: string, alternative: string) =>
      log.debug({ method, alternative }, 'database driver deprecation'),
    debug: (message: unknown) => log.debug({ detail: String(message) }, 'database driver debug'),
  };
}

/**
 * MySQL ends a GET_LOCK lock with the session that took it, even when the
 * process is killed. While this instance holds it no other instance is
 * migrating, so a set Knex lock is left over from a crash and is freed.
 */
async function migrateUnderAdvisoryLock(knex: Knex): Promise<string[]> {
  const connection = await knex.client.acquireConnection();
  try {
    const [rows] = (await knex
      .raw(`SELECT GET_LOCK(${ADVISORY_LOCK_NAME_SQL}, ?) AS acquired`, [MIGRATION_LOCK_WAIT_MS / 1000])
      .connection(connection)) as [{ acquired: number | null }[]];
    if (rows[0]?.acquired !== 1) {
      throw new Error(
        `timed out after ${MIGRATION_LOCK_WAIT_MS / 1000} s waiting for another instance to finish migrating`,
      );
    }
    try {
      await knex.migrate.forceFreeMigrationsLock({ migrationSource });
      return await applyPendingMigrations(knex);
    } finally {
      await knex.raw(`SELECT RELEASE_LOCK(${ADVISORY_LOCK_NAME_SQL})`).connection(connection);
    }
  } finally {
    await knex.client.releaseConnection(connection);
  }
}

async function applyPendingMigrations(knex: Knex): Promise<string[]> {
  const [, applied] = (await knex.migrate.latest({ migrationSource })) as [number, string[]];
  return applied;
}

function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

interface DriverError {
  code?: string;
  errno?: number;
  fatal?: boolean;
  name?: string;
  message?: string;
}

/** Returns whether a SQLite migration failed because another start got there first. */
function isMigrationRace(error: unknown): boolean {
  const { name, code, message = '' } = error as DriverError;
  return (
    name === 'MigrationLocked' ||
    message.includes('Migration table is already locked') ||
    // Two starts creating knex_migrations at once on a fresh file.
    (code === 'SQLITE_ERROR' && /already exists/.test(message))
  );
}

function isLockConflict(error: unknown): boolean {
  const { code } = error as DriverError;
  return code === 'ER_LOCK_DEADLOCK' || code === 'ER_LOCK_WAIT_TIMEOUT' || code === 'SQLITE_BUSY';
}

const CONNECTION_ERROR_CODES = new Set([
  'ECONNREFUSED',
  'ECONNRESET',
  'ETIMEDOUT',
  'EPIPE',
  'EHOSTUNREACH',
  'ENOTFOUND',
  'PROTOCOL_CONNECTION_LOST',
  'PROTOCOL_SEQUENCE_TIMEOUT',
  'ER_CON_COUNT_ERROR',
  'ER_SERVER_SHUTDOWN',
  'ER_ACCESS_DENIED_ERROR',
  'ER_BAD_DB_ERROR',
]);

/** Returns whether a driver error means the database is unreachable, not that the query failed. */
export function isConnectionError(error: unknown): boolean {
  const { code, fatal, name } = error as DriverError;
  return (
    name === 'KnexTimeoutError' ||
    (code !== undefined && CONNECTION_ERROR_CODES.has(code)) ||
    fatal === true
  );
}

/** Returns whether a driver error is a primary or unique key violation. */
export function isDuplicateKey(error: unknown): boolean {
  const { code } = error as DriverError;
  return (
    code === 'ER_DUP_ENTRY' ||
    code === 'SQLITE_CONSTRAINT_PRIMARYKEY' ||
    code === 'SQLITE_CONSTRAINT_UNIQUE'
  );
}

/**
 * Maps a driver error to a RegistryError; RegistryErrors pass through, and
 * anything unrecognized is returned unchanged, to become INTERNAL.
 */
export function translateDatabaseError(error: unknown): unknown {
  if (error instanceof RegistryError) return error;
  // Checked first: MySQL also closes the connection, which looks like an outage.
  if ((error as DriverError).code === 'ER_NET_PACKET_TOO_LARGE') {
    return new RegistryError(
      'RESOURCE_EXHAUSTED',
      "the request is larger than the database's max_allowed_packet; send less data in one call",
      'STATEMENT_TOO_LARGE',
    );
  }
  if (isConnectionError(error)) {
    return new RegistryError('UNAVAILABLE', 'the database is unreachable; try again later', 'DATABASE_UNAVAILABLE');
  }
  if (isLockConflict(error)) {
    return new RegistryError('ABORTED', 'the request conflicted with a concurrent change; try again', 'CONCURRENT_CHANGE');
  }
  if (isDuplicateKey(error)) {
    return new RegistryError('ALREADY_EXISTS', 'the record already exists', 'ALREADY_EXISTS');
  }
  return error;
}
