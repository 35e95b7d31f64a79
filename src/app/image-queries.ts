/** Use cases that read images: one by id, and pages of the listing. */
import { invalidArgument, quote } from '../domain/errors.js';
import {
  MAX_PROPERTIES_PER_IMAGE,
  MAX_TAGS_PER_IMAGE,
  NAME_MAX_CHARS,
  PROJECT_ID_MAX_CHARS,
  PROPERTY_KEY_MAX_CHARS,
  charLength,
  validatePropertyValue,
  parseImageId,
  validateTag,
} from '../domain/image-fields.js';
import {
  type SortKey,
  formatOrderBy,
  isNumericSortField,
  parseOrderBy,
  sortValuesOf,
} from '../domain/image-order.js';
import { type MemberStatusFilter, type VisibilityFilter, listingScope } from '../domain/listing-scope.js';
import type { Caller, Image } from '../domain/model.js';
import { decodePageToken, encodePageToken, queryDigest } from '../domain/page-token.js';
import { type ImageFilters, selectListedImageRows } from '../persistence/image-listing-query.js';
import type { ImageRow } from '../persistence/image-rows.js';
import { hydrateImages } from '../persistence/image-store.js';
import { type RegistryContext, loadReadableImage } from './registry-context.js';

export const DEFAULT_IMAGE_PAGE_SIZE = 25;
export const MAX_PAGE_SIZE = 1000;
export const MAX_IDS_FILTER = 100;

export async function getImage(context: RegistryContext, caller: Caller, rawId: string): Promise<Image> {
  const id = parseImageId('id', rawId);
  const { image } = await context.database.read((db) => loadReadableImage(context, db, caller, id));
  return image;
}

export interface ListImagesQuery {
  pageSize: number;
  pageToken: string;
  orderBy: string;
  visibility: VisibilityFilter;
  memberStatus: MemberStatusFilter;
  filters: ImageFilters;
}

export interface ImagePage {
  images: Image[];
  nextPageToken: string;
}

/**
 * Returns the page size to use: `defaultSize` for 0, at most MAX_PAGE_SIZE,
 * and INVALID_ARGUMENT for a negative size.
 */
export function effectivePageSize(pageSize: number, defaultSize: number): number {
  if (pageSize < 0) throw invalidArgument('page_size', `${pageSize} is negative`);
  if (pageSize === 0) return defaultSize;
  return Math.min(pageSize, MAX_PAGE_SIZE);
}

/**
 * Lists one page of the images the caller may see. The page is read with
 * one query holding every rule and filter, one row past the page so that
 * the next token is empty exactly when nothing follows.
 */
export async function listImages(context: RegistryContext, caller: Caller, query: ListImagesQuery): Promise<ImagePage> {
  const pageSize = effectivePageSize(query.pageSize, DEFAULT_IMAGE_PAGE_SIZE);
  const filters = normalizeFilters(query.filters);
  const keys = parseOrderBy(query.orderBy);
  const digest = queryDigest({
    project: caller.projectId,
    visibility: query.visibility,
    memberStatus: query.memberStatus,
    filters,
    order: formatOrderBy(keys),
  });
  const after =
    query.pageToken === ''
      ? null
      : decodePageToken(query.pageToken, digest, keys.map((key) => (isNumericSortField(key.field) ? 'integer' : 'string')));
  const scope = listingScope(caller, query.visibility, query.memberStatus);

  const { images, hasMore } = await context.database.read(async (db) => {
    const rows = await selectListedImageRows(db, scope, filters, keys, after, pageSize + 1);
    const pageRows = rows.slice(0, countWithinBudget(rows.slice(0, pageSize), PAGE_BYTES_BUDGET));
    return { images: await hydrateImages(db, pageRows), hasMore: rows.length > pageRows.length };
  });
  if (!hasMore) return { images, nextPageToken: '' };
  return { images, nextPageToken: encodePageToken(digest, lastSortValues(images, keys)) };
}

/**
 * Approximate bytes of image metadata one ListImages response carries at
 * most, below the 4 MiB that gRPC clients accept by default. A page stops
 * before page_size when its images carry much metadata, but contains at least
 * one image.
 */
export const PAGE_BYTES_BUDGET = 3 * 1024 * 1024;
/** Bytes an image's fixed fields take on the wire, rounded up. */
const IMAGE_FIXED_BYTES = 400;

/** Returns how many leading rows fit in `budget` bytes, and at least one. */
function countWithinBudget(rows: readonly ImageRow[], budget: number): number {
  let bytes = 0;
  for (let index = 0; index < rows.length; index++) {
    const row = rows[index]!;
    bytes += IMAGE_FIXED_BYTES + row.metadata_bytes + Buffer.byteLength(row.name) + Buffer.byteLength(row.owner);
    if (bytes > budget && index > 0) return index;
  }
  return rows.length;
}

function lastSortValues(page: Image[], keys: SortKey[]): (string | number)[] {
  return sortValuesOf(page[page.length - 1]!, keys);
}

function compareCodeUnits(first: string, second: string): number {
  if (first < second) return -1;
  if (first > second) return 1;
  return 0;
}

/** Maximum length of a stored container or disk format, in characters. */
const FORMAT_MAX_CHARS = 16;

/** Throws INVALID_ARGUMENT for a filter value longer than its column. */
function checkFilterLength(field: string, value: string | null, maxChars: number): void {
  if (value !== null && charLength(value) > maxChars) {
    throw invalidArgument(field, `${quote(value)} is longer than ${maxChars} characters, so it matches no image`);
  }
}

/** Checks filter values and puts them in a canonical form, which page tokens are bound to. */
function normalizeFilters(filters: ImageFilters): ImageFilters {
  let ids = filters.ids;
  if (ids !== null) {
    if (ids.length > MAX_IDS_FILTER) {
      throw invalidArgument('ids', `has ${ids.length} ids, more than ${MAX_IDS_FILTER}`);
    }
    ids = [...new Set(ids.map((id) => parseImageId('ids', id)))].sort();
  }
  // An image has at most 128 tags and 128 properties, so a longer filter
  // could match nothing, and each entry costs a subquery.
  if (filters.tags.length > MAX_TAGS_PER_IMAGE) {
    throw invalidArgument('tags', `has ${filters.tags.length} tags, more than ${MAX_TAGS_PER_IMAGE}`);
  }
  const propertyCount = Object.keys(filters.properties).length;
  if (propertyCount > MAX_PROPERTIES_PER_IMAGE) {
    throw invalidArgument('properties', `has ${propertyCount} entries, more than ${MAX_PROPERTIES_PER_IMAGE}`);
  }
  for (const tag of filters.tags) validateTag('tags', tag);
  // A value longer than its column can match nothing, and on MySQL a long
  // enough one would not fit in one statement.
  checkFilterLength('name', filters.name, NAME_MAX_CHARS);
  checkFilterLength('owner', filters.owner, PROJECT_ID_MAX_CHARS);
  checkFilterLength('container_format', filters.containerFormat, FORMAT_MAX_CHARS);
  checkFilterLength('disk_format', filters.diskFormat, FORMAT_MAX_CHARS);
  for (const [key, value] of Object.entries(filters.properties)) {
    checkFilterLength('properties', key, PROPERTY_KEY_MAX_CHARS);
    validatePropertyValue('properties', key, value);
  }
  const sortedEntries = Object.entries(filters.properties).sort(([first], [second]) =>
    compareCodeUnits(first, second),
  );
  const properties = Object.fromEntries(sortedEntries);
  return { ...filters, ids, tags: [...new Set(filters.tags)].sort(), properties };
}
