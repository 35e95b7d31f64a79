import { describe, expect, it } from 'vitest';
import {
  SORT_FIELDS,
  type SortKey,
  UNSET_SIZE_SORT_VALUE,
  formatOrderBy,
  isNumericSortField,
  parseOrderBy,
  sortValuesOf,
} from '../../src/domain/image-order.js';
import { IMAGE_ID, OWNER_PROJECT, catchRegistryError, makeImage } from './fixtures.js';

const asc = (field: SortKey['field']): SortKey => ({ field, descending: false });
const desc = (field: SortKey['field']): SortKey => ({ field, descending: true });

describe('parseOrderBy', () => {
  it.each<{ name: string; orderBy: string; keys: SortKey[] }>([
    { name: 'empty text sorts newest first', orderBy: '', keys: [desc('create_time'), desc('id')] },
    { name: 'blank text sorts newest first', orderBy: ' \t ', keys: [desc('create_time'), desc('id')] },
    { name: 'field without direction is ascending', orderBy: 'name', keys: [asc('name'), asc('id')] },
    { name: 'asc is ascending', orderBy: 'name asc', keys: [asc('name'), asc('id')] },
    { name: 'desc is descending', orderBy: 'name desc', keys: [desc('name'), desc('id')] },
    {
      name: 'id follows the last field ascending',
      orderBy: 'size desc, name',
      keys: [desc('size'), asc('name'), asc('id')],
    },
    {
      name: 'id follows the last field descending',
      orderBy: 'name, size desc',
      keys: [asc('name'), desc('size'), desc('id')],
    },
    { name: 'explicit id alone is kept', orderBy: 'id desc', keys: [desc('id')] },
    { name: 'explicit id at the end is kept', orderBy: 'name desc, id', keys: [desc('name'), asc('id')] },
    { name: 'explicit id first is kept in place', orderBy: 'id, name desc', keys: [asc('id'), desc('name')] },
    {
      name: 'surrounding whitespace is ignored',
      orderBy: '  name   desc ,\tsize  asc  ',
      keys: [desc('name'), asc('size'), asc('id')],
    },
    {
      name: 'no whitespace after commas is fine',
      orderBy: 'owner,status desc',
      keys: [asc('owner'), desc('status'), desc('id')],
    },
    { name: 'newlines count as whitespace', orderBy: 'name\ndesc', keys: [desc('name'), desc('id')] },
    {
      name: 'every field may appear once',
      orderBy: 'name, status desc, create_time, update_time desc, size, owner desc, id',
      keys: [
        asc('name'),
        desc('status'),
        asc('create_time'),
        desc('update_time'),
        asc('size'),
        desc('owner'),
        asc('id'),
      ],
    },
  ])('$name', ({ orderBy, keys }) => {
    expect(parseOrderBy(orderBy)).toEqual(keys);
  });

  it.each(SORT_FIELDS.filter((field) => field !== 'id'))('accepts %s as a sort field', (field) => {
    expect(parseOrderBy(`${field} desc`)).toEqual([desc(field), desc('id')]);
  });

  it.each([
    { name: 'rejects an unknown field', orderBy: 'colour', shown: 'colour' },
    { name: 'rejects an uppercase field', orderBy: 'NAME', shown: 'NAME' },
    { name: 'rejects a Glance field name', orderBy: 'created_at desc', shown: 'created_at desc' },
    { name: 'rejects an unknown field after a valid one', orderBy: 'name, colour desc', shown: 'colour desc' },
    { name: 'rejects an empty segment', orderBy: 'name,,size', shown: '""' },
    { name: 'rejects a leading comma', orderBy: ',name', shown: '""' },
    { name: 'rejects a trailing comma', orderBy: 'name desc,', shown: '""' },
    { name: 'rejects a blank segment', orderBy: 'name, ,size', shown: '""' },
    { name: 'rejects a lone comma', orderBy: ',', shown: '""' },
    { name: 'rejects a semicolon separator', orderBy: 'name;size', shown: 'name;size' },
    { name: 'rejects a minus prefix', orderBy: '-name', shown: '-name' },
  ])('$name', ({ orderBy, shown }) => {
    const error = catchRegistryError(() => parseOrderBy(orderBy));

    expect(error.kind).toBe('INVALID_ARGUMENT');
    expect(error.field).toBe('order_by');
    expect(error.message).toContain(shown);
    expect(error.message).toContain('not a sort field');
  });

  it.each([
    { name: 'rejects uppercase ASC', orderBy: 'name ASC', shown: 'name ASC' },
    { name: 'rejects uppercase DESC', orderBy: 'size DESC', shown: 'size DESC' },
    { name: 'rejects a spelled-out direction', orderBy: 'name descending', shown: 'name descending' },
    { name: 'rejects two directions', orderBy: 'name asc desc', shown: 'name asc desc' },
    { name: 'rejects two fields without a comma', orderBy: 'name size', shown: 'name size' },
    { name: 'rejects a bad direction after a valid key', orderBy: 'name desc, size up', shown: 'size up' },
  ])('$name', ({ orderBy, shown }) => {
    const error = catchRegistryError(() => parseOrderBy(orderBy));

    expect(error.kind).toBe('INVALID_ARGUMENT');
    expect(error.field).toBe('order_by');
    expect(error.message).toContain(JSON.stringify(shown));
    expect(error.message).toContain('asc or desc');
  });

  it.each([
    { name: 'rejects a repeated field', orderBy: 'name, name desc', field: 'name' },
    { name: 'rejects a repeated field far apart', orderBy: 'size, owner, size', field: 'size' },
    { name: 'rejects a repeated id', orderBy: 'id, id desc', field: 'id' },
  ])('$name', ({ orderBy, field }) => {
    const error = catchRegistryError(() => parseOrderBy(orderBy));

    expect(error.kind).toBe('INVALID_ARGUMENT');
    expect(error.field).toBe('order_by');
    expect(error.message).toContain(JSON.stringify(field));
    expect(error.message).toContain('more than once');
  });
});

describe('formatOrderBy', () => {
  it.each([
    { orderBy: '', text: 'create_time desc,id desc' },
    { orderBy: 'name', text: 'name asc,id asc' },
    { orderBy: ' size desc ,owner ', text: 'size desc,owner asc,id asc' },
    { orderBy: 'id desc', text: 'id desc' },
  ])('writes $orderBy as $text', ({ orderBy, text }) => {
    expect(formatOrderBy(parseOrderBy(orderBy))).toBe(text);
  });

  it('gives equivalent orders one text', () => {
    const spellings = ['name', 'name asc', ' name  asc ', 'name asc, id', 'name, id asc'];
    const texts = new Set(spellings.map((orderBy) => formatOrderBy(parseOrderBy(orderBy))));

    expect([...texts]).toEqual(['name asc,id asc']);
  });

  it('gives different orders different texts', () => {
    expect(formatOrderBy(parseOrderBy('name'))).not.toBe(formatOrderBy(parseOrderBy('name desc')));
  });

  it('parses back to the same keys', () => {
    const keys = parseOrderBy('status desc, size, owner desc');

    expect(parseOrderBy(formatOrderBy(keys))).toEqual(keys);
  });
});

describe('isNumericSortField', () => {
  it.each<{ field: SortKey['field']; numeric: boolean }>([
    { field: 'name', numeric: false },
    { field: 'status', numeric: false },
    { field: 'create_time', numeric: true },
    { field: 'update_time', numeric: true },
    { field: 'size', numeric: true },
    { field: 'owner', numeric: false },
    { field: 'id', numeric: false },
  ])('$field is numeric: $numeric', ({ field, numeric }) => {
    expect(isNumericSortField(field)).toBe(numeric);
  });
});

describe('sortValuesOf', () => {
  const image = makeImage({
    name: 'debian',
    status: 'deactivated',
    createTime: 1_700_000_000_001,
    updateTime: 1_700_000_000_002,
    size: 4096,
  });

  it('returns one value per key in key order', () => {
    const keys = parseOrderBy('name, status, create_time, update_time, size, owner, id');

    expect(sortValuesOf(image, keys)).toEqual([
      'debian',
      'deactivated',
      1_700_000_000_001,
      1_700_000_000_002,
      4096,
      OWNER_PROJECT,
      IMAGE_ID,
    ]);
  });

  it('follows the order of the keys', () => {
    expect(sortValuesOf(image, parseOrderBy('size desc, name'))).toEqual([4096, 'debian', IMAGE_ID]);
  });

  it('gives an unset size -1', () => {
    const values = sortValuesOf(makeImage({ size: null }), [asc('size')]);

    expect(values).toEqual([-1]);
    expect(UNSET_SIZE_SORT_VALUE).toBe(-1);
  });

  it('keeps a size of zero above an unset size', () => {
    const [zero] = sortValuesOf(makeImage({ size: 0 }), [asc('size')]);
    const [unset] = sortValuesOf(makeImage({ size: null }), [asc('size')]);

    expect(zero).toBe(0);
    expect(unset as number).toBeLessThan(zero as number);
  });

  it('returns the default order values', () => {
    expect(sortValuesOf(image, parseOrderBy(''))).toEqual([1_700_000_000_001, IMAGE_ID]);
  });
});
