/**
 * A MariaDB server of the test's own: its own data directory in a temporary
 * folder and its own free port on 127.0.0.1, so that a test may kill it and
 * start it again without touching the shared server.
 */
import { type ChildProcess, execFileSync, spawn } from 'node:child_process';
import { chmodSync, chownSync, existsSync, mkdtempSync, openSync, closeSync, readFileSync, rmSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { delimiter, join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import mysql from 'mysql2/promise';

const SERVER_NAMES = ['mariadbd', 'mysqld'];
const INSTALL_NAMES = ['mariadb-install-db', 'mysql_install_db'];
const READY_TIMEOUT_MS = 30_000;
const STOP_TIMEOUT_MS = 30_000;

export interface PrivateMariaDb {
  /** URL of the server without a database, such as mysql://root@127.0.0.1:40123. */
  readonly serverUrl: string;
  readonly port: number;
  /** Process id of the running mariadbd, or undefined while it is stopped. */
  readonly pid: number | undefined;
  /** Sends `signal` to mariadbd and resolves once the process has exited. */
  stop(signal: 'SIGKILL' | 'SIGTERM'): Promise<void>;
  /** Starts mariadbd again on the same port and data directory, and resolves once it accepts connections. */
  start(): Promise<void>;
  /**
   * Freezes mariadbd with SIGSTOP: its sockets stay open and the kernel
   * still accepts connections, but nothing responds, as when the server hangs.
   */
  pause(): void;
  /** Lets a paused mariadbd run again with SIGCONT. */
  resume(): void;
  /** Stops mariadbd if it runs and deletes its folder. */
  destroy(): Promise<void>;
}

/** Raised when this machine cannot run a private MariaDB. The message gives the reason. */
export class PrivateMariaDbUnavailable extends Error {}

/** Returns the first of `names` found in /usr/sbin, /usr/bin or PATH, or undefined. */
function findProgram(names: string[]): string | undefined {
  const folders = ['/usr/sbin', '/usr/bin', ...(process.env.PATH ?? '').split(delimiter)];
  for (const name of names) {
    for (const folder of folders) {
      const path = join(folder, name);
      if (folder !== '' && existsSync(path)) return path;
    }
  }
  return undefined;
}

/** Returns a port that was free on 127.0.0.1 a moment ago. */
async function freePort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, '127.0.0.1', resolve);
  });
  const address = server.address();
  await new Promise((resolve) => server.close(resolve));
  if (address === null || typeof address === 'string') throw new Error('no TCP port was assigned');
  return address.port;
}

/** Returns the user id and group id of the `mysql` account, which mariadbd switches to when started as root. */
function mysqlAccount(): { uid: number; gid: number } {
  try {
    const uid = Number(execFileSync('id', ['-u', 'mysql'], { encoding: 'utf8' }).trim());
    const gid = Number(execFileSync('id', ['-g', 'mysql'], { encoding: 'utf8' }).trim());
    return { uid, gid };
  } catch (error) {
    throw new PrivateMariaDbUnavailable(`running as root needs the system user "mysql": ${(error as Error).message}`);
  }
}

/**
 * Creates a data directory with mariadb-install-db, whose root account has
 * an empty password, and starts mariadbd on a free port. Throws
 * PrivateMariaDbUnavailable when the programs are missing or the server
 * does not start.
 */
export async function startPrivateMariaDb(): Promise<PrivateMariaDb> {
  const serverProgram = findProgram(SERVER_NAMES);
  const installProgram = findProgram(INSTALL_NAMES);
  if (serverProgram === undefined || installProgram === undefined) {
    const missing = [serverProgram === undefined ? SERVER_NAMES : [], installProgram === undefined ? INSTALL_NAMES : []]
      .filter((names) => names.length > 0)
      .map((names) => names.join(' or '));
    throw new PrivateMariaDbUnavailable(`${missing.join(', and ')} not found in /usr/sbin, /usr/bin or PATH`);
  }

  const folder = mkdtempSync(join(tmpdir(), 'registry-mariadb-'));
  const dataDir = join(folder, 'data');
  const logPath = join(folder, 'mariadbd.log');
  const asRoot = process.getuid?.() === 0;
  const userArguments: string[] = [];
  if (asRoot) {
    const account = mysqlAccount();
    chownSync(folder, account.uid, account.gid);
    chmodSync(folder, 0o750);
    userArguments.push('--user=mysql');
  }

  try {
    execFileSync(
      installProgram,
      ['--no-defaults', `--datadir=${dataDir}`, '--auth-root-authentication-method=normal', '--skip-test-db', ...userArguments],
      { stdio: 'pipe', timeout: 60_000 },
    );
  } catch (error) {
    const output = (error as { stderr?: Buffer }).stderr?.toString() ?? '';
    rmSync(folder, { recursive: true, force: true });
    throw new PrivateMariaDbUnavailable(`${installProgram} failed: ${(error as Error).message}\n${output}`);
  }

  const port = await freePort();
  const serverUrl = `mysql://root@127.0.0.1:${port}`;
  const serverArguments = [
    '--no-defaults',
    `--datadir=${dataDir}`,
    `--port=${port}`,
    '--bind-address=127.0.0.1',
    `--socket=${join(folder, 'mysqld.sock')}`,
    `--pid-file=${join(folder, 'mysqld.pid')}`,
    '--innodb-buffer-pool-size=32M',
    ...userArguments,
  ];

  let child: ChildProcess | undefined;
  let exited: Promise<void> = Promise.resolve();

  const logTail = () => readFileSync(logPath, 'utf8').split('\n').slice(-15).join('\n');

  const start = async (): Promise<void> => {
    if (child !== undefined) throw new Error(`mariadbd is running already, with pid ${child.pid}`);
    const log = openSync(logPath, 'a');
    const started = spawn(serverProgram, serverArguments, { stdio: ['ignore', log, log] });
    closeSync(log);
    child = started;
    exited = new Promise((resolve) => started.once('exit', () => resolve()));
    void exited.then(() => {
      if (child === started) child = undefined;
    });

    const deadline = Date.now() + READY_TIMEOUT_MS;
    for (;;) {
      if (started.exitCode !== null || started.signalCode !== null) {
        throw new PrivateMariaDbUnavailable(`mariadbd exited with code ${started.exitCode} while starting:\n${logTail()}`);
      }
      try {
        const connection = await mysql.createConnection({ uri: serverUrl, connectTimeout: 1000 });
        await connection.end();
        return;
      } catch (error) {
        if (Date.now() > deadline) {
          started.kill('SIGKILL');
          throw new PrivateMariaDbUnavailable(
            `mariadbd did not accept connections on port ${port} within ${READY_TIMEOUT_MS} ms ` +
              `(${(error as Error).message}):\n${logTail()}`,
          );
        }
        await sleep(100);
      }
    }
  };

  const stop = async (signal: 'SIGKILL' | 'SIGTERM'): Promise<void> => {
    const running = child;
    if (running === undefined) return;
    running.kill(signal);
    const timer = setTimeout(() => running.kill('SIGKILL'), STOP_TIMEOUT_MS);
    await exited;
    clearTimeout(timer);
  };

  // A test run that ends without destroy() must not leave the server behind.
  const killOnExit = () => child?.kill('SIGKILL');
  process.once('exit', killOnExit);

  try {
    await start();
  } catch (error) {
    await stop('SIGKILL');
    process.removeListener('exit', killOnExit);
    rmSync(folder, { recursive: true, force: true });
    throw error;
  }

  return {
    serverUrl,
    port,
    get pid() {
      return child?.pid;
    },
    stop,
    start,
    pause: () => child?.kill('SIGSTOP'),
    resume: () => child?.kill('SIGCONT'),
    destroy: async () => {
      // A paused server would not act on SIGTERM.
      child?.kill('SIGCONT');
      await stop('SIGTERM');
      process.removeListener('exit', killOnExit);
      rmSync(folder, { recursive: true, force: true });
    },
  };
}
