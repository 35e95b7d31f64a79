/** The streaming halves of ImageService: upload from a client stream, download to a server stream. */
import type { ServerWritableStream } from '@grpc/grpc-js';
import { openImageData, uploadImageData } from '../app/image-data.js';
import type { RegistryContext } from '../app/registry-context.js';
import { RegistryError, imageNotFound, invalidArgument } from '../domain/errors.js';
import type { Caller } from '../domain/model.js';
import type { Image as ProtoImage } from '../../gen/imageregistry/v1/image.js';
import type {
  DownloadImageDataRequest,
  DownloadImageDataResponse,
  UploadImageDataRequest,
} from '../../gen/imageregistry/v1/image_service.js';
import { imageToProto } from './image-mapping.js';

/** Reads the `start` message, then hands the chunks to the upload use case. */
export async function uploadImageDataFromStream(
  context: RegistryContext,
  caller: Caller,
  messages: AsyncIterable<UploadImageDataRequest>,
  log: { noteImage(message: unknown): void },
  cancellation: AbortSignal,
): Promise<ProtoImage> {
  const iterator = messages[Symbol.asyncIterator]();
  const first = await iterator.next();
  const payload = first.done ? undefined : first.value.payload;
  if (payload?.$case !== 'start') {
    throw invalidArgument('start', 'the first message of the stream must be start, naming the image');
  }
  const start = payload.value;
  log.noteImage(start);

  async function* chunks(): AsyncGenerator<Uint8Array> {
    for (;;) {
      const next = await iterator.next();
      if (next.done) return;
      const message = next.value.payload;
      if (message?.$case !== 'chunk') {
        throw invalidArgument('chunk', 'only the first message may be start; every later message must be a chunk');
      }
      yield message.value;
    }
  }

  const image = await uploadImageData(
    context,
    caller,
    {
      imageId: start.imageId,
      expectedSize: start.expectedSize ?? null,
      expectedChecksum: start.expectedChecksum,
      expectedHashValue: start.expectedHashValue,
    },
    chunks(),
    cancellation,
  );
  return imageToProto(image);
}

type DownloadCall = ServerWritableStream<unknown, DownloadImageDataResponse>;

/**
 * Writes an ImageDataInfo and then the data in chunks, reading the file no
 * faster than the client takes the chunks.
 */
export async function downloadImageData(
  context: RegistryContext,
  caller: Caller,
  request: DownloadImageDataRequest,
  call: DownloadCall,
): Promise<void> {
  const { image, data } = await openImageData(context, caller, request.id);
  try {
    await write(call, {
      payload: {
        $case: 'info',
        value: { size: String(image.size ?? 0), checksum: image.checksum, hashAlgo: image.hashAlgo, hashValue: image.hashValue },
      },
    });
    for await (const chunk of data) {
      await write(call, { payload: { $case: 'chunk', value: chunk as Buffer } });
    }
  } catch (error) {
    // The image was deleted between the check and the read.
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') throw imageNotFound(image.id);
    throw error;
  } finally {
    data.destroy();
  }
}

/** Writes one message, waiting while grpc-js's buffer is full; throws if the client goes away or the call is ended. */
async function write(call: DownloadCall, message: DownloadImageDataResponse): Promise<void> {
  if (call.cancelled) throw new RegistryError('CANCELLED', 'the client cancelled the download', 'CANCELLED');
  if (call.write(message)) return;
  await new Promise<void>((resolve, reject) => {
    const onDrain = () => {
      stopWaiting();
      resolve();
    };
    const onCancelled = () => {
      stopWaiting();
      reject(new RegistryError('CANCELLED', 'the client cancelled the download', 'CANCELLED'));
    };
    // Shutdown ends a call by emitting its status as an error.
    const onEnded = (status: unknown) => {
      stopWaiting();
      reject(status instanceof Error ? status : new RegistryError('UNAVAILABLE', 'the call was ended', 'CALL_ENDED'));
    };
    const stopWaiting = () => {
      call.off('drain', onDrain);
      call.off('cancelled', onCancelled);
      call.off('error', onEnded);
    };
    call.on('drain', onDrain);
    call.on('cancelled', onCancelled);
    call.on('error', onEnded);
  });
}
