/** Use cases that change images: create, update, tag, delete, deactivate, reactivate. */
import { RegistryError, quote } from '../domain/errors.js';
import {
  assertCanModify,
  assertCanSetOwner,
  assertCanSetVisibility,
  assertDeletable,
  statusAfterDeactivate,
  statusAfterReactivate,
} from '../domain/image-access.js';
import {
  assertPropertyCount,
  assertTagCount,
  normalizeTags,
  parseImageId,
  validateContainerFormat,
  validateDiskFormat,
  validateMinimum,
  validateName,
  validateProjectId,
  validateProperties,
  validateTag,
} from '../domain/image-fields.js';
import { type ImageInput, applyImageUpdate, parseImageUpdate } from '../domain/image-update.js';
import { type Caller, type Image, emptyRecord } from '../domain/model.js';
import { isDuplicateKey } from '../persistence/database.js';
import { deleteMember } from '../persistence/member-store.js';
import {
  imageIdExists,
  insertImage,
  markImageDeleted,
  setImageStatus,
  updateImage,
} from '../persistence/image-store.js';
import { type RegistryContext, loadReadableImage } from './registry-context.js';

function imageIdTaken(id: string): RegistryError {
  return new RegistryError('ALREADY_EXISTS', `image_id: an image with id ${quote(id)} already exists`, 'IMAGE_ID_TAKEN', 'image_id');
}

/**
 * Creates a queued image owned by the caller's project, or by another
 * project when an admin names one. Without a visibility the image is shared.
 */
export async function createImage(
  context: RegistryContext,
  caller: Caller,
  input: ImageInput,
  requestedId: string,
): Promise<Image> {
  const id = requestedId === '' ? context.newImageId() : parseImageId('image_id', requestedId);
  validateName('image.name', input.name);
  validateContainerFormat('image.container_format', input.containerFormat);
  validateDiskFormat('image.disk_format', input.diskFormat);
  validateMinimum('image.min_disk', input.minDisk);
  validateMinimum('image.min_ram', input.minRam);
  const tags = normalizeTags('image.tags', input.tags);
  validateProperties('image.properties', input.properties);

  const visibility = input.visibility ?? 'shared';
  assertCanSetVisibility(caller, null, visibility);
  if (input.owner !== '') validateProjectId('image.owner', input.owner);
  const owner = input.owner === '' ? caller.projectId : input.owner;
  assertCanSetOwner(caller, null, owner);

  const now = context.now();
  const image: Image = {
    id,
    name: input.name,
    status: 'queued',
    visibility,
    protected: input.protected,
    hidden: input.hidden,
    owner,
    containerFormat: input.containerFormat,
    diskFormat: input.diskFormat,
    minDisk: input.minDisk,
    minRam: input.minRam,
    size: null,
    virtualSize: null,
    checksum: '',
    hashAlgo: '',
    hashValue: '',
    tags,
    properties: Object.assign(emptyRecord(), input.properties),
    createTime: now,
    updateTime: now,
  };

  return context.database.write(async (trx) => {
    if (await imageIdExists(trx, id)) throw imageIdTaken(id);
    assertTagCount(id, tags.length);
    assertPropertyCount(id, Object.keys(image.properties).length);
    try {
      await insertImage(trx, image);
    } catch (error) {
      // Another request created the same id since the check above.
      if (isDuplicateKey(error)) throw imageIdTaken(id);
      throw error;
    }
    return image;
  });
}

/** Changes the fields named by `paths`, as applyImageUpdate allows. */
export async function updateImageFields(
  context: RegistryContext,
  caller: Caller,
  rawId: string,
  paths: readonly string[],
  input: ImageInput,
): Promise<Image> {
  const id = parseImageId('image.id', rawId);
  const update = parseImageUpdate(paths, input);
  return context.database.write(async (trx) => {
    const { image } = await loadReadableImage(context, trx, caller, id, { lock: true });
    const updated = applyImageUpdate(caller, image, update, context.now());
    await updateImage(trx, image, updated);
    if (updated.owner !== image.owner) {
      // An owner is never a member of its own image.
      await deleteMember(trx, id, updated.owner);
    }
    return updated;
  });
}

/** Adds a tag; a tag the image has already changes nothing. */
export async function addImageTag(
  context: RegistryContext,
  caller: Caller,
  rawId: string,
  tag: string,
): Promise<Image> {
  const id = parseImageId('image_id', rawId);
  validateTag('tag', tag);
  return context.database.write(async (trx) => {
    const { image } = await loadReadableImage(context, trx, caller, id, { lock: true });
    assertCanModify(caller, image);
    if (image.tags.includes(tag)) return image;
    assertTagCount(id, image.tags.length + 1);
    const updated = { ...image, tags: [...image.tags, tag], updateTime: context.now() };
    await updateImage(trx, image, updated);
    return updated;
  });
}

/** Removes a tag, or throws NOT_FOUND when the image does not have it. */
export async function removeImageTag(
  context: RegistryContext,
  caller: Caller,
  rawId: string,
  tag: string,
): Promise<Image> {
  const id = parseImageId('image_id', rawId);
  validateTag('tag', tag);
  return context.database.write(async (trx) => {
    const { image } = await loadReadableImage(context, trx, caller, id, { lock: true });
    assertCanModify(caller, image);
    if (!image.tags.includes(tag)) {
      throw new RegistryError('NOT_FOUND', `tag ${quote(tag)} not found on image ${quote(id)}`, 'TAG_NOT_FOUND', 'tag');
    }
    const updated = { ...image, tags: image.tags.filter((present) => present !== tag), updateTime: context.now() };
    await updateImage(trx, image, updated);
    return updated;
  });
}

/** Deletes an unprotected image with its member rows, tags, properties and data. */
export async function deleteImage(context: RegistryContext, caller: Caller, rawId: string): Promise<void> {
  const id = parseImageId('id', rawId);
  await context.database.write(async (trx) => {
    const { image } = await loadReadableImage(context, trx, caller, id, { lock: true });
    assertCanModify(caller, image);
    assertDeletable(image);
    await markImageDeleted(trx, id, context.now());
  });
  try {
    await context.dataStore.delete(id);
  } catch (error) {
    // The image is deleted already; the sweep at the next start removes the data.
    context.logger.warn({ err: error, image_id: id }, 'failed to delete the data of a deleted image');
  }
}

/** Moves an active image to deactivated; a deactivated one stays as it is. */
export function deactivateImage(context: RegistryContext, caller: Caller, rawId: string): Promise<Image> {
  return changeStatus(context, caller, rawId, statusAfterDeactivate);
}

/** Moves a deactivated image back to active; an active one stays as it is. */
export function reactivateImage(context: RegistryContext, caller: Caller, rawId: string): Promise<Image> {
  return changeStatus(context, caller, rawId, statusAfterReactivate);
}

async function changeStatus(
  context: RegistryContext,
  caller: Caller,
  rawId: string,
  nextStatus: (image: Image) => Image['status'],
): Promise<Image> {
  const id = parseImageId('id', rawId);
  return context.database.write(async (trx) => {
    const { image } = await loadReadableImage(context, trx, caller, id, { lock: true });
    assertCanModify(caller, image);
    const status = nextStatus(image);
    if (status === image.status) return image;
    const now = context.now();
    await setImageStatus(trx, id, status, now);
    return { ...image, status, updateTime: now };
  });
}
