/**
 * End-to-end test of a lost MySQL database. The real entry point runs as a
 * child process against a MariaDB server of the test's own, under a steady
 * load of mixed calls. The test stops that server with SIGKILL, and then with
 * a clean SIGTERM shutdown. Each time it checks that calls fail fast with
 * UNAVAILABLE and that health turns NOT_SERVING. It then starts the server
 * again on the same port and data directory, and checks that the service
 * recovers by itself and that no image or member was half written. A last
 * pair of tests freezes the server with SIGSTOP instead.
 */
import { randomUUID } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { fileURLToPath } from 'node:url';
import * as grpc from '@grpc/grpc-js';
import * as protoLoader from '@grpc/proto-loader';
import mysql from 'mysql2/promise';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  CreateImageRequest,
  GetImageRequest,
  ImageServiceClient,
  ListImagesRequest,
} from '../../gen/imageregistry/v1/image_service.js';
import { CreateMemberRequest, MemberServiceClient } from '../../gen/imageregistry/v1/member_service.js';
import { PROBE_INTERVAL_MS, PROBE_TIMEOUT_MS } from '../../src/platform/health.js';
import { type PrivateMariaDb, startPrivateMariaDb } from '../support/private-mariadb.js';
import { type ServerProcess, mintToken, parseLogLine, startServer, stopServer } from '../support/server-process.js';

/** Maximum time a call may take to fail while the database is down. */
const FAST_FAILURE_MS = 2_000;
/** The server's statement time limit, below FAST_FAILURE_MS. */
const STATEMENT_TIMEOUT_S = 1;
/** Maximum time the service may take, once the database is back, to serve calls and report SERVING. */
const RECOVERY_LIMIT_MS = PROBE_INTERVAL_MS + 2_000;
/** Deadline of every call, so that a call that hangs fails the test instead of stalling it. */
const CALL_DEADLINE_MS = 20_000;
const LOAD_WORKERS = 8;
const SERVICES = ['', 'imageregistry.v1.ImageService', 'imageregistry.v1.MemberService'];

/** How one call ended; `code` is the gRPC status name, OK on success. */
interface CallRecord {
  method: string;
  code: string;
  message: string;
  startedAt: number;
  endedAt: number;
}

type UnaryMethod = (
  request: unknown,
  metadata: grpc.Metadata,
  options: grpc.CallOptions,
  callback: (error: grpc.ServiceError | null, response: unknown) => void,
) => unknown;

/** Calls a unary method of a generated client and resolves, never rejects, to its record and response. */
function invoke<T>(
  client: grpc.Client,
  method: string,
  request: unknown,
  metadata: grpc.Metadata,
  deadlineMs = CALL_DEADLINE_MS,
): Promise<{ record: CallRecord; response: T | undefined }> {
  const startedAt = Date.now();
  const unary = (client as unknown as Record<string, UnaryMethod>)[method]!.bind(client);
  return new Promise((resolve) => {
    unary(request, metadata, { deadline: Date.now() + deadlineMs }, (error, response) => {
      const endedAt = Date.now();
      const code = error ? grpc.status[error.code] : 'OK';
      const message = error ? error.details : '';
      resolve({ record: { method, code, message, startedAt, endedAt }, response: response as T | undefined });
    });
  });
}

type ClientConstructor<T> = new (address: string, credentials: grpc.ChannelCredentials) => T;

/** grpc.health.v1.Health as @grpc/proto-loader loads it. */
interface HealthClient extends grpc.Client {
  Check(
    request: { service: string },
    metadata: grpc.Metadata,
    options: grpc.CallOptions,
    callback: (error: grpc.ServiceError | null, response: { status: string }) => void,
  ): void;
}

const REPOSITORY_ROOT = fileURLToPath(new URL('../..', import.meta.url));

function healthClient(address: string): HealthClient {
  const definition = protoLoader.loadSync(join(REPOSITORY_ROOT, 'node_modules/grpc-health-check/proto/health/v1/health.proto'), {
    keepCase: true,
    enums: String,
    defaults: true,
  });
  const loaded = grpc.loadPackageDefinition(definition) as unknown as {
    grpc: { health: { v1: { Health: ClientConstructor<HealthClient> } } };
  };
  return new loaded.grpc.health.v1.Health(address, grpc.credentials.createInsecure());
}

/** Returns the health status of each of SERVICES, or the error code when the check itself fails. */
async function checkHealth(client: HealthClient): Promise<string[]> {
  return Promise.all(
    SERVICES.map(
      (service) =>
        new Promise<string>((resolve) => {
          client.Check({ service }, new grpc.Metadata(), { deadline: Date.now() + 2_000 }, (error, response) =>
            resolve(error ? `error ${grpc.status[error.code]}` : response.status),
          );
        }),
    ),
  );
}

/** Polls `probe` every 100 ms until it returns true, and resolves to the time it did, or null after `timeoutMs`. */
async function waitUntil(probe: () => Promise<boolean>, timeoutMs: number): Promise<number | null> {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    if (await probe()) return Date.now();
    await sleep(100);
  }
  return null;
}

/** An image a load worker asked to create, with the fields it sent. */
interface CreatedImage {
  id: string;
  name: string;
  tags: string[];
  properties: Record<string, string>;
  code: string;
}

interface AddedMember {
  imageId: string;
  memberId: string;
  code: string;
}

/**
 * Workers that each loop over create, member add, get and list calls until
 * stopped, recording every call. Images get ids chosen here, so that a
 * create whose response was lost can still be looked up.
 */
class MixedLoad {
  readonly records: CallRecord[] = [];
  readonly images: CreatedImage[] = [];
  readonly members: AddedMember[] = [];
  private running = false;
  private workers: Promise<void>[] = [];

  constructor(
    private readonly imageClient: ImageServiceClient,
    private readonly memberClient: MemberServiceClient,
    private readonly token: string,
    private readonly label: string,
  ) {}

  start(): void {
    this.running = true;
    this.workers = Array.from({ length: LOAD_WORKERS }, (_, index) => this.work(index));
  }

  async stop(): Promise<void> {
    this.running = false;
    await Promise.all(this.workers);
  }

  private metadata(): grpc.Metadata {
    const metadata = new grpc.Metadata();
    metadata.set('authorization', `Bearer ${this.token}`);
    return metadata;
  }

  private async work(worker: number): Promise<void> {
    const own: CreatedImage[] = [];
    for (let step = 0; this.running; step++) {
      const created = own.filter((image) => image.code === 'OK');
      const pick = created.length === 0 ? 0 : step % 4;
      let record: CallRecord;
      if (pick === 0) {
        const image: CreatedImage = {
          id: randomUUID(),
          name: `${this.label}-${worker}-${step}`,
          tags: ['load', `worker-${worker}`, `step-${step}`],
          properties: { worker: String(worker), step: String(step), label: this.label },
          code: 'PENDING',
        };
        this.images.push(image);
        own.push(image);
        const request = CreateImageRequest.fromPartial({
          imageId: image.id,
          image: { name: image.name, tags: image.tags, properties: new Map(Object.entries(image.properties)) },
        });
        ({ record } = await invoke(this.imageClient, 'createImage', request, this.metadata()));
        image.code = record.code;
      } else if (pick === 1) {
        const image = created[step % created.length]!;
        const member: AddedMember = { imageId: image.id, memberId: `member-${worker}-${step}`, code: 'PENDING' };
        this.members.push(member);
        const request = CreateMemberRequest.fromPartial({ imageId: member.imageId, memberId: member.memberId });
        ({ record } = await invoke(this.memberClient, 'createMember', request, this.metadata()));
        member.code = record.code;
      } else if (pick === 2) {
        const image = created[step % created.length]!;
        ({ record } = await invoke(this.imageClient, 'getImage', GetImageRequest.fromPartial({ id: image.id }), this.metadata()));
      } else {
        const request = ListImagesRequest.fromPartial({ pageSize: 5 });
        ({ record } = await invoke(this.imageClient, 'listImages', request, this.metadata()));
      }
      this.records.push(record);
      // Failing calls return at once; a pause keeps the outage from turning into a busy loop.
      if (record.code !== 'OK') await sleep(20);
    }
  }
}

/** Rows of the image tables that no longer match, as readable lines; empty when all is consistent. */
async function inconsistentRows(connection: mysql.Connection, load: MixedLoad): Promise<string[]> {
  const problems: string[] = [];
  for (const table of ['image_members', 'image_tags', 'image_properties']) {
    const [orphans] = (await connection.query(
      `SELECT child.image_id FROM ${table} child LEFT JOIN images ON images.id = child.image_id WHERE images.id IS NULL`,
    )) as [{ image_id: string }[], unknown];
    for (const row of orphans) problems.push(`${table} row refers to missing image ${row.image_id}`);
  }

  const [imageRows] = (await connection.query('SELECT id, name, owner, status, metadata_bytes FROM images')) as [
    { id: string; name: string; owner: string; status: string; metadata_bytes: number }[],
    unknown,
  ];
  const [tagRows] = (await connection.query('SELECT image_id, tag FROM image_tags')) as [{ image_id: string; tag: string }[], unknown];
  const [propertyRows] = (await connection.query('SELECT image_id, name, value FROM image_properties')) as [
    { image_id: string; name: string; value: string }[],
    unknown,
  ];
  const [memberRows] = (await connection.query('SELECT image_id, member_id, status FROM image_members')) as [
    { image_id: string; member_id: string; status: string }[],
    unknown,
  ];
  const rowsById = new Map(imageRows.map((row) => [row.id, row]));
  const tagsById = new Map<string, string[]>();
  for (const row of tagRows) tagsById.set(row.image_id, [...(tagsById.get(row.image_id) ?? []), row.tag]);
  const propertiesById = new Map<string, Record<string, string>>();
  for (const row of propertyRows) propertiesById.set(row.image_id, { ...propertiesById.get(row.image_id), [row.name]: row.value });
  const memberKeys = new Set(memberRows.map((row) => `${row.image_id}/${row.member_id}`));

  for (const row of imageRows) {
    const tags = tagsById.get(row.id) ?? [];
    const properties = propertiesById.get(row.id) ?? {};
    let bytes = 0;
    for (const tag of tags) bytes += Buffer.byteLength(tag);
    for (const [name, value] of Object.entries(properties)) bytes += Buffer.byteLength(name) + Buffer.byteLength(value);
    if (bytes !== Number(row.metadata_bytes)) {
      problems.push(`image ${row.id}: metadata_bytes is ${row.metadata_bytes}, its tag and property rows add up to ${bytes}`);
    }
  }

  for (const image of load.images) {
    const row = rowsById.get(image.id);
    if (row === undefined) {
      if (image.code === 'OK') problems.push(`image ${image.id}: created with OK but has no row`);
      continue;
    }
    const tags = [...(tagsById.get(image.id) ?? [])].sort();
    const properties = propertiesById.get(image.id) ?? {};
    const complete =
      row.name === image.name &&
      row.status === 'queued' &&
      JSON.stringify(tags) === JSON.stringify([...image.tags].sort()) &&
      JSON.stringify(properties, Object.keys(properties).sort()) ===
        JSON.stringify(image.properties, Object.keys(image.properties).sort());
    if (!complete) {
      problems.push(
        `image ${image.id} (create ended ${image.code}) is incomplete: name ${row.name}, status ${row.status}, ` +
          `tags ${JSON.stringify(tags)}, properties ${JSON.stringify(properties)}`,
      );
    }
  }
  for (const member of load.members) {
    if (member.code === 'OK' && !memberKeys.has(`${member.imageId}/${member.memberId}`)) {
      problems.push(`member ${member.memberId} of image ${member.imageId}: added with OK but has no row`);
    }
  }
  return problems;
}

function summarizeCodes(records: CallRecord[]): Record<string, number> {
  const counts: Record<string, number> = {};
  for (const record of records) counts[record.code] = (counts[record.code] ?? 0) + 1;
  return counts;
}

const DATABASE_NAME = 'registry_loss';

describe('service when its MySQL database is lost', () => {
  let mariadb: PrivateMariaDb | undefined;
  let unavailableReason: string | undefined;
  let server: ServerProcess | undefined;
  let storeFolder: string | undefined;
  let imageClient: ImageServiceClient;
  let memberClient: MemberServiceClient;
  let health: HealthClient;
  let token: string;

  beforeAll(async () => {
    try {
      mariadb = await startPrivateMariaDb();
    } catch (error) {
      unavailableReason = (error as Error).message;
      // CI sets REQUIRE_MYSQL=1, and there a missing MariaDB is a failure.
      if (process.env.REQUIRE_MYSQL === '1') throw error;
      console.warn(`\nNOTICE: the database loss test is SKIPPED: no private MariaDB could be started: ${unavailableReason}\n`);
      return;
    }
    const admin = await mysql.createConnection({ uri: mariadb.serverUrl });
    await admin.query(`CREATE DATABASE ${DATABASE_NAME}`);
    await admin.end();

    storeFolder = mkdtempSync(join(tmpdir(), 'registry-loss-'));
    const secret = `loss-test-secret-${randomUUID()}`;
    server = await startServer({
      GRPC_LISTEN: '127.0.0.1:0',
      DATABASE_URL: `${mariadb.serverUrl}/${DATABASE_NAME}`,
      IMAGE_STORE_DIR: storeFolder,
      AUTH_JWT_SECRET: secret,
      LOG_LEVEL: 'info',
      // A frozen server sends no response, so calls fail when a statement times out.
      DATABASE_STATEMENT_TIMEOUT_S: String(STATEMENT_TIMEOUT_S),
    });
    imageClient = new ImageServiceClient(server.address, grpc.credentials.createInsecure());
    memberClient = new MemberServiceClient(server.address, grpc.credentials.createInsecure());
    health = healthClient(server.address);
    token = await mintToken(secret, 'proj-loss');
  }, 90_000);

  afterAll(async () => {
    imageClient?.close();
    memberClient?.close();
    health?.close();
    await stopServer(server);
    await mariadb?.destroy();
    if (storeFolder !== undefined) rmSync(storeFolder, { recursive: true, force: true });
  });

  describe.each(['SIGKILL', 'SIGTERM'] as const)('after mariadbd gets %s', (signal) => {
    it('fails fast, reports NOT_SERVING, recovers, keeps rows whole', { timeout: 45_000 }, async (context) => {
      if (mariadb === undefined || server === undefined) {
        context.skip(`no private MariaDB could be started: ${unavailableReason}`);
        return;
      }
      const database = mariadb;
      const running = server;
      expect(await checkHealth(health)).toEqual(SERVICES.map(() => 'SERVING'));

      const load = new MixedLoad(imageClient, memberClient, token, signal.toLowerCase());
      load.start();
      await sleep(1_500);

      const signalAt = Date.now();
      await database.stop(signal);
      const goneAt = Date.now();

      const notServingAt = await waitUntil(
        async () => (await checkHealth(health)).every((status) => status === 'NOT_SERVING'),
        PROBE_INTERVAL_MS + 15_000,
      );
      // Keep the load on the lost database a little longer than the probe needed.
      await sleep(1_000);
      const outageRecords = load.records.filter((record) => record.startedAt >= goneAt);
      const processAliveDuringOutage = running.child.exitCode === null && running.child.signalCode === null;

      const restartAt = Date.now();
      await database.start();
      const restartedAt = Date.now();
      const callerMetadata = new grpc.Metadata();
      callerMetadata.set('authorization', `Bearer ${token}`);
      const callsBackAt = await waitUntil(async () => {
        const { record } = await invoke(imageClient, 'listImages', ListImagesRequest.fromPartial({ pageSize: 1 }), callerMetadata);
        return record.code === 'OK';
      }, RECOVERY_LIMIT_MS + 15_000);
      const servingAt = await waitUntil(
        async () => (await checkHealth(health)).every((status) => status === 'SERVING'),
        RECOVERY_LIMIT_MS + 15_000,
      );
      await sleep(500);
      await load.stop();

      const before = load.records.filter((record) => record.endedAt < signalAt);
      const inFlight = load.records.filter((record) => record.startedAt < goneAt && record.endedAt >= signalAt);
      const during = outageRecords.filter((record) => record.endedAt < restartAt);
      const after = load.records.filter((record) => record.startedAt >= (callsBackAt ?? Infinity));
      const slowest = Math.max(0, ...during.map((record) => record.endedAt - record.startedAt));
      console.info(
        `database loss by ${signal}: mariadbd gone ${goneAt - signalAt} ms after the signal; ` +
          `calls before ${JSON.stringify(summarizeCodes(before))}, in flight ${JSON.stringify(summarizeCodes(inFlight))}, ` +
          `during the outage ${JSON.stringify(summarizeCodes(during))} (slowest ${slowest} ms), after recovery ${JSON.stringify(summarizeCodes(after))}; ` +
          `NOT_SERVING ${notServingAt === null ? 'never' : `${notServingAt - goneAt} ms`} after the loss; ` +
          `mariadbd back ${restartedAt - restartAt} ms after the restart began; calls OK ` +
          `${callsBackAt === null ? 'never' : `${callsBackAt - restartedAt} ms`} and SERVING ` +
          `${servingAt === null ? 'never' : `${servingAt - restartedAt} ms`} after it was back`,
      );

      expect(before.filter((record) => record.code === 'OK').length).toBeGreaterThan(0);
      expect(during.length).toBeGreaterThan(0);
      expect.soft(summarizeCodes(during)).toEqual({ UNAVAILABLE: during.length });
      const wrongMessages = during.filter((record) => !/database is unreachable/.test(record.message));
      expect.soft(wrongMessages.slice(0, 3)).toEqual([]);
      expect.soft(slowest).toBeLessThan(FAST_FAILURE_MS);
      expect.soft(inFlight.filter((record) => !['OK', 'UNAVAILABLE'].includes(record.code)).slice(0, 3)).toEqual([]);
      expect.soft(notServingAt === null ? Infinity : notServingAt - goneAt).toBeLessThanOrEqual(PROBE_INTERVAL_MS + 1_000);
      expect.soft(processAliveDuringOutage).toBe(true);
      expect(running.child.exitCode).toBeNull();
      expect.soft(callsBackAt === null ? Infinity : callsBackAt - restartedAt).toBeLessThanOrEqual(RECOVERY_LIMIT_MS);
      expect.soft(servingAt === null ? Infinity : servingAt - restartedAt).toBeLessThanOrEqual(RECOVERY_LIMIT_MS);
      expect.soft(summarizeCodes(after)).toEqual({ OK: after.length });

      const unexpected = running.output.filter((line) => parseLogLine(line)?.msg === 'call failed with an unexpected error');
      expect.soft(unexpected.slice(0, 3)).toEqual([]);

      const connection = await mysql.createConnection({ uri: `${database.serverUrl}/${DATABASE_NAME}` });
      try {
        expect(await inconsistentRows(connection, load)).toEqual([]);
      } finally {
        await connection.end();
      }
    });
  });

  describe('while mariadbd is frozen with SIGSTOP', () => {
    it('reports NOT_SERVING, then SERVING after SIGCONT', { timeout: 45_000 }, async (context) => {
      if (mariadb === undefined || server === undefined) {
        context.skip(`no private MariaDB could be started: ${unavailableReason}`);
        return;
      }
      const database = mariadb;
      expect(await checkHealth(health)).toEqual(SERVICES.map(() => 'SERVING'));

      const pausedAt = Date.now();
      database.pause();
      let notServingAt: number | null;
      let processAlive: boolean;
      try {
        notServingAt = await waitUntil(
          async () => (await checkHealth(health)).every((status) => status === 'NOT_SERVING'),
          PROBE_INTERVAL_MS + PROBE_TIMEOUT_MS + 10_000,
        );
        processAlive = server.child.exitCode === null && server.child.signalCode === null;
      } finally {
        database.resume();
      }
      const resumedAt = Date.now();
      const callerMetadata = new grpc.Metadata();
      callerMetadata.set('authorization', `Bearer ${token}`);
      const callsBackAt = await waitUntil(async () => {
        const { record } = await invoke(imageClient, 'listImages', ListImagesRequest.fromPartial({ pageSize: 1 }), callerMetadata);
        return record.code === 'OK';
      }, RECOVERY_LIMIT_MS + 15_000);
      const servingAt = await waitUntil(
        async () => (await checkHealth(health)).every((status) => status === 'SERVING'),
        RECOVERY_LIMIT_MS + 15_000,
      );
      console.info(
        `mariadbd frozen: NOT_SERVING ${notServingAt === null ? 'never' : `${notServingAt - pausedAt} ms`} after SIGSTOP; ` +
          `calls OK ${callsBackAt === null ? 'never' : `${callsBackAt - resumedAt} ms`} and SERVING ` +
          `${servingAt === null ? 'never' : `${servingAt - resumedAt} ms`} after SIGCONT`,
      );

      // A probe starts within one interval and fails after its timeout.
      expect(notServingAt === null ? Infinity : notServingAt - pausedAt).toBeLessThanOrEqual(
        PROBE_INTERVAL_MS + PROBE_TIMEOUT_MS + 1_000,
      );
      expect(processAlive).toBe(true);
      expect(callsBackAt === null ? Infinity : callsBackAt - resumedAt).toBeLessThanOrEqual(RECOVERY_LIMIT_MS);
      expect(servingAt === null ? Infinity : servingAt - resumedAt).toBeLessThanOrEqual(RECOVERY_LIMIT_MS);
    });

    it('fails calls fast with UNAVAILABLE', { timeout: 30_000 }, async (context) => {
      if (mariadb === undefined || server === undefined) {
        context.skip(`no private MariaDB could be started: ${unavailableReason}`);
        return;
      }
      const database = mariadb;
      const callerMetadata = new grpc.Metadata();
      callerMetadata.set('authorization', `Bearer ${token}`);
      const list = () =>
        invoke(imageClient, 'listImages', ListImagesRequest.fromPartial({ pageSize: 1 }), callerMetadata, 2 * FAST_FAILURE_MS);
      // Leaves several idle connections in the pool.
      await Promise.all(Array.from({ length: 6 }, list));

      database.pause();
      let records: CallRecord[];
      try {
        records = (await Promise.all(Array.from({ length: 3 }, list))).map(({ record }) => record);
      } finally {
        database.resume();
      }
      console.info(
        `calls while mariadbd is frozen: ${records.map((record) => `${record.code} after ${record.endedAt - record.startedAt} ms`).join(', ')}`,
      );
      for (const record of records) {
        expect(record.code).toBe('UNAVAILABLE');
        expect(record.endedAt - record.startedAt).toBeLessThan(FAST_FAILURE_MS);
      }
    });
  });
});
