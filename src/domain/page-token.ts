/**
 * Opaque keyset page tokens. A token carries the last row's sort values and
 * a digest of what it was made for (the caller's project, every filter and
 * the order). It only marks where to resume: which rows the caller may see
 * is decided again on every page, so a forged token selects nothing the
 * caller could not list, and no secret is needed.
 */
import { createHash } from 'node:crypto';
import { invalidArgument } from './errors.js';

const TOKEN_VERSION = 1;

interface TokenBody {
  v: number;
  /** Digest of the query the token belongs to. */
  q: string;
  /** Sort values of the last row returned, one per sort key. */
  k: unknown[];
}

/** Digest of everything a token is bound to, given as a JSON-serializable value. */
export function queryDigest(binding: unknown): string {
  return createHash('sha256').update(JSON.stringify(binding)).digest('base64url').slice(0, 22);
}

export function encodePageToken(digest: string, lastValues: readonly (string | number)[]): string {
  const body: TokenBody = { v: TOKEN_VERSION, q: digest, k: [...lastValues] };
  return Buffer.from(JSON.stringify(body), 'utf8').toString('base64url');
}

/**
 * Returns the sort values in a token made for `digest`, checked against
 * `kinds` (one per sort key), or throws INVALID_ARGUMENT.
 */
export function decodePageToken(
  token: string,
  digest: string,
  kinds: readonly ('string' | 'integer')[],
): (string | number)[] {
  const malformed = invalidArgument('page_token', 'is not a token returned by this call; start again without it');
  // Node's base64url decoder skips foreign characters, so check the alphabet first.
  if (!/^[A-Za-z0-9_-]+$/.test(token)) throw malformed;
  let body: TokenBody;
  try {
    body = JSON.parse(Buffer.from(token, 'base64url').toString('utf8')) as TokenBody;
  } catch {
    throw malformed;
  }
  if (typeof body !== 'object' || body === null || body.v !== TOKEN_VERSION || !Array.isArray(body.k)) {
    throw malformed;
  }
  if (body.q !== digest) {
    throw invalidArgument(
      'page_token',
      'was made for another project, other filters or another order_by; ' +
        'repeat the first request exactly, or start again without a token',
    );
  }
  if (body.k.length !== kinds.length) throw malformed;
  return body.k.map((value, index) => {
    const kind = kinds[index];
    if (kind === 'string' && typeof value === 'string') return value;
    if (kind === 'integer' && Number.isSafeInteger(value)) return value as number;
    throw malformed;
  });
}
