/** Use cases of image data: streamed upload with verification, download, and cleanup at start. */
import type { Readable } from 'node:stream';
import { RegistryError, failedPrecondition, imageNotFound } from '../domain/errors.js';
import {
  assertCanUpload,
  assertDataMatches,
  assertDownloadAllowed,
  assertUploadAllowed,
  parseUploadExpectation,
  uploadSizeCheck,
} from '../domain/image-data-rules.js';
import { parseImageId } from '../domain/image-fields.js';
import type { Caller, Image } from '../domain/model.js';
import { runBeyondCall } from '../persistence/call-cancellation.js';
import type { StagedImageData } from '../persistence/image-data-store.js';
import {
  abandonUpload,
  findImage,
  findUploadExpiry,
  finishUpload,
  projectStoredBytes,
  renewUploadLease,
  selectLiveImageIds,
  startUpload,
} from '../persistence/image-store.js';
import { type RegistryContext, loadReadableImage } from './registry-context.js';

/** Bytes per chunk of a download; also the recommended chunk size of an upload. */
export const DATA_CHUNK_BYTES = 256 * 1024;

export interface UploadStart {
  imageId: string;
  /** An int64 in decimal, or null when the client gave no size. */
  expectedSize: string | null;
  expectedChecksum: string;
  expectedHashValue: string;
}

/**
 * Stores the data of a queued image and makes it active. The image is
 * SAVING while the bytes stream in, under a lease that this process renews.
 * On any failure nothing is stored and the image is QUEUED again. Nothing
 * is committed once `cancellation` is aborted, because the chunks may then
 * have ended early.
 */
export async function uploadImageData(
  context: RegistryContext,
  caller: Caller,
  start: UploadStart,
  chunks: AsyncIterable<Uint8Array>,
  cancellation: AbortSignal,
): Promise<Image> {
  const id = parseImageId('start.image_id', start.imageId);
  const expected = parseUploadExpectation(start.expectedSize, start.expectedChecksum, start.expectedHashValue);

  const started = await context.database.write(async (trx) => {
    const { image } = await loadReadableImage(context, trx, caller, id, { lock: true });
    assertCanUpload(caller, image);
    const now = context.now();
    assertUploadAllowed(image, await findUploadExpiry(trx, id), now);
    let remainingQuota: number | null = null;
    // Checked again when committing, since other uploads may finish first.
    if (context.projectStorageQuota >= 0) {
      remainingQuota = context.projectStorageQuota - (await projectStoredBytes(trx, image.owner, id));
    }
    const check = uploadSizeCheck(image, expected.size, context.imageSizeCap, remainingQuota);
    // An announced size over a limit fails before any byte is sent.
    if (expected.size !== null) check(expected.size);
    await startUpload(trx, id, now + context.uploadLeaseMs, now);
    return { check, takesOver: image.status === 'saving' };
  });
  const checkTotal = started.check;
  if (started.takesOver) await context.dataStore.removeStagingOf(id);

  const renewal = setInterval(() => {
    renewUploadLease(context.database.knex, id, context.now() + context.uploadLeaseMs).catch((error: unknown) =>
      context.logger.warn({ err: error, image_id: id }, 'failed to renew an upload lease'),
    );
  }, context.uploadLeaseMs / 3);
  renewal.unref();

  let staged: StagedImageData | undefined;
  // TODO: a client that cancels in the same tick as its start message leaves
  // the image SAVING until UPLOAD_LEASE_S passes. The call's signal is
  // aborted and the chunk loop receives the abort, but staging does not end.
  // A failing case in image-data-interruptions.test.ts shows it.
  try {
    staged = await context.dataStore.stage(id, withIdleTimeout(chunks, context.uploadLeaseMs), checkTotal);
    assertDataMatches(expected, staged);
    return await commitUpload(context, id, staged, cancellation);
  } catch (error) {
    await staged?.discard();
    // Runs even when the call has ended: that is when it is needed most.
    await runBeyondCall(() => context.database.write((trx) => abandonUpload(trx, id, context.now())))
      .catch((abandonError: unknown) =>
        context.logger.warn({ err: abandonError, image_id: id }, 'failed to return an image to queued after a failed upload'),
      );
    throw error;
  } finally {
    clearInterval(renewal);
  }
}

/**
 * Passes chunks through, and throws DEADLINE_EXCEEDED when none arrives for
 * `idleMs`, so that a client gone silent does not hold an image SAVING for
 * as long as its connection lasts.
 */
async function* withIdleTimeout(chunks: AsyncIterable<Uint8Array>, idleMs: number): AsyncGenerator<Uint8Array> {
  const iterator = chunks[Symbol.asyncIterator]();
  for (;;) {
    let timer: NodeJS.Timeout | undefined;
    const idle = new Promise<never>((_, reject) => {
      timer = setTimeout(
        () => reject(new RegistryError('DEADLINE_EXCEEDED', `no data arrived for ${idleMs / 1000} s; the upload was ended`, 'UPLOAD_IDLE')),
        idleMs,
      );
    });
    try {
      const next = await Promise.race([iterator.next(), idle]);
      if (next.done) return;
      yield next.value;
    } finally {
      clearTimeout(timer);
    }
  }
}

async function commitUpload(
  context: RegistryContext,
  id: string,
  staged: StagedImageData,
  cancellation: AbortSignal,
): Promise<Image> {
  return context.database.write(async (trx) => {
    const image = await findImage(context.database, trx, id, { lock: true });
    // Deleted while the bytes streamed in.
    if (image === null || image.status === 'deleted') throw imageNotFound(id);
    if (image.status !== 'saving') {
      throw failedPrecondition(
        `image ${JSON.stringify(id)} is ${image.status}: another upload took it over; nothing was stored`,
        'UPLOAD_TAKEN_OVER',
      );
    }
    if (context.projectStorageQuota >= 0) {
      // Locks the project's image rows on MySQL, so that concurrent commits
      // of one project check the quota one after another.
      const stored = await projectStoredBytes(trx, image.owner, id, { lock: context.database });
      uploadSizeCheck(image, null, Number.MAX_SAFE_INTEGER, context.projectStorageQuota - stored)(staged.size);
    }
    if (cancellation.aborted) {
      const ended = cancellation.reason instanceof RegistryError ? cancellation.reason.kind : 'CANCELLED';
      throw new RegistryError(
        ended,
        ended === 'CANCELLED'
          ? 'the client cancelled the upload; nothing was stored'
          : 'the call ended before the upload finished; nothing was stored',
        ended,
      );
    }
    await staged.commit();
    const now = context.now();
    await finishUpload(trx, id, staged, now);
    return {
      ...image,
      status: 'active',
      size: staged.size,
      checksum: staged.checksum,
      hashAlgo: 'sha512',
      hashValue: staged.sha512,
      updateTime: now,
    };
  });
}

/** Checks that the caller may download an image's data, and opens it. */
export async function openImageData(
  context: RegistryContext,
  caller: Caller,
  rawId: string,
): Promise<{ image: Image; data: Readable }> {
  const id = parseImageId('id', rawId);
  const { image } = await context.database.read((db) => loadReadableImage(context, db, caller, id));
  assertDownloadAllowed(caller, image);
  return { image, data: context.dataStore.open(id, DATA_CHUNK_BYTES) };
}

const SWEEP_BATCH = 500;

/**
 * Removes what a killed process can leave in the store: staged uploads older
 * than two leases, and data of images that are deleted or gone.
 */
export async function sweepImageData(context: RegistryContext): Promise<void> {
  const staging = await context.dataStore.removeStaleStaging(2 * context.uploadLeaseMs);
  const ids = await context.dataStore.listImageIds();
  let orphans = 0;
  for (let start = 0; start < ids.length; start += SWEEP_BATCH) {
    const batch = ids.slice(start, start + SWEEP_BATCH);
    const live = await context.database.read((db) => selectLiveImageIds(db, batch));
    for (const id of batch) {
      if (live.has(id)) continue;
      await context.dataStore.delete(id);
      orphans++;
    }
  }
  if (staging + orphans > 0) {
    context.logger.info({ staging, orphans }, 'removed image data left by a stopped process');
  }
}
