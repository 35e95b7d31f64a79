/**
 * The benchmark's image data: a deterministic byte stream of any size, made
 * as views into a small pseudo-random pool, so that neither side keeps the
 * whole image in memory and both sides can compute the same hashes.
 */
import { createCipheriv, createHash } from 'node:crypto';

export interface PayloadSpec {
  sizeBytes: number;
  chunkBytes: number;
  /** Any text. The same seed gives the same bytes. */
  seed: string;
}

export interface PayloadDigest {
  /** MD5 in hex. */
  md5: string;
  /** SHA-512 in hex. */
  sha512: string;
}

const POOL_EXTRA_BYTES = 4 * 1024 * 1024;
/** Distance between the pool offsets of consecutive chunks. It is odd, so the offsets modulo the 4 MiB pool repeat only after 4 Mi chunks. */
const OFFSET_STRIDE_BYTES = 1_048_573;

/** Creates the pool: the AES-128-CTR keystream of a key derived from the seed, chunkBytes + 4 MiB long. */
export function createPayloadPool(spec: PayloadSpec): Buffer {
  const key = createHash('sha256').update(spec.seed).digest().subarray(0, 16);
  const cipher = createCipheriv('aes-128-ctr', key, Buffer.alloc(16));
  return Buffer.concat([cipher.update(Buffer.alloc(spec.chunkBytes + POOL_EXTRA_BYTES)), cipher.final()]);
}

/**
 * Yields the payload in chunks of chunkBytes (the last one may be shorter).
 * Each chunk is a view into the pool, so a consumer that keeps a chunk
 * must copy it.
 */
export function* payloadChunks(spec: PayloadSpec, pool: Buffer = createPayloadPool(spec)): Generator<Buffer> {
  let index = 0;
  for (let offset = 0; offset < spec.sizeBytes; offset += spec.chunkBytes) {
    const length = Math.min(spec.chunkBytes, spec.sizeBytes - offset);
    const start = (index * OFFSET_STRIDE_BYTES) % POOL_EXTRA_BYTES;
    yield pool.subarray(start, start + length);
    index++;
  }
}

/** Computes the MD5 and SHA-512 of the payload by generating it once. */
export function digestPayload(spec: PayloadSpec): PayloadDigest {
  const md5 = createHash('md5');
  const sha512 = createHash('sha512');
  for (const chunk of payloadChunks(spec)) {
    md5.update(chunk);
    sha512.update(chunk);
  }
  return { md5: md5.digest('hex'), sha512: sha512.digest('hex') };
}
