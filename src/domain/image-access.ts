/**
 * Access rules of one image: who may read, change and delete it. The
 * listing query renders the same rules in SQL (listing-scope.ts).
 */
import {
  failedPrecondition,
  imageNotFound,
  permissionDenied,
} from './errors.js';
import type { Caller, Image, Member, Visibility } from './model.js';

/**
 * Returns whether the caller may read the image. Admins read every image,
 * and everyone reads public and community images. A project reads the
 * images it owns, and a shared image on which it has a member row of any
 * status, because only removing the row takes access away. Nobody reads a
 * deleted image.
 */
export function canReadImage(
  caller: Caller,
  image: Pick<Image, 'status' | 'visibility' | 'owner'>,
  callerMembership: Pick<Member, 'status'> | null,
): boolean {
  if (image.status === 'deleted') return false;
  if (caller.isAdmin) return true;
  if (image.visibility === 'public' || image.visibility === 'community') {
    return true;
  }
  if (image.owner === caller.projectId) return true;
  return image.visibility === 'shared' && callerMembership !== null;
}

/** Throws NOT_FOUND, exactly as for an unknown id, unless the caller may read. */
export function assertReadable(
  caller: Caller,
  image: Image | null,
  imageId: string,
  callerMembership: Pick<Member, 'status'> | null,
): asserts image is Image {
  if (image === null || !canReadImage(caller, image, callerMembership)) {
    throw imageNotFound(imageId);
  }
}

/** Returns whether the caller owns the image or is an admin. */
export function isOwnerOrAdmin(caller: Caller, image: Pick<Image, 'owner'>): boolean {
  return caller.isAdmin || image.owner === caller.projectId;
}

/** Only the owner or an admin modifies or deletes an image. */
export function assertCanModify(caller: Caller, image: Image): void {
  if (!isOwnerOrAdmin(caller, image)) {
    throw permissionDenied(
      `project ${JSON.stringify(caller.projectId)} may not modify image ` +
        `${JSON.stringify(image.id)}: only its owner or an admin may`,
      'NOT_IMAGE_OWNER',
    );
  }
}

/**
 * Only an admin makes an image public. The owner or an admin makes it
 * community. Any other visibility, or the one the image already has, needs
 * only the right to modify, which the caller of an update already has.
 */
export function assertCanSetVisibility(
  caller: Caller,
  current: Visibility | null,
  next: Visibility,
): void {
  if (next === current) return;
  if (next === 'public' && !caller.isAdmin) {
    throw permissionDenied(
      'visibility: only an admin may make an image public',
      'PUBLICIZE_NOT_ALLOWED',
    );
  }
}

/**
 * Only an admin names another project as owner. Naming the caller's own
 * project, or the current owner, changes nothing and is always allowed.
 */
export function assertCanSetOwner(
  caller: Caller,
  currentOwner: string | null,
  nextOwner: string,
): void {
  if (nextOwner === caller.projectId || nextOwner === currentOwner) return;
  if (!caller.isAdmin) {
    throw permissionDenied(
      `owner: only an admin may set owner to another project, not ` +
        `${JSON.stringify(nextOwner)}`,
      'OWNER_CHANGE_NOT_ALLOWED',
    );
  }
}

/** Rejects deleting a protected image; `protected` must be unset first. */
export function assertDeletable(image: Image): void {
  if (image.protected) {
    throw failedPrecondition(
      `image ${JSON.stringify(image.id)} is protected: unset protected before deleting it`,
      'IMAGE_PROTECTED',
    );
  }
}

/**
 * Returns the status after deactivating: ACTIVE becomes DEACTIVATED,
 * DEACTIVATED stays, and any other status cannot be deactivated.
 */
export function statusAfterDeactivate(image: Image): 'deactivated' {
  if (image.status === 'active' || image.status === 'deactivated') {
    return 'deactivated';
  }
  throw failedPrecondition(
    `image ${JSON.stringify(image.id)} is ${image.status}: only an active image can be deactivated`,
    'INVALID_IMAGE_STATUS',
  );
}

/** Returns the status after reactivating, mirroring statusAfterDeactivate. */
export function statusAfterReactivate(image: Image): 'active' {
  if (image.status === 'deactivated' || image.status === 'active') {
    return 'active';
  }
  throw failedPrecondition(
    `image ${JSON.stringify(image.id)} is ${image.status}: only a deactivated image can be reactivated`,
    'INVALID_IMAGE_STATUS',
  );
}

/**
 * Container and disk formats change only while the image is queued, unless
 * the value given is the current one.
 */
export function assertFormatChangeAllowed(
  image: Image,
  field: 'container_format' | 'disk_format',
  next: string,
): void {
  const current = field === 'container_format' ? image.containerFormat : image.diskFormat;
  if (next === current || image.status === 'queued') return;
  throw failedPrecondition(
    `${field}: cannot change from ${JSON.stringify(current)} to ` +
      `${JSON.stringify(next)} while the image is ${image.status}; formats ` +
      'change only while an image is queued',
    'IMAGE_NOT_QUEUED',
  );
}
