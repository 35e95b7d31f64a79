/** Field-mask updates of an image: which paths exist, and what applying them does. */
import { invalidArgument, quote } from './errors.js';
import {
  assertCanModify,
  assertCanSetOwner,
  assertCanSetVisibility,
  assertFormatChangeAllowed,
} from './image-access.js';
import {
  assertPropertyCount,
  assertTagCount,
  normalizeTags,
  validateContainerFormat,
  validateDiskFormat,
  validateMinimum,
  validateName,
  validatePropertyKey,
  validatePropertyValue,
  validateProjectId,
  validateProperties,
} from './image-fields.js';
import { type Caller, type Image, type Visibility, emptyRecord } from './model.js';

/** The writable fields as a request carries them; visibility is null when unspecified. */
export interface ImageInput {
  name: string;
  visibility: Visibility | null;
  protected: boolean;
  hidden: boolean;
  owner: string;
  containerFormat: string;
  diskFormat: string;
  minDisk: number;
  minRam: number;
  tags: string[];
  properties: Record<string, string>;
}

/** The changes of one UpdateImage request, already checked for form. */
export interface ImageUpdate {
  name?: string;
  visibility?: Visibility;
  protected?: boolean;
  hidden?: boolean;
  owner?: string;
  containerFormat?: string;
  diskFormat?: string;
  minDisk?: number;
  minRam?: number;
  tags?: string[];
  /** Replaces every property. Applied before setProperties and removeProperties. */
  replaceProperties?: Record<string, string>;
  setProperties: Record<string, string>;
  removeProperties: string[];
}

const READ_ONLY_PATHS = new Set([
  'id', 'status', 'size', 'virtual_size', 'checksum', 'hash_algo',
  'hash_value', 'create_time', 'update_time',
]);
const PROPERTY_PATH_PREFIX = 'properties.';

/**
 * Turns update_mask paths and the request's image into an ImageUpdate, or
 * throws INVALID_ARGUMENT for an empty mask, an unknown or read-only path,
 * an unspecified visibility, or a value outside its limits.
 */
export function parseImageUpdate(paths: readonly string[], input: ImageInput): ImageUpdate {
  if (paths.length === 0) {
    throw invalidArgument('update_mask', 'is empty; name at least one field to update');
  }
  const update: ImageUpdate = { setProperties: emptyRecord(), removeProperties: [] };
  for (const path of paths) {
    if (path.startsWith(PROPERTY_PATH_PREFIX)) {
      addPropertyPath(update, path.slice(PROPERTY_PATH_PREFIX.length), input);
    } else {
      addFieldPath(update, path, input);
    }
  }
  return update;
}

function addPropertyPath(update: ImageUpdate, key: string, input: ImageInput): void {
  validatePropertyKey('update_mask', key);
  if (Object.hasOwn(input.properties, key)) {
    const value = input.properties[key]!;
    validatePropertyValue(`image.properties`, key, value);
    update.setProperties[key] = value;
  } else {
    update.removeProperties.push(key);
  }
}

function addFieldPath(update: ImageUpdate, path: string, input: ImageInput): void {
  switch (path) {
    case 'name':
      validateName('image.name', input.name);
      update.name = input.name;
      return;
    case 'visibility':
      if (input.visibility === null) {
        throw invalidArgument('image.visibility', 'is unspecified; give the visibility to set');
      }
      update.visibility = input.visibility;
      return;
    case 'protected':
      update.protected = input.protected;
      return;
    case 'hidden':
      update.hidden = input.hidden;
      return;
    case 'owner':
      validateProjectId('image.owner', input.owner);
      update.owner = input.owner;
      return;
    case 'container_format':
      validateContainerFormat('image.container_format', input.containerFormat);
      update.containerFormat = input.containerFormat;
      return;
    case 'disk_format':
      validateDiskFormat('image.disk_format', input.diskFormat);
      update.diskFormat = input.diskFormat;
      return;
    case 'min_disk':
      validateMinimum('image.min_disk', input.minDisk);
      update.minDisk = input.minDisk;
      return;
    case 'min_ram':
      validateMinimum('image.min_ram', input.minRam);
      update.minRam = input.minRam;
      return;
    case 'tags':
      update.tags = normalizeTags('image.tags', input.tags);
      return;
    case 'properties':
      validateProperties('image.properties', input.properties);
      update.replaceProperties = Object.assign(emptyRecord(), input.properties);
      return;
  }
  if (READ_ONLY_PATHS.has(path)) {
    throw invalidArgument('update_mask', `${quote(path)} is a read-only field`);
  }
  throw invalidArgument('update_mask', `${quote(path)} is not a field of Image that can be updated`);
}

/**
 * Applies an update to an image the caller may read, checking in order: the
 * right to modify, the right to set visibility and owner, the format rule
 * for images past QUEUED, and the tag and property counts. Returns the
 * changed image with updateTime set to `now`.
 */
export function applyImageUpdate(caller: Caller, image: Image, update: ImageUpdate, now: number): Image {
  assertCanModify(caller, image);
  if (update.visibility !== undefined) {
    assertCanSetVisibility(caller, image.visibility, update.visibility);
  }
  if (update.owner !== undefined) assertCanSetOwner(caller, image.owner, update.owner);
  if (update.containerFormat !== undefined) {
    assertFormatChangeAllowed(image, 'container_format', update.containerFormat);
  }
  if (update.diskFormat !== undefined) {
    assertFormatChangeAllowed(image, 'disk_format', update.diskFormat);
  }

  const properties = Object.assign(emptyRecord(), update.replaceProperties ?? image.properties, update.setProperties);
  for (const key of update.removeProperties) delete properties[key];
  const tags = update.tags ?? image.tags;
  assertTagCount(image.id, tags.length);
  assertPropertyCount(image.id, Object.keys(properties).length);

  return {
    ...image,
    name: update.name ?? image.name,
    visibility: update.visibility ?? image.visibility,
    protected: update.protected ?? image.protected,
    hidden: update.hidden ?? image.hidden,
    owner: update.owner ?? image.owner,
    containerFormat: update.containerFormat ?? image.containerFormat,
    diskFormat: update.diskFormat ?? image.diskFormat,
    minDisk: update.minDisk ?? image.minDisk,
    minRam: update.minRam ?? image.minRam,
    tags,
    properties,
    updateTime: now,
  };
}
