/** Sort orders of ListImages: parsing order_by, and the sort values of an image. */
import { invalidArgument, quote } from './errors.js';
import type { Image } from './model.js';

export const SORT_FIELDS = ['name', 'status', 'create_time', 'update_time', 'size', 'owner', 'id'] as const;
export type SortField = (typeof SORT_FIELDS)[number];

export interface SortKey {
  field: SortField;
  descending: boolean;
}

/** A value of one sort key: text for names, status, owner and id, integers otherwise. */
export type SortValue = string | number;

const NUMERIC_FIELDS: ReadonlySet<SortField> = new Set(['create_time', 'update_time', 'size']);

/** The sort value of an unset size: smaller than every real size. */
export const UNSET_SIZE_SORT_VALUE = -1;

export const DEFAULT_ORDER_BY = 'create_time desc';

function isSortField(name: string): name is SortField {
  return (SORT_FIELDS as readonly string[]).includes(name);
}

/**
 * Parses an order_by string: comma-separated fields, each optionally
 * followed by `asc` or `desc`, each field at most once. Empty means
 * `create_time desc`. Unless `id` is named, the result ends with `id` in the
 * direction of the last field given, so that the order is total. An `id`
 * named earlier stays where it is, since nothing after a unique key matters.
 */
export function parseOrderBy(orderBy: string): SortKey[] {
  const text = orderBy.trim() === '' ? DEFAULT_ORDER_BY : orderBy;
  const keys: SortKey[] = [];
  for (const part of text.split(',')) {
    const words = part.trim().split(/\s+/);
    const [field, direction, ...rest] = words;
    if (field === undefined || field === '' || !isSortField(field)) {
      throw invalidArgument(
        'order_by',
        `${quote(part.trim())} is not a sort field; use one of ${SORT_FIELDS.join(', ')}`,
      );
    }
    if (rest.length > 0 || (direction !== undefined && direction !== 'asc' && direction !== 'desc')) {
      throw invalidArgument('order_by', `${quote(part.trim())}: a field may be followed only by asc or desc`);
    }
    if (keys.some((key) => key.field === field)) {
      throw invalidArgument('order_by', `${quote(field)} appears more than once`);
    }
    keys.push({ field, descending: direction === 'desc' });
  }
  if (!keys.some((key) => key.field === 'id')) {
    keys.push({ field: 'id', descending: keys[keys.length - 1]!.descending });
  }
  return keys;
}

/** Returns the canonical text of a parsed order, which page tokens are bound to. */
export function formatOrderBy(keys: readonly SortKey[]): string {
  return keys.map((key) => `${key.field} ${key.descending ? 'desc' : 'asc'}`).join(',');
}

export function isNumericSortField(field: SortField): boolean {
  return NUMERIC_FIELDS.has(field);
}

/** Returns the image's value for each sort key; an unset size is UNSET_SIZE_SORT_VALUE. */
export function sortValuesOf(image: Image, keys: readonly SortKey[]): SortValue[] {
  return keys.map(({ field }) => {
    switch (field) {
      case 'name':
        return image.name;
      case 'status':
        return image.status;
      case 'create_time':
        return image.createTime;
      case 'update_time':
        return image.updateTime;
      case 'size':
        return image.size ?? UNSET_SIZE_SORT_VALUE;
      case 'owner':
        return image.owner;
      case 'id':
        return image.id;
    }
  });
}
