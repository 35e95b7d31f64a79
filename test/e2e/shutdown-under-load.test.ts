/**
 * End-to-end test of SIGTERM under load. The real entry point runs as a
 * child process with 50 unary calls in flight and three uploads open, and
 * gets SIGTERM. Each call must end OK or UNAVAILABLE, an upload cut at the
 * end of the grace period included. The process must
 * close its pool and exit with code 0 shortly after the grace period, and a
 * restarted server must find every write that returned OK.
 */
import { randomBytes, randomUUID } from 'node:crypto';
import { existsSync, mkdtempSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import * as grpc from '@grpc/grpc-js';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Image } from '../../gen/imageregistry/v1/image.js';
import {
  CreateImageRequest,
  GetImageRequest,
  ImageServiceClient,
  ListImagesRequest,
  UpdateImageRequest,
  type UploadImageDataRequest,
} from '../../gen/imageregistry/v1/image_service.js';
import { CreateMemberRequest, MemberServiceClient } from '../../gen/imageregistry/v1/member_service.js';
import { Database } from '../../src/persistence/database.js';
import { parseDatabaseUrl } from '../../src/persistence/database-url.js';
import { type TestDatabase, createTestDatabase, testedBackends } from '../support/databases.js';
import { type ServerProcess, mintToken, parseLogLine, startServer, stopServer } from '../support/server-process.js';

/** SHUTDOWN_GRACE_S for the server under test: short, so that the cut upload does not stretch the test. */
const SHUTDOWN_GRACE_S = 3;
/**
 * What shutdown may add to the grace period: handlers cancelled at its end
 * still clean up (HANDLER_CLEANUP_MS in src/service.ts allows them 5 s), and
 * the pool and the staging worker close.
 */
const SHUTDOWN_SLACK_MS = 2_000;
const CALLS_IN_FLIGHT = 50;
const CALL_DEADLINE_MS = 30_000;
const KIB = 1024;
/** Chunks of each upload that must finish during shutdown: one every 50 ms, so about 1.5 s, within the grace period. */
const SHORT_UPLOAD_CHUNKS = 30;

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
): Promise<{ record: CallRecord; response: T | undefined }> {
  const startedAt = Date.now();
  const unary = (client as unknown as Record<string, UnaryMethod>)[method]!.bind(client);
  return new Promise((resolve) => {
    unary(request, metadata, { deadline: Date.now() + CALL_DEADLINE_MS }, (error, response) => {
      const endedAt = Date.now();
      const code = error ? grpc.status[error.code] : 'OK';
      const message = error ? error.details : '';
      resolve({ record: { method, code, message, startedAt, endedAt }, response: response as T | undefined });
    });
  });
}

/**
 * Uploads `chunkCount` chunks of 64 KiB, one every `intervalMs`, or chunks
 * without end while `chunkCount` is null, and resolves to how the call ended.
 */
function pacedUpload(
  client: ImageServiceClient,
  metadata: grpc.Metadata,
  imageId: string,
  chunkCount: number | null,
  intervalMs: number,
): Promise<CallRecord> {
  const startedAt = Date.now();
  return new Promise((resolve) => {
    let ended = false;
    const call = client.uploadImageData(metadata, { deadline: Date.now() + CALL_DEADLINE_MS }, (error) => {
      ended = true;
      const code = error ? grpc.status[error.code] : 'OK';
      resolve({ method: 'uploadImageData', code, message: error?.details ?? '', startedAt, endedAt: Date.now() });
    });
    call.on('error', () => {});
    void (async () => {
      const start: UploadImageDataRequest = {
        payload: { $case: 'start', value: { imageId, expectedChecksum: '', expectedHashValue: '' } },
      };
      call.write(start);
      for (let index = 0; !ended && (chunkCount === null || index < chunkCount); index++) {
        await sleep(intervalMs);
        if (!ended) call.write({ payload: { $case: 'chunk', value: randomBytes(64 * KIB) } });
      }
      if (!ended) call.end();
    })();
  });
}

/** An image a load worker asked to create, with the fields it sent, and the name set by its updates. */
interface CreatedImage {
  id: string;
  name: string;
  tags: string[];
  properties: Record<string, string>;
  code: string;
  /** The name set by the last update that returned OK, or undefined. */
  updatedName?: string;
  /** The name that an update still pending, or failed, may have set. */
  uncertainName?: string;
}

interface AddedMember {
  imageId: string;
  memberId: string;
  code: string;
}

describe.each(testedBackends())('SIGTERM under load on %s', (backend) => {
  let database: TestDatabase;
  let folder: string;
  let environment: Record<string, string>;
  const secret = `shutdown-test-secret-${randomUUID()}`;
  const servers: ServerProcess[] = [];
  const clients: grpc.Client[] = [];

  beforeAll(async () => {
    database = await createTestDatabase(backend);
    folder = mkdtempSync(join(tmpdir(), 'registry-shutdown-'));
    environment = {
      GRPC_LISTEN: '127.0.0.1:0',
      DATABASE_URL: database.url,
      IMAGE_STORE_DIR: join(folder, 'images'),
      AUTH_JWT_SECRET: secret,
      SHUTDOWN_GRACE_S: String(SHUTDOWN_GRACE_S),
      LOG_LEVEL: 'info',
    };
  });

  afterAll(async () => {
    for (const client of clients) client.close();
    for (const server of servers) await stopServer(server);
    await database?.drop();
    if (folder !== undefined) rmSync(folder, { recursive: true, force: true });
  });

  async function start(): Promise<{ server: ServerProcess; images: ImageServiceClient; members: MemberServiceClient }> {
    const server = await startServer(environment);
    servers.push(server);
    const images = new ImageServiceClient(server.address, grpc.credentials.createInsecure());
    const members = new MemberServiceClient(server.address, grpc.credentials.createInsecure());
    clients.push(images, members);
    return { server, images, members };
  }

  it('finishes or rejects every call, exits 0, keeps OK writes', { timeout: 60_000 }, async () => {
    const token = await mintToken(secret, 'proj-shutdown');
    const metadata = () => {
      const result = new grpc.Metadata();
      result.set('authorization', `Bearer ${token}`);
      return result;
    };
    const { server, images, members } = await start();

    const uploadIds: string[] = [];
    for (let index = 0; index < 3; index++) {
      const { record, response } = await invoke<Image>(
        images,
        'createImage',
        CreateImageRequest.fromPartial({ image: { name: `upload-${index}` } }),
        metadata(),
      );
      expect(record.code).toBe('OK');
      uploadIds.push(response!.id);
    }

    // Each worker keeps one call in flight until the server has exited.
    const records: CallRecord[] = [];
    const created: CreatedImage[] = [];
    const added: AddedMember[] = [];
    let serverExited = false;
    const work = async (worker: number): Promise<void> => {
      let own: CreatedImage | undefined;
      for (let step = 0; !serverExited; step++) {
        let record: CallRecord;
        if (own === undefined || step % 5 === 0) {
          const image: CreatedImage = {
            id: randomUUID(),
            name: `load-${worker}-${step}`,
            tags: Array.from({ length: 20 }, (_, index) => `tag-${index}`),
            properties: Object.fromEntries(Array.from({ length: 20 }, (_, index) => [`key${index}`, `value-${worker}-${step}`])),
            code: 'PENDING',
          };
          created.push(image);
          const request = CreateImageRequest.fromPartial({
            imageId: image.id,
            image: { name: image.name, tags: image.tags, properties: new Map(Object.entries(image.properties)) },
          });
          ({ record } = await invoke(images, 'createImage', request, metadata()));
          image.code = record.code;
          if (record.code === 'OK') own = image;
        } else if (step % 5 === 1) {
          const member: AddedMember = { imageId: own.id, memberId: `member-${worker}-${step}`, code: 'PENDING' };
          added.push(member);
          const request = CreateMemberRequest.fromPartial({ imageId: own.id, memberId: member.memberId });
          ({ record } = await invoke(members, 'createMember', request, metadata()));
          member.code = record.code;
        } else if (step % 5 === 2) {
          const name = `renamed-${worker}-${step}`;
          own.uncertainName = name;
          const request = UpdateImageRequest.fromPartial({ image: { id: own.id, name }, updateMask: ['name'] });
          ({ record } = await invoke(images, 'updateImage', request, metadata()));
          if (record.code === 'OK') {
            own.updatedName = name;
            own.uncertainName = undefined;
          }
        } else if (step % 5 === 3) {
          ({ record } = await invoke(images, 'getImage', GetImageRequest.fromPartial({ id: own.id }), metadata()));
        } else {
          ({ record } = await invoke(images, 'listImages', ListImagesRequest.fromPartial({ pageSize: 10 }), metadata()));
        }
        records.push(record);
        if (record.code !== 'OK') await sleep(50);
      }
    };
    const workers = Array.from({ length: CALLS_IN_FLIGHT }, (_, index) => work(index));
    const warmDeadline = Date.now() + 10_000;
    while (records.length < CALLS_IN_FLIGHT && Date.now() < warmDeadline) await sleep(20);

    // Two uploads that end within the grace period, and one that would go on past it.
    const uploads = [
      pacedUpload(images, metadata(), uploadIds[0]!, SHORT_UPLOAD_CHUNKS, 50),
      pacedUpload(images, metadata(), uploadIds[1]!, SHORT_UPLOAD_CHUNKS, 50),
      pacedUpload(images, metadata(), uploadIds[2]!, null, 100),
    ];
    // A staging file shows that the server is receiving an upload's chunks.
    const storeDir = join(folder, 'images');
    const uploadDeadline = Date.now() + 10_000;
    const staging = () => readdirSync(storeDir).filter((name) => name.startsWith('.staging-'));
    while (!uploadIds.every((id) => staging().some((name) => name.startsWith(`.staging-${id}.`))) && Date.now() < uploadDeadline) {
      await sleep(10);
    }

    const signalAt = Date.now();
    server.child.kill('SIGTERM');
    const exitCode = await server.exited;
    const exitedAt = Date.now();
    serverExited = true;
    await Promise.all(workers);
    const uploadRecords = await Promise.all(uploads);

    const before = records.filter((record) => record.endedAt < signalAt);
    const across = records.filter((record) => record.startedAt < signalAt && record.endedAt >= signalAt);
    const after = records.filter((record) => record.startedAt >= signalAt);
    const counts = (list: CallRecord[]) => {
      const result: Record<string, number> = {};
      for (const record of list) result[record.code] = (result[record.code] ?? 0) + 1;
      return JSON.stringify(result);
    };
    console.info(
      `SIGTERM under load on ${backend}: exit code ${exitCode} after ${exitedAt - signalAt} ms ` +
        `(grace ${SHUTDOWN_GRACE_S} s); unary calls before ${counts(before)}, in flight at the signal ${counts(across)}, ` +
        `started after it ${counts(after)}; first rejected in flight: ${JSON.stringify(across.find((record) => record.code !== 'OK')?.message ?? null)}; ` +
        `uploads ${uploadRecords
          .map((record) => `${record.code} after ${record.endedAt - signalAt} ms${record.message === '' ? '' : ` (${record.message})`}`)
          .join(', ')}`,
    );

    expect(before.length).toBeGreaterThan(0);
    expect(across.length).toBe(CALLS_IN_FLIGHT);
    expect.soft(records.filter((record) => !['OK', 'UNAVAILABLE'].includes(record.code)).slice(0, 3)).toEqual([]);
    // The short uploads were still streaming at the signal, so they tested that shutdown waits for them.
    expect(uploadRecords[0]!.endedAt).toBeGreaterThan(signalAt);
    expect(uploadRecords[1]!.endedAt).toBeGreaterThan(signalAt);
    expect.soft(uploadRecords[0]!.code).toBe('OK');
    expect.soft(uploadRecords[1]!.code).toBe('OK');
    expect.soft(uploadRecords[2]!.code).toBe('UNAVAILABLE');
    expect(exitCode).toBe(0);
    expect.soft(exitedAt - signalAt).toBeLessThanOrEqual(SHUTDOWN_GRACE_S * 1000 + SHUTDOWN_SLACK_MS);

    const logMessages = server.output.map((line) => parseLogLine(line)?.msg);
    expect.soft(logMessages).toContain('image registry stopped');
    const unexpected = server.output.filter((line) => parseLogLine(line)?.msg === 'call failed with an unexpected error');
    expect.soft(unexpected.slice(0, 3)).toEqual([]);

    const rows = new Database(parseDatabaseUrl(database.url));
    try {
      if (backend === 'mysql') {
        // The server process is gone; a connection it left open would still be listed until MariaDB noticed.
        const [processes] = (await rows.knex.raw(
          'SELECT ID, COMMAND FROM information_schema.PROCESSLIST WHERE DB = DATABASE() AND ID <> CONNECTION_ID()',
        )) as [unknown[]];
        expect.soft(processes).toEqual([]);
      } else {
        // SQLite removes the write-ahead log when the last connection to the file closes.
        const filename = (parseDatabaseUrl(database.url).knexConfig.connection as { filename: string }).filename;
        expect.soft(existsSync(`${filename}-wal`)).toBe(false);
      }

      const problems: string[] = [];
      const imageRows = (await rows.knex('images').select('id', 'name', 'status', 'size')) as {
        id: string;
        name: string;
        status: string;
        size: number | string | null;
      }[];
      const tagRows = (await rows.knex('image_tags').select('image_id', 'tag')) as { image_id: string; tag: string }[];
      const propertyRows = (await rows.knex('image_properties').select('image_id', 'name', 'value')) as {
        image_id: string;
        name: string;
        value: string;
      }[];
      const memberRows = (await rows.knex('image_members').select('image_id', 'member_id')) as {
        image_id: string;
        member_id: string;
      }[];
      const rowById = new Map(imageRows.map((row) => [row.id, row]));
      const memberKeys = new Set(memberRows.map((row) => `${row.image_id}/${row.member_id}`));
      for (const image of created) {
        const row = rowById.get(image.id);
        if (row === undefined) {
          if (image.code === 'OK') problems.push(`image ${image.id}: created with OK but has no row`);
          continue;
        }
        // Shutdown sends a response for every call it runs, so a create that failed never ran.
        if (image.code !== 'OK') problems.push(`image ${image.id}: create ended ${image.code} but the image exists`);
        const tags = tagRows.filter((tag) => tag.image_id === image.id).map((tag) => tag.tag).sort();
        const properties = Object.fromEntries(
          propertyRows.filter((property) => property.image_id === image.id).map((property) => [property.name, property.value]),
        );
        if (JSON.stringify(tags) !== JSON.stringify([...image.tags].sort())) {
          problems.push(`image ${image.id} (create ended ${image.code}): tags ${JSON.stringify(tags)}`);
        }
        if (Object.keys(properties).length !== 20 || Object.entries(image.properties).some(([key, value]) => properties[key] !== value)) {
          problems.push(`image ${image.id} (create ended ${image.code}): properties ${JSON.stringify(properties)}`);
        }
        const names = [image.updatedName ?? image.name, ...(image.uncertainName === undefined ? [] : [image.uncertainName])];
        if (!names.includes(row.name)) problems.push(`image ${image.id}: name ${row.name}, expected one of ${names.join(', ')}`);
      }
      for (const member of added) {
        if (member.code === 'OK' && !memberKeys.has(`${member.imageId}/${member.memberId}`)) {
          problems.push(`member ${member.memberId} of image ${member.imageId}: added with OK but has no row`);
        }
      }
      for (const row of [...tagRows, ...propertyRows, ...memberRows]) {
        if (!rowById.has(row.image_id)) problems.push(`a tag, property or member row refers to missing image ${row.image_id}`);
      }
      expect(problems).toEqual([]);

      const [finished0, finished1, cut] = uploadIds.map((id) => rowById.get(id)!);
      for (const [index, row] of [finished0, finished1].entries()) {
        if (uploadRecords[index]!.code === 'OK') {
          expect.soft(row!.status).toBe('active');
          expect.soft(Number(row!.size)).toBe(SHORT_UPLOAD_CHUNKS * 64 * KIB);
        }
      }
      // The cut upload's handler returns the image to queued before the pool closes.
      expect.soft(cut!.status).toBe('queued');
      expect.soft(readdirSync(join(folder, 'images')).filter((name) => name.startsWith('.staging-'))).toEqual([]);
    } finally {
      await rows.close();
    }

    const restarted = await start();
    for (const image of created.filter((candidate) => candidate.code === 'OK').slice(0, 20)) {
      const { record, response } = await invoke<Image>(
        restarted.images,
        'getImage',
        GetImageRequest.fromPartial({ id: image.id }),
        metadata(),
      );
      expect(record.code).toBe('OK');
      expect(response!.tags).toHaveLength(20);
    }
  });
});
