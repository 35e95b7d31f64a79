/**
 * End-to-end test of SIGKILL during writes. The real entry point runs as a
 * child process under a load of creates, updates, tag and member changes and
 * deletes, is killed with SIGKILL at a random moment, and is started again
 * on the same database, several times over. After each kill the rows must
 * contain exactly the writes that returned OK, plus at most one write per
 * worker that got no response, applied whole or not at all. Each restart
 * must find the migrations applied and apply nothing.
 */
import { randomUUID } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import * as grpc from '@grpc/grpc-js';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  AddImageTagRequest,
  CreateImageRequest,
  DeleteImageRequest,
  ImageServiceClient,
  UpdateImageRequest,
} from '../../gen/imageregistry/v1/image_service.js';
import {
  CreateMemberRequest,
  DeleteMemberRequest,
  MemberServiceClient,
  MemberStatus,
  UpdateMemberRequest,
} from '../../gen/imageregistry/v1/member_service.js';
import { Database } from '../../src/persistence/database.js';
import { parseDatabaseUrl } from '../../src/persistence/database-url.js';
import { migrationSource } from '../../src/persistence/migrations.js';
import { type TestDatabase, createTestDatabase, testedBackends } from '../support/databases.js';
import { type ServerProcess, mintToken, parseLogLine, startServer, stopServer } from '../support/server-process.js';

const CALL_DEADLINE_MS = 20_000;
const ROUNDS = 4;
const WORKERS = 16;
/** Projects that the load adds as members. Each accepts or rejects its own memberships. */
const MEMBER_PROJECTS = ['proj-member-0', 'proj-member-1', 'proj-member-2', 'proj-member-3'];
/** Status codes that a call cut short by the kill may end with. Any other error is a defect. */
const CUT_CODES = ['UNAVAILABLE', 'CANCELLED'];

type UnaryMethod = (
  request: unknown,
  metadata: grpc.Metadata,
  options: grpc.CallOptions,
  callback: (error: grpc.ServiceError | null, response: unknown) => void,
) => unknown;

/** Calls a unary method of a generated client and resolves, never rejects, to the status name and message. */
function invoke(client: grpc.Client, method: string, request: unknown, token: string): Promise<{ code: string; message: string }> {
  const metadata = new grpc.Metadata();
  metadata.set('authorization', `Bearer ${token}`);
  const unary = (client as unknown as Record<string, UnaryMethod>)[method]!.bind(client);
  return new Promise((resolve) => {
    unary(request, metadata, { deadline: Date.now() + CALL_DEADLINE_MS }, (error) =>
      resolve(error ? { code: grpc.status[error.code], message: error.details } : { code: 'OK', message: '' }),
    );
  });
}

/** The contents of one image's rows, in a form that compares with JSON.stringify. */
interface ImageState {
  status: 'queued' | 'deleted';
  name: string;
  minDisk: number;
  /** Sorted. */
  tags: string[];
  /** Sorted by key. */
  properties: [string, string][];
  /** Sorted by member id: [member id, status]. */
  members: [string, string][];
}

/** An image of the load, with the states its rows may be in now. A null state means no row. */
interface TrackedImage {
  id: string;
  candidates: (ImageState | null)[];
}

function describeState(state: ImageState | null): string {
  return JSON.stringify(state);
}

function withChanges(state: ImageState, changes: Partial<ImageState>): ImageState {
  return { ...state, ...changes };
}

/** Orders pairs by their first element, by code unit. */
function byFirst(a: [string, string], b: [string, string]): number {
  if (a[0] === b[0]) return 0;
  return a[0] < b[0] ? -1 : 1;
}

function sortedEntries(record: Record<string, string>): [string, string][] {
  return Object.entries(record).sort(byFirst);
}

/** One write of the load: the call and the state the image has after it succeeds. */
interface PlannedWrite {
  client: 'images' | 'members';
  method: string;
  request: unknown;
  token: string;
  after: ImageState;
}

/**
 * Chooses the next write on `state`, the image's only possible state.
 * Every write it plans is valid, so each must succeed unless the kill cuts it.
 */
function planWrite(id: string, state: ImageState, step: number, ownerToken: string, memberTokens: Map<string, string>, liveImages: number): PlannedWrite {
  const members = new Map(state.members);
  const outsiders = MEMBER_PROJECTS.filter((project) => !members.has(project));
  const pending = [...members].filter(([, status]) => status === 'pending').map(([project]) => project);
  const kind = step % 7;

  if (kind === 1 && outsiders.length > 0) {
    const memberId = outsiders[step % outsiders.length]!;
    return {
      client: 'members',
      method: 'createMember',
      request: CreateMemberRequest.fromPartial({ imageId: id, memberId }),
      token: ownerToken,
      after: withChanges(state, { members: [...members.set(memberId, 'pending')].sort(byFirst) }),
    };
  }
  if (kind === 2 && pending.length > 0) {
    const memberId = pending[0]!;
    const accepted = step % 2 === 0;
    return {
      client: 'members',
      method: 'updateMember',
      request: UpdateMemberRequest.fromPartial({
        imageId: id,
        memberId,
        status: accepted ? MemberStatus.MEMBER_STATUS_ACCEPTED : MemberStatus.MEMBER_STATUS_REJECTED,
      }),
      token: memberTokens.get(memberId)!,
      after: withChanges(state, { members: [...members.set(memberId, accepted ? 'accepted' : 'rejected')].sort(byFirst) }),
    };
  }
  if (kind === 3 && members.size > 0) {
    const memberId = [...members.keys()][step % members.size]!;
    members.delete(memberId);
    return {
      client: 'members',
      method: 'deleteMember',
      request: DeleteMemberRequest.fromPartial({ imageId: id, memberId }),
      token: ownerToken,
      after: withChanges(state, { members: [...members].sort(byFirst) }),
    };
  }
  if (kind === 4) {
    const tag = `added-${step}`;
    return {
      client: 'images',
      method: 'addImageTag',
      request: AddImageTagRequest.fromPartial({ imageId: id, tag }),
      token: ownerToken,
      after: withChanges(state, { tags: [...new Set([...state.tags, tag])].sort() }),
    };
  }
  if (kind === 5) {
    const properties = Object.fromEntries(state.properties);
    properties[`key${step % 4}`] = `set-${step}`;
    return {
      client: 'images',
      method: 'updateImage',
      request: UpdateImageRequest.fromPartial({
        image: { id, properties: new Map([[`key${step % 4}`, `set-${step}`]]) },
        updateMask: [`properties.key${step % 4}`],
      }),
      token: ownerToken,
      after: withChanges(state, { properties: sortedEntries(properties) }),
    };
  }
  if (kind === 6 && liveImages > 2) {
    return {
      client: 'images',
      method: 'deleteImage',
      request: DeleteImageRequest.fromPartial({ id }),
      token: ownerToken,
      after: { ...state, status: 'deleted', tags: [], properties: [], members: [] },
    };
  }
  const tags = [`renamed`, `step-${step}`, `step-${step + 1}`];
  const properties = { role: 'updated', step: String(step) };
  return {
    client: 'images',
    method: 'updateImage',
    request: UpdateImageRequest.fromPartial({
      image: { id, name: `updated-${step}`, minDisk: step % 50, tags, properties: new Map(Object.entries(properties)) },
      updateMask: ['name', 'min_disk', 'tags', 'properties'],
    }),
    token: ownerToken,
    after: withChanges(state, {
      name: `updated-${step}`,
      minDisk: step % 50,
      tags: [...tags].sort(),
      properties: sortedEntries(properties),
    }),
  };
}

/** Reads every image's state from the rows, and lists rows that break the schema's invariants. */
async function readRows(
  url: string,
): Promise<{ states: Map<string, ImageState>; problems: string[]; migrations: string[]; migrationLocked: boolean }> {
  const database = new Database(parseDatabaseUrl(url));
  try {
    const db = database.knex;
    const problems: string[] = [];
    const images = (await db('images').select('id', 'name', 'status', 'visibility', 'owner', 'min_disk', 'metadata_bytes', 'create_time', 'update_time')) as {
      id: string;
      name: string;
      status: string;
      visibility: string;
      owner: string;
      min_disk: number;
      metadata_bytes: number;
      create_time: number | string;
      update_time: number | string;
    }[];
    const tags = (await db('image_tags').select('image_id', 'tag')) as { image_id: string; tag: string }[];
    const properties = (await db('image_properties').select('image_id', 'name', 'value')) as { image_id: string; name: string; value: string }[];
    const members = (await db('image_members').select('image_id', 'member_id', 'status')) as { image_id: string; member_id: string; status: string }[];
    const migrations = ((await db('knex_migrations').select('name').orderBy('name')) as { name: string }[]).map((row) => row.name);
    const locks = (await db('knex_migrations_lock').select('is_locked')) as { is_locked: number }[];

    const states = new Map<string, ImageState>();
    for (const row of images) {
      if (row.owner === '' || row.visibility !== 'shared' || !['queued', 'deleted'].includes(row.status)) {
        problems.push(`image ${row.id}: owner ${row.owner}, visibility ${row.visibility}, status ${row.status}`);
      }
      if (!(Number(row.create_time) > 0) || Number(row.update_time) < Number(row.create_time)) {
        problems.push(`image ${row.id}: create_time ${row.create_time}, update_time ${row.update_time}`);
      }
      states.set(row.id, {
        status: row.status as ImageState['status'],
        name: row.name,
        minDisk: Number(row.min_disk),
        tags: [],
        properties: [],
        members: [],
      });
    }
    for (const row of tags) {
      const state = states.get(row.image_id);
      if (state === undefined) problems.push(`image_tags row ${row.tag} refers to missing image ${row.image_id}`);
      else state.tags.push(row.tag);
    }
    for (const row of properties) {
      const state = states.get(row.image_id);
      if (state === undefined) problems.push(`image_properties row ${row.name} refers to missing image ${row.image_id}`);
      else state.properties.push([row.name, row.value]);
    }
    for (const row of members) {
      const state = states.get(row.image_id);
      if (state === undefined) problems.push(`image_members row ${row.member_id} refers to missing image ${row.image_id}`);
      else state.members.push([row.member_id, row.status]);
    }
    for (const row of images) {
      const state = states.get(row.id)!;
      state.tags.sort();
      state.properties.sort(byFirst);
      state.members.sort(byFirst);
      let bytes = 0;
      for (const tag of state.tags) bytes += Buffer.byteLength(tag);
      for (const [name, value] of state.properties) bytes += Buffer.byteLength(name) + Buffer.byteLength(value);
      if (bytes !== Number(row.metadata_bytes)) {
        problems.push(`image ${row.id}: metadata_bytes ${row.metadata_bytes}, but its tag and property rows add up to ${bytes}`);
      }
    }
    return { states, problems, migrations, migrationLocked: locks.some((lock) => Number(lock.is_locked) !== 0) };
  } finally {
    await database.close();
  }
}

/**
 * Compares the rows with each tracked image's possible states, and narrows
 * each image to the state found. Returns the images whose rows match none,
 * and how many writes that got no response the rows show applied.
 */
function reconcile(tracked: TrackedImage[], states: Map<string, ImageState>): { problems: string[]; cut: number; applied: number } {
  const problems: string[] = [];
  let cut = 0;
  let applied = 0;
  for (const image of tracked) {
    const actual = states.get(image.id) ?? null;
    const allowed = image.candidates.map(describeState);
    if (!allowed.includes(describeState(actual))) {
      problems.push(`image ${image.id}: rows hold ${describeState(actual)}, expected one of ${allowed.join(' or ')}`);
    }
    if (image.candidates.length > 1) {
      cut++;
      if (describeState(actual) === allowed[1]) applied++;
    }
    image.candidates = [actual];
  }
  return { problems, cut, applied };
}

describe.each(testedBackends())('SIGKILL during writes on %s', (backend) => {
  let database: TestDatabase;
  let folder: string;
  let environment: Record<string, string>;
  const secret = `crash-writes-secret-${randomUUID()}`;
  const servers: ServerProcess[] = [];
  const clients: grpc.Client[] = [];

  beforeAll(async () => {
    database = await createTestDatabase(backend);
    folder = mkdtempSync(join(tmpdir(), 'registry-crash-writes-'));
    environment = {
      GRPC_LISTEN: '127.0.0.1:0',
      DATABASE_URL: database.url,
      IMAGE_STORE_DIR: join(folder, 'images'),
      AUTH_JWT_SECRET: secret,
      LOG_LEVEL: 'info',
    };
  });

  afterAll(async () => {
    for (const client of clients) client.close();
    for (const server of servers) await stopServer(server);
    await database?.drop();
    if (folder !== undefined) rmSync(folder, { recursive: true, force: true });
  });

  it(`keeps rows consistent over ${ROUNDS} kills`, { timeout: 60_000 }, async () => {
    const ownerToken = await mintToken(secret, 'proj-owner');
    const memberTokens = new Map<string, string>();
    for (const project of MEMBER_PROJECTS) memberTokens.set(project, await mintToken(secret, project));
    const tracked: TrackedImage[] = [];
    // Each worker writes only its own images, one call at a time, so that each image has at most one write without a response.
    const imagesOfWorker: TrackedImage[][] = Array.from({ length: WORKERS }, () => []);
    const callProblems: string[] = [];
    const summary: string[] = [];

    for (let round = 0; round <= ROUNDS; round++) {
      const server = await startServer(environment);
      servers.push(server);
      const messages = server.output.map((line) => parseLogLine(line)?.msg);
      if (round > 0) {
        // The restart finds the schema complete and applies nothing.
        expect(messages).not.toContain('applied database migrations');
        const rows = await readRows(database.url);
        expect(rows.migrations).toEqual(await migrationSource.getMigrations([]));
        expect(rows.migrationLocked).toBe(false);
      }
      if (round === ROUNDS) break;

      const clientsOfRound = {
        images: new ImageServiceClient(server.address, grpc.credentials.createInsecure()),
        members: new MemberServiceClient(server.address, grpc.credentials.createInsecure()),
      };
      clients.push(clientsOfRound.images, clientsOfRound.members);
      let running = true;
      let calls = 0;
      let succeeded = 0;

      const work = async (worker: number): Promise<void> => {
        const live = imagesOfWorker[worker]!;
        for (let step = 0; running; step++) {
          const usable = live.filter((image) => image.candidates.length === 1 && image.candidates[0]?.status === 'queued');
          const stepId = `${round}-${worker}-${step}`;
          let image: TrackedImage;
          let before: ImageState | null;
          let write: PlannedWrite;
          if (usable.length === 0 || step % 7 === 0) {
            const name = `created-${stepId}`;
            const tags = ['crash', `round-${round}`, `worker-${worker}`];
            const properties = { key0: stepId, key1: 'ü-ß-日本', key2: '' };
            image = { id: randomUUID(), candidates: [null] };
            tracked.push(image);
            live.push(image);
            before = null;
            write = {
              client: 'images',
              method: 'createImage',
              request: CreateImageRequest.fromPartial({
                imageId: image.id,
                image: { name, minDisk: 1, tags, properties: new Map(Object.entries(properties)) },
              }),
              token: ownerToken,
              after: { status: 'queued', name, minDisk: 1, tags: [...tags].sort(), properties: sortedEntries(properties), members: [] },
            };
          } else {
            image = usable[step % usable.length]!;
            before = image.candidates[0]!;
            write = planWrite(image.id, before, step, ownerToken, memberTokens, usable.length);
          }
          calls++;
          const { code, message } = await invoke(clientsOfRound[write.client], write.method, write.request, write.token);
          if (code === 'OK') {
            succeeded++;
            image.candidates = [write.after];
            continue;
          }
          image.candidates = [before, write.after];
          if (!CUT_CODES.includes(code) || running) {
            callProblems.push(`round ${round}: ${write.method} on ${image.id} ended ${code}: ${message}`);
          }
          if (running) await sleep(20);
        }
      };
      const workers = Array.from({ length: WORKERS }, (_, worker) => work(worker));

      const loadMs = 400 + Math.floor(Math.random() * 800);
      await sleep(loadMs);
      server.child.kill('SIGKILL');
      running = false;
      await server.exited;
      await Promise.all(workers);
      expect(server.child.signalCode).toBe('SIGKILL');
      const rows = await readRows(database.url);
      expect(rows.problems).toEqual([]);
      const { problems, cut, applied } = reconcile(tracked, rows.states);
      expect(problems).toEqual([]);
      summary.push(`round ${round}: killed after ${loadMs} ms, ${calls} writes, ${succeeded} OK, ${cut} cut of which ${applied} applied`);
    }
    console.info(`SIGKILL during writes on ${backend}: ${summary.join('; ')}; ${tracked.length} images tracked`);
    expect(callProblems.slice(0, 5)).toEqual([]);
  });
});
