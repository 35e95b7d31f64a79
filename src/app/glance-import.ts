/**
 * Imports images and members exported from OpenStack Glance into the
 * registry's database, one transaction per image. An image already stored
 * is compared, never overwritten, so a second run over the same files
 * changes nothing.
 */
import { readFile } from 'node:fs/promises';
import type { Knex } from 'knex';
import { RegistryError } from '../domain/errors.js';
import {
  type GlanceDocument,
  GlanceFormatError,
  type GlanceImageMapping,
  type GlanceNote,
  mapGlanceImage,
  parseGlanceDocument,
} from '../domain/glance-mapping.js';
import type { Image, Member } from '../domain/model.js';
import type { Database } from '../persistence/database.js';
import { findImage, insertImage } from '../persistence/image-store.js';
import { insertMember, listMembers } from '../persistence/member-store.js';

export type ImageOutcome = 'created' | 'unchanged' | 'differs' | 'rejected';

/** A field whose stored value is not the one the Glance files give. */
export interface FieldDifference {
  /** The registry's field name, or `members.<project>` and `members.<project>.<field>`. */
  field: string;
  registry: unknown;
  glance: unknown;
}

export interface ImageReport {
  /** The image id, lowercased when it is a valid UUID. */
  id: string;
  name: string;
  /** The file that lists the image, or the member list of an image no file lists. */
  file: string;
  outcome: ImageOutcome;
  /** The reason the image was rejected. */
  reason?: string;
  /** The fields that differ from the stored image. */
  differences?: FieldDifference[];
  /** Member rows imported or compared. */
  members: number;
  notes: GlanceNote[];
}

export interface FileReport {
  path: string;
  kind: GlanceDocument['kind'];
  /** Images or member rows in the file. */
  count: number;
  notes: GlanceNote[];
}

export interface ImportReport {
  files: FileReport[];
  images: ImageReport[];
  totals: Record<ImageOutcome, number>;
}

export interface GlanceFile {
  path: string;
  document: GlanceDocument;
}

export interface GlanceImportOptions {
  /** Members an image may have, as IMAGE_MEMBER_QUOTA. A negative value means no limit. */
  memberQuota: number;
}

/**
 * Reads and checks the shape of every file before anything is written.
 * Throws GlanceFormatError naming the file when one cannot be read, is not
 * JSON, or is neither an images page nor a member list.
 */
export async function readGlanceFiles(paths: string[]): Promise<GlanceFile[]> {
  const files: GlanceFile[] = [];
  for (const path of paths) {
    let text: string;
    try {
      text = await readFile(path, 'utf8');
    } catch (error) {
      throw new GlanceFormatError(`${path}: cannot be read: ${(error as Error).message}`);
    }
    let json: unknown;
    try {
      json = JSON.parse(text);
    } catch (error) {
      throw new GlanceFormatError(`${path}: is not valid JSON: ${(error as Error).message}`);
    }
    try {
      files.push({ path, document: parseGlanceDocument(json) });
    } catch (error) {
      if (error instanceof GlanceFormatError) throw new GlanceFormatError(`${path}: ${error.message}`);
      throw error;
    }
  }
  return files;
}

/** One image of the input, with the files that list it. */
interface SourceImage {
  id: string;
  file: string;
  source: Record<string, unknown>;
  /** Set when another file or page lists the same id with other contents. */
  conflictingFile: string | null;
  notes: GlanceNote[];
}

/**
 * Imports every image of `files` with the member rows of its id, and
 * reports each image as created, unchanged, differs or rejected. A rejected
 * image does not stop the others.
 */
export async function importGlanceFiles(
  database: Database,
  files: GlanceFile[],
  options: GlanceImportOptions,
): Promise<ImportReport> {
  const images = collectImages(files);
  const membersByImage = collectMembers(files);
  const reports: ImageReport[] = [];

  for (const entry of images.values()) {
    const rows = membersByImage.get(entry.id)?.rows ?? [];
    membersByImage.delete(entry.id);
    reports.push(await importOne(database, entry, rows, options));
  }
  for (const [imageId, { file, rows }] of membersByImage) {
    reports.push({
      id: imageId,
      name: '',
      file,
      outcome: 'rejected',
      reason: `${rows.length} member rows name image ${imageId}, which no images file lists; give its images page too`,
      members: 0,
      notes: [],
    });
  }

  const totals: Record<ImageOutcome, number> = { created: 0, unchanged: 0, differs: 0, rejected: 0 };
  for (const report of reports) totals[report.outcome]++;
  const fileReports = files.map(({ path, document }) => ({
    path,
    kind: document.kind,
    count: document.kind === 'images' ? document.images.length : document.members.length,
    notes: document.notes,
  }));
  return { files: fileReports, images: reports, totals };
}

/** Returns the images by lowercased id, in input order, merging identical repeats. */
function collectImages(files: GlanceFile[]): Map<string, SourceImage> {
  const images = new Map<string, SourceImage>();
  for (const { path, document } of files) {
    if (document.kind !== 'images') continue;
    for (const source of document.images) {
      const id = typeof source.id === 'string' ? source.id.toLowerCase() : `(no id, item ${images.size + 1})`;
      const earlier = images.get(id);
      if (earlier === undefined) {
        images.set(id, { id, file: path, source, conflictingFile: null, notes: [] });
      } else if (canonicalJson(earlier.source) === canonicalJson(source)) {
        earlier.notes.push({ key: 'id', action: 'mapped', detail: `listed again, with the same contents, in ${path}` });
      } else {
        earlier.conflictingFile ??= path;
      }
    }
  }
  return images;
}

/** Returns member rows by lowercased image id, with the first file that lists each image. */
function collectMembers(files: GlanceFile[]): Map<string, { file: string; rows: Record<string, unknown>[] }> {
  const members = new Map<string, { file: string; rows: Record<string, unknown>[] }>();
  for (const { path, document } of files) {
    if (document.kind !== 'members') continue;
    for (const row of document.members) {
      const imageId = (row.image_id as string).toLowerCase();
      const entry = members.get(imageId) ?? { file: path, rows: [] };
      entry.rows.push(row);
      members.set(imageId, entry);
    }
  }
  return members;
}

async function importOne(
  database: Database,
  entry: SourceImage,
  memberRows: Record<string, unknown>[],
  options: GlanceImportOptions,
): Promise<ImageReport> {
  const report: ImageReport = {
    id: entry.id,
    name: typeof entry.source.name === 'string' ? entry.source.name : '',
    file: entry.file,
    outcome: 'rejected',
    members: memberRows.length,
    notes: [...entry.notes],
  };
  if (entry.conflictingFile !== null) {
    report.reason = `listed in ${entry.file} and again in ${entry.conflictingFile} with other contents; keep one version`;
    return report;
  }

  let mapping: GlanceImageMapping;
  try {
    mapping = mapGlanceImage(entry.source, memberRows, options);
  } catch (error) {
    if (!(error instanceof RegistryError)) throw error;
    report.reason = error.message;
    return report;
  }
  report.id = mapping.image.id;
  report.members = mapping.members.length;
  report.notes.push(...mapping.notes);

  try {
    const { outcome, differences, notes } = await storeImage(database, mapping);
    report.outcome = outcome;
    if (differences.length > 0) report.differences = differences;
    report.notes.push(...notes);
  } catch (error) {
    // One image's failed write must not stop the others, because the report carries the cause.
    report.reason = `the database write failed: ${(error as Error).message}`;
  }
  return report;
}

interface StoreResult {
  outcome: 'created' | 'unchanged' | 'differs';
  differences: FieldDifference[];
  notes: GlanceNote[];
}

/**
 * Inserts the image, its tags, properties and members in one transaction,
 * or compares them with the stored image. When another process inserts the
 * same id between the check and the insert, the second attempt compares.
 */
async function storeImage(database: Database, mapping: GlanceImageMapping): Promise<StoreResult> {
  for (let attempt = 1; ; attempt++) {
    try {
      return await database.write((trx) => storeInTransaction(database, trx, mapping));
    } catch (error) {
      if (attempt === 1 && error instanceof RegistryError && error.kind === 'ALREADY_EXISTS') continue;
      throw error;
    }
  }
}

async function storeInTransaction(database: Database, trx: Knex.Transaction, mapping: GlanceImageMapping): Promise<StoreResult> {
  const { image, members } = mapping;
  const stored = await findImage(database, trx, image.id, { lock: true });
  if (stored === null) {
    await insertImage(trx, image);
    for (const member of members) await insertMember(trx, member, image.createTime);
    return { outcome: 'created', differences: [], notes: [] };
  }
  // One row more than the files give is enough to see that the stored image has extra members.
  const storedMembers = await listMembers(trx, image.id, { onlyMemberId: null, after: null, limit: members.length + 1 });
  const { differences, notes } = compareWithStored(mapping, stored, storedMembers);
  return { outcome: differences.length === 0 ? 'unchanged' : 'differs', differences, notes };
}

/**
 * Lists the fields in which the stored image and members differ from the
 * mapping. Data uploaded since the import is not a difference when its size
 * and checksum (or multihash) match Glance's. The status, update_time and
 * hashes that the upload stored are then accepted.
 */
export function compareWithStored(
  mapping: GlanceImageMapping,
  stored: Image,
  storedMembers: Member[],
): { differences: FieldDifference[]; notes: GlanceNote[] } {
  const notes: GlanceNote[] = [];
  let expected = mapping.image;
  if (dataUploadedSinceImport(mapping, stored)) {
    expected = {
      ...expected,
      status: stored.status,
      updateTime: stored.updateTime,
      checksum: expected.checksum === '' ? stored.checksum : expected.checksum,
      hashAlgo: stored.hashAlgo === expected.hashAlgo ? expected.hashAlgo : stored.hashAlgo,
      hashValue: stored.hashAlgo === expected.hashAlgo ? expected.hashValue : stored.hashValue,
    };
    notes.push({
      key: 'status',
      action: 'mapped',
      detail: `${stored.status} in the registry: its data was uploaded after the import, with the size and checksum Glance gave`,
    });
  }

  const differences: FieldDifference[] = [];
  const compare = (field: string, registry: unknown, glance: unknown) => {
    if (JSON.stringify(registry) !== JSON.stringify(glance)) differences.push({ field, registry, glance });
  };
  compare('name', stored.name, expected.name);
  compare('status', stored.status, expected.status);
  compare('visibility', stored.visibility, expected.visibility);
  compare('protected', stored.protected, expected.protected);
  compare('hidden', stored.hidden, expected.hidden);
  compare('owner', stored.owner, expected.owner);
  compare('container_format', stored.containerFormat, expected.containerFormat);
  compare('disk_format', stored.diskFormat, expected.diskFormat);
  compare('min_disk', stored.minDisk, expected.minDisk);
  compare('min_ram', stored.minRam, expected.minRam);
  compare('size', stored.size, expected.size);
  compare('virtual_size', stored.virtualSize, expected.virtualSize);
  compare('checksum', stored.checksum, expected.checksum);
  compare('hash_algo', stored.hashAlgo, expected.hashAlgo);
  compare('hash_value', stored.hashValue, expected.hashValue);
  compare('tags', sortByCodePoint(stored.tags), sortByCodePoint(expected.tags));
  compare('properties', sortedEntries(stored.properties), sortedEntries(expected.properties));
  compare('create_time', isoTime(stored.createTime), isoTime(expected.createTime));
  compare('update_time', isoTime(stored.updateTime), isoTime(expected.updateTime));
  compareMembers(storedMembers, mapping.members, differences);
  return { differences, notes };
}

function dataUploadedSinceImport(mapping: GlanceImageMapping, stored: Image): boolean {
  const { glanceStatus, image } = mapping;
  if (!(glanceStatus === 'active' || glanceStatus === 'deactivated') || stored.status !== glanceStatus) return false;
  if (image.size === null || stored.size !== image.size) return false;
  if (image.checksum !== '') return stored.checksum === image.checksum;
  return image.hashAlgo !== '' && stored.hashAlgo === image.hashAlgo && stored.hashValue === image.hashValue;
}

function compareMembers(stored: Member[], glance: Member[], differences: FieldDifference[]): void {
  const storedById = new Map(stored.map((member) => [member.memberId, member]));
  for (const member of glance) {
    const found = storedById.get(member.memberId);
    storedById.delete(member.memberId);
    const field = `members.${member.memberId}`;
    if (found === undefined) {
      differences.push({ field, registry: null, glance: member.status });
      continue;
    }
    if (found.status !== member.status) differences.push({ field: `${field}.status`, registry: found.status, glance: member.status });
    if (found.createTime !== member.createTime) {
      differences.push({ field: `${field}.create_time`, registry: isoTime(found.createTime), glance: isoTime(member.createTime) });
    }
    if (found.updateTime !== member.updateTime) {
      differences.push({ field: `${field}.update_time`, registry: isoTime(found.updateTime), glance: isoTime(member.updateTime) });
    }
  }
  for (const extra of storedById.values()) {
    differences.push({ field: `members.${extra.memberId}`, registry: extra.status, glance: null });
  }
}

function isoTime(millis: number): string {
  return new Date(millis).toISOString();
}

/** Sorts by code point, as the database's binary collation orders tags. */
function sortByCodePoint(items: readonly string[]): string[] {
  return [...items].sort((first, second) => Buffer.compare(Buffer.from(first), Buffer.from(second)));
}

function sortedEntries(record: Record<string, string>): [string, string][] {
  return Object.entries(record).sort(([first], [second]) => Buffer.compare(Buffer.from(first), Buffer.from(second)));
}

/** Serializes JSON with object keys sorted, so that two copies of one image compare equal. */
function canonicalJson(value: unknown): string {
  return JSON.stringify(value, (_key, item: unknown) => {
    if (item === null || typeof item !== 'object' || Array.isArray(item)) return item;
    const entries = Object.entries(item).sort(([first], [second]) => Buffer.compare(Buffer.from(first), Buffer.from(second)));
    return Object.fromEntries(entries);
  });
}
