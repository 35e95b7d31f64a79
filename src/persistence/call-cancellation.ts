/**
 * Stops a call's database work once the call has ended, at its deadline or
 * when the client cancels it. The transport runs each handler inside
 * `runUntilCallEnds`; every query the handler starts then checks the call's
 * signal first. On MySQL a query still running when the signal fires is
 * cancelled with KILL QUERY, the step Knex's `timeout(ms, { cancel: true })`
 * takes, and its connection is closed instead of going back to the pool. On
 * SQLite a query runs synchronously and cannot be stopped, so the check
 * before each query is the only one.
 *
 * Statements that start or end a transaction always run, and are never
 * cancelled, because a refused ROLLBACK would leave a transaction open on a
 * pooled connection. Database.write checks the signal before it commits.
 */
import { AsyncLocalStorage } from 'node:async_hooks';
import { createRequire } from 'node:module';
import type { Knex } from 'knex';
import { RegistryError } from '../domain/errors.js';

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

/** Words in the reason of every connection closed here, which Knex quotes when it drops one. */
export const DISPOSED_ON_PURPOSE = 'closed after';

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
 * honours the signal of the call it runs for. On MySQL a statement with no
 * response after `statementTimeoutMs` fails with UNAVAILABLE and its
 * connection is closed, because a database that hangs instead of refusing
 * connections would otherwise hold every call that reaches it.
 */
export function callAwareClient(dialect: 'mysql' | 'sqlite', statementTimeoutMs: number): KnexClientClass {
  const Base = dialectClient(dialect);
  // SQLite runs each statement synchronously, so no timer can fire during one.
  const watched = dialect === 'mysql';

  return class CallAwareClient extends Base {
    override query(connection: unknown, query: unknown): Promise<unknown> {
      const signal = callSignal.getStore();
      const control = TRANSACTION_CONTROL.test(sqlOf(query));
      if (signal?.aborted && !control) return Promise.reject(signal.reason as Error);
      const running = super.query(connection, query);
      if (!watched) return running;
      return this.watch(running, connection, control ? undefined : signal);
    }

    /** Settles with the statement, or fails when the call ends or the time limit passes. */
    private async watch(running: Promise<unknown>, connection: unknown, signal: AbortSignal | undefined): Promise<unknown> {
      let cancelling: Promise<unknown> | undefined;
      let timedOut = false;
      const dispose = (reason: string) => {
        // Closing the connection afterwards also covers a KILL that lands
        // after the query finished, when it would hit the next statement.
        (connection as { __knex__disposed?: unknown }).__knex__disposed = reason;
      };
      const cancel = () => {
        dispose('closed after cancelling the query of a call that had ended');
        cancelling = this.cancelQuery(connection).catch(() => undefined);
      };
      let expire: () => void = () => {};
      const expired = new Promise<void>((resolve) => {
        expire = resolve;
      });
      const timer = setTimeout(() => {
        timedOut = true;
        dispose(`closed after a statement got no response within ${statementTimeoutMs} ms`);
        // Not awaited: a hung server may not respond to the KILL either.
        void this.cancelQuery(connection).catch(() => undefined);
        expire();
      }, statementTimeoutMs);
      signal?.addEventListener('abort', cancel, { once: true });
      try {
        const result = await Promise.race([running, expired]);
        if (!timedOut && !signal?.aborted) return result;
      } catch (error) {
        if (!timedOut && !signal?.aborted) throw error;
      } finally {
        clearTimeout(timer);
        signal?.removeEventListener('abort', cancel);
      }
      if (signal?.aborted) {
        await cancelling;
        throw signal.reason as Error;
      }
      // The statement may still finish later; its result is dropped.
      running.catch(() => undefined);
      throw new RegistryError(
        'UNAVAILABLE',
        `the database did not respond within ${statementTimeoutMs / 1000} s; try again later`,
        'DATABASE_UNAVAILABLE',
      );
    }
  };
}
