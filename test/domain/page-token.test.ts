import { describe, expect, it } from 'vitest';
import { decodePageToken, encodePageToken, queryDigest } from '../../src/domain/page-token.js';
import { IMAGE_ID, catchRegistryError } from './fixtures.js';

const DIGEST = queryDigest({ project: 'proj-a', visibility: 'default', orderBy: 'create_time desc,id desc' });
const OTHER_DIGEST = queryDigest({ project: 'proj-b', visibility: 'default', orderBy: 'create_time desc,id desc' });

/** Encodes any JSON value the way a token body is encoded, to build malformed tokens. */
function encodeJsonAsToken(body: unknown): string {
  return Buffer.from(JSON.stringify(body), 'utf8').toString('base64url');
}

function encodeTextAsToken(text: string): string {
  return Buffer.from(text, 'utf8').toString('base64url');
}

describe('queryDigest', () => {
  it('returns the same digest for the same binding', () => {
    expect(queryDigest({ project: 'proj-a', owner: 'x' })).toBe(queryDigest({ project: 'proj-a', owner: 'x' }));
  });

  it.each([
    { name: 'another project', binding: { project: 'proj-b', owner: 'x' } },
    { name: 'another filter value', binding: { project: 'proj-a', owner: 'y' } },
    { name: 'an extra filter', binding: { project: 'proj-a', owner: 'x', name: 'n' } },
  ])('changes with $name', ({ binding }) => {
    expect(queryDigest(binding)).not.toBe(queryDigest({ project: 'proj-a', owner: 'x' }));
  });

  it('is 22 base64url characters', () => {
    expect(DIGEST).toMatch(/^[A-Za-z0-9_-]{22}$/);
  });
});

describe('encodePageToken and decodePageToken', () => {
  it.each<{ name: string; values: (string | number)[]; kinds: ('string' | 'integer')[] }>([
    { name: 'time and id', values: [1_700_000_000_000, IMAGE_ID], kinds: ['integer', 'string'] },
    { name: 'unset size', values: [-1, IMAGE_ID], kinds: ['integer', 'string'] },
    { name: 'zero', values: [0, IMAGE_ID], kinds: ['integer', 'string'] },
    { name: 'largest safe integer', values: [Number.MAX_SAFE_INTEGER, IMAGE_ID], kinds: ['integer', 'string'] },
    { name: 'smallest safe integer', values: [Number.MIN_SAFE_INTEGER, IMAGE_ID], kinds: ['integer', 'string'] },
    { name: 'empty name', values: ['', IMAGE_ID], kinds: ['string', 'string'] },
    {
      name: 'non-ASCII name',
      values: ['ubuntu \u{1F600} é 日本', 'proj-a', IMAGE_ID],
      kinds: ['string', 'string', 'string'],
    },
    { name: 'quotes and backslashes', values: ['a"b\\c\n', IMAGE_ID], kinds: ['string', 'string'] },
    {
      name: 'every sort key',
      values: ['n', 'active', 1, 2, 3, 'o', IMAGE_ID],
      kinds: ['string', 'string', 'integer', 'integer', 'integer', 'string', 'string'],
    },
  ])('round-trips $name', ({ values, kinds }) => {
    const token = encodePageToken(DIGEST, values);

    expect(decodePageToken(token, DIGEST, kinds)).toEqual(values);
  });

  it('makes an opaque base64url token', () => {
    const token = encodePageToken(DIGEST, ['ubuntu-name', 1_700_000_000_000, IMAGE_ID]);

    expect(token).toMatch(/^[A-Za-z0-9_-]+$/);
    expect(token).not.toContain('=');
    expect(token).not.toContain('ubuntu-name');
    expect(token).not.toContain(IMAGE_ID);
  });

  it('makes the same token for the same values', () => {
    expect(encodePageToken(DIGEST, [1, 'a'])).toBe(encodePageToken(DIGEST, [1, 'a']));
  });

  it('rejects a token made for another query', () => {
    const token = encodePageToken(OTHER_DIGEST, [1_700_000_000_000, IMAGE_ID]);
    const error = catchRegistryError(() => decodePageToken(token, DIGEST, ['integer', 'string']));

    expect(error.kind).toBe('INVALID_ARGUMENT');
    expect(error.field).toBe('page_token');
    expect(error.message).toContain('another project');
    expect(error.message).toContain('other filters');
    expect(error.message).toContain('another order_by');
  });

  const valid = { v: 1, q: DIGEST, k: [1_700_000_000_000, IMAGE_ID] };

  it('accepts the hand-built body of a valid token', () => {
    // Each malformed case below differs from this body in one way, so this body must decode.
    expect(decodePageToken(encodeJsonAsToken(valid), DIGEST, ['integer', 'string'])).toEqual(valid.k);
  });

  it.each<{ name: string; token: string }>([
    { name: 'empty text', token: '' },
    { name: 'punctuation only', token: '!!!' },
    { name: 'a short word', token: 'abc' },
    { name: 'text that is not JSON', token: encodeTextAsToken('not json') },
    { name: 'truncated JSON', token: encodeTextAsToken(JSON.stringify(valid).slice(0, -3)) },
    { name: 'a truncated token', token: encodeJsonAsToken(valid).slice(0, -6) },
    { name: 'JSON null', token: encodeJsonAsToken(null) },
    { name: 'a JSON number', token: encodeJsonAsToken(42) },
    { name: 'a JSON string', token: encodeJsonAsToken('text') },
    { name: 'a JSON array', token: encodeJsonAsToken([1, DIGEST, []]) },
    { name: 'an empty object', token: encodeJsonAsToken({}) },
    { name: 'no version', token: encodeJsonAsToken({ q: DIGEST, k: valid.k }) },
    { name: 'version 2', token: encodeJsonAsToken({ ...valid, v: 2 }) },
    { name: 'version 0', token: encodeJsonAsToken({ ...valid, v: 0 }) },
    { name: 'version as text', token: encodeJsonAsToken({ ...valid, v: '1' }) },
    { name: 'no values', token: encodeJsonAsToken({ v: 1, q: DIGEST }) },
    { name: 'values as an object', token: encodeJsonAsToken({ ...valid, k: { 0: 1, 1: IMAGE_ID } }) },
    { name: 'values as text', token: encodeJsonAsToken({ ...valid, k: IMAGE_ID }) },
    { name: 'one value too few', token: encodeJsonAsToken({ ...valid, k: [1_700_000_000_000] }) },
    { name: 'one value too many', token: encodeJsonAsToken({ ...valid, k: [...valid.k, 'extra'] }) },
    { name: 'no values at all', token: encodeJsonAsToken({ ...valid, k: [] }) },
    { name: 'text where an integer belongs', token: encodeJsonAsToken({ ...valid, k: ['1700000000000', IMAGE_ID] }) },
    { name: 'an integer where text belongs', token: encodeJsonAsToken({ ...valid, k: [1_700_000_000_000, 5] }) },
    { name: 'a fraction', token: encodeJsonAsToken({ ...valid, k: [1.5, IMAGE_ID] }) },
    { name: 'null as a value', token: encodeJsonAsToken({ ...valid, k: [null, IMAGE_ID] }) },
    { name: 'a boolean as a value', token: encodeJsonAsToken({ ...valid, k: [true, IMAGE_ID] }) },
    { name: 'an array as a value', token: encodeJsonAsToken({ ...valid, k: [[1], IMAGE_ID] }) },
    { name: 'an object as a value', token: encodeJsonAsToken({ ...valid, k: [1, { id: IMAGE_ID }] }) },
    { name: 'two to the 53', token: encodeJsonAsToken({ ...valid, k: [2 ** 53, IMAGE_ID] }) },
    { name: 'minus two to the 53', token: encodeJsonAsToken({ ...valid, k: [-(2 ** 53), IMAGE_ID] }) },
    {
      name: 'an integer too large for a double',
      token: encodeTextAsToken(`{"v":1,"q":"${DIGEST}","k":[1e400,"${IMAGE_ID}"]}`),
    },
    {
      name: 'an unsafe integer literal',
      token: encodeTextAsToken(`{"v":1,"q":"${DIGEST}","k":[9007199254740993,"${IMAGE_ID}"]}`),
    },
  ])('rejects a token of $name', ({ token }) => {
    const error = catchRegistryError(() => decodePageToken(token, DIGEST, ['integer', 'string']));

    expect(error.kind).toBe('INVALID_ARGUMENT');
    expect(error.field).toBe('page_token');
    expect(error.message).toContain('page_token');
  });

  it('tells a malformed token to start again without it', () => {
    const error = catchRegistryError(() => decodePageToken('abc', DIGEST, ['integer', 'string']));

    expect(error.message).toContain('start again without it');
  });
});
