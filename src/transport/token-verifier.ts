/**
 * Verifies bearer JWTs with jose and turns their claims into a Caller.
 * Verified tokens are cached until they expire, because verification costs
 * a large share of a call's time.
 */
import { createPublicKey } from 'node:crypto';
import { readFileSync } from 'node:fs';
import {
  type JWTVerifyGetKey,
  type JWTPayload,
  createLocalJWKSet,
  jwtVerify,
} from 'jose';
import { LRUCache } from 'lru-cache';
import { validateProjectId } from '../domain/image-fields.js';
import type { Caller } from '../domain/model.js';
import { ConfigError } from '../platform/config.js';

export interface TokenVerifierOptions {
  /** HS256 secret, or undefined to accept no HS256 token. */
  secret: string | undefined;
  publicKeyFile: string | undefined;
  jwksFile: string | undefined;
  issuer: string | undefined;
  audience: string | undefined;
  clockToleranceSeconds: number;
}

/** Thrown for every kind of bad token; the message is deliberately generic. */
export class InvalidTokenError extends Error {
  constructor(override readonly cause: unknown) {
    super('invalid or missing bearer token');
  }
}

const MAX_TOKEN_LENGTH = 8192;
const CACHE_ENTRIES = 10_000;
const ROLES = { reader: 'reader', member: 'member', admin: 'admin' } as const;

interface CachedCaller {
  caller: Caller;
  /** Epoch milliseconds after which the token is no longer accepted. */
  expiresAt: number;
}

export class TokenVerifier {
  private readonly getKey: JWTVerifyGetKey;
  private readonly algorithms: string[];
  private readonly cache = new LRUCache<string, CachedCaller>({ max: CACHE_ENTRIES });

  constructor(private readonly options: TokenVerifierOptions) {
    const { getKey, algorithms } = buildKeyResolver(options);
    this.getKey = getKey;
    this.algorithms = algorithms;
  }

  /** Verifies `authorization` metadata ("Bearer <JWT>") and returns the caller. */
  async verify(authorization: string | undefined): Promise<Caller> {
    const token = parseBearer(authorization);
    const cached = this.cache.get(token);
    if (cached !== undefined && Date.now() < cached.expiresAt) return cached.caller;

    let payload: JWTPayload;
    try {
      ({ payload } = await jwtVerify(token, this.getKey, {
        algorithms: this.algorithms,
        issuer: this.options.issuer,
        audience: this.options.audience,
        clockTolerance: this.options.clockToleranceSeconds,
        requiredClaims: ['exp'],
      }));
    } catch (error) {
      throw new InvalidTokenError(error);
    }
    const caller = callerFromClaims(payload);
    // jose accepted exp within the tolerance, so the cache does the same.
    const expiresAt = (payload.exp! + this.options.clockToleranceSeconds) * 1000;
    this.cache.set(token, { caller, expiresAt });
    return caller;
  }
}

function isValidProjectId(projectId: string): boolean {
  try {
    validateProjectId('project_id', projectId);
    return true;
  } catch {
    return false;
  }
}

/** Runs `read`, turning its failure into a ConfigError that names the variable and the file. */
function readKeyFile<T>(variable: string, path: string, expected: string, read: () => T): T {
  try {
    return read();
  } catch (error) {
    throw new ConfigError(
      `invalid configuration:\n  ${variable}=${JSON.stringify(path)}: cannot read ${expected}: ${(error as Error).message}`,
    );
  }
}

function parseBearer(authorization: string | undefined): string {
  const match = /^Bearer +([A-Za-z0-9_\-.]+)$/i.exec(authorization ?? '');
  if (match === null || match[1]!.length > MAX_TOKEN_LENGTH) {
    throw new InvalidTokenError('authorization metadata is missing or not "Bearer <JWT>"');
  }
  return match[1]!;
}

/** Reads project_id, roles and sub, rejecting claims of the wrong type. */
function callerFromClaims(payload: JWTPayload): Caller {
  const { project_id: projectId, roles = [], sub = '' } = payload as Record<string, unknown>;
  if (typeof projectId !== 'string' || !isValidProjectId(projectId)) {
    throw new InvalidTokenError('project_id claim is missing or not a valid project id');
  }
  if (!Array.isArray(roles) || !roles.every((role) => typeof role === 'string')) {
    throw new InvalidTokenError('roles claim is not an array of strings');
  }
  if (typeof sub !== 'string') throw new InvalidTokenError('sub claim is not a string');
  const isAdmin = roles.includes(ROLES.admin);
  const canWrite = isAdmin || roles.includes(ROLES.member);
  return {
    projectId,
    subject: sub,
    isAdmin,
    canWrite,
    canRead: canWrite || roles.includes(ROLES.reader),
  };
}

/**
 * Picks the verification key by the token's algorithm: the HS256 secret, or
 * the configured RSA or EC public key or JWKS. HS256 is accepted alongside a
 * public key only when a secret was configured explicitly.
 */
function buildKeyResolver(options: TokenVerifierOptions): {
  getKey: JWTVerifyGetKey;
  algorithms: string[];
} {
  const secret = options.secret === undefined ? undefined : new TextEncoder().encode(options.secret);
  const algorithms = secret === undefined ? [] : ['HS256'];
  let asymmetric: JWTVerifyGetKey | undefined;

  if (options.publicKeyFile !== undefined) {
    const path = options.publicKeyFile;
    const key = readKeyFile('AUTH_JWT_PUBLIC_KEY_FILE', path, 'a PEM public key', () =>
      createPublicKey(readFileSync(path)),
    );
    algorithms.push(key.asymmetricKeyType === 'ec' ? 'ES256' : 'RS256');
    asymmetric = () => key;
  } else if (options.jwksFile !== undefined) {
    const path = options.jwksFile;
    const jwks = readKeyFile('AUTH_JWKS_FILE', path, 'a JWKS (JSON with a "keys" array)', () =>
      createLocalJWKSet(JSON.parse(readFileSync(path, 'utf8'))),
    );
    algorithms.push('RS256', 'ES256');
    asymmetric = jwks;
  }
  if (algorithms.length === 0) throw new Error('no JWT verification key is configured');

  const getKey: JWTVerifyGetKey = async (header, token) => {
    if (header.alg === 'HS256' && secret !== undefined) return secret;
    if (asymmetric !== undefined && header.alg !== 'HS256') return asymmetric(header, token);
    throw new Error(`no key for algorithm ${header.alg}`);
  };
  return { getKey, algorithms };
}
