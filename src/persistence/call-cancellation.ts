/**
 * Stops a call's database work once the call has ended, at its deadline or
 * when the client cancels it. The transport runs each handler inside
 * `runUntilCallEnds`; every query the handler starts then checks the call's
 * signal first. On MySQL a query still running when the signal fires is
 * cancelled with KILL QUERY, the step Knex's `timeout(ms, { cancel: true })`
 * takes, and its connection is closed instead of going back to the pool. On
 * SQLite a query runs synchronously and cannot be stopped, so the check
 * before each query is the only one.
 */
import { AsyncLocalStorage } from 'node:async_hooks';
import { createRequire } from 'node:module';
import type { Knex } from 'knex';

const callSignal = new AsyncLocalStorage<AbortSignal>();

/** Runs `work` so that the queries it starts stop when `signal` is aborted. */
export function runUntilCallEnds<T>(signal: AbortSignal, work: () => T): T {
  return callSignal.run(signal, work);
}

/** Runs `work` outside any call, for cleanup that must happen after a call has ended. */
export function runBeyondCall<T>(work: () => T): T {
  return callSignal.exit(work);
}

/** Throws the abort reason when the current call has ended. */
export function throwIfCallEnded(): void {
  callSignal.getStore()?.throwIfAborted();
}

/**
 * Statements that end or start a transaction run even after the call has
 * ended, and are never cancelled: a refused ROLLBACK would leave a
 * transaction open on a pooled connection. Database.write checks the signal
 * before it lets Knex commit.
 */
const TRANSACTION_CONTROL = /^\s*(BEGIN|COMMIT|ROLLBACK|SAVEPOINT|RELEASE|SET TRANSACTION|START TRANSACTION)\b/i;

function sqlOf(query: unknown): string {
  if (typeof query === 'string') return query;
  return (query as { sql?: string } | null)?.sql ?? '';
}

/** The part of a Knex client this module overrides and calls. */
interface KnexClientMembers {
  query(connection: unknown, query: unknown): Promise<unknown>;
  cancelQuery(connection: unknown): Promise<unknown>;
}

type KnexClientClass = new (config: Knex.Config) => KnexClientMembers;

const require = createRequire(import.meta.url);

function dialectClient(dialect: 'mysql' | 'sqlite'): KnexClientClass {
  return require(
    dialect === 'mysql' ? 'knex/lib/dialects/mysql2/index.js' : 'knex/lib/dialects/better-sqlite3/index.js',
  ) as KnexClientClass;
}

/**
 * Returns the Knex client class for a dialect, extended so that every query
 * honours the signal of the call it runs for.
 */
export function callAwareClient(dialect: 'mysql' | 'sqlite'): KnexClientClass {
  const Base = dialectClient(dialect);
  const cancellable = dialect === 'mysql';

  return class CallAwareClient extends Base {
    override query(connection: unknown, query: unknown): Promise<unknown> {
      const signal = callSignal.getStore();
      if (signal === undefined || TRANSACTION_CONTROL.test(sqlOf(query))) return super.query(connection, query);
      if (signal.aborted) return Promise.reject(signal.reason as Error);
      const running = super.query(connection, query);
      if (!cancellable) return running;
      return this.cancelOnAbort(running, connection, signal);
    }

    private async cancelOnAbort(running: Promise<unknown>, connection: unknown, signal: AbortSignal): Promise<unknown> {
      let cancelling: Promise<unknown> | undefined;
      const cancel = () => {
        // Closing the connection afterwards also covers a KILL that lands
        // after the query finished, when it would hit the next statement.
        (connection as { __knex__disposed?: unknown }).__knex__disposed =
          'closed after cancelling the query of a call that had ended';
        cancelling = this.cancelQuery(connection).catch(() => undefined);
      };
      signal.addEventListener('abort', cancel, { once: true });
      try {
        const result = await running;
        if (!signal.aborted) return result;
      } catch (error) {
        if (!signal.aborted) throw error;
      } finally {
        signal.removeEventListener('abort', cancel);
      }
      await cancelling;
      throw signal.reason as Error;
    }
  };
}
