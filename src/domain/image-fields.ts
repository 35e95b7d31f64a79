/** Form checks on the writable fields of an image: ids, lengths, formats, tags, properties. */
import { RegistryError, invalidArgument, quote } from './errors.js';

export const NAME_MAX_CHARS = 255;
export const TAG_MAX_CHARS = 255;
export const PROPERTY_KEY_MAX_CHARS = 255;
export const PROPERTY_VALUE_MAX_BYTES = 65_535;
export const MAX_TAGS_PER_IMAGE = 128;
export const MAX_PROPERTIES_PER_IMAGE = 128;

export const CONTAINER_FORMATS = ['ami', 'ari', 'aki', 'bare', 'ovf', 'ova', 'docker', 'compressed'];
export const DISK_FORMATS = ['ami', 'ari', 'aki', 'vhd', 'vhdx', 'vmdk', 'raw', 'qcow2', 'vdi', 'iso', 'ploop'];

/** Property keys that would shadow a field of Image or one of Glance's base fields. */
const RESERVED_PROPERTY_KEYS = new Set([
  'id', 'name', 'status', 'visibility', 'protected', 'hidden', 'owner',
  'container_format', 'disk_format', 'min_disk', 'min_ram', 'size',
  'virtual_size', 'checksum', 'hash_algo', 'hash_value', 'tags', 'properties',
  'create_time', 'update_time',
  'os_hidden', 'os_hash_algo', 'os_hash_value', 'created_at', 'updated_at',
  'self', 'file', 'schema', 'locations', 'direct_url', 'deleted', 'deleted_at',
]);
const RESERVED_PROPERTY_PREFIX = 'os_glance_';

const UUID_PATTERN = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;

export const PROJECT_ID_MAX_CHARS = 255;

/**
 * Checks a project id (an owner, a member, a token's project): 1 to 255
 * characters, with no whitespace or control characters.
 */
export function validateProjectId(field: string, projectId: string): void {
  if (projectId === '') throw invalidArgument(field, 'is required');
  if (charLength(projectId) > PROJECT_ID_MAX_CHARS) {
    throw invalidArgument(field, `${quote(projectId)} is longer than ${PROJECT_ID_MAX_CHARS} characters`);
  }
  if (/[\s\p{Cc}]/u.test(projectId)) {
    throw invalidArgument(field, `${quote(projectId)} contains whitespace or control characters`);
  }
}

/** Returns the UTF-8 bytes of an image's tags, property keys and property values. */
export function metadataBytes(image: { tags: readonly string[]; properties: Record<string, string> }): number {
  let bytes = 0;
  for (const tag of image.tags) bytes += Buffer.byteLength(tag, 'utf8');
  for (const [key, value] of Object.entries(image.properties)) {
    bytes += Buffer.byteLength(key, 'utf8') + Buffer.byteLength(value, 'utf8');
  }
  return bytes;
}

/** Length in Unicode code points, the unit of every character limit here. */
export function charLength(text: string): number {
  let count = 0;
  for (const _ of text) count++;
  return count;
}

/** Returns the id in lowercase, or throws INVALID_ARGUMENT naming `field`. */
export function parseImageId(field: string, id: string): string {
  if (id === '') throw invalidArgument(field, 'is required');
  if (!UUID_PATTERN.test(id)) {
    throw invalidArgument(field, `${quote(id)} is not a UUID`);
  }
  return id.toLowerCase();
}

export function validateName(field: string, name: string): void {
  if (charLength(name) > NAME_MAX_CHARS) {
    throw invalidArgument(field, `${quote(name)} is longer than ${NAME_MAX_CHARS} characters`);
  }
}

export function validateContainerFormat(field: string, value: string): void {
  if (value !== '' && !CONTAINER_FORMATS.includes(value)) {
    throw invalidArgument(field, `${quote(value)} is not one of ${CONTAINER_FORMATS.join(', ')}`);
  }
}

export function validateDiskFormat(field: string, value: string): void {
  if (value !== '' && !DISK_FORMATS.includes(value)) {
    throw invalidArgument(field, `${quote(value)} is not one of ${DISK_FORMATS.join(', ')}`);
  }
}

export function validateMinimum(field: string, value: number): void {
  if (!Number.isInteger(value) || value < 0) {
    throw invalidArgument(field, `${value} is invalid; it must be a whole number, 0 or more`);
  }
}

export function validateTag(field: string, tag: string): void {
  if (tag === '') throw invalidArgument(field, 'a tag may not be empty');
  if (charLength(tag) > TAG_MAX_CHARS) {
    throw invalidArgument(field, `${quote(tag)} is longer than ${TAG_MAX_CHARS} characters`);
  }
}

/** Validates each tag and returns them as a set, in first-seen order. */
export function normalizeTags(field: string, tags: readonly string[]): string[] {
  for (const tag of tags) validateTag(field, tag);
  return [...new Set(tags)];
}

export function validatePropertyKey(field: string, key: string): void {
  if (key === '') throw invalidArgument(field, 'a property key may not be empty');
  if (charLength(key) > PROPERTY_KEY_MAX_CHARS) {
    throw invalidArgument(field, `key ${quote(key)} is longer than ${PROPERTY_KEY_MAX_CHARS} characters`);
  }
  if (RESERVED_PROPERTY_KEYS.has(key) || key.startsWith(RESERVED_PROPERTY_PREFIX)) {
    throw invalidArgument(
      field,
      `key ${quote(key)} is reserved: it names an image field or a Glance base ` +
        `property, or starts with ${RESERVED_PROPERTY_PREFIX}`,
    );
  }
}

export function validatePropertyValue(field: string, key: string, value: string): void {
  const bytes = Buffer.byteLength(value, 'utf8');
  if (bytes > PROPERTY_VALUE_MAX_BYTES) {
    throw invalidArgument(
      field,
      `value of ${quote(key)} is ${bytes} bytes, more than ${PROPERTY_VALUE_MAX_BYTES}`,
    );
  }
}

export function validateProperties(field: string, properties: Record<string, string>): void {
  for (const [key, value] of Object.entries(properties)) {
    validatePropertyKey(field, key);
    validatePropertyValue(field, key, value);
  }
}

export function assertTagCount(imageId: string, count: number): void {
  if (count > MAX_TAGS_PER_IMAGE) {
    throw new RegistryError(
      'RESOURCE_EXHAUSTED',
      `tags: image ${quote(imageId)} would have ${count} tags, the maximum is ${MAX_TAGS_PER_IMAGE}`,
      'TAG_LIMIT_EXCEEDED',
      'tags',
    );
  }
}

export function assertPropertyCount(imageId: string, count: number): void {
  if (count > MAX_PROPERTIES_PER_IMAGE) {
    throw new RegistryError(
      'RESOURCE_EXHAUSTED',
      `properties: image ${quote(imageId)} would have ${count} properties, the maximum is ${MAX_PROPERTIES_PER_IMAGE}`,
      'PROPERTY_LIMIT_EXCEEDED',
      'properties',
    );
  }
}
