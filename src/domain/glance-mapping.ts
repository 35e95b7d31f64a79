/**
 * Maps images and members in the JSON form of OpenStack Glance's image API
 * to the registry's model. It reads `GET /v2/images` pages, `GET
 * /v2/images/{id}/members` lists, and images of the older v1 detail listing
 * (`is_public`, `deleted`, a nested `properties` object). Every key that has
 * no registry field is returned as a note, so that an import reports it
 * instead of losing it. A value the registry's field rules reject throws a
 * RegistryError, which rejects the whole image.
 */
import { RegistryError, invalidArgument, quote } from './errors.js';
import {
  assertPropertyCount,
  assertTagCount,
  normalizeTags,
  parseImageId,
  validateContainerFormat,
  validateDiskFormat,
  validateName,
  validateProjectId,
  validateProperties,
} from './image-fields.js';
import { assertMemberIsNotOwner, validateMemberId } from './member-rules.js';
import {
  IMAGE_STATUSES,
  type Image,
  type ImageStatus,
  MEMBER_STATUSES,
  type Member,
  type MemberStatus,
  VISIBILITIES,
  type Visibility,
  emptyRecord,
} from './model.js';

/** A Glance key that the registry keeps in another form, or does not keep. */
export interface GlanceNote {
  /** The Glance key, such as `locations`, `properties.os_distro` or `members[].schema`. */
  key: string;
  /** `mapped` when the value went into a registry field, `dropped` when no field keeps it. */
  action: 'mapped' | 'dropped';
  detail: string;
}

/** One Glance image as the registry stores it. */
export interface GlanceImageMapping {
  image: Image;
  members: Member[];
  /** The status Glance gave, before mapping. */
  glanceStatus: ImageStatus;
  notes: GlanceNote[];
}

/** The content of one file: an images page or a member list. */
export type GlanceDocument =
  | { kind: 'images'; images: Record<string, unknown>[]; notes: GlanceNote[] }
  | { kind: 'members'; members: Record<string, unknown>[]; notes: GlanceNote[] };

/** Raised when a file is not an images page or a member list. */
export class GlanceFormatError extends Error {}

/** Keys of Glance's list responses that link to pages or schemas and carry no image data. */
const PAGE_LINK_KEYS = new Set(['first', 'schema']);

/** Keys Glance computes or links, which the registry has no field for. */
const READ_ONLY_KEYS: Record<string, string> = {
  self: "a link to the image in Glance's API",
  file: "a link to the image data in Glance's API",
  schema: "a link to Glance's image schema",
  direct_url: "the location of the data in Glance's store",
  locations: "the locations of the data in Glance's stores",
  location: "the location of the data in Glance's store (v1 API)",
  stores: 'the Glance stores that hold the data',
};
const GLANCE_INTERNAL_PREFIX = 'os_glance_';
/** The start of the detail of every note about a read-only key. */
export const READ_ONLY_DETAIL = 'read-only in Glance';

/** Glance base keys mapped to registry fields. Every other key becomes a property or a note. */
const MAPPED_KEYS = new Set([
  'id', 'name', 'status', 'visibility', 'is_public', 'protected', 'os_hidden', 'owner',
  'container_format', 'disk_format', 'min_disk', 'min_ram', 'size', 'virtual_size',
  'checksum', 'os_hash_algo', 'os_hash_value', 'tags', 'properties', 'created_at',
  'updated_at', 'deleted', 'deleted_at',
]);

const MEMBER_KEYS = new Set(['image_id', 'member_id', 'status', 'created_at', 'updated_at']);

/** The maximum of min_disk and min_ram, which are 32-bit INT columns here and in Glance. */
const INT32_MAX = 2_147_483_647;
/** The widths of the registry's hash_algo and hash_value columns. */
const HASH_ALGO_MAX_CHARS = 16;
const HASH_VALUE_MAX_CHARS = 128;

/**
 * Reads a parsed JSON file as an images page (`images`, with the page links
 * `next`, `first` and `schema`) or a member list (`members`, `schema`).
 * Throws GlanceFormatError for anything else.
 */
export function parseGlanceDocument(json: unknown): GlanceDocument {
  if (!isObject(json)) throw new GlanceFormatError('the file is not a JSON object');
  const hasImages = Object.hasOwn(json, 'images');
  const hasMembers = Object.hasOwn(json, 'members');
  if (hasImages === hasMembers) {
    throw new GlanceFormatError(
      hasImages
        ? 'the object has both an "images" and a "members" array; give pages and member lists as separate files'
        : 'the object has neither an "images" array (GET /v2/images) nor a "members" array (GET /v2/images/{id}/members)',
    );
  }
  const listKey = hasImages ? 'images' : 'members';
  const items = json[listKey];
  if (!Array.isArray(items)) throw new GlanceFormatError(`"${listKey}" is not an array`);
  items.forEach((item, index) => {
    if (!isObject(item)) throw new GlanceFormatError(`${listKey}[${index}] is not a JSON object`);
    if (hasMembers && typeof item.image_id !== 'string') {
      throw new GlanceFormatError(`members[${index}] has no image_id string, so it cannot be matched to an image`);
    }
  });

  const notes: GlanceNote[] = [];
  for (const [key, value] of Object.entries(json)) {
    if (key === listKey || PAGE_LINK_KEYS.has(key)) continue;
    if (key === 'next' && hasImages) {
      notes.push({
        key,
        action: 'dropped',
        detail: `more pages follow (${showJson(value)}); their images are imported only when their pages are given too`,
      });
      continue;
    }
    notes.push({ key, action: 'dropped', detail: `unknown key of the list, value ${showJson(value)}` });
  }
  const objects = items as Record<string, unknown>[];
  return hasImages ? { kind: 'images', images: objects, notes } : { kind: 'members', members: objects, notes };
}

/**
 * Maps one Glance image and its member rows. `members` are the rows whose
 * image_id is this image's id. Throws a RegistryError naming the Glance key
 * when a value breaks a registry rule.
 */
export function mapGlanceImage(
  source: Record<string, unknown>,
  members: Record<string, unknown>[],
  options: { memberQuota: number },
): GlanceImageMapping {
  if (typeof source.id !== 'string') {
    throw invalidArgument('id', source.id === undefined ? 'is missing' : `${showJson(source.id)} is not a string`);
  }
  const id = parseImageId('id', source.id);
  const notes: GlanceNote[] = [];

  const glanceStatus = readGlanceStatus(source);
  const status = registryStatus(glanceStatus, readDeletedFlag(source), notes);
  const deleted = status === 'deleted';

  const name = readString(source, 'name');
  validateName('name', name);
  const owner = readString(source, 'owner');
  if (owner === '') throw invalidArgument('owner', 'is missing, and every registry image needs an owning project');
  validateProjectId('owner', owner);
  const containerFormat = readString(source, 'container_format');
  validateContainerFormat('container_format', containerFormat);
  const diskFormat = readString(source, 'disk_format');
  validateDiskFormat('disk_format', diskFormat);
  const minDisk = readInteger(source, 'min_disk', INT32_MAX) ?? 0;
  const minRam = readInteger(source, 'min_ram', INT32_MAX) ?? 0;

  const createTime = parseGlanceTime('created_at', source.created_at);
  let updateTime = parseGlanceTime('updated_at', source.updated_at);
  const deletedAt = mapDeletionKeys(source, deleted, notes);
  // A deleted registry image has its deletion time as update_time, as DeleteImage leaves it.
  if (deletedAt !== null) updateTime = deletedAt;

  let tags = readTags(source);
  let properties = readProperties(source, notes);
  let rawMembers = members;
  if (deleted) {
    noteMetadataOfDeleted(tags.length, Object.keys(properties).length, members.length, notes);
    tags = [];
    properties = emptyRecord();
    rawMembers = [];
  }
  tags = normalizeTags('tags', tags);
  assertTagCount(id, tags.length);
  validateProperties('properties', properties);
  assertPropertyCount(id, Object.keys(properties).length);

  const image: Image = {
    id,
    name,
    status,
    visibility: mapVisibility(source, rawMembers.length > 0, notes),
    protected: readBoolean(source, 'protected'),
    hidden: readBoolean(source, 'os_hidden'),
    owner,
    containerFormat,
    diskFormat,
    minDisk,
    minRam,
    size: readInteger(source, 'size', Number.MAX_SAFE_INTEGER),
    virtualSize: readInteger(source, 'virtual_size', Number.MAX_SAFE_INTEGER),
    ...readHashes(source),
    tags,
    properties,
    createTime,
    updateTime,
  };
  noteUnmappedKeys(source, notes);

  const mappedMembers = mapGlanceMembers(image, rawMembers, options.memberQuota, notes);
  if (mappedMembers.length > 0 && image.visibility !== 'shared') {
    notes.push({
      key: 'members',
      action: 'mapped',
      detail:
        `${plural(mappedMembers.length, 'member row')} kept, granting no access while the image is ${image.visibility}. ` +
        'Glance releases before Ocata shared private images through members; make such an image shared to restore that access',
    });
  }
  return { image, members: mappedMembers, glanceStatus, notes };
}

/** Reports the tags, properties and member rows of a deleted image, which the registry does not keep. */
function noteMetadataOfDeleted(tagCount: number, propertyCount: number, memberCount: number, notes: GlanceNote[]): void {
  const dropped = (key: string, count: number, noun: string) => {
    if (count > 0) notes.push({ key, action: 'dropped', detail: `${count} ${noun} not imported, because a deleted image keeps none` });
  };
  dropped('tags', tagCount, tagCount === 1 ? 'tag' : 'tags');
  dropped('properties', propertyCount, propertyCount === 1 ? 'property' : 'properties');
  dropped('members', memberCount, memberCount === 1 ? 'member row' : 'member rows');
}

function readGlanceStatus(source: Record<string, unknown>): ImageStatus {
  const status = source.status;
  if (typeof status !== 'string' || !(IMAGE_STATUSES as readonly string[]).includes(status)) {
    throw invalidArgument(
      'status',
      status === undefined ? 'is missing' : `${showJson(status)} is not one of ${IMAGE_STATUSES.join(', ')}`,
    );
  }
  return status as ImageStatus;
}

/** Reads v1's `deleted` flag. Absent and null read as false. */
function readDeletedFlag(source: Record<string, unknown>): boolean {
  const deleted = source.deleted;
  if (deleted !== undefined && deleted !== null && typeof deleted !== 'boolean') {
    throw invalidArgument('deleted', `${showJson(deleted)} is not true or false`);
  }
  return deleted === true;
}

/**
 * Chooses the registry status. The registry stores image data itself and
 * the import copies none, so an image that has data in Glance becomes
 * QUEUED, with Glance's size and hashes kept. Uploading its data makes it
 * ACTIVE, as for any new image.
 */
function registryStatus(glanceStatus: ImageStatus, deletedFlag: boolean, notes: GlanceNote[]): ImageStatus {
  if (deletedFlag) return deletedStatus(`marked deleted in Glance with status ${glanceStatus}`, notes);
  switch (glanceStatus) {
    case 'queued':
    case 'killed':
      return glanceStatus;
    case 'active':
      notes.push({
        key: 'status',
        action: 'mapped',
        detail: 'active in Glance: imported as queued because the data is not copied; upload it to make the image active',
      });
      return 'queued';
    case 'deactivated':
      notes.push({
        key: 'status',
        action: 'mapped',
        detail: 'deactivated in Glance: imported as queued because the data is not copied; upload it, then deactivate the image again',
      });
      return 'queued';
    case 'saving':
    case 'uploading':
    case 'importing':
      notes.push({
        key: 'status',
        action: 'mapped',
        detail: `${glanceStatus} in Glance: imported as queued because its upload had not finished`,
      });
      return 'queued';
    case 'deleted':
    case 'pending_delete':
      return deletedStatus(`${glanceStatus} in Glance`, notes);
  }
}

/**
 * Returns the status of an image deleted in Glance. The registry keeps a
 * deleted image's row so that no new image takes its id, and so imports it.
 */
function deletedStatus(reason: string, notes: GlanceNote[]): ImageStatus {
  notes.push({
    key: 'status',
    action: 'mapped',
    detail: `${reason}: imported as a deleted image, so that its id is never given to another image`,
  });
  return 'deleted';
}

/**
 * Reports `deleted` and `deleted_at`, and returns the deletion time of a
 * deleted image, or null.
 */
function mapDeletionKeys(source: Record<string, unknown>, deleted: boolean, notes: GlanceNote[]): number | null {
  if (Object.hasOwn(source, 'deleted')) {
    notes.push({
      key: 'deleted',
      action: 'mapped',
      detail: deleted ? `${showJson(source.deleted)}: the image is imported as deleted` : `${showJson(source.deleted)}: the image is not deleted`,
    });
  }
  if (!Object.hasOwn(source, 'deleted_at')) return null;
  const value = source.deleted_at;
  if (value === null) {
    notes.push({ key: 'deleted_at', action: 'dropped', detail: 'null: no deletion time' });
    return null;
  }
  const deletedAt = parseGlanceTime('deleted_at', value);
  if (deleted) {
    notes.push({ key: 'deleted_at', action: 'mapped', detail: `${showJson(value)}: kept as update_time, the deletion time of a deleted image` });
    return deletedAt;
  }
  notes.push({ key: 'deleted_at', action: 'dropped', detail: `${showJson(value)}: the image is not deleted, so no field keeps it` });
  return null;
}

/**
 * Returns `visibility`, or derives it from v1's `is_public` the way Glance's
 * Ocata data migration did: public when true, else shared when the image
 * has members and private when it has none.
 */
function mapVisibility(source: Record<string, unknown>, hasMembers: boolean, notes: GlanceNote[]): Visibility {
  const isPublic = source.is_public;
  if (isPublic !== undefined && isPublic !== null && typeof isPublic !== 'boolean') {
    throw invalidArgument('is_public', `${showJson(isPublic)} is not true or false`);
  }
  const visibility = source.visibility;
  if (visibility !== undefined && visibility !== null) {
    if (typeof visibility !== 'string' || !(VISIBILITIES as readonly string[]).includes(visibility)) {
      throw invalidArgument('visibility', `${showJson(visibility)} is not one of ${VISIBILITIES.join(', ')}`);
    }
    if (typeof isPublic === 'boolean') {
      const agrees = isPublic === (visibility === 'public');
      notes.push({
        key: 'is_public',
        action: agrees ? 'mapped' : 'dropped',
        detail: agrees
          ? `${isPublic}: agrees with visibility ${visibility}`
          : `${isPublic}: contradicts visibility ${visibility}, which was used`,
      });
    }
    return visibility as Visibility;
  }
  if (typeof isPublic !== 'boolean') {
    throw invalidArgument('visibility', 'is missing, and no is_public is given either');
  }
  let derived: Visibility = 'public';
  let reason = '';
  if (!isPublic) {
    derived = hasMembers ? 'shared' : 'private';
    reason = hasMembers ? ' because it has members' : ' because it has no members';
  }
  notes.push({ key: 'is_public', action: 'mapped', detail: `${isPublic}: visibility ${derived}${reason}` });
  return derived;
}

function readTags(source: Record<string, unknown>): string[] {
  const tags = source.tags;
  if (tags === undefined || tags === null) return [];
  if (!Array.isArray(tags)) throw invalidArgument('tags', `${showJson(tags)} is not an array`);
  for (const tag of tags) {
    if (typeof tag !== 'string') throw invalidArgument('tags', `${showJson(tag)} is not a string`);
  }
  return tags as string[];
}

/**
 * Collects the extra properties: every key outside Glance's base keys whose
 * value is a string, as the v2 API returns them, and the string values of a
 * v1 `properties` object. Other values are reported.
 */
function readProperties(source: Record<string, unknown>, notes: GlanceNote[]): Record<string, string> {
  const properties = emptyRecord();
  for (const [key, value] of Object.entries(source)) {
    if (MAPPED_KEYS.has(key) || isReadOnlyKey(key)) continue;
    if (typeof value === 'string') properties[key] = value;
  }
  const nested = source.properties;
  if (nested === undefined || nested === null) return properties;
  if (!isObject(nested)) {
    notes.push({ key: 'properties', action: 'dropped', detail: `${showJson(nested)} is not an object of v1 properties` });
    return properties;
  }
  let mapped = 0;
  for (const [key, value] of Object.entries(nested)) {
    if (typeof value !== 'string') {
      notes.push({ key: `properties.${key}`, action: 'dropped', detail: `${showJson(value)} is not a string, and Glance properties are strings` });
      continue;
    }
    if (Object.hasOwn(properties, key) && properties[key] !== value) {
      throw invalidArgument('properties', `key ${quote(key)} is given twice with different values`);
    }
    properties[key] = value;
    mapped++;
  }
  const detail = Object.keys(nested).length === 0 ? 'v1 properties object, empty' : `v1 properties object: ${plural(mapped, 'string value')} became properties`;
  notes.push({ key: 'properties', action: 'mapped', detail });
  return properties;
}

/** Adds a note for each read-only key, and for each unknown key whose value is not a string. */
function noteUnmappedKeys(source: Record<string, unknown>, notes: GlanceNote[]): void {
  for (const [key, value] of Object.entries(source)) {
    if (MAPPED_KEYS.has(key)) continue;
    if (isReadOnlyKey(key)) {
      const meaning = READ_ONLY_KEYS[key] ?? 'internal to Glance';
      notes.push({ key, action: 'dropped', detail: `${READ_ONLY_DETAIL}, ${meaning}` });
    } else if (typeof value !== 'string') {
      notes.push({ key, action: 'dropped', detail: `${showJson(value)} is not a string, and Glance properties are strings` });
    }
  }
}

function isReadOnlyKey(key: string): boolean {
  return Object.hasOwn(READ_ONLY_KEYS, key) || key.startsWith(GLANCE_INTERNAL_PREFIX);
}

/** Reads checksum and the multihash, lowercasing the hex digits. */
function readHashes(source: Record<string, unknown>): Pick<Image, 'checksum' | 'hashAlgo' | 'hashValue'> {
  const checksum = readString(source, 'checksum').toLowerCase();
  if (checksum !== '' && !/^[0-9a-f]{32}$/.test(checksum)) {
    throw invalidArgument('checksum', `${quote(checksum)} is not an MD5 in hex (32 digits)`);
  }
  const hashAlgo = readString(source, 'os_hash_algo');
  if (hashAlgo.length > HASH_ALGO_MAX_CHARS || !/^[A-Za-z0-9_-]*$/.test(hashAlgo)) {
    throw invalidArgument(
      'os_hash_algo',
      `${quote(hashAlgo)} is not an algorithm name of at most ${HASH_ALGO_MAX_CHARS} letters, digits, "_" or "-"`,
    );
  }
  const hashValue = readString(source, 'os_hash_value').toLowerCase();
  if (hashValue.length > HASH_VALUE_MAX_CHARS || !/^[0-9a-f]*$/.test(hashValue)) {
    throw invalidArgument('os_hash_value', `${quote(hashValue)} is not a hex digest of at most ${HASH_VALUE_MAX_CHARS} digits`);
  }
  if ((hashAlgo === '') !== (hashValue === '')) {
    throw invalidArgument('os_hash_value', 'os_hash_algo and os_hash_value must be given together');
  }
  return { checksum, hashAlgo, hashValue };
}

/**
 * Maps member rows, merging rows repeated with the same content. Checks
 * them as CreateMember would: a valid project id, not the owner, and at most
 * `memberQuota` rows (a negative quota means no limit).
 */
function mapGlanceMembers(
  image: Image,
  rows: Record<string, unknown>[],
  memberQuota: number,
  notes: GlanceNote[],
): Member[] {
  const members = new Map<string, Member>();
  const extraKeys = new Set<string>();
  for (const row of rows) {
    const memberId = row.member_id;
    if (typeof memberId !== 'string') {
      throw invalidArgument('members.member_id', memberId === undefined ? 'is missing' : `${showJson(memberId)} is not a string`);
    }
    validateMemberId('members.member_id', memberId);
    assertMemberIsNotOwner(image, memberId);
    const status = row.status;
    if (typeof status !== 'string' || !(MEMBER_STATUSES as readonly string[]).includes(status)) {
      throw invalidArgument(
        'members.status',
        `member ${quote(memberId)}: ${showJson(status)} is not one of ${MEMBER_STATUSES.join(', ')}`,
      );
    }
    const member: Member = {
      imageId: image.id,
      memberId,
      status: status as MemberStatus,
      createTime: parseGlanceTime('members.created_at', row.created_at),
      updateTime: parseGlanceTime('members.updated_at', row.updated_at),
    };
    const earlier = members.get(memberId);
    if (earlier !== undefined && !sameMember(earlier, member)) {
      throw invalidArgument('members.member_id', `${quote(memberId)} is listed twice with different statuses or times`);
    }
    members.set(memberId, member);
    for (const key of Object.keys(row)) {
      if (!MEMBER_KEYS.has(key)) extraKeys.add(key);
    }
  }
  for (const key of extraKeys) {
    const detail = key === 'schema' ? `${READ_ONLY_DETAIL}, a link to Glance's member schema` : 'no registry field keeps it';
    notes.push({ key: `members[].${key}`, action: 'dropped', detail });
  }
  if (memberQuota >= 0 && members.size > memberQuota) {
    throw new RegistryError(
      'RESOURCE_EXHAUSTED',
      `members: image ${quote(image.id)} has ${members.size} members, more than IMAGE_MEMBER_QUOTA of ${memberQuota}`,
      'MEMBER_QUOTA_EXCEEDED',
      'members',
    );
  }
  return [...members.values()];
}

function sameMember(first: Member, second: Member): boolean {
  return first.status === second.status && first.createTime === second.createTime && first.updateTime === second.updateTime;
}

/** Glance's times: `2014-11-07T17:07:06Z`, or v1's `2014-11-07T17:07:06.000000` without a zone. */
const GLANCE_TIME = /^(\d{4})-(\d{2})-(\d{2})[T ](\d{2}):(\d{2}):(\d{2})(?:\.(\d{1,9}))?(Z|[+-]\d{2}:?\d{2})?$/;

/**
 * Parses a Glance time into epoch milliseconds, dropping digits below the
 * millisecond. A time without a zone is UTC, as Glance stores every time.
 */
export function parseGlanceTime(field: string, value: unknown): number {
  if (typeof value !== 'string') {
    throw invalidArgument(field, value === undefined || value === null ? 'is missing' : `${showJson(value)} is not a string`);
  }
  const match = GLANCE_TIME.exec(value);
  if (match === null) {
    throw invalidArgument(field, `${quote(value)} is not a date and time such as 2014-11-07T17:07:06Z`);
  }
  const [year, month, day, hour, minute, second] = match.slice(1, 7).map(Number) as [number, number, number, number, number, number];
  const millis = Number((match[7] ?? '').padEnd(3, '0').slice(0, 3));
  const utc = new Date(Date.UTC(year, month - 1, day, hour, minute, second, millis));
  // Date.UTC rolls 2021-02-30 over into March, and years below 100 into the 1900s.
  const fields = [utc.getUTCFullYear(), utc.getUTCMonth() + 1, utc.getUTCDate(), utc.getUTCHours(), utc.getUTCMinutes(), utc.getUTCSeconds()];
  if (fields.some((part, index) => part !== [year, month, day, hour, minute, second][index])) {
    throw invalidArgument(field, `${quote(value)} is not a valid date and time`);
  }
  return utc.getTime() - zoneOffsetMinutes(match[8] ?? 'Z') * 60_000;
}

function zoneOffsetMinutes(zone: string): number {
  if (zone === 'Z') return 0;
  const digits = zone.slice(1).replace(':', '');
  const minutes = Number(digits.slice(0, 2)) * 60 + Number(digits.slice(2));
  return zone.startsWith('-') ? -minutes : minutes;
}

/** Reads a string field. Absent and null read as the empty string. */
function readString(source: Record<string, unknown>, key: string): string {
  const value = source[key];
  if (value === undefined || value === null) return '';
  if (typeof value !== 'string') throw invalidArgument(key, `${showJson(value)} is not a string`);
  return value;
}

/** Reads a whole number from 0 to `max`. Absent and null read as null. */
function readInteger(source: Record<string, unknown>, key: string, max: number): number | null {
  const value = source[key];
  if (value === undefined || value === null) return null;
  if (typeof value !== 'number' || !Number.isInteger(value) || value < 0 || value > max) {
    throw invalidArgument(key, `${showJson(value)} is invalid; it must be a whole number from 0 to ${max}`);
  }
  return value;
}

/** Reads a boolean field. Absent and null read as false, which is Glance's default. */
function readBoolean(source: Record<string, unknown>, key: string): boolean {
  const value = source[key];
  if (value === undefined || value === null) return false;
  if (typeof value !== 'boolean') throw invalidArgument(key, `${showJson(value)} is not true or false`);
  return value;
}

/** Returns "1 tag" or "2 tags". */
export function plural(count: number, noun: string): string {
  return `${count} ${noun}${count === 1 ? '' : 's'}`;
}

/** Formats a JSON value for a message as JSON text, cut after 80 characters, so that 4 and "4" read differently. */
export function showJson(value: unknown): string {
  const text = JSON.stringify(value) ?? String(value);
  const characters = [...text];
  return characters.length > 80 ? `${characters.slice(0, 80).join('')}…` : text;
}

function isObject(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}
