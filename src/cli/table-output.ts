/** Plain-text tables and JSON output of images and members for the command-line client. */
import { Image, ImageStatus, Visibility, imageStatusToJSON, visibilityToJSON } from '../../gen/imageregistry/v1/image.js';
import { Member, MemberStatus, memberStatusToJSON } from '../../gen/imageregistry/v1/member_service.js';

const COLUMN_GAP = '  ';

/**
 * Replaces control characters with \u escapes. Names, tags and properties
 * come from other projects, so printing them raw could move the cursor or
 * change the terminal's state, and a tab or newline would break the columns.
 */
function escapeControlCharacters(text: string): string {
  return text.replace(/\p{Cc}/gu, (character) => `\\u${character.charCodeAt(0).toString(16).padStart(4, '0')}`);
}

/** Formats rows as left-aligned columns separated by two spaces, with a header row when given. */
export function formatTable(rows: string[][], headers?: string[]): string {
  const allRows = (headers === undefined ? rows : [headers, ...rows]).map((row) => row.map(escapeControlCharacters));
  const widths: number[] = [];
  for (const row of allRows) {
    row.forEach((cell, column) => {
      widths[column] = Math.max(widths[column] ?? 0, cell.length);
    });
  }
  const lines = allRows.map((row) =>
    row
      .map((cell, column) => (column === row.length - 1 ? cell : cell.padEnd(widths[column]!)))
      .join(COLUMN_GAP)
      .trimEnd(),
  );
  return lines.map((line) => `${line}\n`).join('');
}

/** Formats a value as indented JSON with a trailing newline. */
export function formatJson(value: unknown): string {
  return `${JSON.stringify(value, null, 2)}\n`;
}

/** Returns an enum value's name without its prefix: IMAGE_STATUS_ACTIVE becomes ACTIVE. */
function shortEnumName(name: string, prefix: string): string {
  return name.startsWith(prefix) ? name.slice(prefix.length) : name;
}

export function imageStatusName(status: ImageStatus): string {
  return shortEnumName(imageStatusToJSON(status), 'IMAGE_STATUS_');
}

export function visibilityName(visibility: Visibility): string {
  return shortEnumName(visibilityToJSON(visibility), 'VISIBILITY_');
}

export function memberStatusName(status: MemberStatus): string {
  return shortEnumName(memberStatusToJSON(status), 'MEMBER_STATUS_');
}

function compareCodePoints(a: string, b: string): number {
  if (a === b) return 0;
  return a < b ? -1 : 1;
}

/** Formats a timestamp as ISO 8601 in UTC, or an empty string when unset. */
function formatTime(time: Date | undefined): string {
  return time === undefined ? '' : time.toISOString();
}

const IMAGE_LIST_HEADERS = ['ID', 'NAME', 'STATUS', 'VISIBILITY', 'OWNER', 'SIZE', 'CREATED'];

/** Formats images as a table with one row each; SIZE is in bytes. */
export function formatImageList(images: Image[]): string {
  const rows = images.map((image) => [
    image.id,
    image.name,
    imageStatusName(image.status),
    visibilityName(image.visibility),
    image.owner,
    image.size ?? '',
    formatTime(image.createTime),
  ]);
  return formatTable(rows, IMAGE_LIST_HEADERS);
}

/**
 * Formats every field of one image as FIELD VALUE rows, named as in the
 * proto. Tags are joined with commas, and each property gets a row of its
 * own as KEY=VALUE.
 */
export function formatImageDetails(image: Image): string {
  const rows: string[][] = [
    ['id', image.id],
    ['name', image.name],
    ['status', imageStatusName(image.status)],
    ['visibility', visibilityName(image.visibility)],
    ['owner', image.owner],
    ['protected', String(image.protected)],
    ['hidden', String(image.hidden)],
    ['container_format', image.containerFormat],
    ['disk_format', image.diskFormat],
    ['min_disk', String(image.minDisk)],
    ['min_ram', String(image.minRam)],
    ['size', image.size ?? ''],
    ['virtual_size', image.virtualSize ?? ''],
    ['checksum', image.checksum],
    ['hash_algo', image.hashAlgo],
    ['hash_value', image.hashValue],
    ['tags', [...image.tags].sort().join(',')],
  ];
  // Sorted with <, not by locale, so the order does not depend on the environment.
  const properties = [...image.properties.entries()].sort(([keyA], [keyB]) => compareCodePoints(keyA, keyB));
  if (properties.length === 0) rows.push(['properties', '']);
  properties.forEach(([key, value], index) => rows.push([index === 0 ? 'properties' : '', `${key}=${value}`]));
  rows.push(['create_time', formatTime(image.createTime)], ['update_time', formatTime(image.updateTime)]);
  return formatTable(rows);
}

const MEMBER_HEADERS = ['IMAGE_ID', 'MEMBER_ID', 'STATUS', 'CREATED', 'UPDATED'];

export function formatMemberList(members: Member[]): string {
  const rows = members.map((member) => [
    member.imageId,
    member.memberId,
    memberStatusName(member.status),
    formatTime(member.createTime),
    formatTime(member.updateTime),
  ]);
  return formatTable(rows, MEMBER_HEADERS);
}

/** Converts to protobuf's JSON mapping (camelCase names, enum names, fields at their defaults left out). */
export function imageToJson(image: Image): unknown {
  return Image.toJSON(image);
}

export function memberToJson(member: Member): unknown {
  return Member.toJSON(member);
}
