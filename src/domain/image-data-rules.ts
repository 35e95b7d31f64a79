/** Rules of image data: who may upload and download it, in which status, within which limits. */
import { RegistryError, failedPrecondition, invalidArgument, permissionDenied, quote } from './errors.js';
import { isOwnerOrAdmin } from './image-access.js';
import type { Caller, Image } from './model.js';

/** The size and hashes an upload's client expects to send; null means not checked. */
export interface UploadExpectation {
  size: number | null;
  /** MD5 in lowercase hex. */
  checksum: string | null;
  /** SHA-512 in lowercase hex. */
  sha512: string | null;
}

/**
 * Checks the form of an upload's expected size (an int64 in decimal, as the
 * wire carries it) and hashes, and lowercases the hashes.
 */
export function parseUploadExpectation(size: string | null, checksum: string, sha512: string): UploadExpectation {
  if (size !== null && !(/^\d{1,16}$/.test(size) && Number.isSafeInteger(Number(size)))) {
    throw invalidArgument(
      'start.expected_size',
      `${size} is invalid; it must be a whole number from 0 to 2^53 - 1`,
    );
  }
  if (checksum !== '' && !/^[0-9a-f]{32}$/i.test(checksum)) {
    throw invalidArgument('start.expected_checksum', `${quote(checksum)} is not an MD5 in hex (32 digits)`);
  }
  if (sha512 !== '' && !/^[0-9a-f]{128}$/i.test(sha512)) {
    throw invalidArgument('start.expected_hash_value', `${quote(sha512)} is not a SHA-512 in hex (128 digits)`);
  }
  return {
    size: size === null ? null : Number(size),
    checksum: checksum === '' ? null : checksum.toLowerCase(),
    sha512: sha512 === '' ? null : sha512.toLowerCase(),
  };
}

/** Only the owner or an admin uploads data. */
export function assertCanUpload(caller: Caller, image: Image): void {
  if (!isOwnerOrAdmin(caller, image)) {
    throw permissionDenied(
      `project ${quote(caller.projectId)} may not upload data to image ${quote(image.id)}: only its owner or an admin may`,
      'NOT_IMAGE_OWNER',
    );
  }
}

/**
 * Data is uploaded to a queued image. A saving image takes a new upload only
 * when the lease of the running one has expired, because the process that
 * held it stopped renewing it.
 */
export function assertUploadAllowed(image: Image, uploadExpiresAt: number | null, now: number): void {
  if (image.status === 'queued') return;
  if (image.status === 'saving') {
    if (uploadExpiresAt !== null && uploadExpiresAt < now) return;
    throw failedPrecondition(`an upload to image ${quote(image.id)} is already running`, 'UPLOAD_RUNNING');
  }
  throw failedPrecondition(
    `image ${quote(image.id)} is ${image.status}: data can be uploaded only to a queued image`,
    'IMAGE_NOT_QUEUED',
  );
}

/**
 * Returns a check of an upload's running size: past the expected size is
 * INVALID_ARGUMENT, and past the size cap or the project's remaining quota
 * is RESOURCE_EXHAUSTED. `remainingQuota` is null when there is no quota.
 */
export function uploadSizeCheck(
  image: Image,
  expectedSize: number | null,
  sizeCap: number,
  remainingQuota: number | null,
): (bytes: number) => void {
  return (bytes) => {
    if (expectedSize !== null && bytes > expectedSize) {
      throw invalidArgument('chunk', `the upload passed start.expected_size of ${expectedSize} bytes`);
    }
    if (bytes > sizeCap) {
      throw new RegistryError(
        'RESOURCE_EXHAUSTED',
        `image ${quote(image.id)} would be larger than IMAGE_SIZE_CAP, ${sizeCap} bytes`,
        'IMAGE_SIZE_CAP_EXCEEDED',
      );
    }
    if (remainingQuota !== null && bytes > remainingQuota) {
      throw new RegistryError(
        'RESOURCE_EXHAUSTED',
        `project ${quote(image.owner)} would store more than its PROJECT_STORAGE_QUOTA; ` +
          `${Math.max(remainingQuota, 0)} bytes are left`,
        'PROJECT_STORAGE_QUOTA_EXCEEDED',
      );
    }
  };
}

/** Throws INVALID_ARGUMENT when the stored data differs from what the client expected. */
export function assertDataMatches(
  expected: UploadExpectation,
  actual: { size: number; checksum: string; sha512: string },
): void {
  if (expected.size !== null && actual.size !== expected.size) {
    throw invalidArgument(
      'start.expected_size',
      `${expected.size} bytes were expected but ${actual.size} were sent; nothing was stored`,
    );
  }
  if (expected.checksum !== null && actual.checksum !== expected.checksum) {
    throw invalidArgument(
      'start.expected_checksum',
      `${quote(expected.checksum)} does not match the MD5 of the data, ${quote(actual.checksum)}; nothing was stored`,
    );
  }
  if (expected.sha512 !== null && actual.sha512 !== expected.sha512) {
    throw invalidArgument(
      'start.expected_hash_value',
      'does not match the SHA-512 of the data; nothing was stored',
    );
  }
}

/**
 * Data is downloadable from an active image by everyone who may read it,
 * and from a deactivated image only by an admin.
 */
export function assertDownloadAllowed(caller: Caller, image: Image): void {
  if (image.status === 'active') return;
  if (image.status === 'deactivated') {
    if (caller.isAdmin) return;
    throw failedPrecondition(
      `image ${quote(image.id)} is deactivated: only an admin may download its data`,
      'IMAGE_DEACTIVATED',
    );
  }
  throw failedPrecondition(`image ${quote(image.id)} is ${image.status} and has no data to download`, 'IMAGE_HAS_NO_DATA');
}
