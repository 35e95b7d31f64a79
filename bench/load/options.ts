/** Command-line options of bench/load.ts and bench/seed.ts, each with an environment variable as fallback. */
import { resolve } from 'node:path';
import { parseArgs } from 'node:util';
import type { Backend } from './seed-database.js';
import { MAX_IMAGE_COUNT } from './seed-rows.js';

export const SCENARIO_NAMES = [
  'get-image',
  'list-first',
  'list-deep',
  'list-community',
  'create-member',
  'update-member',
  'mixed',
] as const;
export type ScenarioName = (typeof SCENARIO_NAMES)[number];

/** Image counts per backend when --sizes is not given. */
export const DEFAULT_SIZES: Record<Backend, number[]> = { sqlite: [10_000, 100_000], mysql: [10_000, 1_000_000] };
const MIN_IMAGE_COUNT = 1_000;
const DEFAULT_MYSQL_URL = 'mysql://root@127.0.0.1:3306';
const DEFAULT_SEED_DIR = 'data/bench';
/** The options `npm start` gives node, so that the benchmark measures the server as it ships. */
const DEFAULT_SERVER_NODE_OPTIONS = '--initial-old-space-size=64';
const LOG_LEVELS = ['fatal', 'error', 'warn', 'info', 'debug', 'trace'];

export class UsageError extends Error {}

const BACKEND_HELP = `  --backend NAME         sqlite, mysql or both (BENCH_BACKEND, default both)
  --sizes LIST           image counts, comma-separated, such as 10k,100k,1m; each from
                         ${MIN_IMAGE_COUNT.toLocaleString('en-US')} to ${MAX_IMAGE_COUNT.toLocaleString('en-US')} (BENCH_SIZES, default 10k,100k on SQLite
                         and 10k,1m on MySQL)
  --mysql-url URL        MySQL server without a database; seeded databases are named
                         bench_load_<size> there (BENCH_MYSQL_URL, default ${DEFAULT_MYSQL_URL})
  --seed-dir PATH        folder of the seeded SQLite files load-<size>.sqlite
                         (BENCH_SEED_DIR, default ${DEFAULT_SEED_DIR})`;

export const LOAD_HELP = `Usage: npm run bench -- [options]

Load benchmark of the registry's unary calls on seeded databases, against a
bare grpc-js server with an empty handler measured by the same closed-loop
generator in the same run. Databases are seeded on first use and reused
while their seed marker matches. Each option can also be set with the
environment variable in brackets.

${BACKEND_HELP}
  --reseed               seed every database again even when its marker matches (BENCH_RESEED=1)
  --scenarios LIST       comma-separated, from get-image, list-first, list-deep,
                         list-community, create-member, update-member, mixed
                         (BENCH_SCENARIOS, default all)
  --in-flight N          calls in flight at any time, over all workers (BENCH_IN_FLIGHT, default 50)
  --workers N            client worker threads, each with its own channel (BENCH_WORKERS, default 2)
  --warmup-s N           seconds of calls before each measured window (BENCH_WARMUP_S, default 3)
  --duration-s N         seconds of each measured window (BENCH_DURATION_S, default 10)
  --deep-rows N          rows skipped by following page tokens before the list-deep page;
                         fewer when the project lists fewer (BENCH_DEEP_ROWS, default 10000)
  --server-entry NAME    dist runs dist/src/main.js as npm start does (npm run bench builds
                         it first), tsx runs src/main.ts through tsx, whose loader thread
                         adds about 50 MiB of RSS (BENCH_SERVER_ENTRY, default dist)
  --server-node-options TEXT
                         node options of both servers, separated by spaces
                         (BENCH_SERVER_NODE_OPTIONS, default ${DEFAULT_SERVER_NODE_OPTIONS})
  --server-log-level L   the registry's LOG_LEVEL; info logs one line per call, as shipped
                         (BENCH_SERVER_LOG_LEVEL, default info)
  --sample-ms N          interval between the servers' RSS readings in milliseconds
                         (BENCH_SAMPLE_MS, default 100)
  --help                 print this text
`;

export const SEED_HELP = `Usage: npm run bench:seed -- [options]

Seeds the load benchmark's databases, or reuses those whose seed marker
matches the image count, the generator's version and the table layout.
Each option can also be set with the environment variable in brackets.

${BACKEND_HELP}
  --force                seed again even when the marker matches (BENCH_RESEED=1)
  --drop                 drop the seeded databases and files of these backends and sizes instead
  --help                 print this text
`;

export interface SeedTargets {
  /** Image counts per backend, in run order. */
  sizes: { backend: Backend; imageCount: number }[];
  mysqlUrl: string;
  seedDir: string;
}

export interface LoadOptions extends SeedTargets {
  reseed: boolean;
  scenarios: ScenarioName[];
  inFlight: number;
  workers: number;
  warmupS: number;
  durationS: number;
  deepRows: number;
  serverEntry: 'tsx' | 'dist';
  serverNodeOptions: string[];
  serverLogLevel: string;
  sampleMs: number;
}

export interface SeedOptions extends SeedTargets {
  force: boolean;
  drop: boolean;
}

function wholeNumber(option: string, text: string, min: number, max: number): number {
  const value = Number(text);
  if (!/^\d+$/.test(text) || value < min || value > max) {
    throw new UsageError(`--${option}: expected a whole number from ${min} to ${max}, got ${JSON.stringify(text)}`);
  }
  return value;
}

/** Parses "10k", "1m", "2.5m" or "250000". */
export function parseImageCount(text: string): number {
  const match = /^(\d+(?:\.\d+)?)([km]?)$/i.exec(text.trim());
  const multiplier = { '': 1, k: 1_000, m: 1_000_000 }[(match?.[2] ?? '').toLowerCase()] ?? 1;
  const value = match === null ? Number.NaN : Number(match[1]) * multiplier;
  if (!Number.isInteger(value) || value < MIN_IMAGE_COUNT || value > MAX_IMAGE_COUNT) {
    throw new UsageError(
      `--sizes: ${JSON.stringify(text)} is not an image count from ${MIN_IMAGE_COUNT} to ${MAX_IMAGE_COUNT}, such as 10k or 1m`,
    );
  }
  return value;
}

function list(text: string): string[] {
  return text
    .split(',')
    .map((item) => item.trim())
    .filter((item) => item !== '');
}

function flag(value: boolean | undefined, variable: string): boolean {
  return value === true || process.env[variable] === '1';
}

function parseTargets(values: { backend?: string; sizes?: string; 'mysql-url'?: string; 'seed-dir'?: string }): SeedTargets {
  const backendText = values.backend ?? process.env.BENCH_BACKEND ?? 'both';
  if (!['sqlite', 'mysql', 'both'].includes(backendText)) {
    throw new UsageError(`--backend: expected sqlite, mysql or both, got ${JSON.stringify(backendText)}`);
  }
  const backends: Backend[] = backendText === 'both' ? ['sqlite', 'mysql'] : [backendText as Backend];
  const sizesText = values.sizes ?? process.env.BENCH_SIZES;
  const explicitSizes = sizesText === undefined ? null : [...new Set(list(sizesText).map(parseImageCount))];
  if (explicitSizes !== null && explicitSizes.length === 0) throw new UsageError('--sizes: expected at least one image count');
  const sizes = backends.flatMap((backend) =>
    (explicitSizes ?? DEFAULT_SIZES[backend]).map((imageCount) => ({ backend, imageCount })),
  );
  const mysqlUrl = values['mysql-url'] ?? process.env.BENCH_MYSQL_URL ?? DEFAULT_MYSQL_URL;
  if (!/^mysql:\/\/[^/]+\/?$/.test(mysqlUrl)) {
    throw new UsageError(`--mysql-url: expected mysql://user[:password]@host:port without a database, got ${JSON.stringify(mysqlUrl)}`);
  }
  return { sizes, mysqlUrl, seedDir: resolve(values['seed-dir'] ?? process.env.BENCH_SEED_DIR ?? DEFAULT_SEED_DIR) };
}

const TARGET_OPTIONS = {
  backend: { type: 'string' },
  sizes: { type: 'string' },
  'mysql-url': { type: 'string' },
  'seed-dir': { type: 'string' },
  help: { type: 'boolean' },
} as const;

/** Parses bench/load.ts's options, or returns null for --help. Throws UsageError or a parseArgs error on a bad option. */
export function parseLoadOptions(argv: string[]): LoadOptions | null {
  const { values } = parseArgs({
    args: argv,
    options: {
      ...TARGET_OPTIONS,
      reseed: { type: 'boolean' },
      scenarios: { type: 'string' },
      'in-flight': { type: 'string' },
      workers: { type: 'string' },
      'warmup-s': { type: 'string' },
      'duration-s': { type: 'string' },
      'deep-rows': { type: 'string' },
      'server-entry': { type: 'string' },
      'server-node-options': { type: 'string' },
      'server-log-level': { type: 'string' },
      'sample-ms': { type: 'string' },
    },
  });
  if (values.help) return null;
  const env = process.env;

  const scenarioText = values.scenarios ?? env.BENCH_SCENARIOS;
  const scenarios = scenarioText === undefined ? [...SCENARIO_NAMES] : list(scenarioText);
  for (const name of scenarios) {
    if (!(SCENARIO_NAMES as readonly string[]).includes(name)) {
      throw new UsageError(`--scenarios: ${JSON.stringify(name)} is not one of ${SCENARIO_NAMES.join(', ')}`);
    }
  }
  if (scenarios.length === 0) throw new UsageError('--scenarios: expected at least one scenario');

  const serverEntry = values['server-entry'] ?? env.BENCH_SERVER_ENTRY ?? 'dist';
  if (serverEntry !== 'tsx' && serverEntry !== 'dist') {
    throw new UsageError(`--server-entry: expected tsx or dist, got ${JSON.stringify(serverEntry)}`);
  }
  const serverLogLevel = values['server-log-level'] ?? env.BENCH_SERVER_LOG_LEVEL ?? 'info';
  if (!LOG_LEVELS.includes(serverLogLevel)) {
    throw new UsageError(`--server-log-level: expected one of ${LOG_LEVELS.join(', ')}, got ${JSON.stringify(serverLogLevel)}`);
  }
  const serverNodeOptions = (values['server-node-options'] ?? env.BENCH_SERVER_NODE_OPTIONS ?? DEFAULT_SERVER_NODE_OPTIONS)
    .split(' ')
    .filter((option) => option !== '');

  const inFlight = wholeNumber('in-flight', values['in-flight'] ?? env.BENCH_IN_FLIGHT ?? '50', 1, 10_000);
  const workers = wholeNumber('workers', values.workers ?? env.BENCH_WORKERS ?? '2', 1, 64);
  if (workers > inFlight) throw new UsageError(`--workers: ${workers} workers need at least as many calls in flight, got ${inFlight}`);

  return {
    ...parseTargets(values),
    reseed: flag(values.reseed, 'BENCH_RESEED'),
    scenarios: scenarios as ScenarioName[],
    inFlight,
    workers,
    warmupS: wholeNumber('warmup-s', values['warmup-s'] ?? env.BENCH_WARMUP_S ?? '3', 0, 3_600),
    durationS: wholeNumber('duration-s', values['duration-s'] ?? env.BENCH_DURATION_S ?? '10', 1, 3_600),
    deepRows: wholeNumber('deep-rows', values['deep-rows'] ?? env.BENCH_DEEP_ROWS ?? '10000', 1, 10_000_000),
    serverEntry,
    serverNodeOptions,
    serverLogLevel,
    sampleMs: wholeNumber('sample-ms', values['sample-ms'] ?? env.BENCH_SAMPLE_MS ?? '100', 10, 10_000),
  };
}

/** Parses bench/seed.ts's options, or returns null for --help. */
export function parseSeedOptions(argv: string[]): SeedOptions | null {
  const { values } = parseArgs({
    args: argv,
    options: { ...TARGET_OPTIONS, force: { type: 'boolean' }, drop: { type: 'boolean' } },
  });
  if (values.help) return null;
  return { ...parseTargets(values), force: flag(values.force, 'BENCH_RESEED'), drop: values.drop === true };
}
