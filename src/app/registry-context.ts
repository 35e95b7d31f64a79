/** The context every use case needs: the database, limits from the configuration, and a clock. */
import { randomUUID } from 'node:crypto';
import { assertReadable } from '../domain/image-access.js';
import type { Caller, Image, Member } from '../domain/model.js';
import type { Logger } from 'pino';
import type { Database, Queryable } from '../persistence/database.js';
import type { ImageDataStore } from '../persistence/image-data-store.js';
import { findImage, findImageAndMembership } from '../persistence/image-store.js';
import { findMember } from '../persistence/member-store.js';

export interface RegistryContext {
  database: Database;
  dataStore: ImageDataStore;
  /** Members an image may have; negative means no limit. */
  memberQuota: number;
  /** Bytes of data one image may have. */
  imageSizeCap: number;
  /** Bytes of data one project's images may have together; negative means no limit. */
  projectStorageQuota: number;
  /** How long an upload holds an image without renewing its lease, in milliseconds. */
  uploadLeaseMs: number;
  /** Receives errors of cleanup steps that do not fail the call. */
  logger: Pick<Logger, 'warn' | 'info'>;
  /** Milliseconds since the Unix epoch. */
  now(): number;
  newImageId(): string;
}

export type RegistrySettings = Omit<RegistryContext, 'now' | 'newImageId'>;

export function createRegistryContext(settings: RegistrySettings): RegistryContext {
  return { ...settings, now: Date.now, newImageId: randomUUID };
}

/**
 * Loads an image and the caller project's member row on it, and throws
 * NOT_FOUND unless the caller may read it. With `lock` the image row stays
 * locked until the transaction ends, which serializes every change to one
 * image and its members.
 */
export async function loadReadableImage(
  context: RegistryContext,
  db: Queryable,
  caller: Caller,
  imageId: string,
  { lock = false } = {},
): Promise<{ image: Image; callerMembership: Member | null }> {
  let image: Image | null;
  let callerMembership: Member | null = null;
  if (lock) {
    image = await findImage(context.database, db, imageId, { lock });
    if (image !== null && image.visibility === 'shared' && image.owner !== caller.projectId) {
      callerMembership = await findMember(db, imageId, caller.projectId);
    }
  } else {
    const found = await findImageAndMembership(context.database, db, imageId, caller.projectId);
    image = found.image;
    // Member rows stay when an image stops being shared, and then grant nothing.
    if (image !== null && image.visibility === 'shared' && image.owner !== caller.projectId) {
      callerMembership = found.membership;
    }
  }
  assertReadable(caller, image, imageId, callerMembership);
  return { image, callerMembership };
}
