/**
 * Storage of image bytes. The interface is small so that an object store can
 * replace the filesystem without touching handlers: stage a stream, commit
 * it, open it as a stream, delete it.
 */
import { randomUUID } from 'node:crypto';
import { createReadStream } from 'node:fs';
import { mkdir, readdir, rename, rm, stat } from 'node:fs/promises';
import { join } from 'node:path';
import type { Readable } from 'node:stream';
import { StagingWorker } from './staging-worker.js';

/** Data written by `stage` that is not visible until committed. */
export interface StagedImageData {
  size: number;
  /** MD5 in hex. */
  checksum: string;
  /** SHA-512 in hex. */
  sha512: string;
  /** Makes the data the image's data, replacing any earlier data. */
  commit(): Promise<void>;
  /** Removes the staged data. Safe to call after commit or twice. */
  discard(): Promise<void>;
}

export interface ImageDataStore {
  /**
   * Writes `chunks` where no reader sees them, hashing as it goes, and
   * calls `checkTotal` with the running size after each chunk so that a
   * limit can end the upload by throwing. On any error nothing is kept.
   */
  stage(imageId: string, chunks: AsyncIterable<Uint8Array>, checkTotal: (bytes: number) => void): Promise<StagedImageData>;
  /** Opens committed data for reading, in chunks of at most `chunkBytes`. */
  open(imageId: string, chunkBytes: number): Readable;
  /** Deletes committed data; deleting data that does not exist is not an error. */
  delete(imageId: string): Promise<void>;
  /** Returns the ids of images with committed data. */
  listImageIds(): Promise<string[]>;
  /** Releases what the store holds, such as threads; called once at shutdown. */
  close(): Promise<void>;
  /** Deletes staged data older than `ageMs`, which a killed process left behind; returns how many. */
  removeStaleStaging(ageMs: number): Promise<number>;
  /** Deletes every staged upload of one image, when a new upload takes over from a dead one. */
  removeStagingOf(imageId: string): Promise<void>;
}

const STAGING_PREFIX = '.staging-';
const UUID_FILE_NAME = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/;

/**
 * Keeps each image's data in one file named by its id. Staged data goes to
 * a file in the same folder and is renamed into place after it is flushed to
 * disk, so that a reader sees either the old file or the whole new one.
 */
export class FilesystemImageDataStore implements ImageDataStore {
  private readonly worker = new StagingWorker();

  constructor(private readonly folder: string) {}

  /** Creates the folder and starts the worker thread that writes uploads. */
  async initialize(): Promise<void> {
    await mkdir(this.folder, { recursive: true });
    this.worker.start();
  }

  async close(): Promise<void> {
    await this.worker.stop();
  }

  async stage(
    imageId: string,
    chunks: AsyncIterable<Uint8Array>,
    checkTotal: (bytes: number) => void,
  ): Promise<StagedImageData> {
    const stagingPath = join(this.folder, `${STAGING_PREFIX}${imageId}.${randomUUID()}`);
    const finalPath = this.pathOf(imageId);
    // Hashing and writing happen in the worker thread, beside the event loop.
    const upload = await this.worker.openUpload(stagingPath);
    let size = 0;
    let hashes: { checksum: string; sha512: string };
    try {
      for await (const chunk of chunks) {
        size += chunk.byteLength;
        checkTotal(size);
        await upload.write(chunk);
      }
      hashes = await upload.finish();
    } catch (error) {
      await upload.abort();
      await rm(stagingPath, { force: true });
      throw error;
    }

    return {
      size,
      checksum: hashes.checksum,
      sha512: hashes.sha512,
      commit: () => rename(stagingPath, finalPath),
      discard: () => rm(stagingPath, { force: true }),
    };
  }

  open(imageId: string, chunkBytes: number): Readable {
    return createReadStream(this.pathOf(imageId), { highWaterMark: chunkBytes });
  }

  async delete(imageId: string): Promise<void> {
    await rm(this.pathOf(imageId), { force: true });
  }

  async listImageIds(): Promise<string[]> {
    const names = await readdir(this.folder);
    return names.filter((name) => UUID_FILE_NAME.test(name));
  }

  async removeStaleStaging(ageMs: number): Promise<number> {
    const cutoff = Date.now() - ageMs;
    let removed = 0;
    for (const name of await readdir(this.folder)) {
      if (!name.startsWith(STAGING_PREFIX)) continue;
      const path = join(this.folder, name);
      const info = await stat(path).catch(() => null);
      if (info !== null && info.mtimeMs < cutoff) {
        await rm(path, { force: true });
        removed++;
      }
    }
    return removed;
  }

  async removeStagingOf(imageId: string): Promise<void> {
    this.pathOf(imageId);
    const prefix = `${STAGING_PREFIX}${imageId}.`;
    for (const name of await readdir(this.folder)) {
      if (name.startsWith(prefix)) await rm(join(this.folder, name), { force: true });
    }
  }

  private pathOf(imageId: string): string {
    if (!UUID_FILE_NAME.test(imageId)) throw new Error(`not an image id: ${JSON.stringify(imageId)}`);
    return join(this.folder, imageId);
  }
}
