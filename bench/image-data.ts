/**
 * Benchmark of ImageService.UploadImageData and DownloadImageData against a
 * bare grpc-js byte stream of the same size and chunk size. Both servers run
 * as child processes on 127.0.0.1, and their VmRSS is read every 50 ms by
 * default.
 * docs/benchmarks.md describes what is measured and how.
 *
 *   npm run bench:data -- --size-mib 64
 */
import { execFileSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { availableParallelism, release, totalmem } from 'node:os';
import { join, relative, resolve } from 'node:path';
import * as grpc from '@grpc/grpc-js';
import { SignJWT } from 'jose';
import mysql from 'mysql2/promise';
import { CreateImageRequest, ImageServiceClient } from '../gen/imageregistry/v1/image_service.js';
import { type BareStreamClient, createBareStreamClient } from './bare-stream-service.js';
import { ChildServer } from './child-server.js';
import { type RunSettings, type ServerRunResult, type ServerUnderTest, runServer } from './measure.js';
import { HELP, type Options, UsageError, parseOptions } from './options.js';
import { type PayloadDigest, type PayloadSpec, digestPayload } from './payload.js';
import { RSS_GROWTH_GOAL_MIB, THROUGHPUT_RATIO_GOAL, type RunPair, formatReport, summarize } from './report.js';
import {
  type RegistryCaller,
  downloadFromBare,
  downloadFromRegistry,
  uploadToBare,
  uploadToRegistry,
} from './transfers.js';

const REPOSITORY_ROOT = resolve(import.meta.dirname, '..');
const RESULTS_FOLDER = join(REPOSITORY_ROOT, 'bench', 'results');
const MIB = 1024 * 1024;
const KIB = 1024;

const SERVER_START_TIMEOUT_MS = 60_000;
const SERVER_STOP_GRACE_MS = 10_000;
/** Time that cleanup after SIGINT or SIGTERM may take before the process exits anyway. */
const SIGNAL_CLEANUP_TIMEOUT_MS = 15_000;
const BENCH_PROJECT = 'image-data-bench';

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
];

/** Returns facts about the machine that bound the numbers. */
function machineFacts(tempDir: string): Record<string, unknown> {
  const cpuinfo = readFileSync('/proc/cpuinfo', 'utf8');
  const grpcPackage = JSON.parse(readFileSync(join(REPOSITORY_ROOT, 'node_modules/@grpc/grpc-js/package.json'), 'utf8')) as {
    version: string;
  };
  return {
    nproc: availableParallelism(),
    cpuModel: /^model name\s*:\s*(.*)$/m.exec(cpuinfo)?.[1] ?? 'unknown',
    memoryMiB: Math.round(totalmem() / MIB),
    kernel: release(),
    nodeVersion: process.version,
    grpcJsVersion: grpcPackage.version,
    tempDirFilesystem: filesystemOf(tempDir),
  };
}

/**
 * Returns the commit of the measured code, and the paths under src, gen and
 * proto that differ from it, or null when git cannot tell.
 */
function sourceRevision(): { commit: string; uncommittedChanges: string[] } | null {
  try {
    const git = (...args: string[]) => execFileSync('git', args, { cwd: REPOSITORY_ROOT, encoding: 'utf8' }).trim();
    const changes = git('status', '--porcelain', '--', 'src', 'gen', 'proto');
    return { commit: git('rev-parse', 'HEAD'), uncommittedChanges: changes === '' ? [] : changes.split('\n') };
  } catch {
    return null;
  }
}

/** Returns the type and device of the mount that contains `path`, from /proc/mounts. */
function filesystemOf(path: string): string {
  let best = { mountPoint: '', description: 'unknown' };
  for (const line of readFileSync('/proc/mounts', 'utf8').split('\n')) {
    const [device, mountPoint, type] = line.split(' ');
    if (device === undefined || mountPoint === undefined || type === undefined) continue;
    const contains = path === mountPoint || path.startsWith(mountPoint.endsWith('/') ? mountPoint : `${mountPoint}/`);
    if (contains && mountPoint.length >= best.mountPoint.length) best = { mountPoint, description: `${type} on ${device}` };
  }
  return best.description;
}

function clientOptions(options: Options): grpc.ClientOptions {
  const result: grpc.ClientOptions = { 'grpc.max_receive_message_length': 17 * MIB };
  if (options.clientWindowKiB !== null) result['grpc-node.flow_control_window'] = options.clientWindowKiB * KIB;
  return result;
}

/** Creates the registry's ServerUnderTest: a member of one project creates a QUEUED image, then uploads and downloads it. */
function registryUnderTest(options: Options, secret: string, spec: PayloadSpec, digest: PayloadDigest): ServerUnderTest {
  let caller: RegistryCaller | undefined;
  let imageId = '';
  return {
    async prepare(address) {
      const tokenLifetimeS = 2 * options.timeoutS + 600;
      const token = await new SignJWT({ project_id: BENCH_PROJECT, roles: ['member'] })
        .setProtectedHeader({ alg: 'HS256' })
        .setSubject('image-data-bench')
        .setExpirationTime(Math.floor(Date.now() / 1000) + tokenLifetimeS)
        .sign(new TextEncoder().encode(secret));
      const metadata = () => {
        const result = new grpc.Metadata();
        result.set('authorization', `Bearer ${token}`);
        return result;
      };
      const client = new ImageServiceClient(address, grpc.credentials.createInsecure(), clientOptions(options));
      caller = { client, metadata };
      const request = CreateImageRequest.fromPartial({
        image: { name: 'image-data-bench', diskFormat: 'raw', containerFormat: 'bare' },
      });
      const image = await new Promise<{ id: string }>((resolve, reject) => {
        client.createImage(request, metadata(), { deadline: Date.now() + SERVER_START_TIMEOUT_MS }, (error, created) =>
          error ? reject(error) : resolve(created),
        );
      });
      imageId = image.id;
    },
    async upload(deadline) {
      await uploadToRegistry(caller!, imageId, spec, digest, deadline);
    },
    async download(deadline) {
      await downloadFromRegistry(caller!, imageId, spec, digest, deadline);
    },
    close() {
      caller?.client.close();
    },
  };
}

function bareUnderTest(options: Options, spec: PayloadSpec, digest: PayloadDigest): ServerUnderTest {
  let client: BareStreamClient | undefined;
  return {
    async prepare(address) {
      client = createBareStreamClient(address, clientOptions(options));
    },
    async upload(deadline) {
      await uploadToBare(client!, spec, deadline);
    },
    async download(deadline) {
      await downloadFromBare(client!, spec, digest, deadline);
    },
    close() {
      client?.close();
    },
  };
}

interface Database {
  url: string;
  drop(): Promise<void>;
}

async function createDatabase(options: Options, folder: string): Promise<Database> {
  if (options.database === 'sqlite') {
    return { url: `sqlite:${join(folder, 'registry.sqlite')}`, drop: async () => {} };
  }
  const name = `bench_${randomBytes(6).toString('hex')}`;
  const admin = await mysql.createConnection({ uri: options.mysqlUrl });
  try {
    await admin.query(`CREATE DATABASE \`${name}\``);
  } finally {
    await admin.end();
  }
  return {
    url: `${options.mysqlUrl}/${name}`,
    drop: async () => {
      const connection = await mysql.createConnection({ uri: options.mysqlUrl });
      try {
        await connection.query(`DROP DATABASE IF EXISTS \`${name}\``);
      } finally {
        await connection.end();
      }
    },
  };
}

function registryEnvironment(databaseUrl: string, storeDir: string, secret: string): NodeJS.ProcessEnv {
  const env = { ...process.env };
  for (const name of REGISTRY_VARIABLES) delete env[name];
  return {
    ...env,
    GRPC_LISTEN: '127.0.0.1:0',
    DATABASE_URL: databaseUrl,
    IMAGE_STORE_DIR: storeDir,
    AUTH_JWT_SECRET: secret,
    // NOTE: info, not warn, because the address is only in the info line "image registry listening".
    // The registry logs one line per call and none per chunk, so the level costs nothing measurable here.
    LOG_LEVEL: 'info',
    SHUTDOWN_GRACE_S: '2',
  };
}

/** Servers that are running now, so that a signal handler can stop them. */
const runningServers = new Set<ChildServer>();

/** Starts a server, runs its transfers, and always stops it. */
async function measureChildServer(
  label: string,
  nodeArguments: string[],
  env: NodeJS.ProcessEnv,
  listeningMessage: string,
  target: ServerUnderTest,
  settings: RunSettings,
): Promise<ServerRunResult & { serverLog: Record<string, unknown>[]; problems: string[] }> {
  const server = await ChildServer.start({
    label,
    nodeArguments,
    cwd: REPOSITORY_ROOT,
    env,
    listeningMessage,
    startTimeoutMs: SERVER_START_TIMEOUT_MS,
  });
  runningServers.add(server);
  try {
    console.log(`${label}: listening on ${server.address}, pid ${server.pid}`);
    const result = await runServer(server, target, settings);
    return { ...result, serverLog: [...server.records], problems: [...server.problems] };
  } catch (error) {
    if (server.problems.length > 0) console.error(`${label} server problems:\n${server.problems.join('\n')}`);
    throw error;
  } finally {
    await server.stop(SERVER_STOP_GRACE_MS);
    runningServers.delete(server);
  }
}

/**
 * On SIGINT or SIGTERM, runs `cleanup` (bounded by SIGNAL_CLEANUP_TIMEOUT_MS)
 * and exits with 130, because Node would otherwise exit without running the
 * `finally` blocks that stop the servers and remove the files.
 */
function cleanUpOnSignal(cleanup: () => Promise<void>): void {
  for (const signal of ['SIGINT', 'SIGTERM'] as const) {
    process.once(signal, () => {
      console.error(`${signal}: stopping the servers and removing the temporary files`);
      setTimeout(() => process.exit(130), SIGNAL_CLEANUP_TIMEOUT_MS).unref();
      cleanup()
        .catch((error: unknown) => console.error(`cleanup after ${signal} failed: ${String(error)}`))
        .finally(() => process.exit(130));
    });
  }
}

async function main(): Promise<number> {
  let options: Options | null;
  try {
    options = parseOptions(process.argv.slice(2));
  } catch (error) {
    if (!(error instanceof UsageError) && (error as { code?: string }).code?.startsWith('ERR_PARSE_ARGS') !== true) throw error;
    console.error(`${(error as Error).message}\n\n${HELP}`);
    return 2;
  }
  if (options === null) {
    console.log(HELP);
    return 0;
  }

  const startedAt = new Date();
  const timestamp = startedAt.toISOString().replace(/[:.]/g, '-');
  const spec: PayloadSpec = { sizeBytes: options.sizeMiB * MIB, chunkBytes: options.chunkKiB * KIB, seed: randomBytes(8).toString('hex') };
  const settings: RunSettings = {
    sizeBytes: spec.sizeBytes,
    sampleIntervalMs: options.sampleMs,
    settleMs: options.settleMs,
    transferTimeoutMs: options.timeoutS * 1000,
  };
  const machine = machineFacts(resolve(options.tempDir));
  const revision = sourceRevision();
  console.log(`machine: ${JSON.stringify(machine)}`);
  console.log(`code: ${JSON.stringify(revision)}`);
  console.log(`payload: ${options.sizeMiB} MiB in chunks of ${options.chunkKiB} KiB; computing its MD5 and SHA-512 (not timed)`);
  const digest = digestPayload(spec);

  const profileFolder = join(RESULTS_FOLDER, `cpu-profiles-${timestamp}`);
  const nodeOptions = [...options.serverNodeOptions, ...(options.cpuProf ? ['--cpu-prof', '--cpu-prof-dir', profileFolder] : [])];
  const folder = mkdtempSync(join(options.tempDir, 'image-data-bench-'));
  let database: Database | undefined;
  cleanUpOnSignal(async () => {
    await Promise.all([...runningServers].map((server) => server.stop(2000)));
    rmSync(folder, { recursive: true, force: true });
    await database?.drop();
  });
  const runs: (RunPair & { registryCalls: Record<string, unknown>[]; problems: string[] })[] = [];
  try {
    for (let run = 1; run <= options.runs; run++) {
      console.log(`run ${run} of ${options.runs}`);
      const runFolder = join(folder, `run-${run}`);
      mkdirSync(runFolder);
      database = await createDatabase(options, runFolder);
      const secret = randomBytes(32).toString('hex');
      const { serverLog: registryLog, problems: registryProblems, ...registry } = await measureChildServer(
        'registry',
        [...nodeOptions, '--import', 'tsx', 'src/main.ts'],
        registryEnvironment(database.url, join(runFolder, 'images'), secret),
        'image registry listening',
        registryUnderTest(options, secret, spec, digest),
        settings,
      );
      await database.drop();
      database = undefined;
      rmSync(runFolder, { recursive: true, force: true });
      const { serverLog: _bareLog, problems: bareProblems, ...bare } = await measureChildServer(
        'bare',
        [...nodeOptions, '--import', 'tsx', 'bench/bare-stream-server.ts'],
        { ...process.env, BARE_LISTEN: '127.0.0.1:0' },
        'bare stream server listening',
        bareUnderTest(options, spec, digest),
        settings,
      );
      runs.push({
        registry,
        bare,
        registryCalls: registryLog.filter((record) => record.msg === 'call handled' || record.msg === 'call rejected'),
        problems: [...registryProblems, ...bareProblems],
      });
    }
  } finally {
    rmSync(folder, { recursive: true, force: true });
    await database?.drop();
  }

  const revisionAtEnd = sourceRevision();
  if (JSON.stringify(revisionAtEnd) !== JSON.stringify(revision)) {
    console.error(`warning: the code changed during the run, from ${JSON.stringify(revision)} to ${JSON.stringify(revisionAtEnd)}`);
  }
  const summaries = summarize(runs);
  const argumentsText = process.argv.slice(2).join(' ');
  const command = argumentsText === '' ? 'npm run bench:data' : `npm run bench:data -- ${argumentsText}`;
  console.log(`\n${command}\n\n${formatReport(runs, summaries)}`);
  mkdirSync(RESULTS_FOLDER, { recursive: true });
  const resultFile = join(RESULTS_FOLDER, `image-data-${timestamp}.json`);
  const record = {
    startedAt: startedAt.toISOString(),
    command,
    options: { ...options, mysqlUrl: options.mysqlUrl.replace(/\/\/([^:/@]*):[^@]*@/, '//$1:***@') },
    payload: { sizeBytes: spec.sizeBytes, chunkBytes: spec.chunkBytes, seed: spec.seed, ...digest },
    machine,
    revision,
    revisionAtEnd,
    goals: { rssGrowthUnderMiB: RSS_GROWTH_GOAL_MIB, minThroughputRatio: THROUGHPUT_RATIO_GOAL },
    summaries,
    runs,
    cpuProfiles: options.cpuProf ? relative(REPOSITORY_ROOT, profileFolder) : undefined,
  };
  writeFileSync(resultFile, `${JSON.stringify(record, null, 2)}\n`);
  console.log(`\nresults: ${relative(process.cwd(), resultFile)}`);
  return 0;
}

process.exitCode = await main();
