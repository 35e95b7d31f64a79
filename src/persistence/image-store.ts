/** Named operations on images, their tags and their properties. */
import type { Knex } from 'knex';
import { metadataBytes } from '../domain/image-fields.js';
import { type Image, type ImageStatus, type Member, type MemberStatus, emptyRecord } from '../domain/model.js';
import type { Database, Queryable } from './database.js';
import {
  IMAGE_COLUMNS,
  type ImageRow,
  type PropertyRow,
  type TagRow,
  imageFromRows,
  rowFromImage,
} from './image-rows.js';

/** Loads tags and properties for image rows, keeping the rows' order. */
export async function hydrateImages(db: Queryable, rows: ImageRow[]): Promise<Image[]> {
  if (rows.length === 0) return [];
  const ids = rows.map((row) => row.id);
  const [tagRows, propertyRows] = await Promise.all([
    db<TagRow>('image_tags').select('image_id', 'tag').whereIn('image_id', ids).orderBy(['image_id', 'tag']),
    db<PropertyRow>('image_properties').select('image_id', 'name', 'value').whereIn('image_id', ids),
  ]);
  const tags = new Map<string, string[]>();
  for (const { image_id, tag } of tagRows) {
    const list = tags.get(image_id) ?? [];
    list.push(tag);
    tags.set(image_id, list);
  }
  const properties = new Map<string, Record<string, string>>();
  for (const { image_id, name, value } of propertyRows) {
    const map = properties.get(image_id) ?? emptyRecord();
    map[name] = value;
    properties.set(image_id, map);
  }
  return rows.map((row) => imageFromRows(row, tags.get(row.id) ?? [], properties.get(row.id) ?? emptyRecord()));
}

/**
 * Loads one image, deleted ones included, or null. With `lock` on MySQL the
 * row stays locked until the transaction ends.
 */
export async function findImage(
  database: Database,
  db: Queryable,
  id: string,
  { lock = false } = {},
): Promise<Image | null> {
  let query = db<ImageRow>('images').select(IMAGE_COLUMNS).where('id', id);
  if (lock) query = database.forUpdate(query);
  const row = (await query.first()) as ImageRow | undefined;
  if (row === undefined) return null;
  const [image] = await hydrateImages(db, [row]);
  return image!;
}

/**
 * An image row with the columns of one project's member row on it (null
 * when it has none), and its tags and properties aggregated as JSON.
 */
interface ImageReadRow extends ImageRow {
  membership_status: string | null;
  membership_create_time: number | string | null;
  membership_update_time: number | string | null;
  tags_json: string | string[] | null;
  properties_json: string | Record<string, string> | null;
}

/** SQL aggregates of tags and properties as JSON, per dialect. */
const JSON_AGGREGATES = {
  mysql: { tags: 'JSON_ARRAYAGG(??)', properties: 'JSON_OBJECTAGG(??, ??)' },
  sqlite: { tags: 'json_group_array(??)', properties: 'json_group_object(??, ??)' },
};

/**
 * Loads one image, deleted ones included, and `projectId`'s member row on
 * it, without locking, in one statement: tags and properties come as JSON
 * aggregates. MariaDB cuts an aggregate at group_concat_max_len (1 MiB by
 * default), so when the aggregated bytes differ from the row's
 * metadata_bytes, the tags and properties are read again with plain queries.
 */
export async function findImageAndMembership(
  database: Database,
  db: Queryable,
  id: string,
  projectId: string,
): Promise<{ image: Image | null; membership: Member | null }> {
  const aggregates = JSON_AGGREGATES[database.dialect];
  const rows = (await db('images')
    .select(IMAGE_COLUMNS.map((column) => `images.${column}`))
    .select({
      membership_status: 'membership.status',
      membership_create_time: 'membership.create_time',
      membership_update_time: 'membership.update_time',
    })
    .select(
      db.raw(`(SELECT ${aggregates.tags} FROM ?? WHERE ?? = ??) AS tags_json`, [
        'tag',
        'image_tags',
        'image_tags.image_id',
        'images.id',
      ]),
      db.raw(`(SELECT ${aggregates.properties} FROM ?? WHERE ?? = ??) AS properties_json`, [
        'name',
        'value',
        'image_properties',
        'image_properties.image_id',
        'images.id',
      ]),
    )
    .leftJoin('image_members as membership', (join) => {
      join.on('membership.image_id', '=', 'images.id').andOn('membership.member_id', '=', db.raw('?', [projectId]));
    })
    .where('images.id', id)) as ImageReadRow[];
  const row = rows[0];
  if (row === undefined) return { image: null, membership: null };

  const tags = sortByCodePoint(parseJson<string[]>(row.tags_json) ?? []);
  const properties = Object.assign(emptyRecord(), parseJson<Record<string, string>>(row.properties_json) ?? {});
  let image = imageFromRows(row, tags, properties);
  if (metadataBytes(image) !== row.metadata_bytes) [image] = (await hydrateImages(db, [row])) as [Image];

  const membership: Member | null =
    row.membership_status === null
      ? null
      : {
          imageId: id,
          memberId: projectId,
          status: row.membership_status as MemberStatus,
          createTime: Number(row.membership_create_time),
          updateTime: Number(row.membership_update_time),
        };
  return { image, membership };
}

/** Parses a JSON aggregate, which MySQL's driver may have parsed already. */
function parseJson<T>(value: string | T | null): T | null {
  if (value === null) return null;
  return typeof value === 'string' ? (JSON.parse(value) as T) : value;
}

/** Sorts strings by code point, as the binary collation orders tags. */
function sortByCodePoint(items: string[]): string[] {
  return items.sort((first, second) => Buffer.compare(Buffer.from(first), Buffer.from(second)));
}

/** Returns whether any image, deleted or not, ever had this id. */
export async function imageIdExists(db: Queryable, id: string): Promise<boolean> {
  const row = await db('images').select('id').where('id', id).first();
  return row !== undefined;
}

export async function insertImage(trx: Knex.Transaction, image: Image): Promise<void> {
  await trx('images').insert(rowFromImage(image));
  await replaceTags(trx, image.id, image.tags);
  await replaceProperties(trx, image.id, image.properties);
}

/** Writes every field of `after`, and its tags and properties where they changed. */
export async function updateImage(trx: Knex.Transaction, before: Image, after: Image): Promise<void> {
  const { id, ...fields } = rowFromImage(after);
  await trx('images').update(fields).where('id', id);
  if (!sameItems(before.tags, after.tags)) await replaceTags(trx, id, after.tags);
  if (!sameProperties(before.properties, after.properties)) {
    await replaceProperties(trx, id, after.properties);
  }
}

export async function setImageStatus(
  trx: Knex.Transaction,
  imageId: string,
  status: ImageStatus,
  now: number,
): Promise<void> {
  await trx('images').update({ status, update_time: now }).where('id', imageId);
}

/**
 * Marks an image deleted and removes its member rows, tags and properties.
 * The row stays as a tombstone so that its id is never given out again.
 */
export async function markImageDeleted(trx: Knex.Transaction, imageId: string, now: number): Promise<void> {
  await trx('image_members').where('image_id', imageId).delete();
  await trx('image_tags').where('image_id', imageId).delete();
  await trx('image_properties').where('image_id', imageId).delete();
  await trx('images').update({ status: 'deleted', metadata_bytes: 0, update_time: now }).where('id', imageId);
}

async function replaceTags(trx: Knex.Transaction, imageId: string, tags: string[]): Promise<void> {
  await trx('image_tags').where('image_id', imageId).delete();
  if (tags.length > 0) {
    await trx('image_tags').insert(tags.map((tag) => ({ image_id: imageId, tag })));
  }
}

async function replaceProperties(
  trx: Knex.Transaction,
  imageId: string,
  properties: Record<string, string>,
): Promise<void> {
  await trx('image_properties').where('image_id', imageId).delete();
  const rows = Object.entries(properties).map(([name, value]) => ({ image_id: imageId, name, value }));
  for (const batch of batchesOfBytes(rows, INSERT_BATCH_BYTES)) await trx('image_properties').insert(batch);
}

/**
 * Bytes of property text one INSERT carries at most. MySQL escapes quotes
 * and backslashes in the statement, which can double the size, and 128
 * values of 64 KiB would pass the default max_allowed_packet of 16 MiB in
 * one statement.
 */
const INSERT_BATCH_BYTES = 1024 * 1024;

/** Splits property rows into batches whose names and values total at most `maxBytes`, one row at least. */
function batchesOfBytes(rows: PropertyRow[], maxBytes: number): PropertyRow[][] {
  const batches: PropertyRow[][] = [];
  let batch: PropertyRow[] = [];
  let bytes = 0;
  for (const row of rows) {
    const rowBytes = Buffer.byteLength(row.name) + Buffer.byteLength(row.value);
    if (batch.length > 0 && bytes + rowBytes > maxBytes) {
      batches.push(batch);
      batch = [];
      bytes = 0;
    }
    batch.push(row);
    bytes += rowBytes;
  }
  if (batch.length > 0) batches.push(batch);
  return batches;
}

function sameItems(a: readonly string[], b: readonly string[]): boolean {
  return a.length === b.length && a.every((item, index) => item === b[index]);
}

function sameProperties(a: Record<string, string>, b: Record<string, string>): boolean {
  const keys = Object.keys(a);
  return keys.length === Object.keys(b).length && keys.every((key) => Object.hasOwn(b, key) && a[key] === b[key]);
}

/** Returns the upload lease of a saving image, in epoch milliseconds, or null. */
export async function findUploadExpiry(db: Queryable, imageId: string): Promise<number | null> {
  const row = (await db('images').select('upload_expires_at').where('id', imageId).first()) as
    | { upload_expires_at: number | string | null }
    | undefined;
  return row?.upload_expires_at == null ? null : Number(row.upload_expires_at);
}

/** Marks an image saving, held by an upload until `expiresAt`. */
export async function startUpload(trx: Knex.Transaction, imageId: string, expiresAt: number, now: number): Promise<void> {
  await trx('images').update({ status: 'saving', upload_expires_at: expiresAt, update_time: now }).where('id', imageId);
}

/** Extends the lease of a running upload; returns false when the image is no longer saving. */
export async function renewUploadLease(db: Queryable, imageId: string, expiresAt: number): Promise<boolean> {
  const updated = await db('images')
    .update({ upload_expires_at: expiresAt })
    .where({ id: imageId, status: 'saving' });
  return updated > 0;
}

/** Records stored data and makes the image active. */
export async function finishUpload(
  trx: Knex.Transaction,
  imageId: string,
  data: { size: number; checksum: string; sha512: string },
  now: number,
): Promise<void> {
  await trx('images')
    .update({
      status: 'active',
      size: data.size,
      checksum: data.checksum,
      hash_algo: 'sha512',
      hash_value: data.sha512,
      upload_expires_at: null,
      update_time: now,
    })
    .where('id', imageId);
}

/** Returns a saving image to queued after a failed upload. */
export async function abandonUpload(db: Queryable, imageId: string, now: number): Promise<void> {
  await db('images')
    .update({ status: 'queued', upload_expires_at: null, update_time: now })
    .where({ id: imageId, status: 'saving' });
}

/**
 * Returns the bytes of data stored for a project's images, leaving out one
 * image. With `lock`, the rows read stay locked on MySQL until the
 * transaction ends.
 */
export async function projectStoredBytes(
  db: Queryable,
  owner: string,
  exceptImageId: string,
  { lock }: { lock?: Database } = {},
): Promise<number> {
  let query = db('images')
    .select('size')
    .where('owner', owner)
    .whereNot('id', exceptImageId)
    .whereNot('status', 'deleted')
    .whereNotNull('size');
  if (lock !== undefined) query = lock.forUpdate(query);
  const rows = (await query) as { size: number | string }[];
  return rows.reduce((total, row) => total + Number(row.size), 0);
}

/** Returns which of `ids` name images that exist and are not deleted. */
export async function selectLiveImageIds(db: Queryable, ids: string[]): Promise<Set<string>> {
  const rows = (await db('images').select('id').whereIn('id', ids).whereNot('status', 'deleted')) as { id: string }[];
  return new Set(rows.map((row) => row.id));
}
