/**
 * Starts the real service in-process on 127.0.0.1:0 against a fresh
 * database, and returns generated gRPC clients bound to a caller's token.
 */
import { randomUUID } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { once } from 'node:events';
import * as grpc from '@grpc/grpc-js';
import { SignJWT } from 'jose';
import { pino } from 'pino';
import type { Empty } from '../../gen/google/protobuf/empty.js';
import type { Image } from '../../gen/imageregistry/v1/image.js';
import {
  AddImageTagRequest,
  CreateImageRequest,
  DeactivateImageRequest,
  type DownloadImageDataResponse,
  type ImageDataInfo,
  UploadImageDataRequest,
  DeleteImageRequest,
  GetImageRequest,
  ImageServiceClient,
  ListImagesRequest,
  type DeepPartial,
  type ListImagesResponse,
  ReactivateImageRequest,
  RemoveImageTagRequest,
  UpdateImageRequest,
} from '../../gen/imageregistry/v1/image_service.js';
import {
  CreateMemberRequest,
  DeleteMemberRequest,
  GetMemberRequest,
  ListMembersRequest,
  type ListMembersResponse,
  type Member,
  MemberServiceClient,
  UpdateMemberRequest,
} from '../../gen/imageregistry/v1/member_service.js';
import { loadConfig } from '../../src/platform/config.js';
import { type RunningService, startService } from '../../src/service.js';
import { type BackendName, type TestDatabase, createTestDatabase } from './databases.js';

/** A request with every field optional, as ts-proto's fromPartial takes it. */
type Partial<T> = DeepPartial<T>;

export interface ImagesApi {
  createImage(request: Partial<CreateImageRequest>): Promise<Image>;
  getImage(request: Partial<GetImageRequest>): Promise<Image>;
  listImages(request: Partial<ListImagesRequest>): Promise<ListImagesResponse>;
  updateImage(request: Partial<UpdateImageRequest>): Promise<Image>;
  addImageTag(request: Partial<AddImageTagRequest>): Promise<Image>;
  removeImageTag(request: Partial<RemoveImageTagRequest>): Promise<Image>;
  deleteImage(request: Partial<DeleteImageRequest>): Promise<Empty>;
  deactivateImage(request: Partial<DeactivateImageRequest>): Promise<Image>;
  reactivateImage(request: Partial<ReactivateImageRequest>): Promise<Image>;
}

export interface MembersApi {
  createMember(request: Partial<CreateMemberRequest>): Promise<Member>;
  getMember(request: Partial<GetMemberRequest>): Promise<Member>;
  listMembers(request: Partial<ListMembersRequest>): Promise<ListMembersResponse>;
  updateMember(request: Partial<UpdateMemberRequest>): Promise<Member>;
  deleteMember(request: Partial<DeleteMemberRequest>): Promise<Empty>;
}

/** The fields of an upload's first message; all but imageId are optional. */
export interface UploadStartFields {
  imageId: string;
  expectedSize?: number;
  expectedChecksum?: string;
  expectedHashValue?: string;
}

export interface DownloadedData {
  info: ImageDataInfo | undefined;
  data: Buffer;
  /** Number of chunk messages received. */
  chunkCount: number;
}

export interface DataApi {
  /** Sends the start message and then each chunk, and resolves to the uploaded image. */
  upload(start: UploadStartFields, chunks: Iterable<Buffer> | AsyncIterable<Buffer>): Promise<Image>;
  /** Reads the whole download stream. */
  download(imageId: string): Promise<DownloadedData>;
  /** The raw generated client, for calls a test drives itself (cancelling, slow reading). */
  client: ImageServiceClient;
  metadata(): grpc.Metadata;
}

export interface RegistryClient {
  images: ImagesApi;
  members: MembersApi;
  data: DataApi;
}

export interface CallerOptions {
  /** Roles claim; default ['member'], or ['admin'] with admin. */
  roles?: string[];
  admin?: boolean;
}

const IMAGE_REQUESTS = {
  createImage: CreateImageRequest,
  getImage: GetImageRequest,
  listImages: ListImagesRequest,
  updateImage: UpdateImageRequest,
  addImageTag: AddImageTagRequest,
  removeImageTag: RemoveImageTagRequest,
  deleteImage: DeleteImageRequest,
  deactivateImage: DeactivateImageRequest,
  reactivateImage: ReactivateImageRequest,
};

const MEMBER_REQUESTS = {
  createMember: CreateMemberRequest,
  getMember: GetMemberRequest,
  listMembers: ListMembersRequest,
  updateMember: UpdateMemberRequest,
  deleteMember: DeleteMemberRequest,
};

type UnaryMethod = (
  request: unknown,
  metadata: grpc.Metadata,
  callback: (error: grpc.ServiceError | null, response: unknown) => void,
) => unknown;

/** Wraps each method of a generated client as a promise, filling omitted request fields. */
function bindMethods<T>(
  client: grpc.Client,
  requests: Record<string, { fromPartial(object: unknown): unknown }>,
  metadata: () => grpc.Metadata,
): T {
  const api: Record<string, (request: unknown) => Promise<unknown>> = {};
  for (const [method, message] of Object.entries(requests)) {
    const unary = (client as unknown as Record<string, UnaryMethod>)[method]!.bind(client);
    api[method] = (request) =>
      new Promise((resolve, reject) => {
        unary(message.fromPartial(request as object), metadata(), (error, response) =>
          error ? reject(error) : resolve(response),
        );
      });
  }
  return api as T;
}

function bindDataMethods(client: ImageServiceClient, metadata: () => grpc.Metadata): DataApi {
  return {
    client,
    metadata,
    upload: (start, chunks) =>
      new Promise<Image>((resolve, reject) => {
        const call = client.uploadImageData(metadata(), (error, image) => (error ? reject(error) : resolve(image!)));
        void (async () => {
          const startMessage = UploadImageDataRequest.fromPartial({
            payload: {
              $case: 'start',
              value: {
                imageId: start.imageId,
                expectedSize: start.expectedSize === undefined ? undefined : String(start.expectedSize),
                expectedChecksum: start.expectedChecksum ?? '',
                expectedHashValue: start.expectedHashValue ?? '',
              },
            },
          });
          if (!call.write(startMessage)) await once(call, 'drain');
          for await (const chunk of chunks) {
            if (!call.write({ payload: { $case: 'chunk', value: chunk } })) await once(call, 'drain');
          }
          call.end();
        })().catch(() => call.end());
      }),
    download: (imageId) =>
      new Promise<DownloadedData>((resolve, reject) => {
        const call = client.downloadImageData({ id: imageId }, metadata());
        let info: ImageDataInfo | undefined;
        const parts: Buffer[] = [];
        call.on('data', (message: DownloadImageDataResponse) => {
          if (message.payload?.$case === 'info') info = message.payload.value;
          if (message.payload?.$case === 'chunk') parts.push(message.payload.value);
        });
        call.on('error', reject);
        call.on('end', () => resolve({ info, data: Buffer.concat(parts), chunkCount: parts.length }));
      }),
  };
}

export class RegistryHarness {
  private readonly clients: grpc.Client[] = [];

  private constructor(
    readonly backend: BackendName,
    readonly service: RunningService,
    readonly secret: string,
    private readonly database: TestDatabase,
    private readonly storeFolder: string | undefined,
  ) {}

  /** Starts a server on a fresh database; `environment` overrides configuration variables. */
  static async start(backend: BackendName, environment: Record<string, string> = {}): Promise<RegistryHarness> {
    const database = await createTestDatabase(backend);
    const secret = `test-secret-${randomUUID()}`;
    // Each server sweeps its store of data it has no image for, so servers must not share one.
    const storeFolder = environment.IMAGE_STORE_DIR === undefined ? mkdtempSync(join(tmpdir(), 'registry-store-')) : undefined;
    const config = loadConfig({
      GRPC_LISTEN: '127.0.0.1:0',
      DATABASE_URL: database.url,
      AUTH_JWT_SECRET: secret,
      LOG_LEVEL: 'silent',
      ...(storeFolder === undefined ? {} : { IMAGE_STORE_DIR: storeFolder }),
      ...environment,
    });
    const service = await startService(config, pino({ level: 'silent' }));
    return new RegistryHarness(backend, service, secret, database, storeFolder);
  }

  get address(): string {
    return this.service.address;
  }

  /** The DATABASE_URL the server runs on, for tests that read or lock rows directly. */
  get databaseUrl(): string {
    return this.database.url;
  }

  /** Mints a valid HS256 token for a project. */
  async token(project: string, options: CallerOptions = {}): Promise<string> {
    const roles = options.roles ?? (options.admin ? ['admin'] : ['member']);
    return new SignJWT({ project_id: project, roles })
      .setProtectedHeader({ alg: 'HS256' })
      .setSubject(`user-of-${project}`)
      .setExpirationTime('1h')
      .sign(new TextEncoder().encode(this.secret));
  }

  /** Clients that call as `project`. */
  async as(project: string, options: CallerOptions = {}): Promise<RegistryClient> {
    return this.withToken(await this.token(project, options));
  }

  /** Clients that send `authorization: Bearer <token>`, or no authorization when null. */
  withToken(token: string | null): RegistryClient {
    const credentials = grpc.credentials.createInsecure();
    const imageClient = new ImageServiceClient(this.address, credentials);
    const memberClient = new MemberServiceClient(this.address, credentials);
    this.clients.push(imageClient, memberClient);
    const metadata = () => {
      const result = new grpc.Metadata();
      if (token !== null) result.set('authorization', `Bearer ${token}`);
      return result;
    };
    return {
      images: bindMethods<ImagesApi>(imageClient, IMAGE_REQUESTS, metadata),
      members: bindMethods<MembersApi>(memberClient, MEMBER_REQUESTS, metadata),
      data: bindDataMethods(imageClient, metadata),
    };
  }

  async stop(): Promise<void> {
    for (const client of this.clients) client.close();
    await this.service.stop();
    await this.database.drop();
    if (this.storeFolder !== undefined) rmSync(this.storeFolder, { recursive: true, force: true });
  }
}

/** Resolves to the gRPC status of a call that must fail, and fails the test if it succeeds. */
export async function failure(call: Promise<unknown>): Promise<{ code: string; message: string }> {
  try {
    await call;
  } catch (error) {
    const { code, details } = error as grpc.ServiceError;
    return { code: grpc.status[code], message: details };
  }
  throw new Error('expected the call to fail, but it succeeded');
}
