/** Parses DATABASE_URL into a Knex configuration for MySQL or SQLite. */
import { mkdirSync } from 'node:fs';
import { dirname, resolve } from 'node:path';
import type { Knex } from 'knex';

export type Dialect = 'mysql' | 'sqlite';

export interface DatabaseTarget {
  dialect: Dialect;
  knexConfig: Knex.Config;
  /** The URL without its password, for logs. */
  redacted: string;
}

const SQLITE_PREFIX = 'sqlite:';

/**
 * Accepts `mysql://user:pass@host:port/db` and `sqlite:PATH` (a file path,
 * relative to the working directory, or `:memory:`). Throws with a message
 * naming DATABASE_URL for anything else.
 */
export function parseDatabaseUrl(url: string): DatabaseTarget {
  if (url.startsWith(SQLITE_PREFIX)) return sqliteTarget(url.slice(SQLITE_PREFIX.length));
  if (url.startsWith('mysql://')) return mysqlTarget(url);
  throw new Error(
    `DATABASE_URL ${JSON.stringify(url)} is not supported: use ` +
      'mysql://user:pass@host:port/db or sqlite:PATH',
  );
}

function sqliteTarget(path: string): DatabaseTarget {
  if (path === '') throw new Error('DATABASE_URL "sqlite:" needs a file path, such as sqlite:./data/registry.sqlite');
  const filename = path === ':memory:' ? path : resolve(path);
  return {
    dialect: 'sqlite',
    redacted: `sqlite:${filename}`,
    knexConfig: {
      client: 'better-sqlite3',
      connection: { filename },
      useNullAsDefault: true,
      // One connection: SQLite allows one writer at a time, and ':memory:'
      // is a separate database per connection.
      pool: {
        min: 1,
        max: 1,
        afterCreate(connection: SqliteConnection, done: (err: Error | null, conn: unknown) => void) {
          connection.pragma('journal_mode = WAL');
          connection.pragma('foreign_keys = ON');
          connection.pragma('busy_timeout = 5000');
          done(null, connection);
        },
      },
    },
  };
}

interface SqliteConnection {
  pragma(source: string): unknown;
}

function mysqlTarget(url: string): DatabaseTarget {
  let parsed: URL;
  try {
    parsed = new URL(url);
  } catch {
    throw new Error(`DATABASE_URL ${JSON.stringify(redactPassword(url))} is not a valid URL`);
  }
  const database = decodeURIComponent(parsed.pathname.replace(/^\//, ''));
  if (database === '' || database.includes('/')) {
    throw new Error(
      `DATABASE_URL ${JSON.stringify(redactPassword(url))} names no database: ` +
        'use mysql://user:pass@host:port/db',
    );
  }
  return {
    dialect: 'mysql',
    redacted: redactPassword(url),
    knexConfig: {
      client: 'mysql2',
      connection: {
        host: parsed.hostname,
        port: parsed.port === '' ? 3306 : Number(parsed.port),
        user: decodeURIComponent(parsed.username),
        password: decodeURIComponent(parsed.password),
        database,
        charset: 'utf8mb4',
        timezone: 'Z',
        supportBigNumbers: true,
        connectTimeout: 5000,
      },
      pool: { min: 0, max: 10 },
      acquireConnectionTimeout: 10_000,
    },
  };
}

function redactPassword(url: string): string {
  return url.replace(/\/\/([^:/@]*):[^@]*@/, '//$1:***@');
}

/** Creates the folder of a SQLite file, so that the default URL works on a fresh checkout. */
export function ensureSqliteFolder(target: DatabaseTarget): void {
  if (target.dialect !== 'sqlite') return;
  const filename = (target.knexConfig.connection as { filename: string }).filename;
  if (filename !== ':memory:') mkdirSync(dirname(filename), { recursive: true });
}
