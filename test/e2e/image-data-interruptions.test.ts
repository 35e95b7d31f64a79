/** Uploads that end without the client finishing them: idle clients, shutdowns, dead uploads taken over. */
import { mkdtempSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ImageStatus } from '../../gen/imageregistry/v1/image.js';
import { UploadImageDataRequest } from '../../gen/imageregistry/v1/image_service.js';
import { Database } from '../../src/persistence/database.js';
import { parseDatabaseUrl } from '../../src/persistence/database-url.js';
import { RegistryHarness, type RegistryClient } from '../support/registry-harness.js';

/** Opens an upload, sends the start and one chunk, and leaves the stream open. */
function openUpload(client: RegistryClient, imageId: string): Promise<{ code: number | undefined }> {
  return new Promise((resolve) => {
    const call = client.data.client.uploadImageData(client.data.metadata(), (error) => resolve({ code: error?.code }));
    call.write(UploadImageDataRequest.fromPartial({ payload: { $case: 'start', value: { imageId } } }));
    call.write({ payload: { $case: 'chunk', value: Buffer.alloc(1000, 1) } });
  });
}

async function waitForStatus(client: RegistryClient, id: string, status: ImageStatus): Promise<void> {
  for (let attempt = 0; attempt < 100; attempt++) {
    if ((await client.images.getImage({ id })).status === status) return;
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
  const last = (await client.images.getImage({ id })).status;
  throw new Error(`image ${id} never reached status ${status}; it is ${last}`);
}

describe('interrupted uploads', () => {
  const folder = mkdtempSync(join(tmpdir(), 'registry-interruptions-'));
  let registry: RegistryHarness;

  beforeAll(async () => {
    registry = await RegistryHarness.start('sqlite', {
      UPLOAD_LEASE_S: '1',
      IMAGE_STORE_DIR: join(folder, 'images'),
    });
  });
  afterAll(async () => {
    await registry?.stop();
    rmSync(folder, { recursive: true, force: true });
  });

  it('ends an upload that sends nothing for a lease', { timeout: 15_000 }, async () => {
    const owner = await registry.as('proj-idle');
    const image = await owner.images.createImage({ image: { name: 'idle' } });

    const outcome = await openUpload(owner, image.id);

    expect(outcome.code).toBe(4); // DEADLINE_EXCEEDED
    await waitForStatus(owner, image.id, ImageStatus.IMAGE_STATUS_QUEUED);
  });

  it('removes the staged data of a dead upload it takes over', async () => {
    const owner = await registry.as('proj-takeover');
    const image = await owner.images.createImage({ image: { name: 'taken-over' } });
    // What a killed server leaves: a SAVING image with an expired lease, and its staging file.
    await registry.service.database
      .knex('images')
      .update({ status: 'saving', upload_expires_at: Date.now() - 1000 })
      .where('id', image.id);
    const stagingName = `.staging-${image.id}.dead-upload`;
    writeFileSync(join(folder, 'images', stagingName), Buffer.alloc(4096));

    const uploaded = await owner.data.upload({ imageId: image.id }, [Buffer.from('fresh data')]);

    expect(uploaded.status).toBe(ImageStatus.IMAGE_STATUS_ACTIVE);
    expect(readdirSync(join(folder, 'images'))).not.toContain(stagingName);
  });
});

describe('shutdown during an upload', () => {
  it('returns the image to queued before the pool closes', { timeout: 20_000 }, async () => {
    const folder = mkdtempSync(join(tmpdir(), 'registry-shutdown-'));
    const databaseUrl = `sqlite:${join(folder, 'registry.sqlite')}`;
    const registry = await RegistryHarness.start('sqlite', {
      DATABASE_URL: databaseUrl,
      IMAGE_STORE_DIR: join(folder, 'images'),
      SHUTDOWN_GRACE_S: '0',
    });
    try {
      const owner = await registry.as('proj-shutdown');
      const image = await owner.images.createImage({ image: { name: 'cut-short' } });
      const outcome = openUpload(owner, image.id);
      await waitForStatus(owner, image.id, ImageStatus.IMAGE_STATUS_SAVING);

      await registry.service.stop();
      expect((await outcome).code).not.toBe(0);

      const database = new Database(parseDatabaseUrl(databaseUrl));
      try {
        const row = await database.knex('images').first('status').where('id', image.id);
        expect(row.status).toBe('queued');
      } finally {
        await database.close();
      }
      expect(readdirSync(join(folder, 'images'))).toEqual([]);
    } finally {
      await registry.stop();
      rmSync(folder, { recursive: true, force: true });
    }
  });
});


describe('upload cancelled as it starts', () => {
  let registry: RegistryHarness;

  beforeAll(async () => {
    // The default lease: a lost cancellation would hold the image for 60 s.
    registry = await RegistryHarness.start('sqlite');
  });
  afterAll(async () => {
    await registry?.stop();
  });

  // Known to fail: see the TODO in src/app/image-data.ts. it.fails turns
  // green into red once the image comes back to QUEUED in time.
  it.fails('returns the image to queued at once', { timeout: 30_000 }, async () => {
    const owner = await registry.as('owner-project');
    for (let round = 0; round < 10; round++) {
      const { id } = await owner.images.createImage({ image: { name: `cancelled-${round}` } });
      await new Promise<void>((resolve) => {
        const call = owner.data.client.uploadImageData(owner.data.metadata(), () => resolve());
        call.write(UploadImageDataRequest.fromPartial({ payload: { $case: 'start', value: { imageId: id } } }));
        // In the same tick as the start: grpc-js may see the cancellation before the handler runs.
        call.cancel();
      });
      await waitForStatus(owner, id, ImageStatus.IMAGE_STATUS_QUEUED);
      const uploaded = await owner.data.upload({ imageId: id }, [Buffer.from(`round ${round}`)]);
      expect(uploaded.status).toBe(ImageStatus.IMAGE_STATUS_ACTIVE);
    }
  });
});
