/**
 * The four timed transfers: upload and download through the registry's
 * ImageService, and through the bare byte stream. Every upload waits for
 * 'drain' whenever grpc-js's write buffer is full, and every download hashes
 * each chunk with SHA-512 as it arrives, so both servers see the same
 * client.
 */
import { createHash } from 'node:crypto';
import type * as grpc from '@grpc/grpc-js';
import { ImageStatus, type Image } from '../gen/imageregistry/v1/image.js';
import type {
  DownloadImageDataResponse,
  ImageServiceClient,
  UploadImageDataRequest,
} from '../gen/imageregistry/v1/image_service.js';
import { type BareStreamClient, decodeByteCount, encodeDownloadRequest } from './bare-stream-service.js';
import { drainOrInterrupt } from './drain.js';
import { type PayloadDigest, type PayloadSpec, payloadChunks } from './payload.js';

export interface DownloadSummary {
  bytes: number;
  chunkMessages: number;
  maxChunkBytes: number;
}

/** Writes every message with backpressure, then half-closes. `response` is the call's result. */
async function writeAll<T>(call: grpc.ClientWritableStream<T>, messages: Iterable<T>, response: Promise<unknown>): Promise<void> {
  for (const message of messages) {
    if (!call.write(message) && !(await drainOrInterrupt(call, response))) {
      throw new Error('the server returned a response to the upload before the client sent every chunk');
    }
  }
  call.end();
}

/** Calls `onMessage` for each message of a server stream, and cancels the call when it throws. */
function readAll<T>(call: grpc.ClientReadableStream<T>, onMessage: (message: T) => void): Promise<void> {
  return new Promise((resolve, reject) => {
    call.on('data', (message: T) => {
      try {
        onMessage(message);
      } catch (error) {
        reject(error);
        call.cancel();
      }
    });
    call.on('error', reject);
    call.on('end', resolve);
  });
}

function unaryResult<T>(): { promise: Promise<T>; callback: (error: grpc.ServiceError | null, value?: T) => void } {
  let callback!: (error: grpc.ServiceError | null, value?: T) => void;
  const promise = new Promise<T>((resolve, reject) => {
    callback = (error, value) => (error ? reject(error) : resolve(value!));
  });
  return { promise, callback };
}

/** Checks a SHA-512 computed while reading against the expected digest. */
function assertSha512(label: string, actual: string, expected: PayloadDigest): void {
  if (actual !== expected.sha512) {
    throw new Error(`${label}: the SHA-512 of the received data is ${actual}, but the payload's is ${expected.sha512}`);
  }
}

export interface RegistryCaller {
  client: ImageServiceClient;
  metadata(): grpc.Metadata;
}

/** Uploads the payload to a QUEUED image, announcing its size, MD5 and SHA-512, and checks the returned image. */
export async function uploadToRegistry(
  caller: RegistryCaller,
  imageId: string,
  spec: PayloadSpec,
  digest: PayloadDigest,
  deadline: Date,
): Promise<Image> {
  const { promise, callback } = unaryResult<Image>();
  const call = caller.client.uploadImageData(caller.metadata(), { deadline }, callback);
  function* messages(): Generator<UploadImageDataRequest> {
    yield {
      payload: {
        $case: 'start',
        value: {
          imageId,
          expectedSize: String(spec.sizeBytes),
          expectedChecksum: digest.md5,
          expectedHashValue: digest.sha512,
        },
      },
    };
    for (const chunk of payloadChunks(spec)) yield { payload: { $case: 'chunk', value: chunk } };
  }
  await writeAll(call, messages(), promise);
  const image = await promise;
  if (image.status !== ImageStatus.IMAGE_STATUS_ACTIVE || image.size !== String(spec.sizeBytes)) {
    throw new Error(`registry upload: expected an ACTIVE image of ${spec.sizeBytes} bytes, got status ${image.status}, size ${image.size}`);
  }
  return image;
}

/** Downloads an image, checking the info message and the SHA-512 of the chunks against the payload's. */
export async function downloadFromRegistry(
  caller: RegistryCaller,
  imageId: string,
  spec: PayloadSpec,
  digest: PayloadDigest,
  deadline: Date,
): Promise<DownloadSummary> {
  const sha512 = createHash('sha512');
  const summary: DownloadSummary = { bytes: 0, chunkMessages: 0, maxChunkBytes: 0 };
  let infoSeen = false;
  const call = caller.client.downloadImageData({ id: imageId }, caller.metadata(), { deadline });
  await readAll(call, (message: DownloadImageDataResponse) => {
    const payload = message.payload;
    if (payload?.$case === 'info') {
      if (infoSeen || summary.chunkMessages > 0) throw new Error('registry download: info arrived after the first message');
      infoSeen = true;
      if (payload.value.size !== String(spec.sizeBytes) || payload.value.hashValue !== digest.sha512) {
        throw new Error(`registry download: info gives size ${payload.value.size} and SHA-512 ${payload.value.hashValue}, not the payload's`);
      }
      return;
    }
    if (payload?.$case !== 'chunk') throw new Error('registry download: a message carries neither info nor chunk');
    if (!infoSeen) throw new Error('registry download: a chunk arrived before info');
    sha512.update(payload.value);
    summary.bytes += payload.value.byteLength;
    summary.chunkMessages++;
    summary.maxChunkBytes = Math.max(summary.maxChunkBytes, payload.value.byteLength);
  });
  if (summary.bytes !== spec.sizeBytes) throw new Error(`registry download: received ${summary.bytes} bytes, expected ${spec.sizeBytes}`);
  assertSha512('registry download', sha512.digest('hex'), digest);
  return summary;
}

/** Uploads the payload to the bare server and checks the byte count it returns. */
export async function uploadToBare(client: BareStreamClient, spec: PayloadSpec, deadline: Date): Promise<void> {
  const { promise, callback } = unaryResult<Buffer>();
  const call = client.upload({ deadline }, callback);
  await writeAll(call, payloadChunks(spec), promise);
  const received = decodeByteCount(await promise);
  if (received !== spec.sizeBytes) throw new Error(`bare upload: the server counted ${received} bytes, expected ${spec.sizeBytes}`);
}

/** Downloads the payload from the bare server, checking the SHA-512 as the registry download does. */
export async function downloadFromBare(
  client: BareStreamClient,
  spec: PayloadSpec,
  digest: PayloadDigest,
  deadline: Date,
): Promise<DownloadSummary> {
  const sha512 = createHash('sha512');
  const summary: DownloadSummary = { bytes: 0, chunkMessages: 0, maxChunkBytes: 0 };
  const call = client.download(encodeDownloadRequest(spec), { deadline });
  await readAll(call, (chunk: Buffer) => {
    sha512.update(chunk);
    summary.bytes += chunk.byteLength;
    summary.chunkMessages++;
    summary.maxChunkBytes = Math.max(summary.maxChunkBytes, chunk.byteLength);
  });
  if (summary.bytes !== spec.sizeBytes) throw new Error(`bare download: received ${summary.bytes} bytes, expected ${spec.sizeBytes}`);
  assertSha512('bare download', sha512.digest('hex'), digest);
  return summary;
}
