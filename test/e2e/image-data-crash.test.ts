/**
 * End-to-end test of an upload whose server is killed: the real entry point
 * runs as a child process, is killed with SIGKILL in the middle of an upload
 * and restarted on the same database and image store.
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { createHash, randomBytes, randomUUID } from 'node:crypto';
import { once } from 'node:events';
import { mkdtempSync, readdirSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { setTimeout as sleep } from 'node:timers/promises';
import { fileURLToPath } from 'node:url';
import * as grpc from '@grpc/grpc-js';
import { SignJWT } from 'jose';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type Image, ImageStatus } from '../../gen/imageregistry/v1/image.js';
import {
  CreateImageRequest,
  type DownloadImageDataResponse,
  GetImageRequest,
  type ImageDataInfo,
  ImageServiceClient,
  type UploadImageDataRequest,
} from '../../gen/imageregistry/v1/image_service.js';
import { type TestDatabase, createTestDatabase, testedBackends } from '../support/databases.js';

const REPOSITORY_ROOT = fileURLToPath(new URL('../..', import.meta.url));
const KIB = 1024;
const MIB = 1024 * KIB;
const CHUNK_BYTES = 256 * KIB;
const STARTUP_TIMEOUT_MS = 30_000;
/**
 * The server renews a lease every third of it, so a killed upload's lease
 * has at least two thirds left. With 5 s, the restart has over 3 s before
 * the lease expires, which the check of the held lease needs.
 */
const UPLOAD_LEASE_S = 5;

function sha512(data: Buffer): string {
  return createHash('sha512').update(data).digest('hex');
}

/** A server started from src/main.ts in a child process. */
interface ServerProcess {
  child: ChildProcess;
  address: string;
  /** Resolves with the exit code, or null after a signal. */
  exited: Promise<number | null>;
  /** Lines of stdout and stderr, for failure messages. */
  output: string[];
}

/** Starts the entry point and resolves once it logs that it listens. */
async function startServer(environment: Record<string, string>): Promise<ServerProcess> {
  const child = spawn(process.execPath, ['--import', 'tsx', 'src/main.ts'], {
    cwd: REPOSITORY_ROOT,
    env: { ...process.env, ...environment },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  const output: string[] = [];
  const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
  createInterface({ input: child.stderr! }).on('line', (line) => output.push(line));

  const address = await new Promise<string>((resolve, reject) => {
    const timer = setTimeout(() => {
      child.kill('SIGKILL');
      reject(new Error(`the server did not listen within ${STARTUP_TIMEOUT_MS} ms:\n${output.join('\n')}`));
    }, STARTUP_TIMEOUT_MS);
    void exited.then((code) => {
      clearTimeout(timer);
      reject(new Error(`the server exited with code ${code} before it listened:\n${output.join('\n')}`));
    });
    createInterface({ input: child.stdout! }).on('line', (line) => {
      output.push(line);
      let entry: { msg?: string; address?: string };
      try {
        entry = JSON.parse(line) as typeof entry;
      } catch {
        return;
      }
      if (entry.msg === 'image registry listening' && entry.address !== undefined) {
        clearTimeout(timer);
        resolve(entry.address);
      }
    });
  });
  return { child, address, exited, output };
}

/** Stops a server that is still running with SIGTERM, and with SIGKILL after 10 s. */
async function stopServer(server: ServerProcess | undefined): Promise<void> {
  if (server === undefined || server.child.exitCode !== null || server.child.signalCode !== null) return;
  server.child.kill('SIGTERM');
  const timer = setTimeout(() => server.child.kill('SIGKILL'), 10_000);
  await server.exited;
  clearTimeout(timer);
}

async function mintToken(secret: string, project: string): Promise<string> {
  return new SignJWT({ project_id: project, roles: ['member'] })
    .setProtectedHeader({ alg: 'HS256' })
    .setSubject(`user-of-${project}`)
    .setExpirationTime('1h')
    .sign(new TextEncoder().encode(secret));
}

/** A generated client bound to one server and one token. */
class RegistryConnection {
  readonly client: ImageServiceClient;

  constructor(
    address: string,
    private readonly token: string,
  ) {
    this.client = new ImageServiceClient(address, grpc.credentials.createInsecure());
  }

  metadata(): grpc.Metadata {
    const metadata = new grpc.Metadata();
    metadata.set('authorization', `Bearer ${this.token}`);
    return metadata;
  }

  createImage(name: string): Promise<Image> {
    return new Promise((resolve, reject) => {
      this.client.createImage(CreateImageRequest.fromPartial({ image: { name } }), this.metadata(), (error, image) =>
        error ? reject(error) : resolve(image),
      );
    });
  }

  getImage(id: string): Promise<Image> {
    return new Promise((resolve, reject) => {
      this.client.getImage(GetImageRequest.fromPartial({ id }), this.metadata(), (error, image) =>
        error ? reject(error) : resolve(image),
      );
    });
  }

  /** Opens an upload; the test writes the messages. */
  openUpload(): { call: grpc.ClientWritableStream<UploadImageDataRequest>; outcome: Promise<Image> } {
    let call!: grpc.ClientWritableStream<UploadImageDataRequest>;
    const outcome = new Promise<Image>((resolve, reject) => {
      call = this.client.uploadImageData(this.metadata(), (error, image) => (error ? reject(error) : resolve(image)));
    });
    outcome.catch(() => {});
    return { call, outcome };
  }

  /** Uploads `data` in 256 KiB chunks with its size and SHA-512. */
  async upload(imageId: string, data: Buffer): Promise<Image> {
    const { call, outcome } = this.openUpload();
    const answered = outcome.then(
      () => undefined,
      () => undefined,
    );
    const messages: UploadImageDataRequest[] = [
      {
        payload: {
          $case: 'start',
          value: {
            imageId,
            expectedSize: String(data.length),
            expectedChecksum: '',
            expectedHashValue: sha512(data),
          },
        },
      },
    ];
    for (let offset = 0; offset < data.length; offset += CHUNK_BYTES) {
      messages.push({ payload: { $case: 'chunk', value: data.subarray(offset, offset + CHUNK_BYTES) } });
    }
    for (const message of messages) {
      if (!call.write(message)) await Promise.race([once(call, 'drain'), answered]);
    }
    call.end();
    return outcome;
  }

  download(imageId: string): Promise<{ info: ImageDataInfo | undefined; data: Buffer }> {
    return new Promise((resolve, reject) => {
      const call = this.client.downloadImageData({ id: imageId }, this.metadata());
      let info: ImageDataInfo | undefined;
      const parts: Buffer[] = [];
      call.on('data', (message: DownloadImageDataResponse) => {
        if (message.payload?.$case === 'info') info = message.payload.value;
        if (message.payload?.$case === 'chunk') parts.push(message.payload.value);
      });
      call.on('error', reject);
      call.on('end', () => resolve({ info, data: Buffer.concat(parts) }));
    });
  }

  close(): void {
    this.client.close();
  }
}

/** Resolves to the status name of a call that must fail, and fails the test if it succeeds. */
async function failureCode(call: Promise<unknown>): Promise<string> {
  try {
    await call;
  } catch (error) {
    return grpc.status[(error as grpc.ServiceError).code];
  }
  throw new Error('expected the call to fail, but it succeeded');
}

function stagedBytesOf(storeDir: string, imageId: string): number {
  return readdirSync(storeDir)
    .filter((name) => name.startsWith(`.staging-${imageId}.`))
    .reduce((total, name) => total + (statSync(join(storeDir, name), { throwIfNoEntry: false })?.size ?? 0), 0);
}

describe.each(testedBackends())('upload after a server crash on %s', (backend) => {
  let folder: string;
  let storeDir: string;
  let database: TestDatabase;
  let environment: Record<string, string>;
  const secret = `crash-test-secret-${randomUUID()}`;
  const servers: ServerProcess[] = [];
  const callers: RegistryConnection[] = [];

  beforeAll(async () => {
    folder = mkdtempSync(join(tmpdir(), 'registry-crash-'));
    storeDir = join(folder, 'images');
    database = await createTestDatabase(backend);
    environment = {
      GRPC_LISTEN: '127.0.0.1:0',
      DATABASE_URL: database.url,
      IMAGE_STORE_DIR: storeDir,
      AUTH_JWT_SECRET: secret,
      UPLOAD_LEASE_S: String(UPLOAD_LEASE_S),
      LOG_LEVEL: 'info',
    };
  });
  afterAll(async () => {
    for (const caller of callers) caller.close();
    for (const server of servers) await stopServer(server);
    await database?.drop();
    if (folder !== undefined) rmSync(folder, { recursive: true, force: true });
  });

  async function start(): Promise<RegistryConnection> {
    const server = await startServer(environment);
    servers.push(server);
    const caller = new RegistryConnection(server.address, await mintToken(secret, 'proj-crash'));
    callers.push(caller);
    return caller;
  }

  it('recovers an upload killed mid-stream', { timeout: 90_000 }, async () => {
    const before = await start();
    const earlierImage = await before.createImage('uploaded-before-crash');
    const earlierData = randomBytes(MIB + 17);
    await before.upload(earlierImage.id, earlierData);
    const image = await before.createImage('crashed-upload');

    // Upload without an expected size until the server has staged 8 MiB.
    const { call, outcome } = before.openUpload();
    call.write({ payload: { $case: 'start', value: { imageId: image.id, expectedChecksum: '', expectedHashValue: '' } } });
    const answered = outcome.then(
      () => undefined,
      () => undefined,
    );
    for (let index = 0; index < 400 && stagedBytesOf(storeDir, image.id) < 8 * MIB; index++) {
      if (!call.write({ payload: { $case: 'chunk', value: randomBytes(CHUNK_BYTES) } })) {
        await Promise.race([once(call, 'drain'), answered]);
      }
    }
    expect(stagedBytesOf(storeDir, image.id)).toBeGreaterThanOrEqual(8 * MIB);
    expect((await before.getImage(image.id)).status).toBe(ImageStatus.IMAGE_STATUS_SAVING);

    const crashed = servers.at(-1)!;
    crashed.child.kill('SIGKILL');
    await crashed.exited;
    expect(crashed.child.signalCode).toBe('SIGKILL');
    expect(await failureCode(outcome)).not.toBe('OK');

    const after = await start();
    const restarted = await after.getImage(image.id);
    expect(restarted.status).not.toBe(ImageStatus.IMAGE_STATUS_ACTIVE);
    expect(restarted.size).toBeUndefined();
    expect(readdirSync(storeDir)).not.toContain(image.id);
    expect(await failureCode(after.download(image.id))).toBe('FAILED_PRECONDITION');

    const data = randomBytes(3 * MIB + 5);
    expect(await failureCode(after.upload(image.id, data))).toBe('FAILED_PRECONDITION');

    // Retry every 250 ms until the lease of the killed upload expires.
    const deadline = Date.now() + (UPLOAD_LEASE_S + 10) * 1000;
    let uploaded: Image | undefined;
    const retryCodes = new Set<string>();
    while (uploaded === undefined && Date.now() < deadline) {
      await sleep(250);
      try {
        uploaded = await after.upload(image.id, data);
      } catch (error) {
        retryCodes.add(grpc.status[(error as grpc.ServiceError).code]);
      }
    }
    expect([...retryCodes].filter((code) => code !== 'FAILED_PRECONDITION')).toEqual([]);
    expect(uploaded?.status).toBe(ImageStatus.IMAGE_STATUS_ACTIVE);
    expect(uploaded?.size).toBe(String(data.length));

    const downloaded = await after.download(image.id);
    expect(downloaded.info?.hashValue).toBe(sha512(data));
    expect(downloaded.data.equals(data)).toBe(true);
    expect((await after.download(earlierImage.id)).data.equals(earlierData)).toBe(true);
  });
});
