import { createHash, randomBytes } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ImageStatus } from '../../gen/imageregistry/v1/image.js';
import { testedBackends } from '../support/databases.js';
import { RegistryHarness, failure } from '../support/registry-harness.js';

function md5(data: Buffer): string {
  return createHash('md5').update(data).digest('hex');
}

function sha512(data: Buffer): string {
  return createHash('sha512').update(data).digest('hex');
}

function* chunksOf(data: Buffer, size: number): Generator<Buffer> {
  for (let offset = 0; offset < data.length; offset += size) yield data.subarray(offset, offset + size);
}

describe.each(testedBackends())('image data round trip on %s', (backend) => {
  let registry: RegistryHarness;

  beforeAll(async () => {
    registry = await RegistryHarness.start(backend);
  });
  afterAll(async () => registry?.stop());

  it.each([0, 1, 256 * 1024, 3 * 1024 * 1024 + 7])('stores and returns %i bytes unchanged', async (length) => {
    const owner = await registry.as('proj-data');
    const image = await owner.images.createImage({ image: { name: `data-${length}` } });
    const data = randomBytes(length);

    const uploaded = await owner.data.upload(
      { imageId: image.id, expectedSize: length, expectedChecksum: md5(data), expectedHashValue: sha512(data) },
      chunksOf(data, 256 * 1024),
    );
    expect(uploaded.status).toBe(ImageStatus.IMAGE_STATUS_ACTIVE);
    expect(uploaded.size).toBe(String(length));
    expect(uploaded.checksum).toBe(md5(data));
    expect(uploaded.hashAlgo).toBe('sha512');
    expect(uploaded.hashValue).toBe(sha512(data));

    const downloaded = await owner.data.download(image.id);
    expect(downloaded.info?.size).toBe(String(length));
    expect(downloaded.info?.hashValue).toBe(sha512(data));
    expect(downloaded.data.equals(data)).toBe(true);
  });

  it('rejects a wrong expected hash and stores nothing', async () => {
    const owner = await registry.as('proj-data');
    const image = await owner.images.createImage({ image: { name: 'wrong-hash' } });
    const data = randomBytes(1000);

    const rejected = await failure(
      owner.data.upload({ imageId: image.id, expectedChecksum: md5(Buffer.from('other')) }, [data]),
    );
    expect(rejected.code).toBe('INVALID_ARGUMENT');
    expect((await owner.images.getImage({ id: image.id })).status).toBe(ImageStatus.IMAGE_STATUS_QUEUED);
    expect((await failure(owner.data.download(image.id))).code).toBe('FAILED_PRECONDITION');
  });
});
