/**
 * The service's real entry point, src/main.ts, run in a child process, for
 * tests that signal, kill or restart it.
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import { SignJWT } from 'jose';

const REPOSITORY_ROOT = fileURLToPath(new URL('../..', import.meta.url));
const STARTUP_TIMEOUT_MS = 30_000;

/** A server started from src/main.ts in a child process. */
export interface ServerProcess {
  child: ChildProcess;
  address: string;
  /** Resolves with the exit code, or null after a signal. */
  exited: Promise<number | null>;
  /** Lines of stdout and stderr, for failure messages. */
  output: string[];
}

/** Starts the entry point and resolves once it logs that it listens. */
export async function startServer(environment: Record<string, string>): Promise<ServerProcess> {
  const child = spawn(process.execPath, ['--import', 'tsx', 'src/main.ts'], {
    cwd: REPOSITORY_ROOT,
    env: { ...process.env, ...environment },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  const output: string[] = [];
  const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
  createInterface({ input: child.stderr! }).on('line', (line) => output.push(line));
  const address = await new Promise<string>((resolve, reject) => {
    const timer = setTimeout(() => {
      child.kill('SIGKILL');
      reject(new Error(`the server did not listen within ${STARTUP_TIMEOUT_MS} ms:\n${output.join('\n')}`));
    }, STARTUP_TIMEOUT_MS);
    void exited.then((code) => {
      clearTimeout(timer);
      reject(new Error(`the server exited with code ${code} before it listened:\n${output.join('\n')}`));
    });
    createInterface({ input: child.stdout! }).on('line', (line) => {
      output.push(line);
      const entry = parseLogLine(line);
      if (entry?.msg === 'image registry listening' && typeof entry.address === 'string') {
        clearTimeout(timer);
        resolve(entry.address);
      }
    });
  });
  return { child, address, exited, output };
}

/** Parses one JSON log line, or returns undefined for any other line. */
export function parseLogLine(line: string): Record<string, unknown> | undefined {
  try {
    return JSON.parse(line) as Record<string, unknown>;
  } catch {
    return undefined;
  }
}

/** Stops a server that is still running with SIGTERM, and with SIGKILL after 15 s. */
export async function stopServer(server: ServerProcess | undefined): Promise<void> {
  if (server === undefined || server.child.exitCode !== null || server.child.signalCode !== null) return;
  server.child.kill('SIGTERM');
  const timer = setTimeout(() => server.child.kill('SIGKILL'), 15_000);
  await server.exited;
  clearTimeout(timer);
}

/** Mints an HS256 token with the member role for `project`, valid for an hour. */
export async function mintToken(secret: string, project: string): Promise<string> {
  return new SignJWT({ project_id: project, roles: ['member'] })
    .setProtectedHeader({ alg: 'HS256' })
    .setSubject(`user-of-${project}`)
    .setExpirationTime('1h')
    .sign(new TextEncoder().encode(secret));
}
