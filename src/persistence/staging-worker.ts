/**
 * One worker thread that writes staged uploads to disk and hashes them, so
 * that MD5, SHA-512 and the writes run beside the event loop instead of on
 * it. It starts with the store and serves every upload, so its memory is
 * paid once. The worker's code is a string evaluated by Node, so that it
 * runs the same from tsc output, tsx and vitest.
 */
import { Worker } from 'node:worker_threads';

/**
 * Bytes travel through a ring of shared slots per upload, which the main
 * thread copies into. Transferring each chunk's own buffer instead left the
 * freeing of that memory to the worker's garbage collector, which rarely
 * runs there, and the server's memory grew by about 190 MiB per upload of
 * 1 GiB.
 */
const SLOT_BYTES = 1024 * 1024;
const SLOT_COUNT = 4;

/** Messages to the worker, each for one upload: open the file, write a slot, finish or abort. */
type ToWorker =
  | { kind: 'open'; upload: number; path: string; slots: SharedArrayBuffer }
  | { kind: 'chunk'; upload: number; slot: number; length: number }
  | { kind: 'finish'; upload: number }
  | { kind: 'abort'; upload: number };

/** Replies from the worker, one for each message, in order for each upload. */
type FromWorker =
  | { kind: 'ok'; upload: number }
  | { kind: 'finished'; upload: number; checksum: string; sha512: string }
  | { kind: 'error'; upload: number; message: string; code?: string };

const WORKER_SOURCE = `
const { parentPort } = require('node:worker_threads');
const { createHash } = require('node:crypto');
const fs = require('node:fs');
const uploads = new Map();
function close(upload, remove) {
  const state = uploads.get(upload);
  if (state === undefined) return;
  uploads.delete(upload);
  if (state.fd !== null) fs.closeSync(state.fd);
  if (remove) fs.rmSync(state.path, { force: true });
}
parentPort.on('message', (message) => {
  const upload = message.upload;
  try {
    if (message.kind === 'open') {
      const fd = fs.openSync(message.path, 'wx', 0o600);
      uploads.set(upload, { fd, path: message.path, slots: message.slots, md5: createHash('md5'), sha512: createHash('sha512') });
      parentPort.postMessage({ kind: 'ok', upload });
    } else if (message.kind === 'chunk') {
      const state = uploads.get(upload);
      const bytes = new Uint8Array(state.slots, message.slot * ${SLOT_BYTES}, message.length);
      state.md5.update(bytes);
      state.sha512.update(bytes);
      let written = 0;
      while (written < bytes.length) written += fs.writeSync(state.fd, bytes, written);
      parentPort.postMessage({ kind: 'ok', upload });
    } else if (message.kind === 'finish') {
      const state = uploads.get(upload);
      fs.fsyncSync(state.fd);
      const checksum = state.md5.digest('hex');
      const sha512 = state.sha512.digest('hex');
      close(upload, false);
      parentPort.postMessage({ kind: 'finished', upload, checksum, sha512 });
    } else if (message.kind === 'abort') {
      close(upload, true);
      parentPort.postMessage({ kind: 'ok', upload });
    }
  } catch (error) {
    try { close(upload, true); } catch {}
    parentPort.postMessage({ kind: 'error', upload, message: String(error && error.message), code: error && error.code });
  }
});
`;

interface Waiter {
  resolve(reply: FromWorker): void;
  reject(error: Error): void;
}

/** The worker thread, and the replies each upload is waiting for. */
export class StagingWorker {
  private worker: Worker | undefined;
  private failure: Error | undefined;
  private readonly waiters = new Map<number, Waiter[]>();
  private nextUpload = 1;

  /** Starts the thread; a thread that died is started again by the next upload. */
  start(): void {
    if (this.worker !== undefined && this.failure === undefined) return;
    this.failure = undefined;
    const worker = new Worker(WORKER_SOURCE, { eval: true });
    worker.unref();
    worker.on('message', (reply: FromWorker) => this.waiters.get(reply.upload)?.shift()?.resolve(reply));
    worker.on('error', (error) => this.failAll(error));
    worker.on('exit', () => this.failAll(new Error('the staging worker thread exited')));
    this.worker = worker;
  }

  async stop(): Promise<void> {
    const worker = this.worker;
    this.worker = undefined;
    await worker?.terminate();
  }

  /** Opens a staging file for one upload. */
  async openUpload(path: string): Promise<StagingUpload> {
    this.start();
    const upload = new StagingUpload(this, this.nextUpload++);
    await upload.open(path);
    return upload;
  }

  /** Sends a message for one upload and resolves to the worker's reply. */
  send(message: ToWorker): Promise<FromWorker> {
    if (this.failure !== undefined || this.worker === undefined) {
      return Promise.reject(this.failure ?? new Error('the staging worker is stopped'));
    }
    const worker = this.worker;
    return new Promise((resolve, reject) => {
      const queue = this.waiters.get(message.upload) ?? [];
      queue.push({ resolve, reject });
      this.waiters.set(message.upload, queue);
      worker.postMessage(message);
    });
  }

  /** Forgets an upload's reply queue once it has finished or aborted. */
  release(upload: number): void {
    this.waiters.delete(upload);
  }

  private failAll(error: Error): void {
    this.failure ??= error;
    for (const queue of this.waiters.values()) for (const waiter of queue.splice(0)) waiter.reject(error);
  }
}

/** One staged upload: its shared slots and the chunks still in the worker. */
export class StagingUpload {
  private readonly slots = new SharedArrayBuffer(SLOT_BYTES * SLOT_COUNT);
  private readonly inFlight: Promise<FromWorker>[] = [];
  private nextSlot = 0;

  constructor(
    private readonly worker: StagingWorker,
    private readonly id: number,
  ) {}

  async open(path: string): Promise<void> {
    await expectOk(this.worker.send({ kind: 'open', upload: this.id, path, slots: this.slots }));
  }

  /** Copies a chunk into free slots and queues it, waiting while every slot is in use. */
  async write(chunk: Uint8Array): Promise<void> {
    for (let offset = 0; offset < chunk.byteLength; offset += SLOT_BYTES) {
      // Slots are used in turn and the worker replies in order, so the
      // oldest message in flight is the one that uses the next slot.
      if (this.inFlight.length === SLOT_COUNT) await expectOk(this.inFlight.shift()!);
      const piece = chunk.subarray(offset, offset + SLOT_BYTES);
      const slot = this.nextSlot;
      new Uint8Array(this.slots, slot * SLOT_BYTES, piece.byteLength).set(piece);
      this.nextSlot = (slot + 1) % SLOT_COUNT;
      this.inFlight.push(this.worker.send({ kind: 'chunk', upload: this.id, slot, length: piece.byteLength }));
    }
  }

  /** Waits for every chunk, flushes the file to disk, and returns the hashes. */
  async finish(): Promise<{ checksum: string; sha512: string }> {
    try {
      while (this.inFlight.length > 0) await expectOk(this.inFlight.shift()!);
      const reply = await this.worker.send({ kind: 'finish', upload: this.id });
      if (reply.kind !== 'finished') throw errorOf(reply);
      return { checksum: reply.checksum, sha512: reply.sha512 };
    } finally {
      this.worker.release(this.id);
    }
  }

  /** Closes and deletes the staging file. */
  async abort(): Promise<void> {
    await Promise.allSettled(this.inFlight.splice(0));
    await this.worker.send({ kind: 'abort', upload: this.id }).catch(() => {});
    this.worker.release(this.id);
  }
}

async function expectOk(reply: Promise<FromWorker>): Promise<void> {
  const result = await reply;
  if (result.kind === 'error') throw errorOf(result);
}

function errorOf(reply: FromWorker): Error {
  if (reply.kind !== 'error') return new Error(`unexpected reply ${reply.kind} from the staging worker`);
  return Object.assign(new Error(reply.message), { code: reply.code });
}
