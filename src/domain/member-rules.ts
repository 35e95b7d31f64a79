/** Rules of the members of a shared image: who may add, see, accept or reject, and remove them. */
import {
  RegistryError,
  failedPrecondition,
  invalidArgument,
  permissionDenied,
  quote,
} from './errors.js';
import { isOwnerOrAdmin } from './image-access.js';
import { validateProjectId } from './image-fields.js';
import type { Caller, Image } from './model.js';

/** Checks a member id, which is a project id: 1 to 255 characters, with no whitespace or control characters. */
export function validateMemberId(field: string, memberId: string): void {
  validateProjectId(field, memberId);
}

export function memberNotFound(imageId: string, memberId: string): RegistryError {
  return new RegistryError(
    'NOT_FOUND',
    `member ${quote(memberId)} of image ${quote(imageId)} not found`,
    'MEMBER_NOT_FOUND',
  );
}

/** Only shared images have members; other visibilities keep their rows inert. */
export function assertImageIsShared(image: Image): void {
  if (image.visibility !== 'shared') {
    throw failedPrecondition(
      `image ${quote(image.id)} is ${image.visibility}: only shared images have members`,
      'IMAGE_NOT_SHARED',
    );
  }
}

/**
 * Only the owner or an admin adds or removes members. A consumer cannot
 * remove itself; it can only reject the image.
 */
export function assertCanManageMembers(caller: Caller, image: Image): void {
  if (!isOwnerOrAdmin(caller, image)) {
    throw permissionDenied(
      `project ${quote(caller.projectId)} may not add or remove members of image ` +
        `${quote(image.id)}: only its owner or an admin may`,
      'NOT_IMAGE_OWNER',
    );
  }
}

/** Rejects the owner as a member of its own image. */
export function assertMemberIsNotOwner(image: Image, memberId: string): void {
  if (memberId === image.owner) {
    throw invalidArgument(
      'member_id',
      `${quote(memberId)} owns image ${quote(image.id)} and cannot be its member`,
    );
  }
}

/**
 * Rejects a member past the quota: an image has at most `quota` members,
 * and a negative quota means no limit.
 * `currentCount` must be read while the image row is locked, so that
 * concurrent adds cannot pass the check together.
 */
export function assertBelowMemberQuota(image: Image, currentCount: number, quota: number): void {
  if (quota >= 0 && currentCount >= quota) {
    throw new RegistryError(
      'RESOURCE_EXHAUSTED',
      `image ${quote(image.id)} has ${currentCount} members, the maximum is ${quota}`,
      'MEMBER_QUOTA_EXCEEDED',
    );
  }
}

/**
 * Returns whether the caller may read a member row. The owner and admins
 * read every row of an image, and a member reads only its own.
 */
export function canSeeMemberRow(caller: Caller, image: Image, memberId: string): boolean {
  return isOwnerOrAdmin(caller, image) || memberId === caller.projectId;
}

/**
 * Allows only the member itself, or an admin, to change a row's status. The
 * owner, who can read the row, is denied. Another member, who cannot read
 * it, gets NOT_FOUND.
 */
export function assertCanAnswerMembership(caller: Caller, image: Image, memberId: string): void {
  if (caller.isAdmin || memberId === caller.projectId) return;
  if (image.owner === caller.projectId) {
    throw permissionDenied(
      `only project ${quote(memberId)} or an admin may change the status of its membership; ` +
        'the owner may add or remove members only',
      'NOT_IMAGE_MEMBER',
    );
  }
  throw memberNotFound(image.id, memberId);
}
