/** Starts a server as a child process, finds its address in its JSON log, and stops it. */
import { type ChildProcess, spawn } from 'node:child_process';
import { once } from 'node:events';
import { createInterface } from 'node:readline';

export interface ChildServerOptions {
  /** Name used in messages, such as "registry". */
  label: string;
  /** Arguments of `node`, such as ['--import', 'tsx', 'src/main.ts']. */
  nodeArguments: string[];
  cwd: string;
  env: NodeJS.ProcessEnv;
  /** The `msg` of the JSON log line whose `address` field gives host:port. */
  listeningMessage: string;
  startTimeoutMs: number;
}

/** Number of recent log lines kept. */
const KEPT_LINES = 50;
/** pino's numeric level of warn. */
const WARN_LEVEL = 40;

export class ChildServer {
  /** host:port from the listening line, or empty until the server listens. */
  address = '';
  /** The last KEPT_LINES JSON log lines, parsed. */
  readonly records: Record<string, unknown>[] = [];
  /** Log lines of level warn or worse, lines that are not JSON, and stderr lines, the last KEPT_LINES. */
  readonly problems: string[] = [];
  private readonly exited: Promise<unknown>;

  private constructor(
    readonly label: string,
    private readonly child: ChildProcess,
  ) {
    this.exited = once(child, 'exit');
  }

  get pid(): number {
    return this.child.pid!;
  }

  /** Spawns `node` with the options' arguments and resolves once the listening line names the address. */
  static async start(options: ChildServerOptions): Promise<ChildServer> {
    const child = spawn(process.execPath, options.nodeArguments, {
      cwd: options.cwd,
      env: options.env,
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    const server = new ChildServer(options.label, child);
    const listening = new Promise<void>((resolve, reject) => {
      createInterface({ input: child.stdout! }).on('line', (line) => {
        const record = server.noteLogLine(line);
        if (record?.msg === options.listeningMessage && typeof record.address === 'string') {
          server.address = record.address;
          resolve();
        }
      });
      createInterface({ input: child.stderr! }).on('line', (line) => server.noteProblem(line));
      child.once('error', reject);
      child.once('exit', (code, signal) =>
        reject(
          new Error(
            `the ${options.label} server exited before listening (exit code ${code}, signal ${signal}); ` +
              `its last problem lines:\n${server.problems.join('\n')}`,
          ),
        ),
      );
    });

    let timer: NodeJS.Timeout | undefined;
    const timedOut = new Promise<never>((_, reject) => {
      timer = setTimeout(
        () =>
          reject(
            new Error(`the ${options.label} server did not log "${options.listeningMessage}" within ${options.startTimeoutMs} ms`),
          ),
        options.startTimeoutMs,
      );
    });
    try {
      await Promise.race([listening, timedOut]);
      return server;
    } catch (error) {
      await server.stop(0);
      throw error;
    } finally {
      clearTimeout(timer);
    }
  }

  private noteLogLine(line: string): Record<string, unknown> | undefined {
    let record: Record<string, unknown>;
    try {
      record = JSON.parse(line) as Record<string, unknown>;
    } catch {
      this.noteProblem(line);
      return undefined;
    }
    this.records.push(record);
    if (this.records.length > KEPT_LINES) this.records.shift();
    if (typeof record.level === 'number' && record.level >= WARN_LEVEL) this.noteProblem(line);
    return record;
  }

  private noteProblem(line: string): void {
    this.problems.push(line);
    if (this.problems.length > KEPT_LINES) this.problems.shift();
  }

  /** Sends SIGTERM and waits up to `graceMs` for the exit, then sends SIGKILL and waits for the exit. */
  async stop(graceMs: number): Promise<void> {
    if (this.child.exitCode !== null || this.child.signalCode !== null) return;
    this.child.kill('SIGTERM');
    let timer: NodeJS.Timeout | undefined;
    const timedOut = new Promise<boolean>((resolve) => {
      timer = setTimeout(() => resolve(true), graceMs);
    });
    const mustKill = await Promise.race([this.exited.then(() => false), timedOut]);
    clearTimeout(timer);
    if (mustKill) {
      this.child.kill('SIGKILL');
      await this.exited;
    }
  }
}
