/**
 * End-to-end tests of streamed image data through the real server on SQLite
 * and on MySQL. They cover uploads with their checks and limits, downloads
 * with their access rules and flow control, the removal of data with its
 * image, and the sweep of the image store at start.
 */
import { type Cipher, createCipheriv, createHash, randomBytes, randomUUID } from 'node:crypto';
import { once } from 'node:events';
import { existsSync, mkdtempSync, readdirSync, rmSync, statSync, utimesSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import type * as grpc from '@grpc/grpc-js';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type Image, ImageStatus, Visibility } from '../../gen/imageregistry/v1/image.js';
import type { DownloadImageDataResponse, UploadImageDataRequest } from '../../gen/imageregistry/v1/image_service.js';
import { MemberStatus } from '../../gen/imageregistry/v1/member_service.js';
import { sweepImageData } from '../../src/app/image-data.js';
import { type BackendName, testedBackends } from '../support/databases.js';
import {
  type RegistryClient,
  RegistryHarness,
  type UploadStartFields,
  failure,
} from '../support/registry-harness.js';

const KIB = 1024;
const MIB = 1024 * KIB;
/** Bytes per chunk that the server sends in a download. */
const CHUNK_BYTES = 256 * KIB;

function md5(data: Buffer): string {
  return createHash('md5').update(data).digest('hex');
}

function sha512(data: Buffer): string {
  return createHash('sha512').update(data).digest('hex');
}

function* chunksOf(data: Buffer, size: number): Generator<Buffer> {
  for (let offset = 0; offset < data.length; offset += size) yield data.subarray(offset, offset + size);
}

/** Returns a project id that no other test uses. */
function uniqueProject(label: string): string {
  return `${label}-${randomUUID().slice(0, 8)}`;
}

/** A harness and its image store, a fresh temporary folder. beforeAll sets both. */
interface RegistrySuite {
  registry: RegistryHarness;
  storeDir: string;
}

/** Starts a harness for the enclosing describe block, with its own image store folder. */
function useRegistry(backend: BackendName, environment: Record<string, string> = {}): RegistrySuite {
  const suite = {} as RegistrySuite;
  beforeAll(async () => {
    suite.storeDir = mkdtempSync(join(tmpdir(), 'image-store-'));
    suite.registry = await RegistryHarness.start(backend, { IMAGE_STORE_DIR: suite.storeDir, ...environment });
  });
  afterAll(async () => {
    await suite.registry?.stop();
    if (suite.storeDir !== undefined) rmSync(suite.storeDir, { recursive: true, force: true });
  });
  return suite;
}

/** Returns the names in the store folder that belong to an image: its data file and its staging files. */
function storedFilesOf(storeDir: string, imageId: string): string[] {
  return readdirSync(storeDir).filter((name) => name === imageId || name.startsWith(`.staging-${imageId}.`));
}

/** Returns the total size of an image's staging files, in bytes. */
function stagedBytesOf(storeDir: string, imageId: string): number {
  return storedFilesOf(storeDir, imageId)
    .filter((name) => name !== imageId)
    .reduce((total, name) => total + (statSync(join(storeDir, name), { throwIfNoEntry: false })?.size ?? 0), 0);
}

async function createImage(client: RegistryClient, name: string): Promise<Image> {
  return client.images.createImage({ image: { name } });
}

/** Uploads `data` in 256 KiB chunks with its size and both hashes, and returns the image. */
async function uploadData(client: RegistryClient, imageId: string, data: Buffer): Promise<Image> {
  return client.data.upload(
    { imageId, expectedSize: data.length, expectedChecksum: md5(data), expectedHashValue: sha512(data) },
    chunksOf(data, CHUNK_BYTES),
  );
}

async function statusOf(client: RegistryClient, imageId: string): Promise<ImageStatus> {
  return (await client.images.getImage({ id: imageId })).status;
}

/** Polls the image every 25 ms until it has `status`, failing after `timeoutMs`. */
async function waitForStatus(
  client: RegistryClient,
  imageId: string,
  status: ImageStatus,
  timeoutMs = 10_000,
): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  let last: ImageStatus | undefined;
  while (Date.now() < deadline) {
    last = await statusOf(client, imageId);
    if (last === status) return;
    await sleep(25);
  }
  throw new Error(`image ${imageId} is ${ImageStatus[last!]} after ${timeoutMs} ms, expected ${ImageStatus[status]}`);
}

/**
 * Polls the image every 25 ms while it is SAVING, failing after `timeoutMs`,
 * and returns the name of its next status.
 */
async function statusAfterSaving(client: RegistryClient, imageId: string, timeoutMs = 10_000): Promise<string> {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    const status = await statusOf(client, imageId);
    if (status !== ImageStatus.IMAGE_STATUS_SAVING) return ImageStatus[status];
    await sleep(25);
  }
  throw new Error(`image ${imageId} is still SAVING after ${timeoutMs} ms`);
}

/** Polls until the image has at least `bytes` bytes in staging files, failing after `timeoutMs`. */
async function waitForStagedBytes(storeDir: string, imageId: string, bytes: number, timeoutMs = 10_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    if (stagedBytesOf(storeDir, imageId) >= bytes) return;
    await sleep(25);
  }
  throw new Error(
    `image ${imageId} has ${stagedBytesOf(storeDir, imageId)} staged bytes after ${timeoutMs} ms, expected ${bytes}`,
  );
}

/** Resolves to the promise's value, or fails when it does not settle within `timeoutMs`. */
async function settledWithin<T>(promise: Promise<T>, timeoutMs: number, description: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`${description}: timed out after ${timeoutMs} ms without a response`)), timeoutMs);
  });
  try {
    return await Promise.race([promise, timeout]);
  } finally {
    clearTimeout(timer);
  }
}

/** An upload stream that the test writes message by message. */
interface RawUpload {
  call: grpc.ClientWritableStream<UploadImageDataRequest>;
  /** Settles with the server's response or error status. */
  outcome: Promise<Image>;
  send(message: UploadImageDataRequest): Promise<void>;
  sendStart(start: UploadStartFields): Promise<void>;
  sendChunk(chunk: Buffer): Promise<void>;
}

function startMessage(start: UploadStartFields): UploadImageDataRequest {
  return {
    payload: {
      $case: 'start',
      value: {
        imageId: start.imageId,
        expectedSize: start.expectedSize === undefined ? undefined : String(start.expectedSize),
        expectedChecksum: start.expectedChecksum ?? '',
        expectedHashValue: start.expectedHashValue ?? '',
      },
    },
  };
}

function openUpload(client: RegistryClient): RawUpload {
  let call!: grpc.ClientWritableStream<UploadImageDataRequest>;
  const outcome = new Promise<Image>((resolve, reject) => {
    call = client.data.client.uploadImageData(client.data.metadata(), (error, image) =>
      error ? reject(error) : resolve(image),
    );
  });
  // Tests inspect the outcome when they need it, so an unobserved rejection is expected.
  outcome.catch(() => {});
  const answered = outcome.then(
    () => undefined,
    () => undefined,
  );
  const send = async (message: UploadImageDataRequest) => {
    if (!call.write(message)) await Promise.race([once(call, 'drain'), answered]);
  };
  return {
    call,
    outcome,
    send,
    sendStart: (start) => send(startMessage(start)),
    sendChunk: (chunk) => send({ payload: { $case: 'chunk', value: chunk } }),
  };
}

/** Deterministic pseudo-random bytes: the AES-256-CTR keystream of a random key. */
class Keystream {
  private readonly cipher: Cipher;
  private readonly zeros = Buffer.alloc(CHUNK_BYTES);

  constructor(
    readonly key: Buffer = randomBytes(32),
    readonly iv: Buffer = randomBytes(16),
  ) {
    this.cipher = createCipheriv('aes-256-ctr', key, iv);
  }

  /** Returns the next `length` bytes, at most 256 KiB. */
  next(length: number): Buffer {
    return this.cipher.update(this.zeros.subarray(0, length));
  }

  /** Returns a new stream that yields the same bytes from the start. */
  restart(): Keystream {
    return new Keystream(this.key, this.iv);
  }
}

describe.each(testedBackends())('image data round trip on %s', (backend) => {
  const suite = useRegistry(backend);

  it.each([0, 1, 256 * 1024, 3 * 1024 * 1024 + 7])('stores and returns %i bytes unchanged', async (length) => {
    const owner = await suite.registry.as('proj-data');
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
    expect(downloaded.info?.checksum).toBe(md5(data));
    expect(downloaded.info?.hashAlgo).toBe('sha512');
    expect(downloaded.info?.hashValue).toBe(sha512(data));
    expect(downloaded.data.equals(data)).toBe(true);
    expect(downloaded.chunkCount).toBe(Math.ceil(length / CHUNK_BYTES));
    expect(statSync(join(suite.storeDir, image.id)).size).toBe(length);

    const fetched = await owner.images.getImage({ id: image.id });
    expect(fetched.status).toBe(ImageStatus.IMAGE_STATUS_ACTIVE);
    expect(fetched.size).toBe(String(length));
    expect(fetched.checksum).toBe(md5(data));
  });

  it('rejects a wrong expected hash and stores nothing', async () => {
    const owner = await suite.registry.as('proj-data');
    const image = await owner.images.createImage({ image: { name: 'wrong-hash' } });
    const data = randomBytes(1000);

    const rejected = await failure(
      owner.data.upload({ imageId: image.id, expectedChecksum: md5(Buffer.from('other')) }, [data]),
    );
    expect(rejected.code).toBe('INVALID_ARGUMENT');
    expect((await owner.images.getImage({ id: image.id })).status).toBe(ImageStatus.IMAGE_STATUS_QUEUED);
    expect((await failure(owner.data.download(image.id))).code).toBe('FAILED_PRECONDITION');
  });

  it('round-trips 200 MiB of random data', { timeout: 180_000 }, async () => {
    const owner = await suite.registry.as(uniqueProject('proj-large'));
    const image = await createImage(owner, 'large');
    const totalBytes = 200 * MIB;
    const chunkCount = totalBytes / CHUNK_BYTES;

    // A first pass computes the hashes that the upload announces.
    const source = new Keystream();
    const md5OfSource = createHash('md5');
    const sha512OfSource = createHash('sha512');
    const firstPass = source.restart();
    for (let index = 0; index < chunkCount; index++) {
      const chunk = firstPass.next(CHUNK_BYTES);
      md5OfSource.update(chunk);
      sha512OfSource.update(chunk);
    }
    const expectedChecksum = md5OfSource.digest('hex');
    const expectedHashValue = sha512OfSource.digest('hex');

    const uploadPass = source.restart();
    function* uploadChunks(): Generator<Buffer> {
      for (let index = 0; index < chunkCount; index++) yield uploadPass.next(CHUNK_BYTES);
    }
    const uploaded = await owner.data.upload(
      { imageId: image.id, expectedSize: totalBytes, expectedChecksum, expectedHashValue },
      uploadChunks(),
    );
    expect(uploaded.status).toBe(ImageStatus.IMAGE_STATUS_ACTIVE);
    expect(uploaded.size).toBe(String(totalBytes));
    expect(uploaded.checksum).toBe(expectedChecksum);
    expect(uploaded.hashValue).toBe(expectedHashValue);
    expect(statSync(join(suite.storeDir, image.id)).size).toBe(totalBytes);

    // The download is compared chunk by chunk with a third pass of the source.
    const comparePass = source.restart();
    const md5OfDownload = createHash('md5');
    const sha512OfDownload = createHash('sha512');
    let receivedBytes = 0;
    let firstMismatchAt: number | null = null;
    let info: DownloadImageDataResponse['payload'] | undefined;
    const call = owner.data.client.downloadImageData({ id: image.id }, owner.data.metadata());
    call.on('data', (message: DownloadImageDataResponse) => {
      if (message.payload?.$case === 'info') {
        info = message.payload;
        return;
      }
      if (message.payload?.$case !== 'chunk') return;
      const chunk = message.payload.value;
      md5OfDownload.update(chunk);
      sha512OfDownload.update(chunk);
      if (firstMismatchAt === null && receivedBytes + chunk.length <= totalBytes) {
        if (!chunk.equals(comparePass.next(chunk.length))) firstMismatchAt = receivedBytes;
      }
      receivedBytes += chunk.length;
    });
    await new Promise<void>((resolve, reject) => {
      call.on('end', resolve);
      call.on('error', reject);
    });

    expect(info?.$case).toBe('info');
    if (info?.$case === 'info') {
      expect(info.value.size).toBe(String(totalBytes));
      expect(info.value.checksum).toBe(expectedChecksum);
      expect(info.value.hashValue).toBe(expectedHashValue);
    }
    expect(receivedBytes).toBe(totalBytes);
    expect(firstMismatchAt).toBeNull();
    expect(md5OfDownload.digest('hex')).toBe(expectedChecksum);
    expect(sha512OfDownload.digest('hex')).toBe(expectedHashValue);
  });

  it('accepts empty chunks between others', async () => {
    const owner = await suite.registry.as(uniqueProject('proj-empty-chunks'));
    const image = await createImage(owner, 'empty-chunks');
    const data = randomBytes(3000);
    const chunks = [Buffer.alloc(0), data.subarray(0, 1000), Buffer.alloc(0), data.subarray(1000), Buffer.alloc(0)];

    const uploaded = await owner.data.upload({ imageId: image.id, expectedSize: data.length }, chunks);

    expect(uploaded.size).toBe(String(data.length));
    expect((await owner.data.download(image.id)).data.equals(data)).toBe(true);
  });

  it('accepts expected hashes in uppercase hex', async () => {
    const owner = await suite.registry.as(uniqueProject('proj-uppercase'));
    const image = await createImage(owner, 'uppercase-hashes');
    const data = randomBytes(5000);

    const uploaded = await owner.data.upload(
      {
        imageId: image.id,
        expectedChecksum: md5(data).toUpperCase(),
        expectedHashValue: sha512(data).toUpperCase(),
      },
      [data],
    );

    expect(uploaded.status).toBe(ImageStatus.IMAGE_STATUS_ACTIVE);
    expect(uploaded.checksum).toBe(md5(data));
    expect(uploaded.hashValue).toBe(sha512(data));
  });
});

describe.each(testedBackends())('image data upload failures on %s', (backend) => {
  const suite = useRegistry(backend);

  /** Asserts that a failed upload left the image QUEUED with nothing stored. */
  async function expectNothingStored(client: RegistryClient, imageId: string): Promise<void> {
    const image = await client.images.getImage({ id: imageId });
    expect(image.status).toBe(ImageStatus.IMAGE_STATUS_QUEUED);
    expect(image.size).toBeUndefined();
    expect(image.checksum).toBe('');
    expect(storedFilesOf(suite.storeDir, imageId)).toEqual([]);
    expect((await failure(client.data.download(imageId))).code).toBe('FAILED_PRECONDITION');
  }

  /** Asserts that a new upload to the image succeeds and round-trips. */
  async function expectFreshUploadWorks(client: RegistryClient, imageId: string): Promise<void> {
    const data = randomBytes(600 * KIB + 3);
    const uploaded = await uploadData(client, imageId, data);
    expect(uploaded.status).toBe(ImageStatus.IMAGE_STATUS_ACTIVE);
    expect((await client.data.download(imageId)).data.equals(data)).toBe(true);
  }

  it('stores nothing for a cancelled upload', async () => {
    const owner = await suite.registry.as(uniqueProject('proj-cancel'));
    const image = await createImage(owner, 'cancelled');

    // No expected size, so a server that took the cancel for the end of
    // the stream would store the partial data and make the image active.
    const upload = openUpload(owner);
    await upload.sendStart({ imageId: image.id });
    for (let index = 0; index < 4; index++) await upload.sendChunk(randomBytes(CHUNK_BYTES));
    await waitForStatus(owner, image.id, ImageStatus.IMAGE_STATUS_SAVING);
    // The cancel comes once the server has staged every chunk sent and waits for more.
    await waitForStagedBytes(suite.storeDir, image.id, 4 * CHUNK_BYTES);
    upload.call.cancel();
    expect((await failure(upload.outcome)).code).toBe('CANCELLED');

    expect(await statusAfterSaving(owner, image.id)).toBe('IMAGE_STATUS_QUEUED');
    await expectNothingStored(owner, image.id);
    await expectFreshUploadWorks(owner, image.id);
  });

  it('ends an oversized upload at once', async () => {
    const owner = await suite.registry.as(uniqueProject('proj-oversize'));
    const image = await createImage(owner, 'too-many-bytes');

    const upload = openUpload(owner);
    await upload.sendStart({ imageId: image.id, expectedSize: 1000 });
    await upload.sendChunk(randomBytes(600));
    await upload.sendChunk(randomBytes(600));
    // The stream stays open, so the server must respond without waiting for its end.
    const rejected = await settledWithin(failure(upload.outcome), 10_000, 'upload past expected_size');
    upload.call.end();

    expect(rejected.code).toBe('INVALID_ARGUMENT');
    expect(rejected.message).toContain('expected_size');
    expect(await statusAfterSaving(owner, image.id)).toBe('IMAGE_STATUS_QUEUED');
    await expectNothingStored(owner, image.id);
    await expectFreshUploadWorks(owner, image.id);
  });

  it('rejects fewer bytes than expected_size', async () => {
    const owner = await suite.registry.as(uniqueProject('proj-short'));
    const image = await createImage(owner, 'too-few-bytes');

    const rejected = await failure(owner.data.upload({ imageId: image.id, expectedSize: 2000 }, [randomBytes(1999)]));

    expect(rejected.code).toBe('INVALID_ARGUMENT');
    expect(rejected.message).toContain('expected_size');
    await expectNothingStored(owner, image.id);
  });

  it('rejects an empty stream with expected_size', async () => {
    const owner = await suite.registry.as(uniqueProject('proj-short'));
    const image = await createImage(owner, 'no-chunks');

    const rejected = await failure(owner.data.upload({ imageId: image.id, expectedSize: 1 }, []));

    expect(rejected.code).toBe('INVALID_ARGUMENT');
    await expectNothingStored(owner, image.id);
  });

  it('rejects a wrong expected checksum', async () => {
    const owner = await suite.registry.as(uniqueProject('proj-checksum'));
    const image = await createImage(owner, 'wrong-checksum');
    const data = randomBytes(300 * KIB);

    const rejected = await failure(
      owner.data.upload(
        { imageId: image.id, expectedSize: data.length, expectedChecksum: md5(randomBytes(10)) },
        chunksOf(data, CHUNK_BYTES),
      ),
    );

    expect(rejected.code).toBe('INVALID_ARGUMENT');
    expect(rejected.message).toContain('expected_checksum');
    await expectNothingStored(owner, image.id);
    await expectFreshUploadWorks(owner, image.id);
  });

  it('rejects a wrong expected hash value', async () => {
    const owner = await suite.registry.as(uniqueProject('proj-hash'));
    const image = await createImage(owner, 'wrong-hash-value');
    const data = randomBytes(300 * KIB);

    const rejected = await failure(
      owner.data.upload(
        {
          imageId: image.id,
          expectedSize: data.length,
          expectedChecksum: md5(data),
          expectedHashValue: sha512(randomBytes(10)),
        },
        chunksOf(data, CHUNK_BYTES),
      ),
    );

    expect(rejected.code).toBe('INVALID_ARGUMENT');
    expect(rejected.message).toContain('expected_hash_value');
    await expectNothingStored(owner, image.id);
  });

  it.each([
    ['a checksum with a letter that is not hex', { expectedChecksum: 'g'.repeat(32) }, 'expected_checksum'],
    ['a checksum of 31 digits', { expectedChecksum: 'a'.repeat(31) }, 'expected_checksum'],
    ['a checksum of 33 digits', { expectedChecksum: 'a'.repeat(33) }, 'expected_checksum'],
    ['a checksum of SHA-512 length', { expectedChecksum: 'a'.repeat(128) }, 'expected_checksum'],
    ['a checksum with spaces', { expectedChecksum: ` ${'a'.repeat(32)} ` }, 'expected_checksum'],
    ['a hash value with a letter that is not hex', { expectedHashValue: 'z'.repeat(128) }, 'expected_hash_value'],
    ['a hash value of 127 digits', { expectedHashValue: 'b'.repeat(127) }, 'expected_hash_value'],
    ['a hash value of MD5 length', { expectedHashValue: 'b'.repeat(32) }, 'expected_hash_value'],
    ['a negative expected size', { expectedSize: -1 }, 'expected_size'],
  ] as const)('rejects %s', async (_, fields, field) => {
    const owner = await suite.registry.as(uniqueProject('proj-malformed'));
    const image = await createImage(owner, 'malformed-expectation');

    const rejected = await failure(owner.data.upload({ imageId: image.id, ...fields }, [randomBytes(100)]));

    expect(rejected.code).toBe('INVALID_ARGUMENT');
    expect(rejected.message).toContain(field);
    await expectNothingStored(owner, image.id);
  });

  it.each([
    ['an image id that is not a UUID', 'not-a-uuid'],
    ['an empty image id', ''],
  ])('rejects %s in start', async (_, imageId) => {
    const owner = await suite.registry.as(uniqueProject('proj-bad-id'));

    const rejected = await failure(owner.data.upload({ imageId }, [randomBytes(10)]));

    expect(rejected.code).toBe('INVALID_ARGUMENT');
    expect(rejected.message).toContain('image_id');
  });

  it('checks hashes before the image lookup', async () => {
    const owner = await suite.registry.as(uniqueProject('proj-order'));

    const rejected = await failure(owner.data.upload({ imageId: randomUUID(), expectedChecksum: 'xyz' }, []));

    expect(rejected.code).toBe('INVALID_ARGUMENT');
  });

  it('rejects a chunk before start', async () => {
    const owner = await suite.registry.as(uniqueProject('proj-order'));
    const image = await createImage(owner, 'chunk-first');

    const upload = openUpload(owner);
    await upload.sendChunk(randomBytes(100));
    await upload.sendStart({ imageId: image.id });
    await upload.sendChunk(randomBytes(100));
    upload.call.end();
    const rejected = await failure(upload.outcome);

    expect(rejected.code).toBe('INVALID_ARGUMENT');
    expect(rejected.message).toContain('start');
    await expectNothingStored(owner, image.id);
  });

  it('rejects an empty first message', async () => {
    const owner = await suite.registry.as(uniqueProject('proj-order'));

    const upload = openUpload(owner);
    await upload.send({ payload: undefined });
    upload.call.end();

    expect((await failure(upload.outcome)).code).toBe('INVALID_ARGUMENT');
  });

  it('rejects a second start', async () => {
    const owner = await suite.registry.as(uniqueProject('proj-order'));
    const image = await createImage(owner, 'two-starts');

    const upload = openUpload(owner);
    await upload.sendStart({ imageId: image.id });
    await upload.sendChunk(randomBytes(CHUNK_BYTES));
    await upload.sendStart({ imageId: image.id });
    await upload.sendChunk(randomBytes(100));
    upload.call.end();
    const rejected = await failure(upload.outcome);

    expect(rejected.code).toBe('INVALID_ARGUMENT');
    expect(await statusAfterSaving(owner, image.id)).toBe('IMAGE_STATUS_QUEUED');
    await expectNothingStored(owner, image.id);
    await expectFreshUploadWorks(owner, image.id);
  });

  it('rejects a later empty message', async () => {
    const owner = await suite.registry.as(uniqueProject('proj-order'));
    const image = await createImage(owner, 'empty-later-message');

    const upload = openUpload(owner);
    await upload.sendStart({ imageId: image.id });
    await upload.sendChunk(randomBytes(100));
    await upload.send({ payload: undefined });
    upload.call.end();

    expect((await failure(upload.outcome)).code).toBe('INVALID_ARGUMENT');
    expect(await statusAfterSaving(owner, image.id)).toBe('IMAGE_STATUS_QUEUED');
    await expectNothingStored(owner, image.id);
  });

  it('rejects a stream with no messages', async () => {
    const owner = await suite.registry.as(uniqueProject('proj-order'));

    const upload = openUpload(owner);
    upload.call.end();
    const rejected = await failure(upload.outcome);

    expect(rejected.code).toBe('INVALID_ARGUMENT');
    expect(rejected.message).toContain('start');
  });

  it('lets one of two overlapping uploads win', async () => {
    const owner = await suite.registry.as(uniqueProject('proj-race'));
    const image = await createImage(owner, 'overlapping');
    const first = randomBytes(3 * CHUNK_BYTES);

    const upload = openUpload(owner);
    await upload.sendStart({ imageId: image.id, expectedSize: first.length, expectedHashValue: sha512(first) });
    await upload.sendChunk(first.subarray(0, CHUNK_BYTES));
    await waitForStatus(owner, image.id, ImageStatus.IMAGE_STATUS_SAVING);

    const second = await failure(uploadData(owner, image.id, randomBytes(1000)));
    expect(second.code).toBe('FAILED_PRECONDITION');
    expect(await statusOf(owner, image.id)).toBe(ImageStatus.IMAGE_STATUS_SAVING);

    await upload.sendChunk(first.subarray(CHUNK_BYTES));
    upload.call.end();
    const uploaded = await upload.outcome;
    expect(uploaded.status).toBe(ImageStatus.IMAGE_STATUS_ACTIVE);
    expect(uploaded.hashValue).toBe(sha512(first));
    expect((await owner.data.download(image.id)).data.equals(first)).toBe(true);
  });

  it('lets one of two simultaneous uploads win', async () => {
    const owner = await suite.registry.as(uniqueProject('proj-race'));
    const image = await createImage(owner, 'simultaneous');
    const candidates = [randomBytes(500 * KIB), randomBytes(500 * KIB)];

    const results = await Promise.allSettled(candidates.map((data) => uploadData(owner, image.id, data)));

    const winners = results.flatMap((result, index) => (result.status === 'fulfilled' ? [index] : []));
    expect(winners).toHaveLength(1);
    const loser = results.find((result) => result.status === 'rejected');
    expect((await failure(Promise.reject(loser!.reason))).code).toBe('FAILED_PRECONDITION');
    const stored = await owner.data.download(image.id);
    expect(stored.data.equals(candidates[winners[0]!]!)).toBe(true);
  });

  it('rejects an upload to an active image', async () => {
    const owner = await suite.registry.as(uniqueProject('proj-active'));
    const image = await createImage(owner, 'already-active');
    const data = randomBytes(2000);
    await uploadData(owner, image.id, data);

    const rejected = await failure(uploadData(owner, image.id, randomBytes(3000)));

    expect(rejected.code).toBe('FAILED_PRECONDITION');
    const fetched = await owner.images.getImage({ id: image.id });
    expect(fetched.status).toBe(ImageStatus.IMAGE_STATUS_ACTIVE);
    expect(fetched.size).toBe(String(data.length));
    expect((await owner.data.download(image.id)).data.equals(data)).toBe(true);
    expect(readdirSync(suite.storeDir).filter((name) => name.startsWith(`.staging-${image.id}.`))).toEqual([]);
  });

  it('rejects an upload to a deactivated image', async () => {
    const owner = await suite.registry.as(uniqueProject('proj-deactivated'));
    const image = await createImage(owner, 'deactivated');
    await uploadData(owner, image.id, randomBytes(2000));
    await owner.images.deactivateImage({ id: image.id });

    const rejected = await failure(uploadData(owner, image.id, randomBytes(3000)));

    expect(rejected.code).toBe('FAILED_PRECONDITION');
    expect(await statusOf(owner, image.id)).toBe(ImageStatus.IMAGE_STATUS_DEACTIVATED);
  });

  it('rejects an upload to a deleted image', async () => {
    const owner = await suite.registry.as(uniqueProject('proj-deleted'));
    const image = await createImage(owner, 'deleted-before-upload');
    await owner.images.deleteImage({ id: image.id });

    const rejected = await failure(uploadData(owner, image.id, randomBytes(3000)));

    expect(rejected.code).toBe('NOT_FOUND');
    expect(storedFilesOf(suite.storeDir, image.id)).toEqual([]);
  });
});

describe.each(testedBackends())('image data upload permissions on %s', (backend) => {
  const suite = useRegistry(backend);

  it('rejects an upload by an accepted member', async () => {
    const ownerProject = uniqueProject('proj-owner');
    const memberProject = uniqueProject('proj-member');
    const owner = await suite.registry.as(ownerProject);
    const member = await suite.registry.as(memberProject);
    const image = await createImage(owner, 'shared');
    await owner.members.createMember({ imageId: image.id, memberId: memberProject });
    await member.members.updateMember({
      imageId: image.id,
      memberId: memberProject,
      status: MemberStatus.MEMBER_STATUS_ACCEPTED,
    });

    const rejected = await failure(uploadData(member, image.id, randomBytes(1000)));

    expect(rejected.code).toBe('PERMISSION_DENIED');
    expect(await statusOf(owner, image.id)).toBe(ImageStatus.IMAGE_STATUS_QUEUED);
    expect(storedFilesOf(suite.storeDir, image.id)).toEqual([]);
  });

  it('rejects an upload by a pending member', async () => {
    const ownerProject = uniqueProject('proj-owner');
    const memberProject = uniqueProject('proj-member');
    const owner = await suite.registry.as(ownerProject);
    const member = await suite.registry.as(memberProject);
    const image = await createImage(owner, 'shared-pending');
    await owner.members.createMember({ imageId: image.id, memberId: memberProject });

    const rejected = await failure(uploadData(member, image.id, randomBytes(1000)));

    expect(rejected.code).toBe('PERMISSION_DENIED');
    expect(await statusOf(owner, image.id)).toBe(ImageStatus.IMAGE_STATUS_QUEUED);
  });

  it('rejects another project on a public image', async () => {
    const ownerProject = uniqueProject('proj-owner');
    const admin = await suite.registry.as(uniqueProject('proj-admin'), { admin: true });
    const stranger = await suite.registry.as(uniqueProject('proj-stranger'));
    const image = await admin.images.createImage({
      image: { name: 'public', visibility: Visibility.VISIBILITY_PUBLIC, owner: ownerProject },
    });

    const rejected = await failure(uploadData(stranger, image.id, randomBytes(1000)));

    expect(rejected.code).toBe('PERMISSION_DENIED');
    expect(await statusOf(admin, image.id)).toBe(ImageStatus.IMAGE_STATUS_QUEUED);
  });

  it('hides an unreadable image from an upload', async () => {
    const owner = await suite.registry.as(uniqueProject('proj-owner'));
    const outsider = await suite.registry.as(uniqueProject('proj-outsider'));
    const image = await createImage(owner, 'invisible');

    const rejected = await failure(uploadData(outsider, image.id, randomBytes(1000)));

    expect(rejected.code).toBe('NOT_FOUND');
    const unknown = await failure(uploadData(outsider, randomUUID(), randomBytes(1000)));
    expect(unknown.code).toBe('NOT_FOUND');
    expect(rejected.message).toBe(unknown.message.replace(/[0-9a-f-]{36}/, image.id));
    expect(await statusOf(owner, image.id)).toBe(ImageStatus.IMAGE_STATUS_QUEUED);
  });

  it('rejects a token with only the reader role', async () => {
    const project = uniqueProject('proj-reader');
    const owner = await suite.registry.as(project);
    const reader = await suite.registry.as(project, { roles: ['reader'] });
    const image = await createImage(owner, 'reader-upload');

    const rejected = await failure(uploadData(reader, image.id, randomBytes(1000)));

    expect(rejected.code).toBe('PERMISSION_DENIED');
    expect(await statusOf(owner, image.id)).toBe(ImageStatus.IMAGE_STATUS_QUEUED);
  });

  it('rejects an upload without a token', async () => {
    const owner = await suite.registry.as(uniqueProject('proj-anonymous'));
    const image = await createImage(owner, 'anonymous-upload');
    const anonymous = suite.registry.withToken(null);

    const rejected = await failure(uploadData(anonymous, image.id, randomBytes(1000)));

    expect(rejected.code).toBe('UNAUTHENTICATED');
    expect(await statusOf(owner, image.id)).toBe(ImageStatus.IMAGE_STATUS_QUEUED);
  });

  it("lets an admin upload to another project's image", async () => {
    const owner = await suite.registry.as(uniqueProject('proj-owner'));
    const admin = await suite.registry.as(uniqueProject('proj-admin'), { admin: true });
    const image = await createImage(owner, 'admin-upload');
    const data = randomBytes(5000);

    const uploaded = await uploadData(admin, image.id, data);

    expect(uploaded.status).toBe(ImageStatus.IMAGE_STATUS_ACTIVE);
    expect(uploaded.owner).toBe(image.owner);
    expect((await owner.data.download(image.id)).data.equals(data)).toBe(true);
  });
});

describe.each(testedBackends())('image size cap on %s', (backend) => {
  const sizeCap = 1 * MIB;
  const suite = useRegistry(backend, { IMAGE_SIZE_CAP: String(sizeCap) });

  it('accepts an image of exactly the cap', async () => {
    const owner = await suite.registry.as(uniqueProject('proj-cap'));
    const image = await createImage(owner, 'at-cap');

    const uploaded = await uploadData(owner, image.id, randomBytes(sizeCap));

    expect(uploaded.size).toBe(String(sizeCap));
  });

  it('stores nothing past the size cap', async () => {
    const owner = await suite.registry.as(uniqueProject('proj-cap'));
    const image = await createImage(owner, 'over-cap');
    const data = randomBytes(sizeCap + 1);

    const rejected = await failure(owner.data.upload({ imageId: image.id }, chunksOf(data, CHUNK_BYTES)));

    expect(rejected.code).toBe('RESOURCE_EXHAUSTED');
    expect(rejected.message).toContain('IMAGE_SIZE_CAP');
    expect(await statusAfterSaving(owner, image.id)).toBe('IMAGE_STATUS_QUEUED');
    expect(storedFilesOf(suite.storeDir, image.id)).toEqual([]);
    expect((await owner.images.getImage({ id: image.id })).size).toBeUndefined();
  });

  it('ends an over-cap stream at once', async () => {
    const owner = await suite.registry.as(uniqueProject('proj-cap'));
    const image = await createImage(owner, 'over-cap-open');

    const upload = openUpload(owner);
    await upload.sendStart({ imageId: image.id });
    for (let index = 0; index < sizeCap / CHUNK_BYTES; index++) await upload.sendChunk(randomBytes(CHUNK_BYTES));
    await upload.sendChunk(randomBytes(1));
    // The stream stays open, so the server must respond without waiting for its end.
    const rejected = await settledWithin(failure(upload.outcome), 10_000, 'upload over IMAGE_SIZE_CAP');
    upload.call.end();

    expect(rejected.code).toBe('RESOURCE_EXHAUSTED');
    expect(await statusAfterSaving(owner, image.id)).toBe('IMAGE_STATUS_QUEUED');
    expect(storedFilesOf(suite.storeDir, image.id)).toEqual([]);
  });

  it('rejects expected size over cap before data', async () => {
    const owner = await suite.registry.as(uniqueProject('proj-cap'));
    const image = await createImage(owner, 'announced-over-cap');

    const upload = openUpload(owner);
    await upload.sendStart({ imageId: image.id, expectedSize: sizeCap + 1 });
    const rejected = await settledWithin(failure(upload.outcome), 10_000, 'start with expected_size over the cap');
    upload.call.end();

    expect(rejected.code).toBe('RESOURCE_EXHAUSTED');
    expect(rejected.message).toContain('IMAGE_SIZE_CAP');
    expect(await statusOf(owner, image.id)).toBe(ImageStatus.IMAGE_STATUS_QUEUED);
    expect(storedFilesOf(suite.storeDir, image.id)).toEqual([]);
  });

  it('checks the status before the cap', async () => {
    const owner = await suite.registry.as(uniqueProject('proj-cap'));
    const image = await createImage(owner, 'active-over-cap');
    await uploadData(owner, image.id, randomBytes(100));

    const rejected = await failure(owner.data.upload({ imageId: image.id, expectedSize: sizeCap + 1 }, []));

    expect(rejected.code).toBe('FAILED_PRECONDITION');
  });
});

describe.each(testedBackends())('project storage quota on %s', (backend) => {
  const quota = 1536 * KIB;
  const suite = useRegistry(backend, { PROJECT_STORAGE_QUOTA: String(quota) });

  it("rejects the upload that passes the project's quota", async () => {
    const project = uniqueProject('proj-quota');
    const owner = await suite.registry.as(project);
    const first = await createImage(owner, 'quota-first');
    const second = await createImage(owner, 'quota-second');
    await uploadData(owner, first.id, randomBytes(MIB));

    const rejected = await failure(owner.data.upload({ imageId: second.id }, chunksOf(randomBytes(MIB), CHUNK_BYTES)));

    expect(rejected.code).toBe('RESOURCE_EXHAUSTED');
    expect(rejected.message).toContain('PROJECT_STORAGE_QUOTA');
    expect(await statusAfterSaving(owner, second.id)).toBe('IMAGE_STATUS_QUEUED');
    expect(storedFilesOf(suite.storeDir, second.id)).toEqual([]);

    // Up to the quota exactly is allowed.
    const uploaded = await uploadData(owner, second.id, randomBytes(quota - MIB));
    expect(uploaded.status).toBe(ImageStatus.IMAGE_STATUS_ACTIVE);
  });

  it('rejects expected size over quota before data', async () => {
    const owner = await suite.registry.as(uniqueProject('proj-quota'));
    const first = await createImage(owner, 'quota-first');
    const second = await createImage(owner, 'quota-second');
    await uploadData(owner, first.id, randomBytes(MIB));

    const upload = openUpload(owner);
    await upload.sendStart({ imageId: second.id, expectedSize: quota - MIB + 1 });
    const rejected = await settledWithin(failure(upload.outcome), 10_000, 'start with expected_size over the quota');
    upload.call.end();

    expect(rejected.code).toBe('RESOURCE_EXHAUSTED');
    expect(await statusOf(owner, second.id)).toBe(ImageStatus.IMAGE_STATUS_QUEUED);
  });

  it('leaves other projects unaffected', async () => {
    const full = await suite.registry.as(uniqueProject('proj-quota-full'));
    const other = await suite.registry.as(uniqueProject('proj-quota-other'));
    await uploadData(full, (await createImage(full, 'fills-quota')).id, randomBytes(quota));

    const uploaded = await uploadData(other, (await createImage(other, 'other-project')).id, randomBytes(quota));

    expect(uploaded.status).toBe(ImageStatus.IMAGE_STATUS_ACTIVE);
    const rejected = await failure(uploadData(full, (await createImage(full, 'over')).id, randomBytes(1)));
    expect(rejected.code).toBe('RESOURCE_EXHAUSTED');
  });

  it('frees the quota of a deleted image', async () => {
    const owner = await suite.registry.as(uniqueProject('proj-quota'));
    const first = await createImage(owner, 'quota-first');
    const second = await createImage(owner, 'quota-second');
    await uploadData(owner, first.id, randomBytes(MIB));
    await owner.images.deleteImage({ id: first.id });

    const uploaded = await uploadData(owner, second.id, randomBytes(MIB));

    expect(uploaded.status).toBe(ImageStatus.IMAGE_STATUS_ACTIVE);
  });

  it('counts the data of a deactivated image', async () => {
    const owner = await suite.registry.as(uniqueProject('proj-quota'));
    const first = await createImage(owner, 'quota-first');
    const second = await createImage(owner, 'quota-second');
    await uploadData(owner, first.id, randomBytes(MIB));
    await owner.images.deactivateImage({ id: first.id });

    const rejected = await failure(uploadData(owner, second.id, randomBytes(MIB)));

    expect(rejected.code).toBe('RESOURCE_EXHAUSTED');
  });

  it('holds the quota across overlapping uploads', async () => {
    const owner = await suite.registry.as(uniqueProject('proj-quota-race'));
    const images = [await createImage(owner, 'overlap-first'), await createImage(owner, 'overlap-second')];
    const uploads = images.map(() => openUpload(owner));

    // Both uploads are running before either sends its data.
    for (const [index, upload] of uploads.entries()) {
      await upload.sendStart({ imageId: images[index]!.id });
      await waitForStatus(owner, images[index]!.id, ImageStatus.IMAGE_STATUS_SAVING);
    }
    for (const upload of uploads) {
      for (let index = 0; index < MIB / CHUNK_BYTES; index++) await upload.sendChunk(randomBytes(CHUNK_BYTES));
      upload.call.end();
    }
    const results = await Promise.allSettled(uploads.map((upload) => upload.outcome));

    // Each upload fits the quota alone, but the two together do not.
    expect(results.filter((result) => result.status === 'fulfilled')).toHaveLength(1);
    const rejected = results.find((result) => result.status === 'rejected');
    expect(rejected === undefined ? 'OK' : (await failure(Promise.reject(rejected.reason))).code).toBe('RESOURCE_EXHAUSTED');
  });
});

describe.each(testedBackends())('image data download on %s', (backend) => {
  const suite = useRegistry(backend);

  /** Creates a shared image of a fresh project, uploads data and returns both. */
  async function sharedImageWithData(name: string): Promise<{ owner: RegistryClient; image: Image; data: Buffer }> {
    const owner = await suite.registry.as(uniqueProject('proj-owner'));
    const image = await createImage(owner, name);
    const data = randomBytes(700 * KIB + 11);
    await uploadData(owner, image.id, data);
    return { owner, image, data };
  }

  it.each([
    ['pending', MemberStatus.MEMBER_STATUS_PENDING],
    ['accepted', MemberStatus.MEMBER_STATUS_ACCEPTED],
    ['rejected', MemberStatus.MEMBER_STATUS_REJECTED],
  ])('lets a member with status %s download', async (_, status) => {
    const { owner, image, data } = await sharedImageWithData('shared-download');
    const memberProject = uniqueProject('proj-member');
    const member = await suite.registry.as(memberProject);
    await owner.members.createMember({ imageId: image.id, memberId: memberProject });
    if (status !== MemberStatus.MEMBER_STATUS_PENDING) {
      await member.members.updateMember({ imageId: image.id, memberId: memberProject, status });
    }

    const downloaded = await member.data.download(image.id);

    expect(downloaded.data.equals(data)).toBe(true);
    expect(downloaded.info?.hashValue).toBe(sha512(data));
  });

  it('hides a shared image from an outsider', async () => {
    const { image } = await sharedImageWithData('shared-outsider');
    const outsider = await suite.registry.as(uniqueProject('proj-outsider'));

    const hidden = await failure(outsider.data.download(image.id));

    expect(hidden.code).toBe('NOT_FOUND');
    const unknown = await failure(outsider.data.download(randomUUID()));
    expect(unknown.code).toBe('NOT_FOUND');
  });

  it('hides a shared image once its member row is removed', async () => {
    const { owner, image } = await sharedImageWithData('shared-removed');
    const memberProject = uniqueProject('proj-member');
    const member = await suite.registry.as(memberProject);
    await owner.members.createMember({ imageId: image.id, memberId: memberProject });
    await owner.members.deleteMember({ imageId: image.id, memberId: memberProject });

    expect((await failure(member.data.download(image.id))).code).toBe('NOT_FOUND');
  });

  it.each([
    ['public', Visibility.VISIBILITY_PUBLIC],
    ['community', Visibility.VISIBILITY_COMMUNITY],
  ])('lets anyone download a %s image', async (_, visibility) => {
    const ownerProject = uniqueProject('proj-owner');
    const admin = await suite.registry.as(uniqueProject('proj-admin'), { admin: true });
    const owner = await suite.registry.as(ownerProject);
    const image = await admin.images.createImage({ image: { name: 'for-everyone', visibility, owner: ownerProject } });
    const data = randomBytes(300 * KIB);
    await uploadData(owner, image.id, data);

    const stranger = await suite.registry.as(uniqueProject('proj-stranger'));
    const reader = await suite.registry.as(uniqueProject('proj-reader'), { roles: ['reader'] });

    expect((await stranger.data.download(image.id)).data.equals(data)).toBe(true);
    expect((await reader.data.download(image.id)).data.equals(data)).toBe(true);
  });

  it('lets a reader of the owning project download', async () => {
    const project = uniqueProject('proj-owner');
    const owner = await suite.registry.as(project);
    const reader = await suite.registry.as(project, { roles: ['reader'] });
    const image = await createImage(owner, 'reader-download');
    const data = randomBytes(1234);
    await uploadData(owner, image.id, data);

    expect((await reader.data.download(image.id)).data.equals(data)).toBe(true);
  });

  it('rejects a download of an image without data', async () => {
    const owner = await suite.registry.as(uniqueProject('proj-empty'));
    const image = await createImage(owner, 'no-data');

    const rejected = await failure(owner.data.download(image.id));

    expect(rejected.code).toBe('FAILED_PRECONDITION');
  });

  it('rejects a download while the upload is running', async () => {
    const owner = await suite.registry.as(uniqueProject('proj-saving'));
    const image = await createImage(owner, 'saving');
    const upload = openUpload(owner);
    await upload.sendStart({ imageId: image.id });
    await upload.sendChunk(randomBytes(CHUNK_BYTES));
    await waitForStatus(owner, image.id, ImageStatus.IMAGE_STATUS_SAVING);

    const rejected = await failure(owner.data.download(image.id));

    expect(rejected.code).toBe('FAILED_PRECONDITION');
    upload.call.end();
    expect((await upload.outcome).status).toBe(ImageStatus.IMAGE_STATUS_ACTIVE);
  });

  it('rejects a malformed image id', async () => {
    const owner = await suite.registry.as(uniqueProject('proj-bad-id'));

    const rejected = await failure(owner.data.download('not-a-uuid'));

    expect(rejected.code).toBe('INVALID_ARGUMENT');
  });

  it('serves a deactivated image only to an admin', async () => {
    const { owner, image, data } = await sharedImageWithData('deactivated');
    const memberProject = uniqueProject('proj-member');
    const member = await suite.registry.as(memberProject);
    const admin = await suite.registry.as(uniqueProject('proj-admin'), { admin: true });
    await owner.members.createMember({ imageId: image.id, memberId: memberProject });
    await owner.images.deactivateImage({ id: image.id });

    expect((await failure(owner.data.download(image.id))).code).toBe('FAILED_PRECONDITION');
    expect((await failure(member.data.download(image.id))).code).toBe('FAILED_PRECONDITION');
    const byAdmin = await admin.data.download(image.id);
    expect(byAdmin.data.equals(data)).toBe(true);
    expect(byAdmin.info?.size).toBe(String(data.length));

    await owner.images.reactivateImage({ id: image.id });
    expect((await owner.data.download(image.id)).data.equals(data)).toBe(true);
    expect((await member.data.download(image.id)).data.equals(data)).toBe(true);
  });

  it('delivers every byte in order to a slow reader', { timeout: 60_000 }, async () => {
    const owner = await suite.registry.as(uniqueProject('proj-slow'));
    const image = await createImage(owner, 'slow-reader');
    const data = randomBytes(6 * MIB + 5);
    await uploadData(owner, image.id, data);

    const call = owner.data.client.downloadImageData({ id: image.id }, owner.data.metadata());
    const parts: Buffer[] = [];
    const kinds: string[] = [];
    let pauses = 0;
    call.on('data', (message: DownloadImageDataResponse) => {
      kinds.push(message.payload?.$case ?? 'none');
      if (message.payload?.$case !== 'chunk') return;
      parts.push(message.payload.value);
      // Pause for 1 s after the first chunk, then for 100 ms after every fourth.
      if (parts.length === 1 || parts.length % 4 === 0) {
        call.pause();
        pauses++;
        setTimeout(() => call.resume(), parts.length === 1 ? 1000 : 100);
      }
    });
    await new Promise<void>((resolve, reject) => {
      call.on('end', resolve);
      call.on('error', reject);
    });

    expect(pauses).toBeGreaterThan(1);
    expect(kinds[0]).toBe('info');
    expect(kinds.slice(1).every((kind) => kind === 'chunk')).toBe(true);
    expect(parts.length).toBe(Math.ceil(data.length / CHUNK_BYTES));
    expect(Buffer.concat(parts).equals(data)).toBe(true);
  });

  it('keeps an image downloadable after a cancelled download', async () => {
    const { owner, image, data } = await sharedImageWithData('cancelled-download');
    const bigger = randomBytes(4 * MIB);
    const large = await createImage(owner, 'cancelled-download-large');
    await uploadData(owner, large.id, bigger);

    const call = owner.data.client.downloadImageData({ id: large.id }, owner.data.metadata());
    call.on('data', (message: DownloadImageDataResponse) => {
      if (message.payload?.$case === 'chunk') call.cancel();
    });
    const ended = await new Promise<string>((resolve) => {
      call.on('error', (error: grpc.ServiceError) => resolve(String(error.code)));
      call.on('end', () => resolve('end'));
    });

    expect(ended).not.toBe('end');
    expect((await owner.data.download(large.id)).data.equals(bigger)).toBe(true);
    expect((await owner.data.download(image.id)).data.equals(data)).toBe(true);
  });
});

describe.each(testedBackends())('image data deletion on %s', (backend) => {
  const suite = useRegistry(backend);

  it('deletes the data file with its image', async () => {
    const owner = await suite.registry.as(uniqueProject('proj-delete'));
    const image = await createImage(owner, 'to-delete');
    await uploadData(owner, image.id, randomBytes(100 * KIB));
    expect(existsSync(join(suite.storeDir, image.id))).toBe(true);

    await owner.images.deleteImage({ id: image.id });

    expect(storedFilesOf(suite.storeDir, image.id)).toEqual([]);
    expect((await failure(owner.data.download(image.id))).code).toBe('NOT_FOUND');
    const admin = await suite.registry.as(uniqueProject('proj-admin'), { admin: true });
    expect((await failure(admin.data.download(image.id))).code).toBe('NOT_FOUND');
  });

  it('deletes a deactivated image with its data', async () => {
    const owner = await suite.registry.as(uniqueProject('proj-delete'));
    const image = await createImage(owner, 'deactivated-to-delete');
    await uploadData(owner, image.id, randomBytes(100 * KIB));
    await owner.images.deactivateImage({ id: image.id });

    await owner.images.deleteImage({ id: image.id });

    expect(storedFilesOf(suite.storeDir, image.id)).toEqual([]);
  });

  it('stores nothing for an image deleted mid-upload', async () => {
    const owner = await suite.registry.as(uniqueProject('proj-delete'));
    const image = await createImage(owner, 'deleted-while-saving');
    const upload = openUpload(owner);
    await upload.sendStart({ imageId: image.id });
    await upload.sendChunk(randomBytes(CHUNK_BYTES));
    await waitForStatus(owner, image.id, ImageStatus.IMAGE_STATUS_SAVING);

    await owner.images.deleteImage({ id: image.id });
    await upload.sendChunk(randomBytes(CHUNK_BYTES));
    upload.call.end();
    const rejected = await failure(upload.outcome);

    expect(rejected.code).toBe('NOT_FOUND');
    expect(storedFilesOf(suite.storeDir, image.id)).toEqual([]);
    expect((await failure(owner.images.getImage({ id: image.id }))).code).toBe('NOT_FOUND');
  });
});

describe.each(testedBackends())('image store sweep at start on %s', (backend) => {
  const unknownId = randomUUID();
  const staleStagingName = `.staging-${randomUUID()}.${randomUUID()}`;
  let storeDir: string;
  let registry: RegistryHarness;

  beforeAll(async () => {
    storeDir = mkdtempSync(join(tmpdir(), 'image-store-sweep-'));
    writeFileSync(join(storeDir, unknownId), randomBytes(1000));
    writeFileSync(join(storeDir, staleStagingName), randomBytes(1000));
    const hourAgo = new Date(Date.now() - 3600_000);
    utimesSync(join(storeDir, staleStagingName), hourAgo, hourAgo);
    registry = await RegistryHarness.start(backend, { IMAGE_STORE_DIR: storeDir, UPLOAD_LEASE_S: '1' });
  });
  afterAll(async () => {
    await registry?.stop();
    if (storeDir !== undefined) rmSync(storeDir, { recursive: true, force: true });
  });

  it('removes unknown data and old staging files', () => {
    expect(existsSync(join(storeDir, unknownId))).toBe(false);
    expect(existsSync(join(storeDir, staleStagingName))).toBe(false);
  });

  it('keeps live data and removes deleted data', async () => {
    const owner = await registry.as(uniqueProject('proj-sweep'));
    const live = await createImage(owner, 'live');
    const liveData = randomBytes(10 * KIB);
    await uploadData(owner, live.id, liveData);
    const deleted = await createImage(owner, 'deleted');
    await uploadData(owner, deleted.id, randomBytes(10 * KIB));
    await owner.images.deleteImage({ id: deleted.id });
    // A leftover that a failed delete would leave.
    writeFileSync(join(storeDir, deleted.id), randomBytes(10));
    const freshStagingName = `.staging-${randomUUID()}.${randomUUID()}`;
    writeFileSync(join(storeDir, freshStagingName), randomBytes(10));

    await sweepImageData(registry.service.context);

    expect(existsSync(join(storeDir, live.id))).toBe(true);
    expect((await owner.data.download(live.id)).data.equals(liveData)).toBe(true);
    expect(existsSync(join(storeDir, deleted.id))).toBe(false);
    // A staging file younger than two leases may belong to a running upload.
    expect(existsSync(join(storeDir, freshStagingName))).toBe(true);
  });
});

describe.each(testedBackends())('upload lease on %s', (backend) => {
  const suite = useRegistry(backend, { UPLOAD_LEASE_S: '1' });

  it('keeps the lease of an upload that outlasts it', { timeout: 30_000 }, async () => {
    const owner = await suite.registry.as(uniqueProject('proj-lease'));
    const image = await createImage(owner, 'slow-upload');
    const data = randomBytes(7 * 64 * KIB);

    const upload = openUpload(owner);
    await upload.sendStart({ imageId: image.id, expectedSize: data.length, expectedHashValue: sha512(data) });
    // Seven chunks 500 ms apart keep the upload running for three leases.
    for (const chunk of chunksOf(data, 64 * KIB)) {
      await upload.sendChunk(chunk);
      await sleep(500);
    }
    expect(await statusOf(owner, image.id)).toBe(ImageStatus.IMAGE_STATUS_SAVING);

    const second = await failure(uploadData(owner, image.id, randomBytes(1000)));
    expect(second.code).toBe('FAILED_PRECONDITION');

    upload.call.end();
    const uploaded = await upload.outcome;
    expect(uploaded.status).toBe(ImageStatus.IMAGE_STATUS_ACTIVE);
    expect((await owner.data.download(image.id)).data.equals(data)).toBe(true);
  });
});
