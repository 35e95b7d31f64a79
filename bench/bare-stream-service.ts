/**
 * A gRPC service without protobuf: every message is the raw Buffer that was
 * written, so the benchmark can measure what grpc-js alone costs for a byte
 * stream. Used by bare-stream-server.ts and by the benchmark's client.
 */
import * as grpc from '@grpc/grpc-js';
import type { PayloadSpec } from './payload.js';

const passBuffer = (buffer: Buffer): Buffer => buffer;

export const bareStreamDefinition = {
  /** Client stream of data chunks. The response is the byte count as an 8-byte big-endian integer. */
  upload: {
    path: '/bench.BareStream/Upload',
    requestStream: true,
    responseStream: false,
    requestSerialize: passBuffer,
    requestDeserialize: passBuffer,
    responseSerialize: passBuffer,
    responseDeserialize: passBuffer,
  },
  /** The request is a PayloadSpec as JSON, and the response stream is that payload in chunks. */
  download: {
    path: '/bench.BareStream/Download',
    requestStream: false,
    responseStream: true,
    requestSerialize: passBuffer,
    requestDeserialize: passBuffer,
    responseSerialize: passBuffer,
    responseDeserialize: passBuffer,
  },
} satisfies grpc.ServiceDefinition;

export interface BareStreamClient extends grpc.Client {
  upload(options: grpc.CallOptions, callback: grpc.requestCallback<Buffer>): grpc.ClientWritableStream<Buffer>;
  download(request: Buffer, options: grpc.CallOptions): grpc.ClientReadableStream<Buffer>;
}

const BareStreamClientConstructor = grpc.makeGenericClientConstructor(bareStreamDefinition, 'bench.BareStream');

export function createBareStreamClient(address: string, options: grpc.ClientOptions): BareStreamClient {
  return new BareStreamClientConstructor(address, grpc.credentials.createInsecure(), options) as unknown as BareStreamClient;
}

export function encodeDownloadRequest(spec: PayloadSpec): Buffer {
  return Buffer.from(JSON.stringify(spec));
}

/** Parses a download request, throwing on anything but a PayloadSpec of whole positive numbers. */
export function decodeDownloadRequest(bytes: Buffer): PayloadSpec {
  const spec = JSON.parse(bytes.toString('utf8')) as Partial<PayloadSpec>;
  const { sizeBytes, chunkBytes, seed } = spec;
  if (!Number.isSafeInteger(sizeBytes) || sizeBytes! < 0) throw new Error(`invalid sizeBytes: ${String(sizeBytes)}`);
  if (!Number.isSafeInteger(chunkBytes) || chunkBytes! < 1) throw new Error(`invalid chunkBytes: ${String(chunkBytes)}`);
  if (typeof seed !== 'string' || seed === '') throw new Error(`invalid seed: ${String(seed)}`);
  return { sizeBytes: sizeBytes!, chunkBytes: chunkBytes!, seed };
}

export function encodeByteCount(bytes: number): Buffer {
  const buffer = Buffer.alloc(8);
  buffer.writeBigUInt64BE(BigInt(bytes));
  return buffer;
}

export function decodeByteCount(buffer: Buffer): number {
  return Number(buffer.readBigUInt64BE());
}
