/**
 * Channel credentials, generated clients and promise wrappers that the
 * command-line client uses to call the registry.
 */
import { readFileSync } from 'node:fs';
import * as grpc from '@grpc/grpc-js';
import type { Command } from 'commander';
import { ImageServiceClient } from '../../gen/imageregistry/v1/image_service.js';
import { MemberServiceClient } from '../../gen/imageregistry/v1/member_service.js';

export const DEFAULT_ADDRESS = '127.0.0.1:50051';

/**
 * Max response size the client accepts. ListImagesRequest.page_size in the
 * proto recommends accepting ListImages pages of up to 16 MiB, because one
 * image can carry 8.4 MB of properties. grpc-js accepts only 4 MiB by default.
 */
const MAX_RECEIVE_MESSAGE_BYTES = 16 * 1024 * 1024;

/** An error in how the command was invoked; the process exits with status 2. */
export class UsageError extends Error {}

/** Global options for the server address, the token and TLS. */
export interface ConnectionOptions {
  addr: string;
  token?: string;
  tls?: boolean;
  tlsCa?: string;
  tlsCert?: string;
  tlsKey?: string;
}

export interface RegistryClients {
  images: ImageServiceClient;
  members: MemberServiceClient;
  /** The bearer token the calls send. */
  token: string;
  /** Returns new metadata with the authorization header, one per call. */
  metadata(): grpc.Metadata;
  close(): void;
}

function readPemFile(option: string, path: string): Buffer {
  try {
    return readFileSync(path);
  } catch (error) {
    throw new UsageError(`${option} ${JSON.stringify(path)} cannot be read: ${(error as Error).message}`);
  }
}

/** Builds plaintext credentials, or TLS ones when --tls or any --tls-* option is given. */
function channelCredentials(options: ConnectionOptions): grpc.ChannelCredentials {
  if ((options.tlsCert === undefined) !== (options.tlsKey === undefined)) {
    throw new UsageError('--tls-cert and --tls-key must be given together');
  }
  const useTls = options.tls === true || options.tlsCa !== undefined || options.tlsCert !== undefined;
  if (!useTls) return grpc.credentials.createInsecure();
  // Without --tls-ca, grpc-js verifies the server against Node's default CA certificates.
  const ca = options.tlsCa === undefined ? null : readPemFile('--tls-ca', options.tlsCa);
  const key = options.tlsKey === undefined ? null : readPemFile('--tls-key', options.tlsKey);
  const cert = options.tlsCert === undefined ? null : readPemFile('--tls-cert', options.tlsCert);
  return grpc.credentials.createSsl(ca, key, cert);
}

/** Opens clients to the registry; throws UsageError when no token is given. */
export function openClients(options: ConnectionOptions): RegistryClients {
  const token = options.token?.trim() ?? '';
  if (token === '') {
    throw new UsageError(
      'missing token: pass --token or set IMAGE_REGISTRY_TOKEN ' +
        '(for development, mint one with `image-registry token --project PROJECT`)',
    );
  }
  const credentials = channelCredentials(options);
  const channelOptions = { 'grpc.max_receive_message_length': MAX_RECEIVE_MESSAGE_BYTES };
  const images = new ImageServiceClient(options.addr, credentials, channelOptions);
  const members = new MemberServiceClient(options.addr, credentials, channelOptions);
  return {
    images,
    members,
    token,
    metadata: () => {
      const metadata = new grpc.Metadata();
      metadata.set('authorization', `Bearer ${token}`);
      return metadata;
    },
    close: () => {
      images.close();
      members.close();
    },
  };
}

/** The last overload of every unary method of a ts-proto grpc-js client. */
type UnaryMethod<Request, Response> = (
  request: Request,
  metadata: grpc.Metadata,
  options: Partial<grpc.CallOptions>,
  callback: (error: grpc.ServiceError | null, response: Response) => void,
) => grpc.ClientUnaryCall;

/** Calls a unary method of a generated client and resolves to its response. */
export function callUnary<Request, Response>(
  method: UnaryMethod<Request, Response>,
  request: Request,
  metadata: grpc.Metadata,
): Promise<Response> {
  return new Promise((resolve, reject) => {
    method(request, metadata, {}, (error, response) => (error ? reject(error) : resolve(response)));
  });
}

/** Tells a gRPC status error (a grpc-js ServiceError) from other errors. */
export function isServiceError(error: unknown): error is grpc.ServiceError {
  return error instanceof Error && typeof (error as Partial<grpc.ServiceError>).code === 'number' && 'details' in error;
}

/** The options of the top-level command, given before or after the subcommand. */
export interface GlobalOptions extends ConnectionOptions {
  json?: boolean;
}

/** Opens clients from the command's global options, runs `action`, then closes the clients. */
export async function withClients(
  command: Command,
  action: (clients: RegistryClients, options: GlobalOptions) => Promise<void>,
): Promise<void> {
  const options = command.optsWithGlobals<GlobalOptions>();
  const clients = openClients(options);
  try {
    await action(clients, options);
  } finally {
    clients.close();
  }
}
