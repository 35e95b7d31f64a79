/**
 * Upload and download of image data for the command-line client, with a
 * progress bar on stderr when stderr is a terminal.
 */
import { createHash, type Hash } from 'node:crypto';
import { createWriteStream } from 'node:fs';
import { open, rename, rm } from 'node:fs/promises';
import { once } from 'node:events';
import { pipeline } from 'node:stream/promises';
import type { Writable } from 'node:stream';
import cliProgress from 'cli-progress';
import type { Image } from '../../gen/imageregistry/v1/image.js';
import type { DownloadImageDataResponse, ImageDataInfo } from '../../gen/imageregistry/v1/image_service.js';
import { type RegistryClients, UsageError } from './connection.js';

/** Bytes per chunk message. The proto recommends chunks of 64 KiB to 1 MiB. */
const CHUNK_BYTES = 1024 * 1024;

/** Formats a byte count with binary units, such as "1.5 MiB". */
export function formatBytes(bytes: number): string {
  const units = ['B', 'KiB', 'MiB', 'GiB', 'TiB'];
  let value = bytes;
  let unit = 0;
  while (value >= 1024 && unit < units.length - 1) {
    value /= 1024;
    unit += 1;
  }
  return unit === 0 ? `${value} ${units[unit]}` : `${value.toFixed(1)} ${units[unit]}`;
}

interface ProgressBar {
  advance(bytes: number): void;
  stop(): void;
}

/** Starts a progress bar on stderr, or returns one that prints nothing when stderr is not a terminal. */
function startProgressBar(label: string, totalBytes: number): ProgressBar {
  if (!process.stderr.isTTY || totalBytes <= 0) return { advance: () => {}, stop: () => {} };
  const bar = new cliProgress.SingleBar(
    {
      stream: process.stderr,
      format: `${label} {bar} {percentage}% | {transferred} of {size} | ETA {eta_formatted}`,
      hideCursor: true,
    },
    cliProgress.Presets.shades_classic,
  );
  let transferred = 0;
  const size = formatBytes(totalBytes);
  bar.start(totalBytes, 0, { transferred: formatBytes(0), size });
  return {
    advance: (bytes) => {
      transferred += bytes;
      bar.update(transferred, { transferred: formatBytes(transferred), size });
    },
    stop: () => bar.stop(),
  };
}

/** Hashes compared with what the server computed or reports. */
interface DataDigest {
  md5: Hash;
  sha512: Hash;
}

function newDigest(): DataDigest {
  return { md5: createHash('md5'), sha512: createHash('sha512') };
}

export interface UploadOptions {
  /** MD5 in hex that the server checks the data against. */
  expectedChecksum?: string;
  /** SHA-512 in hex that the server checks the data against. */
  expectedHashValue?: string;
}

/**
 * Uploads a regular file as the image's data, in chunks of 1 MiB, and
 * resolves to the image the server returns. The start message carries the
 * file's size, so a file that changes size during the upload fails it. The
 * MD5 and SHA-512 computed while reading are compared with the hashes the
 * server stored.
 */
export async function uploadFile(
  clients: RegistryClients,
  imageId: string,
  path: string,
  options: UploadOptions,
): Promise<Image> {
  const file = await open(path, 'r');
  const stats = await file.stat().catch(async (error: unknown) => {
    await file.close();
    throw error;
  });
  if (!stats.isFile()) {
    await file.close();
    throw new UsageError(`${JSON.stringify(path)} is not a regular file`);
  }
  const input = file.createReadStream({ highWaterMark: CHUNK_BYTES });
  const digest = newDigest();
  const progress = startProgressBar('upload', stats.size);

  let call!: ReturnType<RegistryClients['images']['uploadImageData']>;
  const response = new Promise<Image>((resolve, reject) => {
    call = clients.images.uploadImageData(clients.metadata(), (error, image) => (error ? reject(error) : resolve(image)));
  });
  // The send loop waits on the response too, so that a call the server ends
  // early does not leave it waiting for a 'drain' that never comes.
  const sendChunks = async (): Promise<void> => {
    const start = {
      imageId,
      expectedSize: String(stats.size),
      expectedChecksum: options.expectedChecksum ?? '',
      expectedHashValue: options.expectedHashValue ?? '',
    };
    if (!call.write({ payload: { $case: 'start', value: start } })) await Promise.race([once(call, 'drain'), response]);
    for await (const chunk of input as AsyncIterable<Buffer>) {
      digest.md5.update(chunk);
      digest.sha512.update(chunk);
      if (!call.write({ payload: { $case: 'chunk', value: chunk } })) await Promise.race([once(call, 'drain'), response]);
      progress.advance(chunk.length);
    }
    call.end();
  };
  // A failed read cancels the call, and the server returns the image to
  // QUEUED. The call then fails with CANCELLED, so the read error is the one
  // to report. When the server ends the call, both errors are the same.
  let sendError: unknown;
  const sending = sendChunks().catch((error: unknown) => {
    sendError = error;
    call.cancel();
  });

  let image: Image;
  try {
    image = await response;
  } catch (error) {
    throw sendError ?? error;
  } finally {
    await sending;
    input.destroy();
    progress.stop();
  }
  verifyUploadedHashes(image, digest);
  return image;
}

function verifyUploadedHashes(image: Image, digest: DataDigest): void {
  const md5 = digest.md5.digest('hex');
  const sha512 = digest.sha512.digest('hex');
  const mismatches: string[] = [];
  if (image.checksum !== '' && image.checksum !== md5) mismatches.push(`checksum ${image.checksum}, expected ${md5}`);
  if (image.hashAlgo === 'sha512' && image.hashValue !== sha512) {
    mismatches.push(`hash_value ${image.hashValue}, expected ${sha512}`);
  }
  if (mismatches.length > 0) {
    throw new Error(
      `the server stored data for image ${image.id} that differs from the file (${mismatches.join('; ')}); ` +
        'delete the image and upload again',
    );
  }
}

/**
 * Downloads an image's data to `outPath`, or to stdout when it is undefined,
 * and checks the size and hashes against the info message the server sends
 * first. The file is written as `outPath`.part and renamed once the data is
 * complete and verified. On failure the partial file is removed.
 */
export async function downloadImageData(
  clients: RegistryClients,
  imageId: string,
  outPath: string | undefined,
): Promise<ImageDataInfo> {
  if (outPath === undefined && process.stdout.isTTY) {
    throw new UsageError('stdout is a terminal: pass --out FILE, or redirect stdout, to receive the image data');
  }
  const call = clients.images.downloadImageData({ id: imageId }, clients.metadata());
  const temporaryPath = outPath === undefined ? undefined : `${outPath}.part`;
  const output: Writable = temporaryPath === undefined ? process.stdout : createWriteStream(temporaryPath);

  let info: ImageDataInfo | undefined;
  let progress: ProgressBar | undefined;
  let receivedBytes = 0;
  const digest = newDigest();
  async function* chunksOf(messages: AsyncIterable<DownloadImageDataResponse>): AsyncGenerator<Buffer> {
    for await (const message of messages) {
      if (message.payload?.$case === 'info') {
        info = message.payload.value;
        progress = startProgressBar('download', Number(info.size));
        continue;
      }
      if (message.payload?.$case !== 'chunk') continue;
      if (info === undefined) throw new Error('the server sent image data before the info message');
      const chunk = message.payload.value;
      receivedBytes += chunk.length;
      digest.md5.update(chunk);
      digest.sha512.update(chunk);
      progress?.advance(chunk.length);
      yield chunk;
    }
  }

  try {
    await pipeline(call, chunksOf, output, { end: temporaryPath !== undefined });
    progress?.stop();
    if (info === undefined) throw new Error(`the server sent no info message for image ${imageId}`);
    verifyDownloadedData(imageId, info, receivedBytes, digest);
    if (temporaryPath !== undefined) await rename(temporaryPath, outPath!);
    return info;
  } catch (error) {
    progress?.stop();
    call.cancel();
    if (temporaryPath !== undefined) await rm(temporaryPath, { force: true });
    throw error;
  }
}

function verifyDownloadedData(imageId: string, info: ImageDataInfo, receivedBytes: number, digest: DataDigest): void {
  const problems: string[] = [];
  if (String(receivedBytes) !== info.size) problems.push(`received ${receivedBytes} bytes of ${info.size}`);
  const md5 = digest.md5.digest('hex');
  if (info.checksum !== '' && info.checksum !== md5) problems.push(`MD5 ${md5}, expected ${info.checksum}`);
  const sha512 = digest.sha512.digest('hex');
  // NOTE: only SHA-512, the algorithm the server uses, is checked; another hash_algo is not verified.
  if (info.hashAlgo === 'sha512' && info.hashValue !== sha512) {
    problems.push(`SHA-512 ${sha512}, expected ${info.hashValue}`);
  }
  if (problems.length > 0) {
    const details = problems.join('; ');
    throw new Error(`downloaded data of image ${imageId} does not match the size and hashes the server sent: ${details}`);
  }
}
