/** Backpressure for a writable stream whose consumer can go away while the writer waits. */
import { once, type EventEmitter } from 'node:events';

/**
 * Waits for 'drain' on `stream`, or for `interrupted` to settle, whichever
 * comes first. Returns true on 'drain' and false when `interrupted`
 * resolved first; rejects when `interrupted` rejects. No listener is left
 * behind either way.
 */
export async function drainOrInterrupt(stream: EventEmitter, interrupted: Promise<unknown>): Promise<boolean> {
  const controller = new AbortController();
  try {
    return await Promise.race([
      once(stream, 'drain', { signal: controller.signal }).then(() => true),
      interrupted.then(() => false),
    ]);
  } finally {
    controller.abort();
  }
}
