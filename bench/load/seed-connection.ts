/**
 * One connection per seeded database that runs SQL and multi-row INSERTs
 * the same way on SQLite (better-sqlite3) and MySQL (mysql2).
 */
import BetterSqlite3 from 'better-sqlite3';
import mysql from 'mysql2/promise';

export type Backend = 'sqlite' | 'mysql';

/** SQLite accepts at most 32,766 bound parameters per statement (SQLITE_MAX_VARIABLE_NUMBER since 3.32). */
const SQLITE_MAX_PARAMETERS = 32_000;
/** Keeps one MySQL INSERT well under the server's max_allowed_packet (16 MiB by default). */
const MYSQL_ROWS_PER_INSERT = 1_000;

/**
 * A connection that runs SQL and multi-row INSERTs the same way on both
 * backends. SQLite calls are synchronous underneath.
 */
export interface SeedConnection {
  readonly backend: Backend;
  query<T>(sql: string, params?: unknown[]): Promise<T[]>;
  run(sql: string, params?: unknown[]): Promise<void>;
  /** Inserts rows whose values are in `columns` order. */
  insertRows(table: string, columns: readonly string[], rows: unknown[][]): Promise<void>;
  close(): Promise<void>;
}

export function sqliteConnection(path: string): SeedConnection {
  const db = new BetterSqlite3(path);
  db.pragma('journal_mode = WAL');
  // The seed is written again from scratch if the process dies, so losing
  // the last transactions to a crash costs nothing.
  db.pragma('synchronous = OFF');
  db.pragma('cache_size = -65536');
  // The rows are generated consistent, and the check would cost a lookup per row.
  db.pragma('foreign_keys = OFF');
  const statements = new Map<string, BetterSqlite3.Statement>();
  const insertStatement = (table: string, columns: readonly string[], rowCount: number) => {
    const key = `${table}:${rowCount}`;
    let statement = statements.get(key);
    if (statement === undefined) {
      const placeholders = `(${columns.map(() => '?').join(', ')})`;
      const values = Array.from({ length: rowCount }, () => placeholders).join(', ');
      statement = db.prepare(`INSERT INTO "${table}" (${columns.map((c) => `"${c}"`).join(', ')}) VALUES ${values}`);
      statements.set(key, statement);
    }
    return statement;
  };
  return {
    backend: 'sqlite',
    query: async <T>(sql: string, params: unknown[] = []) => db.prepare(sql).all(...params) as T[],
    run: async (sql, params = []) => {
      db.prepare(sql).run(...params);
    },
    insertRows: async (table, columns, rows) => {
      const perStatement = Math.max(1, Math.floor(SQLITE_MAX_PARAMETERS / columns.length));
      for (let start = 0; start < rows.length; start += perStatement) {
        const slice = rows.slice(start, start + perStatement);
        insertStatement(table, columns, slice.length).run(...slice.flat());
      }
    },
    close: async () => {
      db.pragma('wal_checkpoint(TRUNCATE)');
      db.close();
    },
  };
}

export async function mysqlConnection(url: string): Promise<SeedConnection> {
  const connection = await mysql.createConnection({ uri: url, charset: 'utf8mb4', supportBigNumbers: true });
  return {
    backend: 'mysql',
    query: async <T>(sql: string, params: unknown[] = []) => {
      const [rows] = await connection.query(sql, params);
      return rows as T[];
    },
    run: async (sql, params = []) => {
      await connection.query(sql, params);
    },
    insertRows: async (table, columns, rows) => {
      const pending: Promise<unknown>[] = [];
      // mysql2 sends queries of one connection in order, so they can be queued without waiting.
      for (let start = 0; start < rows.length; start += MYSQL_ROWS_PER_INSERT) {
        pending.push(connection.query('INSERT INTO ?? (??) VALUES ?', [table, columns, rows.slice(start, start + MYSQL_ROWS_PER_INSERT)]));
      }
      await Promise.all(pending);
    },
    close: () => connection.end(),
  };
}
