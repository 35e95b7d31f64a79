/**
 * The ListImages query: the caller's listing scope, every filter and the
 * keyset position rendered into one SQL statement, so that a page is cut by
 * LIMIT only after everything that decides membership in it. Sort keys and
 * columns come from fixed tables below; request values reach SQL only as
 * bound parameters.
 */
import type { Knex } from 'knex';
import type { ListingScope } from '../domain/listing-scope.js';
import type { ImageStatus, Visibility } from '../domain/model.js';
import { type SortField, type SortKey, type SortValue, UNSET_SIZE_SORT_VALUE } from '../domain/image-order.js';
import type { Queryable } from './database.js';
import { IMAGE_COLUMNS, type ImageRow } from './image-rows.js';

export interface ImageFilters {
  owner: string | null;
  name: string | null;
  status: ImageStatus | null;
  tags: string[];
  properties: Record<string, string>;
  containerFormat: string | null;
  diskFormat: string | null;
  /** Only these ids, or null for any. */
  ids: string[] | null;
  /** Only images with update_time strictly later, in epoch milliseconds. */
  updatedAfter: number | null;
  includeHidden: boolean;
}

/** SQL for each sort field, with `??` standing for its column. */
const SORT_EXPRESSIONS: Record<SortField, { sql: string; column: string }> = {
  name: { sql: '??', column: 'images.name' },
  status: { sql: '??', column: 'images.status' },
  create_time: { sql: '??', column: 'images.create_time' },
  update_time: { sql: '??', column: 'images.update_time' },
  // An unset size sorts as the smallest value on both databases.
  size: { sql: `COALESCE(??, ${UNSET_SIZE_SORT_VALUE})`, column: 'images.size' },
  owner: { sql: '??', column: 'images.owner' },
  id: { sql: '??', column: 'images.id' },
};

const NEVER_LISTED_STATUSES: ImageStatus[] = ['killed', 'deleted'];
const EVERYONE_READS: Visibility[] = ['public', 'community'];

/**
 * Reads up to `limit` image rows of the listing, in the order of `keys`,
 * starting after the row whose sort values are `after`.
 */
export async function selectListedImageRows(
  db: Queryable,
  scope: ListingScope,
  filters: ImageFilters,
  keys: readonly SortKey[],
  after: readonly SortValue[] | null,
  limit: number,
): Promise<ImageRow[]> {
  const query = db<ImageRow>('images').select(IMAGE_COLUMNS.map((column) => `images.${column}`));
  query.whereNotIn('images.status', NEVER_LISTED_STATUSES);
  applyScope(query, scope);
  applyFilters(query, filters);
  if (after !== null) applyKeysetStart(query, keys, after);
  applyOrder(query, keys);
  return (await query.limit(limit)) as unknown as ImageRow[];
}

function applyScope(query: Knex.QueryBuilder, scope: ListingScope): void {
  const project = scope.projectId;
  if (!scope.allImages) {
    query.where((candidates) => {
      candidates.whereIn('images.visibility', EVERYONE_READS).orWhere('images.owner', project);
      if (scope.memberStatuses.length > 0) {
        candidates.orWhere((shared) => {
          shared.where('images.visibility', 'shared').whereExists((membership) => {
            membership
              .select(membership.client.raw('1'))
              .from('image_members as membership')
              .whereRaw('?? = ??', ['membership.image_id', 'images.id'])
              .where('membership.member_id', project)
              .whereIn('membership.status', scope.memberStatuses);
          });
        });
      }
    });
  }
  if (scope.visibility !== null) query.where('images.visibility', scope.visibility);
  if (scope.dropOthersCommunity) {
    query.whereNot((othersCommunity) => {
      othersCommunity.where('images.visibility', 'community').whereNot('images.owner', project);
    });
  }
}

function applyFilters(query: Knex.QueryBuilder, filters: ImageFilters): void {
  if (!filters.includeHidden) query.where('images.hidden', false);
  if (filters.owner !== null) query.where('images.owner', filters.owner);
  if (filters.name !== null) query.where('images.name', filters.name);
  if (filters.status !== null) query.where('images.status', filters.status);
  if (filters.containerFormat !== null) query.where('images.container_format', filters.containerFormat);
  if (filters.diskFormat !== null) query.where('images.disk_format', filters.diskFormat);
  if (filters.ids !== null) query.whereIn('images.id', filters.ids);
  if (filters.updatedAfter !== null) query.where('images.update_time', '>', filters.updatedAfter);
  filters.tags.forEach((tag, index) => {
    const alias = `tag${index}`;
    query.whereExists((tagged) => {
      tagged
        .select(tagged.client.raw('1'))
        .from(`image_tags as ${alias}`)
        .whereRaw('?? = ??', [`${alias}.image_id`, 'images.id'])
        .where(`${alias}.tag`, tag);
    });
  });
  Object.entries(filters.properties).forEach(([name, value], index) => {
    const alias = `property${index}`;
    query.whereExists((withProperty) => {
      withProperty
        .select(withProperty.client.raw('1'))
        .from(`image_properties as ${alias}`)
        .whereRaw('?? = ??', [`${alias}.image_id`, 'images.id'])
        .where(`${alias}.name`, name)
        .where(`${alias}.value`, value);
    });
  });
}

/**
 * Keeps rows that sort after `after`: for keys k1..kn, the disjunction of
 * (k1 = v1 AND … AND k(i-1) = v(i-1) AND ki beyond vi) for each i.
 */
function applyKeysetStart(query: Knex.QueryBuilder, keys: readonly SortKey[], after: readonly SortValue[]): void {
  const disjuncts: string[] = [];
  const bindings: (string | number)[] = [];
  keys.forEach((key, index) => {
    const terms: string[] = [];
    for (let prefix = 0; prefix < index; prefix++) {
      const equal = SORT_EXPRESSIONS[keys[prefix]!.field];
      terms.push(`${equal.sql} = ?`);
      bindings.push(equal.column, after[prefix]!);
    }
    const expression = SORT_EXPRESSIONS[key.field];
    terms.push(`${expression.sql} ${key.descending ? '<' : '>'} ?`);
    bindings.push(expression.column, after[index]!);
    disjuncts.push(`(${terms.join(' AND ')})`);
  });
  query.whereRaw(`(${disjuncts.join(' OR ')})`, bindings);
}

function applyOrder(query: Knex.QueryBuilder, keys: readonly SortKey[]): void {
  const parts = keys.map((key) => `${SORT_EXPRESSIONS[key.field].sql} ${key.descending ? 'DESC' : 'ASC'}`);
  query.orderByRaw(parts.join(', '), keys.map((key) => SORT_EXPRESSIONS[key.field].column));
}
