/**
 * Configuration from the environment: loadConfig's validation and defaults,
 * and the real entry point, which must stop with a message naming a bad
 * variable and must start and stop cleanly with a good configuration.
 */
import { type ChildProcess, spawn, spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { createInterface } from 'node:readline';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ConfigError, loadConfig } from '../../src/platform/config.js';

const REPOSITORY_ROOT = resolve(import.meta.dirname, '../..');
const ENTRY_POINT_ARGS = ['--import', 'tsx', 'src/main.ts'];
/** Time allowed for one run of the entry point, including tsx's compile step. A run that hangs fails after it. */
const ENTRY_POINT_TIMEOUT_MS = 20_000;

describe('loadConfig', () => {
  const badValues: [string, string][] = [
    ['GRPC_LISTEN', 'nope'],
    ['GRPC_LISTEN', '127.0.0.1:70000'],
    ['GRPC_LISTEN', '127.0.0.1:'],
    ['GRPC_LISTEN', ':50051'],
    ['GRPC_LISTEN', 'localhost:-1'],
    ['DATABASE_URL', 'postgres://x'],
    ['DATABASE_URL', './registry.sqlite'],
    ['AUTH_CLOCK_TOLERANCE_S', '-1'],
    ['AUTH_CLOCK_TOLERANCE_S', 'abc'],
    ['AUTH_CLOCK_TOLERANCE_S', '1.5'],
    ['IMAGE_MEMBER_QUOTA', '1.5'],
    ['IMAGE_MEMBER_QUOTA', 'many'],
    ['LOG_LEVEL', 'loud'],
    ['SHUTDOWN_GRACE_S', '-1'],
  ];

  it.each(badValues)('rejects %s=%s', (variable, value) => {
    const load = () => loadConfig({ [variable]: value });

    expect(load).toThrow(ConfigError);
    expect(load).toThrow(variable);
    expect(load).toThrow(JSON.stringify(value));
  });

  it('rejects a short HS256 secret without printing it', () => {
    const load = () => loadConfig({ AUTH_JWT_SECRET: 'short-secret' });

    expect(load).toThrow(ConfigError);
    expect(load).toThrow('AUTH_JWT_SECRET');
    expect(load).toThrow('at least 32 bytes');
    expect(load).not.toThrow('short-secret');
  });

  it('names every bad variable at once', () => {
    const load = () => loadConfig({ GRPC_LISTEN: 'nope', LOG_LEVEL: 'loud', IMAGE_MEMBER_QUOTA: '1.5' });

    expect(load).toThrow('GRPC_LISTEN');
    expect(load).toThrow('LOG_LEVEL');
    expect(load).toThrow('IMAGE_MEMBER_QUOTA');
  });

  it('rejects both key files naming both', () => {
    const load = () => loadConfig({ AUTH_JWT_PUBLIC_KEY_FILE: '/keys/public.pem', AUTH_JWKS_FILE: '/keys/jwks.json' });

    expect(load).toThrow(ConfigError);
    expect(load).toThrow('AUTH_JWT_PUBLIC_KEY_FILE');
    expect(load).toThrow('AUTH_JWKS_FILE');
  });

  it('applies the defaults', () => {
    const config = loadConfig({});

    expect(config.GRPC_LISTEN).toBe('127.0.0.1:50051');
    expect(config.DATABASE_URL).toBe('sqlite:./data/registry.sqlite');
    expect(config.AUTH_JWT_SECRET).toBeUndefined();
    expect(config.AUTH_JWT_PUBLIC_KEY_FILE).toBeUndefined();
    expect(config.AUTH_JWKS_FILE).toBeUndefined();
    expect(config.AUTH_JWT_ISSUER).toBeUndefined();
    expect(config.AUTH_JWT_AUDIENCE).toBeUndefined();
    expect(config.AUTH_CLOCK_TOLERANCE_S).toBe(30);
    expect(config.IMAGE_MEMBER_QUOTA).toBe(128);
    expect(config.IMAGE_STORE_DIR).toBe('./data/images');
    expect(config.LOG_LEVEL).toBe('info');
  });

  it('treats empty values as unset', () => {
    const config = loadConfig({
      GRPC_LISTEN: '',
      AUTH_JWT_SECRET: '',
      AUTH_JWT_ISSUER: '',
      AUTH_CLOCK_TOLERANCE_S: '',
      LOG_LEVEL: '',
    });

    expect(config.GRPC_LISTEN).toBe('127.0.0.1:50051');
    expect(config.AUTH_JWT_SECRET).toBeUndefined();
    expect(config.AUTH_JWT_ISSUER).toBeUndefined();
    expect(config.AUTH_CLOCK_TOLERANCE_S).toBe(30);
    expect(config.LOG_LEVEL).toBe('info');
  });

  it('accepts valid explicit values', () => {
    const config = loadConfig({
      GRPC_LISTEN: '[::1]:0',
      DATABASE_URL: 'mysql://user:pass@127.0.0.1:3306/registry',
      AUTH_JWT_SECRET: 'configuration-test-secret-of-32-bytes-or-more',
      AUTH_JWT_ISSUER: 'https://issuer.example.test',
      AUTH_JWT_AUDIENCE: 'image-registry',
      AUTH_CLOCK_TOLERANCE_S: '0',
      IMAGE_MEMBER_QUOTA: '-1',
      LOG_LEVEL: 'debug',
    });

    expect(config.GRPC_LISTEN).toBe('[::1]:0');
    expect(config.DATABASE_URL).toBe('mysql://user:pass@127.0.0.1:3306/registry');
    expect(config.AUTH_JWT_SECRET).toBe('configuration-test-secret-of-32-bytes-or-more');
    expect(config.AUTH_JWT_ISSUER).toBe('https://issuer.example.test');
    expect(config.AUTH_JWT_AUDIENCE).toBe('image-registry');
    expect(config.AUTH_CLOCK_TOLERANCE_S).toBe(0);
    expect(config.IMAGE_MEMBER_QUOTA).toBe(-1);
    expect(config.LOG_LEVEL).toBe('debug');
  });

  it('accepts the highest port', () => {
    expect(loadConfig({ GRPC_LISTEN: '0.0.0.0:65535' }).GRPC_LISTEN).toBe('0.0.0.0:65535');
  });
});

describe('entry point', () => {
  let folder: string;
  /** A configuration that starts on loopback and keeps its files in a temporary folder. Each test overrides one variable. */
  let goodEnvironment: NodeJS.ProcessEnv;

  beforeAll(() => {
    folder = mkdtempSync(join(tmpdir(), 'registry-entry-'));
    goodEnvironment = {
      ...process.env,
      GRPC_LISTEN: '127.0.0.1:0',
      DATABASE_URL: `sqlite:${join(folder, 'registry.sqlite')}`,
      AUTH_JWT_SECRET: 'entry-point-test-secret-of-32-bytes-or-more',
      IMAGE_STORE_DIR: join(folder, 'images'),
      LOG_LEVEL: 'info',
    };
  });
  afterAll(() => rmSync(folder, { recursive: true, force: true }));

  /** Runs src/main.ts to its end, which a bad configuration must reach quickly. */
  function runEntryPoint(overrides: Record<string, string>) {
    const result = spawnSync(process.execPath, ENTRY_POINT_ARGS, {
      cwd: REPOSITORY_ROOT,
      env: { ...goodEnvironment, ...overrides },
      encoding: 'utf8',
      timeout: ENTRY_POINT_TIMEOUT_MS,
    });
    return { status: result.status, signal: result.signal, output: `${result.stdout}\n${result.stderr}` };
  }

  const badVariables: [string, string][] = [
    ['GRPC_LISTEN', 'nope'],
    ['GRPC_LISTEN', '127.0.0.1:70000'],
    ['DATABASE_URL', 'postgres://x'],
    ['DATABASE_URL', 'sqlite:'],
    ['DATABASE_URL', 'mysql://127.0.0.1:3306'],
    ['AUTH_CLOCK_TOLERANCE_S', '-1'],
    ['IMAGE_MEMBER_QUOTA', '1.5'],
    ['LOG_LEVEL', 'loud'],
  ];

  it.each(badVariables)('exits naming %s=%s', (variable, value) => {
    const { status, signal, output } = runEntryPoint({ [variable]: value });

    expect(signal).toBeNull();
    expect(status).not.toBe(0);
    expect(output).toContain(variable);
    expect(output).not.toContain('image registry listening');
  });

  it('exits naming both key files', () => {
    const { status, output } = runEntryPoint({
      AUTH_JWT_PUBLIC_KEY_FILE: join(folder, 'public.pem'),
      AUTH_JWKS_FILE: join(folder, 'jwks.json'),
    });

    expect(status).not.toBe(0);
    expect(output).toContain('AUTH_JWT_PUBLIC_KEY_FILE');
    expect(output).toContain('AUTH_JWKS_FILE');
  });

  it('exits naming a missing public key file', () => {
    const { status, signal, output } = runEntryPoint({ AUTH_JWT_PUBLIC_KEY_FILE: join(folder, 'no-such-key.pem') });

    expect(signal).toBeNull();
    expect(status).not.toBe(0);
    expect(output).toContain('AUTH_JWT_PUBLIC_KEY_FILE');
  });

  it('exits naming a public key file that is no key', () => {
    const file = join(folder, 'not-a-key.pem');
    writeFileSync(file, 'this is not a PEM key\n');
    const { status, signal, output } = runEntryPoint({ AUTH_JWT_PUBLIC_KEY_FILE: file });

    expect(signal).toBeNull();
    expect(status).not.toBe(0);
    expect(output).toContain('AUTH_JWT_PUBLIC_KEY_FILE');
  });

  it('exits naming a JWKS file that is not JSON', () => {
    const file = join(folder, 'not-json.jwks');
    writeFileSync(file, '{ "keys": [');
    const { status, signal, output } = runEntryPoint({ AUTH_JWKS_FILE: file });

    expect(signal).toBeNull();
    expect(status).not.toBe(0);
    expect(output).toContain('AUTH_JWKS_FILE');
  });

  it.each(['SIGTERM', 'SIGINT'] as const)('starts, listens and stops on %s', async (signal) => {
    const databaseFile = join(folder, `${signal}.sqlite`);
    const child = spawn(process.execPath, ENTRY_POINT_ARGS, {
      cwd: REPOSITORY_ROOT,
      env: { ...goodEnvironment, DATABASE_URL: `sqlite:${databaseFile}` },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    try {
      const lines = collectJsonLines(child);
      const listening = await waitForLine(lines, 'image registry listening');
      expect(listening.address).toMatch(/^127\.0\.0\.1:\d+$/);
      expect(listening.address).not.toBe('127.0.0.1:0');
      expect(existsSync(databaseFile)).toBe(true);

      child.kill(signal);
      const exit = await exitOf(child);

      expect(exit).toEqual({ code: 0, signal: null });
      expect(lines.messages).toContain('image registry stopped');
      expect(lines.raw.join('\n')).not.toContain('entry-point-test-secret');
    } finally {
      if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
    }
  });
});

interface LogLines {
  /** Every stdout line as written. */
  raw: string[];
  /** The `msg` of each JSON line. */
  messages: string[];
  /** The parsed JSON lines, for field checks. */
  records: Record<string, unknown>[];
  /** Called after each new line. */
  onLine?: () => void;
}

/** Collects the child's stdout, where pino writes one JSON object a line. */
function collectJsonLines(child: ChildProcess): LogLines {
  const lines: LogLines = { raw: [], messages: [], records: [] };
  createInterface({ input: child.stdout! }).on('line', (line) => {
    lines.raw.push(line);
    try {
      const record = JSON.parse(line) as Record<string, unknown>;
      lines.records.push(record);
      if (typeof record.msg === 'string') lines.messages.push(record.msg);
    } catch {
      // A line that is not JSON stays in `raw` for the failure message.
    }
    lines.onLine?.();
  });
  child.stderr!.on('data', (chunk: Buffer) => lines.raw.push(`stderr: ${chunk.toString()}`));
  return lines;
}

/** Resolves to the first log record with this message, or rejects after ENTRY_POINT_TIMEOUT_MS. */
function waitForLine(lines: LogLines, message: string): Promise<Record<string, unknown>> {
  return new Promise((resolve, reject) => {
    const timer = setTimeout(
      () => reject(new Error(`timed out after ${ENTRY_POINT_TIMEOUT_MS} ms waiting for the "${message}" log line. Output:\n${lines.raw.join('\n')}`)),
      ENTRY_POINT_TIMEOUT_MS,
    );
    const check = () => {
      const record = lines.records.find((candidate) => candidate.msg === message);
      if (record === undefined) return;
      clearTimeout(timer);
      resolve(record);
    };
    lines.onLine = check;
    check();
  });
}

function exitOf(child: ChildProcess): Promise<{ code: number | null; signal: NodeJS.Signals | null }> {
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`timed out after ${ENTRY_POINT_TIMEOUT_MS} ms waiting for the process to exit`)), ENTRY_POINT_TIMEOUT_MS);
    child.once('exit', (code, signal) => {
      clearTimeout(timer);
      resolve({ code, signal });
    });
  });
}
