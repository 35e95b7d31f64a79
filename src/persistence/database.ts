/**
 * The connection pool, migrations at start, and the two ways use cases reach
 * the database: `read` for single queries and `write` for transactions. Both
 * turn driver errors into RegistryErrors, so no database text reaches a
 * caller.
 */
import knexFactory, { type Knex } from 'knex';
import { RegistryError } from '../domain/errors.js';
import { type DatabaseTarget, type Dialect, ensureSqliteFolder } from './database-url.js';
import { migrationSource } from './migrations.js';

export type Queryable = Knex | Knex.Transaction;

export interface DatabaseLogger {
  info(fields: object, message: string): void;
  warn(fields: object, message: string): void;
}

/** How often a transaction that hit a deadlock or lock timeout is tried in all. */
const MAX_TRANSACTION_ATTEMPTS = 4;
const MIGRATION_LOCK_WAIT_MS = 120_000;

export class Database {
  readonly knex: Knex;
  readonly dialect: Dialect;

  constructor(target: DatabaseTarget) {
    ensureSqliteFolder(target);
    this.knex = knexFactory(target.knexConfig);
    this.dialect = target.dialect;
  }

  /**
   * Applies pending migrations. When another instance holds Knex's migration
   * lock, waits and tries again instead of failing, for up to two minutes.
   */
  async migrate(log: DatabaseLogger): Promise<void> {
    const started = Date.now();
    for (;;) {
      try {
        const [, applied] = (await this.knex.migrate.latest({ migrationSource })) as [number, string[]];
        if (applied.length > 0) log.info({ migrations: applied }, 'applied database migrations');
        return;
      } catch (error) {
        if (!isMigrationRace(error) || Date.now() - started > MIGRATION_LOCK_WAIT_MS) {
          throw error;
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
   * deadlock or a lock wait timeout, a bounded number of times.
   */
  async write<T>(work: (trx: Knex.Transaction) => Promise<T>): Promise<T> {
    for (let attempt = 1; ; attempt++) {
      try {
        return await this.knex.transaction(work);
      } catch (error) {
        if (isLockConflict(error) && attempt < MAX_TRANSACTION_ATTEMPTS) {
          await sleep(5 * attempt + Math.random() * 20);
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

function isMigrationRace(error: unknown): boolean {
  const { name, code, message = '' } = error as DriverError;
  return (
    name === 'MigrationLocked' ||
    message.includes('Migration table is already locked') ||
    // Two instances creating knex_migrations at once on a fresh database.
    code === 'ER_TABLE_EXISTS_ERROR' ||
    code === 'ER_DUP_ENTRY' ||
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
