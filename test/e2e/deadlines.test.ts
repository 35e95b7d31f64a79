/**
 * A call whose deadline passes stops its database work and commits
 * nothing. On MySQL a statement waiting on a lock, which a second connection
 * opened by the test holds, is killed. On both backends an upload that
 * outlives its deadline stores nothing. The step-by-step check that SQLite
 * relies on is tested in test/persistence/database.test.ts.
 */
import * as grpc from '@grpc/grpc-js';
import mysql from 'mysql2/promise';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ImageStatus } from '../../gen/imageregistry/v1/image.js';
import {
  ListImagesRequest,
  UpdateImageRequest,
  UploadImageDataRequest,
} from '../../gen/imageregistry/v1/image_service.js';
import { testedBackends } from '../support/databases.js';
import { type RegistryClient, RegistryHarness } from '../support/registry-harness.js';

const DEADLINE_MS = 400;
/** How soon after its deadline the server must have stopped waiting. */
const STOPPED_WITHIN_MS = 2_000;

interface Outcome {
  code: string;
  message: string;
  elapsedMs: number;
}

/** Calls a generated client method with a deadline and reports how it ended. */
function callWithDeadline(
  invoke: (options: grpc.CallOptions, done: (error: grpc.ServiceError | null) => void) => void,
): Promise<Outcome> {
  const started = performance.now();
  return new Promise((resolve) => {
    invoke({ deadline: Date.now() + DEADLINE_MS }, (error) =>
      resolve({
        code: error === null ? 'OK' : grpc.status[error.code]!,
        message: error?.details ?? '',
        elapsedMs: performance.now() - started,
      }),
    );
  });
}

function renameWithDeadline(client: RegistryClient, id: string, name: string): Promise<Outcome> {
  return callWithDeadline((options, done) =>
    client.data.client.updateImage(
      UpdateImageRequest.fromPartial({ image: { id, name }, updateMask: ['name'] }),
      client.data.metadata(),
      options,
      (error) => done(error),
    ),
  );
}

function listWithDeadline(client: RegistryClient): Promise<Outcome> {
  return callWithDeadline((options, done) =>
    client.data.client.listImages(
      ListImagesRequest.fromPartial({ pageSize: 10 }),
      client.data.metadata(),
      options,
      (error) => done(error),
    ),
  );
}

describe.runIf(testedBackends().includes('mysql'))('deadlines on mysql', () => {
  let harness: RegistryHarness;
  let owner: RegistryClient;
  let locker: mysql.Connection;
  let imageId: string;

  beforeAll(async () => {
    harness = await RegistryHarness.start('mysql');
    owner = await harness.as('owner-project');
    imageId = (await owner.images.createImage({ image: { name: 'before' } })).id;
    locker = await mysql.createConnection({ uri: harness.databaseUrl });
  });

  afterAll(async () => {
    await locker?.end();
    await harness?.stop();
  });

  /** Queries of the service's pool that are running now, other than the locker's. */
  async function runningServiceQueries(): Promise<string[]> {
    const [rows] = (await locker.query(
      `SELECT INFO AS info FROM information_schema.PROCESSLIST
        WHERE DB = DATABASE() AND COMMAND = 'Query' AND ID <> CONNECTION_ID()`,
    )) as [{ info: string | null }[], unknown];
    return rows.map((row) => row.info ?? '');
  }

  async function waitUntilNoServiceQuery(): Promise<string[]> {
    const until = Date.now() + STOPPED_WITHIN_MS;
    let running = await runningServiceQueries();
    while (running.length > 0 && Date.now() < until) {
      await new Promise((resolve) => setTimeout(resolve, 50));
      running = await runningServiceQueries();
    }
    return running;
  }

  it('deadline kills a write waiting on a lock', async () => {
    await locker.query('BEGIN');
    await locker.query('SELECT id FROM images WHERE id = ? FOR UPDATE', [imageId]);
    try {
      const outcome = await renameWithDeadline(owner, imageId, 'after');
      expect(outcome.code).toBe('DEADLINE_EXCEEDED');
      // Without the KILL, the update would wait innodb_lock_wait_timeout (50 s).
      expect(await waitUntilNoServiceQuery()).toEqual([]);
    } finally {
      await locker.query('ROLLBACK');
    }
    await new Promise((resolve) => setTimeout(resolve, 200));
    expect((await owner.images.getImage({ id: imageId })).name).toBe('before');
  });

  it('deadline kills a read waiting on a lock', async () => {
    await locker.query('LOCK TABLES images WRITE');
    try {
      const outcome = await listWithDeadline(owner);
      expect(outcome.code).toBe('DEADLINE_EXCEEDED');
      expect(await waitUntilNoServiceQuery()).toEqual([]);
    } finally {
      await locker.query('UNLOCK TABLES');
    }
  });

  it('pool serves calls after killed queries', async () => {
    for (let round = 0; round < 3; round++) {
      await locker.query('BEGIN');
      await locker.query('SELECT id FROM images WHERE id = ? FOR UPDATE', [imageId]);
      const outcome = await renameWithDeadline(owner, imageId, `blocked-${round}`);
      await locker.query('ROLLBACK');
      expect(outcome.code).toBe('DEADLINE_EXCEEDED');
    }
    const calls = Array.from({ length: 20 }, (_, index) =>
      owner.images.createImage({ image: { name: `after-cancel-${index}` } }),
    );
    expect((await Promise.all(calls)).length).toBe(20);
    expect((await owner.images.getImage({ id: imageId })).name).toBe('before');
  });
});

describe.each(testedBackends())('deadlines of uploads on %s', (backend) => {
  let harness: RegistryHarness;
  let owner: RegistryClient;

  beforeAll(async () => {
    harness = await RegistryHarness.start(backend);
    owner = await harness.as('owner-project');
  });

  afterAll(async () => {
    await harness?.stop();
  });

  it('late upload stores nothing and requeues', async () => {
    const { id } = await owner.images.createImage({ image: { name: 'late-upload' } });
    const outcome = await new Promise<Outcome>((resolve) => {
      const started = performance.now();
      const call = owner.data.client.uploadImageData(
        owner.data.metadata(),
        { deadline: Date.now() + DEADLINE_MS },
        (error) =>
          resolve({
            code: error === null ? 'OK' : grpc.status[error.code]!,
            message: error?.details ?? '',
            elapsedMs: performance.now() - started,
          }),
      );
      call.write(UploadImageDataRequest.fromPartial({ payload: { $case: 'start', value: { imageId: id } } }));
      call.write({ payload: { $case: 'chunk', value: Buffer.alloc(1024, 1) } });
      // The rest arrives after the deadline.
      setTimeout(() => {
        call.write({ payload: { $case: 'chunk', value: Buffer.alloc(1024, 2) } });
        call.end();
      }, DEADLINE_MS * 2);
    });
    expect(outcome.code).toBe('DEADLINE_EXCEEDED');
    const until = Date.now() + STOPPED_WITHIN_MS;
    let image = await owner.images.getImage({ id });
    while (image.status !== ImageStatus.IMAGE_STATUS_QUEUED && Date.now() < until) {
      await new Promise((resolve) => setTimeout(resolve, 50));
      image = await owner.images.getImage({ id });
    }
    expect(image.status).toBe(ImageStatus.IMAGE_STATUS_QUEUED);
    expect(image.size ?? '0').toBe('0');
    // The image takes a new upload at once.
    const uploaded = await owner.data.upload({ imageId: id }, [Buffer.from('complete')]);
    expect(uploaded.status).toBe(ImageStatus.IMAGE_STATUS_ACTIVE);
  });
});
