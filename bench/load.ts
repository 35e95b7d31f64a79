/**
 * Load benchmark of the registry's unary calls (GetImage, ListImages,
 * CreateMember, UpdateMember and a mix) on seeded databases of several
 * sizes. The same closed-loop generator also measures a bare grpc-js server
 * with an empty unary handler, before and after the registry in the same
 * run. Both servers run as child processes on 127.0.0.1, and the generator
 * runs in worker threads of this process (bench/load/worker.ts).
 *
 *   npm run bench -- --backend sqlite --sizes 10k --duration-s 5
 *   npm run bench -- --help
 *
 * Prints a table per backend and size and writes every figure to
 * bench/results/load-<timestamp>.json; bench/chart.ts draws listing p99
 * against size from those files.
 */
import { randomBytes } from 'node:crypto';
import { existsSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, relative, resolve } from 'node:path';
import { ChildServer } from './child-server.js';
import { type LoadResult, type LoadSettings, runLoad } from './load/generator.js';
import { databaseServerVersion, machineFacts, sourceRevision } from './load/machine.js';
import { LOAD_HELP, type LoadOptions, type ScenarioName, UsageError, parseLoadOptions } from './load/options.js';
import { type DeepPage, SetupClient, TokenBook, addMembershipsToUpdate, deepPage } from './load/registry-setup.js';
import {
  type BareRecord,
  type ScenarioRecord,
  type SizeRecord,
  GOALS,
  bareReference,
  checkGoals,
  formatBare,
  formatGoals,
  formatQuietness,
  formatSize,
  ratiosTo,
} from './load/report.js';
import { COMMUNITY_PUBLISHER, type ScenarioInputs, callingProjects, scenarioOperations } from './load/scenarios.js';
import { type SeedLocation, type SeedOutcome, ensureSeeded, seedLocation } from './load/seed-database.js';
import { HEAVY_CONSUMER } from './load/seed-rows.js';
import { findDatabaseServerPid } from './load/system-stats.js';
import { RUN_MEMBER_PREFIX, type Targets, deleteRunMembers, sampleTargets } from './load/targets.js';

const REPOSITORY_ROOT = resolve(import.meta.dirname, '..');
const RESULTS_FOLDER = join(REPOSITORY_ROOT, 'bench', 'results');
const SERVER_START_TIMEOUT_MS = 120_000;
const SERVER_STOP_GRACE_MS = 10_000;
/** Time that cleanup after SIGINT or SIGTERM may take before the process exits anyway. */
const SIGNAL_CLEANUP_TIMEOUT_MS = 15_000;
/** Tokens outlive the whole run by this much. */
const TOKEN_SPARE_S = 3600;

/** The registry's configuration variables (src/platform/config.ts). The child gets none of the parent's values for them. */
const REGISTRY_VARIABLES = [
  'GRPC_LISTEN',
  'DATABASE_URL',
  'AUTH_JWT_SECRET',
  'AUTH_JWT_PUBLIC_KEY_FILE',
  'AUTH_JWKS_FILE',
  'AUTH_JWT_ISSUER',
  'AUTH_JWT_AUDIENCE',
  'AUTH_CLOCK_TOLERANCE_S',
  'IMAGE_MEMBER_QUOTA',
  'IMAGE_STORE_DIR',
  'IMAGE_SIZE_CAP',
  'PROJECT_STORAGE_QUOTA',
  'UPLOAD_LEASE_S',
  'LOG_LEVEL',
  'SHUTDOWN_GRACE_S',
  'GRPC_TLS_CERT',
  'GRPC_TLS_KEY',
  'GRPC_TLS_CLIENT_CA',
];

/** Servers that are running now, and databases with run rows, so that a signal handler can clean up. */
const runningServers = new Set<ChildServer>();
const databasesInUse = new Set<string>();

function registryEnvironment(databaseUrl: string, storeDir: string, secret: string, logLevel: string): NodeJS.ProcessEnv {
  const env = { ...process.env };
  for (const name of REGISTRY_VARIABLES) delete env[name];
  return {
    ...env,
    GRPC_LISTEN: '127.0.0.1:0',
    DATABASE_URL: databaseUrl,
    IMAGE_STORE_DIR: storeDir,
    AUTH_JWT_SECRET: secret,
    LOG_LEVEL: logLevel,
    SHUTDOWN_GRACE_S: '2',
  };
}

function registryArguments(options: LoadOptions): string[] {
  if (options.serverEntry === 'tsx') return [...options.serverNodeOptions, '--import', 'tsx', 'src/main.ts'];
  const entry = join(REPOSITORY_ROOT, 'dist', 'src', 'main.js');
  if (!existsSync(entry)) throw new UsageError(`--server-entry dist: ${relative(process.cwd(), entry)} is missing; run npm run build first`);
  return [...options.serverNodeOptions, entry];
}

async function startServer(label: string, nodeArguments: string[], env: NodeJS.ProcessEnv, listeningMessage: string): Promise<ChildServer> {
  const server = await ChildServer.start({
    label,
    nodeArguments,
    cwd: REPOSITORY_ROOT,
    env,
    listeningMessage,
    startTimeoutMs: SERVER_START_TIMEOUT_MS,
  });
  runningServers.add(server);
  return server;
}

async function stopServer(server: ChildServer): Promise<void> {
  await server.stop(SERVER_STOP_GRACE_MS);
  runningServers.delete(server);
}

function settingsOf(options: LoadOptions): LoadSettings {
  return {
    inFlight: options.inFlight,
    workers: options.workers,
    warmupS: options.warmupS,
    durationS: options.durationS,
    sampleMs: options.sampleMs,
  };
}

function summaryLine(label: string, result: LoadResult): string {
  const errors = Object.values(result.errors).reduce((sum, count) => sum + count, 0);
  return (
    `  ${label}: ${Math.round(result.callsPerSecond)} calls/s, p50 ${result.latencyMs?.p50.toFixed(2) ?? 'n/a'} ms, ` +
    `p99 ${result.latencyMs?.p99.toFixed(2) ?? 'n/a'} ms, ${errors} errors, ` +
    `server ${result.cores.server.toFixed(2)} and client ${result.cores.client.toFixed(2)} cores`
  );
}

/** Measures the bare server with the same generator, sending a token of the usual size that it ignores. */
async function measureBare(options: LoadOptions, when: BareRecord['when']): Promise<BareRecord> {
  const tokens = new TokenBook(randomBytes(32).toString('hex'), TOKEN_SPARE_S);
  await tokens.add([HEAVY_CONSUMER]);
  const server = await startServer(
    'bare',
    [...options.serverNodeOptions, '--import', 'tsx', 'bench/bare-unary-server.ts'],
    { ...process.env, BARE_LISTEN: '127.0.0.1:0' },
    'bare unary server listening',
  );
  try {
    console.log(`bare (${when}): listening on ${server.address}, pid ${server.pid}`);
    const result = await runLoad(
      {
        address: server.address,
        serverPid: server.pid,
        databasePid: null,
        tokens: tokens.tokens,
        memberIdPrefix: '',
        operations: [
          {
            label: 'bare',
            weight: 1,
            kind: 'fixed',
            method: 'bareEmpty',
            requests: [{ project: HEAVY_CONSUMER, body: new Uint8Array(0), check: { kind: 'none' } }],
          },
        ],
      },
      settingsOf(options),
    );
    console.log(summaryLine('empty unary call', result));
    return { when, result };
  } finally {
    await stopServer(server);
  }
}

function scenarioDetail(name: ScenarioName, targets: Targets, deep: DeepPage | null, memberships: number): string {
  switch (name) {
    case 'get-image':
      return `${targets.readers.length} member rows`;
    case 'list-first':
      return HEAVY_CONSUMER;
    case 'list-deep':
      return deep!.shortened ? `after ${deep!.depth} rows, the project's last full page` : `after ${deep!.depth} rows`;
    case 'list-community':
      return `owner ${COMMUNITY_PUBLISHER}`;
    case 'create-member':
      return `${targets.ownedShared.length} images`;
    case 'update-member':
      return `${memberships} memberships`;
    case 'mixed':
      return '90 % reads';
  }
}

/** Runs every chosen scenario against a registry on one seeded database. */
async function measureSize(seed: SeedOutcome, options: LoadOptions, bare: BareRecord[], databasePid: number | null): Promise<SizeRecord> {
  const { location } = seed;
  const where = `${location.backend} ${location.label}`;
  databasesInUse.add(location.url);
  const leftOver = await deleteRunMembers(location.url);
  if (leftOver > 0) console.log(`${where}: deleted ${leftOver} member rows left by an interrupted run`);
  const targets = await sampleTargets(location.url);

  const secret = randomBytes(32).toString('hex');
  const storeDir = mkdtempSync(join(tmpdir(), 'load-bench-store-'));
  const runSeconds = (options.warmupS + options.durationS) * options.scenarios.length * options.sizes.length;
  const tokens = new TokenBook(secret, runSeconds + TOKEN_SPARE_S);
  const server = await startServer(
    'registry',
    registryArguments(options),
    registryEnvironment(location.url, storeDir, secret, options.serverLogLevel),
    'image registry listening',
  );
  try {
    console.log(`${where}: registry listening on ${server.address}, pid ${server.pid}`);
    const setup = new SetupClient(server.address, tokens);
    let deep: DeepPage | null = null;
    let updatable: ScenarioInputs['updatableMemberships'] = [];
    try {
      await tokens.add([HEAVY_CONSUMER]);
      if (options.scenarios.includes('list-deep')) deep = await deepPage(setup, HEAVY_CONSUMER, options.deepRows);
      if (options.scenarios.includes('update-member') || options.scenarios.includes('mixed')) {
        updatable = await addMembershipsToUpdate(setup, tokens, targets.forUpdateMember);
      }
    } finally {
      setup.close();
    }
    const inputs: ScenarioInputs = { targets, updatableMemberships: updatable, deepPageToken: deep?.pageToken ?? '' };
    await tokens.add(callingProjects(inputs));

    const reference = bareReference(bare);
    const runId = randomBytes(3).toString('hex');
    const scenarios: ScenarioRecord[] = [];
    for (const name of options.scenarios) {
      const result = await runLoad(
        {
          address: server.address,
          serverPid: server.pid,
          databasePid,
          tokens: tokens.tokens,
          operations: scenarioOperations(name, inputs),
          memberIdPrefix: `${RUN_MEMBER_PREFIX}c-${runId}-${name}-`,
        },
        settingsOf(options),
      );
      console.log(summaryLine(name, result));
      scenarios.push({ scenario: name, detail: scenarioDetail(name, targets, deep, updatable.length), ratioToBare: ratiosTo(result, reference), ...result });
    }
    return {
      backend: location.backend,
      imageCount: location.imageCount,
      label: location.label,
      database: location.name,
      seed: { reused: seed.reused, marker: seed.marker },
      deepPage: deep === null ? null : { depth: deep.depth, shortened: deep.shortened },
      sampledTargets: {
        readers: targets.readers.length,
        ownedShared: targets.ownedShared.length,
        forUpdateMember: targets.forUpdateMember.length,
      },
      scenarios,
      serverProblems: [...server.problems],
    };
  } finally {
    await stopServer(server);
    rmSync(storeDir, { recursive: true, force: true });
    await deleteRunMembers(location.url);
    databasesInUse.delete(location.url);
  }
}

/**
 * On SIGINT or SIGTERM, stops the servers and deletes the member rows the
 * run added (bounded by SIGNAL_CLEANUP_TIMEOUT_MS), then exits with 130.
 */
function cleanUpOnSignal(): void {
  for (const signal of ['SIGINT', 'SIGTERM'] as const) {
    process.once(signal, () => {
      console.error(`${signal}: stopping the servers and deleting the run's member rows`);
      setTimeout(() => process.exit(130), SIGNAL_CLEANUP_TIMEOUT_MS).unref();
      (async () => {
        await Promise.all([...runningServers].map((server) => server.stop(2000)));
        for (const url of databasesInUse) await deleteRunMembers(url);
      })()
        .catch((error: unknown) => console.error(`cleanup after ${signal} failed: ${String(error)}`))
        .finally(() => process.exit(130));
    });
  }
}

/** Returns the npm command with this run's arguments, for the report and the JSON. */
function commandLine(): string {
  const argumentsText = process.argv.slice(2).join(' ');
  return argumentsText === '' ? 'npm run bench' : `npm run bench -- ${argumentsText}`;
}

async function main(): Promise<number> {
  let options: LoadOptions | null;
  try {
    options = parseLoadOptions(process.argv.slice(2));
    if (options !== null) registryArguments(options);
  } catch (error) {
    if (!(error instanceof UsageError) && (error as { code?: string }).code?.startsWith('ERR_PARSE_ARGS') !== true) throw error;
    console.error(`${(error as Error).message}\n\n${LOAD_HELP}`);
    return 2;
  }
  if (options === null) {
    console.log(LOAD_HELP);
    return 0;
  }
  cleanUpOnSignal();
  const startedAt = new Date();
  const machine = machineFacts(REPOSITORY_ROOT);
  const revision = sourceRevision(REPOSITORY_ROOT);
  const usesMysql = options.sizes.some((size) => size.backend === 'mysql');
  const mysqlVersion = usesMysql ? await databaseServerVersion(options.mysqlUrl) : null;
  if (usesMysql && mysqlVersion === null) {
    console.error(`MySQL at ${options.mysqlUrl.replace(/\/\/([^:/@]*):[^@]*@/, '//$1:***@')} is not reachable; start it, pass its URL with --mysql-url, or use --backend sqlite`);
    return 1;
  }
  console.log(`machine: ${JSON.stringify({ ...machine, mysqlVersion })}`);
  console.log(`code: ${JSON.stringify(revision)}`);

  // Seeding first, so that the bare runs and the registry runs follow each other closely.
  const seeds: SeedOutcome[] = [];
  for (const { backend, imageCount } of options.sizes) {
    const location: SeedLocation = seedLocation(backend, imageCount, options);
    seeds.push(await ensureSeeded(location, options, { force: options.reseed, log: (line) => console.log(line) }));
  }
  const databasePid = usesMysql ? findDatabaseServerPid() : null;

  const bare: BareRecord[] = [await measureBare(options, 'before')];
  const sizes: SizeRecord[] = [];
  for (const seed of seeds) {
    sizes.push(await measureSize(seed, options, bare, seed.location.backend === 'mysql' ? databasePid : null));
  }
  bare.push(await measureBare(options, 'after'));
  // The ratios use the mean of both bare runs, now that the second one is known.
  const reference = bareReference(bare);
  for (const size of sizes) for (const row of size.scenarios) row.ratioToBare = ratiosTo(row, reference);

  const goals = checkGoals(sizes);
  const command = commandLine();
  console.log(`\n${command}\n`);
  console.log(
    `${options.inFlight} calls in flight over ${options.workers} worker threads, ${options.warmupS} s warm-up, ` +
      `${options.durationS} s measured per scenario. Cores: CPU seconds per second of the window; ` +
      'DB cores include every other client of that database server, and other cores are the rest of the machine.\n',
  );
  const quietness = formatQuietness(bare, sizes);
  if (quietness !== '') console.log(`${quietness}\n`);
  console.log(`${formatBare(bare)}\n`);
  for (const size of sizes) console.log(`${formatSize(size)}\n`);
  console.log(formatGoals(goals));

  mkdirSync(RESULTS_FOLDER, { recursive: true });
  const resultFile = join(RESULTS_FOLDER, `load-${startedAt.toISOString().replace(/[:.]/g, '-')}.json`);
  const record = {
    startedAt: startedAt.toISOString(),
    command,
    options: { ...options, mysqlUrl: options.mysqlUrl.replace(/\/\/([^:/@]*):[^@]*@/, '//$1:***@') },
    machine: { ...machine, mysqlVersion },
    revision,
    revisionAtEnd: sourceRevision(REPOSITORY_ROOT),
    goalLimits: GOALS,
    bare,
    bareReference: reference,
    sizes,
    goals,
  };
  writeFileSync(resultFile, `${JSON.stringify(record, null, 2)}\n`);
  console.log(`\nresults: ${relative(process.cwd(), resultFile)}`);
  return 0;
}

process.exitCode = await main();
