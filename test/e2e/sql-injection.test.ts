/**
 * Classic SQL injection payloads through every string field of every RPC,
 * on SQLite and on MySQL: quotes, comment markers, UNION SELECT, statement
 * separators, LIKE wildcards, placeholders, backslashes, NUL and very long
 * text.
 *
 * Each call must return the code that the field's rules give for the
 * payload as plain text. Accepted strings must come back, and sit in the
 * database, byte for byte. Filters must match payloads literally. No row
 * outside the images that the successful calls touched may change: the
 * test reads every table of the server's database directly, before and
 * after each group of calls.
 */
import { createHash } from 'node:crypto';
import BetterSqlite3 from 'better-sqlite3';
import * as grpc from '@grpc/grpc-js';
import mysql from 'mysql2/promise';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type Image, Visibility } from '../../gen/imageregistry/v1/image.js';
import { CreateImageRequest, ImageServiceClient, UpdateImageRequest, VisibilityFilter } from '../../gen/imageregistry/v1/image_service.js';
import { MemberStatus } from '../../gen/imageregistry/v1/member_service.js';
import { type BackendName, type TestDatabase, createTestDatabase, testedBackends } from '../support/databases.js';
import { type RegistryClient, RegistryHarness } from '../support/registry-harness.js';

interface Payload {
  /** A printable name of the payload for failure lists. */
  label: string;
  text: string;
}

function payload(text: string): Payload {
  const label = text.length > 60 ? `${JSON.stringify([...text].slice(0, 24).join(''))}… (${[...text].length} characters)` : JSON.stringify(text);
  return { label, text };
}

/** Fills 255 characters with repeats of `unit`, cut at a code point boundary. */
function fill255(unit: string): string {
  return [...unit.repeat(Math.ceil(255 / [...unit].length))].slice(0, 255).join('');
}

const PAYLOADS: Payload[] = [
  "'", "''", '"', '`', '\\', "\\'", '\\\\', '%', '_', '%%', 'a%', '%a', '_a_', '[a-z]%', '\\%', '\\_',
  "' OR 1=1 --", "' OR 1=1 -- ", "' OR '1'='1", '" OR ""="', "') OR ('1'='1", "admin'--", "admin' #",
  "'; DROP TABLE images; --", '"; DROP TABLE images; --', '`; DROP TABLE images; --', '1; DELETE FROM image_members',
  "' UNION SELECT id, name, owner FROM images --", "' UNION SELECT NULL, NULL --", "'||(SELECT name FROM sqlite_master)||'",
  "' AND SLEEP(3) --", '@@version', '/*', '*/', '/*!50000 OR 1=1*/', '-- ', '#', ';', '?', '??', '? OR ?', ':name', '$1',
  '\u0000', 'a\u0000b', "'\u0000' OR 1=1", '\u00a0\' OR 1=1', '＇ OR 1=1 --', 'ʼ OR 1=1', '%27 OR 1=1', "\r\n' OR 1=1",
  "🐧' OR '🐧'='🐧", 'ADMIN\'--', 'Robert\');DROP TABLE image_tags;--',
  fill255("' OR 1=1 -- "), fill255("'"), fill255('\\'), fill255('%'), fill255('🐧\''),
  // One past the 255-character limit of names, tags, keys and project ids.
  `${fill255("'")}'`,
].map(payload);

/** 65,535 bytes, the largest property value, of characters that SQL escaping doubles. */
const MAX_QUOTE_VALUE = "'".repeat(65_535);
const MAX_BACKSLASH_VALUE = '\\'.repeat(65_535);

// The rules the server applies to each field, so that each payload's expected code is known.

const RESERVED_PROPERTY_KEYS = new Set([
  'id', 'name', 'status', 'visibility', 'protected', 'hidden', 'owner', 'container_format', 'disk_format',
  'min_disk', 'min_ram', 'size', 'virtual_size', 'checksum', 'hash_algo', 'hash_value', 'tags', 'properties',
  'create_time', 'update_time', 'os_hidden', 'os_hash_algo', 'os_hash_value', 'created_at', 'updated_at',
  'self', 'file', 'schema', 'locations', 'direct_url', 'deleted', 'deleted_at',
]);

function codePoints(text: string): number {
  return [...text].length;
}

const isValidName = (text: string) => codePoints(text) <= 255;
const isValidTag = (text: string) => text !== '' && codePoints(text) <= 255;
const isValidPropertyKey = (text: string) =>
  isValidTag(text) && !RESERVED_PROPERTY_KEYS.has(text) && !text.startsWith('os_glance_');
const isValidProjectId = (text: string) => isValidTag(text) && !/[\s\p{Cc}]/u.test(text);

// Direct access to the server's database.

type Row = Record<string, unknown>;

interface DatabaseReader {
  tables(): Promise<string[]>;
  /** Every row of a table whose name tables() returned. */
  rows(table: string): Promise<Row[]>;
  /** Runs a SELECT with `?` placeholders. */
  select(sql: string, parameters: unknown[]): Promise<Row[]>;
  close(): Promise<void>;
}

function openSqlite(url: string): DatabaseReader {
  const database = new BetterSqlite3(url.slice('sqlite:'.length), { readonly: true, fileMustExist: true });
  return {
    tables: async () =>
      (database.prepare("SELECT name FROM sqlite_master WHERE type = 'table' ORDER BY name").all() as { name: string }[]).map((row) => row.name),
    rows: async (table) => database.prepare(`SELECT * FROM "${table.replaceAll('"', '""')}"`).all() as Row[],
    select: async (sql, parameters) => database.prepare(sql).all(...parameters) as Row[],
    close: async () => {
      database.close();
    },
  };
}

async function openMysql(url: string): Promise<DatabaseReader> {
  const connection = await mysql.createConnection({ uri: url, charset: 'utf8mb4', supportBigNumbers: true, bigNumberStrings: true });
  const select = async (sql: string, parameters: unknown[]) => (await connection.query(sql, parameters))[0] as Row[];
  return {
    tables: async () =>
      (await select('SELECT table_name AS name FROM information_schema.tables WHERE table_schema = DATABASE() ORDER BY table_name', [])).map(
        (row) => row.name as string,
      ),
    rows: (table) => select(`SELECT * FROM \`${table.replaceAll('`', '``')}\``, []),
    select,
    close: () => connection.end(),
  };
}

function compareCodeUnits(first: string, second: string): number {
  if (first < second) return -1;
  if (first > second) return 1;
  return 0;
}

/** Every row of every table, each row as JSON, sorted. */
type Snapshot = Map<string, { imageId: string | null; json: string }[]>;

function rowJson(row: Row): string {
  return JSON.stringify(row, (_key, value: unknown) => {
    if (Buffer.isBuffer(value)) return `hex ${value.toString('hex')}`;
    if (typeof value === 'bigint') return value.toString();
    return value;
  });
}

async function takeSnapshot(reader: DatabaseReader): Promise<Snapshot> {
  const snapshot: Snapshot = new Map();
  for (const table of await reader.tables()) {
    const rows = (await reader.rows(table)).map((row) => {
      const imageId = table === 'images' ? row.id : row.image_id;
      return { imageId: typeof imageId === 'string' ? imageId : null, json: rowJson(row) };
    });
    rows.sort((first, second) => compareCodeUnits(first.json, second.json));
    snapshot.set(table, rows);
  }
  return snapshot;
}

/** Asserts that the tables are the same and every row is unchanged, except rows of the `touched` images. */
function expectUnchangedExcept(before: Snapshot, after: Snapshot, touched: ReadonlySet<string>): void {
  expect([...after.keys()], 'the set of tables changed').toEqual([...before.keys()]);
  const untouched = (rows: { imageId: string | null; json: string }[]) =>
    rows.filter((row) => row.imageId === null || !touched.has(row.imageId)).map((row) => row.json);
  for (const [table, rows] of before) {
    expect(untouched(after.get(table) ?? []), `rows of ${table} outside the touched images changed`).toEqual(untouched(rows));
  }
}

function utf8Hex(text: string): string {
  return Buffer.from(text, 'utf8').toString('hex').toUpperCase();
}

// Calls.

interface Outcome<T> {
  code: string;
  message: string;
  value?: T;
}

async function outcomeOf<T>(call: Promise<T>): Promise<Outcome<T>> {
  try {
    return { code: 'OK', message: '', value: await call };
  } catch (error) {
    const { code, details } = error as grpc.ServiceError;
    return { code: grpc.status[code] ?? String(code), message: details };
  }
}

function escapeRegExp(text: string): string {
  return text.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
}

/** Returns whether `message` contains `field` as a whole name, so that "id" does not match inside "image_id". */
function namesField(message: string, field: string): boolean {
  return new RegExp(`(^|[^\\w.])${escapeRegExp(field)}($|[^\\w.])`).test(message);
}

/** Collects every mismatch of a group of calls, so that one test run lists them all. */
class Findings {
  readonly problems: string[] = [];

  /** Records a problem unless the outcome has the expected code, and INVALID_ARGUMENT names `field`. */
  expectCode(label: string, outcome: Outcome<unknown>, expected: string, field?: string): boolean {
    if (outcome.code !== expected) {
      this.problems.push(`${label}: expected ${expected}, got ${outcome.code} ${JSON.stringify(outcome.message.slice(0, 200))}`);
      return false;
    }
    if (expected === 'INVALID_ARGUMENT' && field !== undefined && !namesField(outcome.message, field)) {
      this.problems.push(`${label}: the message ${JSON.stringify(outcome.message.slice(0, 200))} does not name ${field}`);
    }
    return true;
  }

  /** Records the items missing from and added to a list, or a difference in order. */
  expectSameList(label: string, actual: readonly string[], expected: readonly string[]): void {
    if (JSON.stringify(actual) === JSON.stringify(expected)) return;
    const missing = expected.filter((item) => !actual.includes(item));
    const extra = actual.filter((item) => !expected.includes(item));
    const difference = missing.length + extra.length === 0 ? 'the same items in another order' : `missing ${JSON.stringify(missing)}, extra ${JSON.stringify(extra)}`;
    this.problems.push(`${label}: ${difference}`);
  }

  expectEqual(label: string, actual: unknown, expected: unknown): void {
    const shown = (value: unknown) => JSON.stringify(value, (_key, item: unknown) => (typeof item === 'string' && item.length > 80 ? `${item.slice(0, 40)}… (${item.length})` : item));
    if (JSON.stringify(actual) !== JSON.stringify(expected)) this.problems.push(`${label}: expected ${shown(expected)}, got ${shown(actual)}`);
  }
}

const sortedStrings = (values: Iterable<string>) => [...values].sort();

/** Compares by Unicode code point, as the binary collations of both databases do. */
function compareCodePoints(first: string, second: string): number {
  const a = [...first].map((character) => character.codePointAt(0)!);
  const b = [...second].map((character) => character.codePointAt(0)!);
  for (let index = 0; index < Math.min(a.length, b.length); index++) {
    if (a[index] !== b[index]) return a[index]! - b[index]!;
  }
  return a.length - b.length;
}

/** Calls createImage or updateImage of a generated client with a 30 s deadline. */
function unaryWithDeadline<Req, Res>(
  client: ImageServiceClient,
  method: 'createImage' | 'updateImage',
  request: Req,
  authorization: string,
): Promise<Res> {
  const metadata = new grpc.Metadata();
  metadata.set('authorization', authorization);
  return new Promise((resolve, reject) => {
    const call = client[method] as unknown as (
      request: Req,
      metadata: grpc.Metadata,
      options: Partial<grpc.CallOptions>,
      callback: (error: grpc.ServiceError | null, response: Res) => void,
    ) => void;
    call.call(client, request, metadata, { deadline: Date.now() + 30_000 }, (error, response) => (error ? reject(error) : resolve(response)));
  });
}

interface Fixture {
  registry: RegistryHarness;
  database: TestDatabase;
  reader: DatabaseReader;
  /** Project "attacker", with the member role, sends the payloads. */
  attacker: RegistryClient;
  attackerAuthorization: string;
  admin: RegistryClient;
  adminAuthorization: string;
  /** A client for responses past grpc-js's default 4 MiB limit. */
  largeClient: ImageServiceClient;
  /** A shared image of the attacker that update, tag and member calls change. */
  targetId: string;
  /** Images of project "victim" that no call may change. */
  victimIds: string[];
}

async function startFixture(backend: BackendName): Promise<Fixture> {
  const database = await createTestDatabase(backend);
  const registry = await RegistryHarness.start(backend, { DATABASE_URL: database.url });
  const reader = backend === 'sqlite' ? openSqlite(database.url) : await openMysql(database.url);
  const attacker = await registry.as('attacker');
  const admin = await registry.as('proj-admin', { admin: true });
  const victim = await registry.as('victim');

  const victimShared = await victim.images.createImage({
    image: { name: 'victim-shared', tags: ['keep', '%', '_'], properties: new Map([['os_distro', 'cirros'], ['%', '_']]) },
  });
  await victim.members.createMember({ imageId: victimShared.id, memberId: 'proj-b' });
  await victim.members.createMember({ imageId: victimShared.id, memberId: 'proj-c' });
  const victimPrivate = await victim.images.createImage({ image: { name: 'victim-private', visibility: Visibility.VISIBILITY_PRIVATE, tags: ['keep'] } });
  const victimPublic = await admin.images.createImage({
    image: { name: 'victim-public', owner: 'victim', visibility: Visibility.VISIBILITY_PUBLIC, tags: ['keep'], properties: new Map([['os_distro', 'cirros']]) },
  });
  const target = await attacker.images.createImage({ image: { name: 'target', tags: ['keep'], properties: new Map([['os_distro', 'cirros']]) } });
  await attacker.members.createMember({ imageId: target.id, memberId: 'proj-b' });

  return {
    registry,
    database,
    reader,
    attacker,
    attackerAuthorization: `Bearer ${await registry.token('attacker')}`,
    admin,
    adminAuthorization: `Bearer ${await registry.token('proj-admin', { admin: true })}`,
    largeClient: new ImageServiceClient(registry.address, grpc.credentials.createInsecure(), { 'grpc.max_receive_message_length': -1 }),
    targetId: target.id,
    victimIds: [victimShared.id, victimPrivate.id, victimPublic.id],
  };
}

/** Checks an image's stored name, tags, properties and owner, through GetImage and in the database. */
async function checkStoredImage(
  fixture: Fixture,
  findings: Findings,
  label: string,
  id: string,
  expected: { name?: string; tags?: string[]; properties?: [string, string][]; owner?: string },
): Promise<void> {
  const read = await outcomeOf(fixture.admin.images.getImage({ id }));
  if (!findings.expectCode(`${label}: GetImage`, read, 'OK')) return;
  const image = read.value!;
  const [row] = await fixture.reader.select('SELECT HEX(name) AS name, HEX(owner) AS owner FROM images WHERE id = ?', [id]);
  if (expected.name !== undefined) {
    findings.expectEqual(`${label}: name from GetImage`, image.name, expected.name);
    findings.expectEqual(`${label}: name bytes in the database`, row?.name, utf8Hex(expected.name));
  }
  if (expected.owner !== undefined) {
    findings.expectEqual(`${label}: owner from GetImage`, image.owner, expected.owner);
    findings.expectEqual(`${label}: owner bytes in the database`, row?.owner, utf8Hex(expected.owner));
  }
  if (expected.tags !== undefined) {
    findings.expectEqual(`${label}: tags from GetImage`, sortedStrings(image.tags), sortedStrings(expected.tags));
    const tagRows = await fixture.reader.select('SELECT HEX(tag) AS tag FROM image_tags WHERE image_id = ?', [id]);
    findings.expectEqual(`${label}: tag bytes in the database`, sortedStrings(tagRows.map((tagRow) => tagRow.tag as string)), sortedStrings(expected.tags.map(utf8Hex)));
  }
  if (expected.properties !== undefined) {
    const pairs = (entries: Iterable<[string, string]>) => sortedStrings([...entries].map(([key, value]) => `${key}=${value}`));
    findings.expectEqual(`${label}: properties from GetImage`, pairs(image.properties), pairs(expected.properties));
    const propertyRows = await fixture.reader.select('SELECT HEX(name) AS name, HEX(value) AS value FROM image_properties WHERE image_id = ?', [id]);
    findings.expectEqual(
      `${label}: property bytes in the database`,
      pairs(propertyRows.map((propertyRow) => [propertyRow.name as string, propertyRow.value as string])),
      pairs(expected.properties.map(([key, value]) => [utf8Hex(key), utf8Hex(value)])),
    );
  }
}

type ListImagesFilters = Parameters<RegistryClient['images']['listImages']>[0];

/**
 * Lists every page with visibility ALL and hidden images included, plus
 * `filters`, starting at filters.pageToken. Resolves to the images or to
 * the first failed call.
 */
async function listPages(client: RegistryClient, filters: ListImagesFilters): Promise<Outcome<Image[]>> {
  const images: Image[] = [];
  let pageToken = filters.pageToken ?? '';
  do {
    const page = await outcomeOf(
      client.images.listImages({ visibility: VisibilityFilter.VISIBILITY_FILTER_ALL, includeHidden: true, pageSize: 1000, ...filters, pageToken }),
    );
    if (page.value === undefined) return { code: page.code, message: page.message };
    images.push(...page.value.images);
    pageToken = page.value.nextPageToken;
  } while (pageToken !== '');
  return { code: 'OK', message: '', value: images };
}

async function listEverything(client: RegistryClient): Promise<Image[]> {
  const listed = await listPages(client, {});
  if (listed.value === undefined) throw new Error(`ListImages failed: ${listed.code} ${listed.message}`);
  return listed.value;
}

const ids = (images: Image[]) => sortedStrings(images.map((image) => image.id));


/** Returns whether a filter value fits the column it is compared with, in characters. */
function fitsColumn(text: string, maxChars: number): boolean {
  return [...text].length <= maxChars;
}

describe.each(testedBackends())('SQL injection on %s', (backend) => {
  let fixture: Fixture;
  let before: Snapshot;
  /** Images that the calls of the running test were meant to change or create. */
  let touched: Set<string>;
  let findings: Findings;

  beforeAll(async () => {
    fixture = await startFixture(backend);
  });
  afterAll(async () => {
    fixture?.largeClient.close();
    await fixture?.reader.close();
    await fixture?.registry.stop();
    await fixture?.database.drop();
  });

  /** Starts a group of calls: takes the snapshot that finishGroup compares with. */
  async function startGroup(): Promise<void> {
    before = await takeSnapshot(fixture.reader);
    touched = new Set();
    findings = new Findings();
  }

  /** Asserts that no call of the group went wrong and that only the touched images changed. */
  async function finishGroup(): Promise<void> {
    const after = await takeSnapshot(fixture.reader);
    expect(findings.problems).toEqual([]);
    expectUnchangedExcept(before, after, touched);
    for (const id of fixture.victimIds) expect(touched.has(id)).toBe(false);
  }

  it('CreateImage stores payloads byte for byte', async () => {
    await startGroup();
    for (const { label, text } of PAYLOADS) {
      const valid = isValidName(text) && isValidTag(text) && isValidPropertyKey(text);
      const created = await outcomeOf(
        fixture.attacker.images.createImage({ image: { name: text, tags: [text], properties: new Map([[text, text]]) } }),
      );
      if (!findings.expectCode(`CreateImage with name, tag and property ${label}`, created, valid ? 'OK' : 'INVALID_ARGUMENT')) continue;
      if (created.value === undefined) continue;
      touched.add(created.value.id);
      await checkStoredImage(fixture, findings, `image created with ${label}`, created.value.id, {
        name: text,
        tags: [text],
        properties: [[text, text]],
        owner: 'attacker',
      });
    }
    for (const value of [MAX_QUOTE_VALUE, MAX_BACKSLASH_VALUE]) {
      const label = `a property value of 65,535 ${JSON.stringify(value[0])}`;
      const created = await outcomeOf(fixture.attacker.images.createImage({ image: { name: 'long value', properties: new Map([['k', value]]) } }));
      if (!findings.expectCode(`CreateImage with ${label}`, created, 'OK') || created.value === undefined) continue;
      touched.add(created.value.id);
      await checkStoredImage(fixture, findings, label, created.value.id, { properties: [['k', value]] });
    }
    await finishGroup();
  });

  it('CreateImage rejects payloads as image_id', async () => {
    await startGroup();
    for (const { label, text } of PAYLOADS) {
      const created = await outcomeOf(fixture.attacker.images.createImage({ imageId: text, image: { name: 'x' } }));
      findings.expectCode(`CreateImage with image_id ${label}`, created, 'INVALID_ARGUMENT', 'image_id');
    }
    await finishGroup();
  });

  it('admin stores payloads as owner', async () => {
    await startGroup();
    for (const { label, text } of PAYLOADS) {
      const created = await outcomeOf(fixture.admin.images.createImage({ image: { name: 'owned', owner: text } }));
      if (!findings.expectCode(`CreateImage with owner ${label}`, created, isValidProjectId(text) ? 'OK' : 'INVALID_ARGUMENT', 'image.owner')) continue;
      if (created.value === undefined) continue;
      touched.add(created.value.id);
      await checkStoredImage(fixture, findings, `image owned by ${label}`, created.value.id, { owner: text });
    }
    await finishGroup();
  });

  it('UpdateImage stores payloads byte for byte', async () => {
    await startGroup();
    touched.add(fixture.targetId);
    for (const { label, text } of PAYLOADS) {
      const valid = isValidName(text) && isValidTag(text) && isValidPropertyKey(text);
      const updated = await outcomeOf(
        fixture.attacker.images.updateImage({
          image: { id: fixture.targetId, name: text, tags: ['keep', text], properties: new Map([[text, text]]) },
          updateMask: ['name', 'tags', 'properties'],
        }),
      );
      if (findings.expectCode(`UpdateImage of name, tags and properties to ${label}`, updated, valid ? 'OK' : 'INVALID_ARGUMENT') && valid) {
        await checkStoredImage(fixture, findings, `image updated to ${label}`, fixture.targetId, {
          name: text,
          tags: ['keep', text],
          properties: [[text, text]],
        });
      }

      // A properties.<key> path sets one key and keeps the others.
      const keyPath = await outcomeOf(
        fixture.attacker.images.updateImage({
          image: { id: fixture.targetId, properties: new Map([[text, 'by path']]) },
          updateMask: [`properties.${text}`],
        }),
      );
      const validKey = isValidPropertyKey(text);
      // The map contains only this key when the update above replaced the map.
      if (findings.expectCode(`UpdateImage of path properties.${label}`, keyPath, validKey ? 'OK' : 'INVALID_ARGUMENT', 'update_mask') && valid) {
        await checkStoredImage(fixture, findings, `property ${label} set by path`, fixture.targetId, { properties: [[text, 'by path']] });
      }

      const maskPath = await outcomeOf(fixture.attacker.images.updateImage({ image: { id: fixture.targetId, name: 'x' }, updateMask: [text] }));
      findings.expectCode(`UpdateImage with mask path ${label}`, maskPath, 'INVALID_ARGUMENT', 'update_mask');

      const id = await outcomeOf(fixture.attacker.images.updateImage({ image: { id: text, name: 'x' }, updateMask: ['name'] }));
      findings.expectCode(`UpdateImage with image.id ${label}`, id, 'INVALID_ARGUMENT', 'image.id');
    }
    await finishGroup();
  });

  it('admin UpdateImage stores payloads as owner', async () => {
    await startGroup();
    const image = await fixture.attacker.images.createImage({ image: { name: 'to give away' } });
    touched.add(image.id);
    for (const { label, text } of PAYLOADS) {
      const updated = await outcomeOf(fixture.admin.images.updateImage({ image: { id: image.id, owner: text }, updateMask: ['owner'] }));
      const valid = isValidProjectId(text);
      if (findings.expectCode(`UpdateImage of owner to ${label}`, updated, valid ? 'OK' : 'INVALID_ARGUMENT', 'image.owner') && valid) {
        await checkStoredImage(fixture, findings, `owner updated to ${label}`, image.id, { owner: text });
      }
    }
    await finishGroup();
  });

  it('tag calls match payloads literally', async () => {
    await startGroup();
    touched.add(fixture.targetId);
    await fixture.attacker.images.updateImage({ image: { id: fixture.targetId, tags: ['keep'] }, updateMask: ['tags'] });
    for (const { label, text } of PAYLOADS) {
      const valid = isValidTag(text);
      // The image has only the tag "keep", so a payload that matched as a pattern would remove it.
      const missing = await outcomeOf(fixture.attacker.images.removeImageTag({ imageId: fixture.targetId, tag: text }));
      findings.expectCode(`RemoveImageTag of absent ${label}`, missing, valid ? 'NOT_FOUND' : 'INVALID_ARGUMENT', 'tag');

      const added = await outcomeOf(fixture.attacker.images.addImageTag({ imageId: fixture.targetId, tag: text }));
      if (findings.expectCode(`AddImageTag ${label}`, added, valid ? 'OK' : 'INVALID_ARGUMENT', 'tag') && valid) {
        await checkStoredImage(fixture, findings, `tag ${label} added`, fixture.targetId, { tags: ['keep', text] });
        const removed = await outcomeOf(fixture.attacker.images.removeImageTag({ imageId: fixture.targetId, tag: text }));
        findings.expectCode(`RemoveImageTag ${label}`, removed, 'OK');
        await checkStoredImage(fixture, findings, `tag ${label} removed`, fixture.targetId, { tags: ['keep'] });
      }

      for (const [rpc, call] of [
        ['AddImageTag', () => fixture.attacker.images.addImageTag({ imageId: text, tag: 't' })],
        ['RemoveImageTag', () => fixture.attacker.images.removeImageTag({ imageId: text, tag: 't' })],
      ] as const) {
        findings.expectCode(`${rpc} with image_id ${label}`, await outcomeOf(call()), 'INVALID_ARGUMENT', 'image_id');
      }
    }
    await finishGroup();
  });

  it('id fields reject payloads', async () => {
    await startGroup();
    const start = (imageId: string) =>
      new Promise<unknown>((resolve, reject) => {
        const call = fixture.attacker.data.client.uploadImageData(fixture.attacker.data.metadata(), (error, image) => (error ? reject(error) : resolve(image)));
        call.write({ payload: { $case: 'start', value: { imageId, expectedChecksum: '', expectedHashValue: '' } } });
        call.end();
      });
    for (const { label, text } of PAYLOADS) {
      const calls: [string, string, () => Promise<unknown>][] = [
        ['GetImage', 'id', () => fixture.attacker.images.getImage({ id: text })],
        ['DeleteImage', 'id', () => fixture.attacker.images.deleteImage({ id: text })],
        ['DeactivateImage', 'id', () => fixture.attacker.images.deactivateImage({ id: text })],
        ['ReactivateImage', 'id', () => fixture.attacker.images.reactivateImage({ id: text })],
        ['DownloadImageData', 'id', () => fixture.attacker.data.download(text)],
        ['UploadImageData', 'start.image_id', () => start(text)],
        ['ListImages', 'ids', () => fixture.attacker.images.listImages({ ids: [text] })],
        ['CreateMember', 'image_id', () => fixture.attacker.members.createMember({ imageId: text, memberId: 'proj-b' })],
        ['GetMember', 'image_id', () => fixture.attacker.members.getMember({ imageId: text, memberId: 'proj-b' })],
        ['ListMembers', 'image_id', () => fixture.attacker.members.listMembers({ imageId: text })],
        ['UpdateMember', 'image_id', () => fixture.attacker.members.updateMember({ imageId: text, memberId: 'attacker', status: MemberStatus.MEMBER_STATUS_ACCEPTED })],
        ['DeleteMember', 'image_id', () => fixture.attacker.members.deleteMember({ imageId: text, memberId: 'proj-b' })],
      ];
      for (const [rpc, field, call] of calls) {
        findings.expectCode(`${rpc} with ${field} ${label}`, await outcomeOf(call()), 'INVALID_ARGUMENT', field);
      }
    }
    await finishGroup();
  });

  it('upload start fields reject payloads', async () => {
    await startGroup();
    const image = await fixture.attacker.images.createImage({ image: { name: 'upload target' } });
    const rowBefore = await fixture.reader.select('SELECT * FROM images WHERE id = ?', [image.id]);
    for (const { label, text } of PAYLOADS) {
      for (const [field, start] of [
        ['start.expected_checksum', { imageId: image.id, expectedChecksum: text }],
        ['start.expected_hash_value', { imageId: image.id, expectedHashValue: text }],
      ] as const) {
        const outcome = await outcomeOf(fixture.attacker.data.upload(start, [Buffer.from('data')]));
        findings.expectCode(`UploadImageData with ${field} ${label}`, outcome, 'INVALID_ARGUMENT', field);
      }
    }
    // The form is checked before the upload starts, so the image row keeps even its update_time.
    findings.expectEqual('upload image row', (await fixture.reader.select('SELECT * FROM images WHERE id = ?', [image.id])).map(rowJson), rowBefore.map(rowJson));
    touched.add(image.id);
    await finishGroup();
  });

  it('ListImages filters match payloads literally', async () => {
    await startGroup();
    // Every payload that can be stored is also a name, tag, property and owner of some image, so a
    // filter that treated it as a pattern would match other images too.
    for (const { text } of PAYLOADS) {
      const image = { name: text, tags: [text], properties: new Map([[text, text]]) };
      const created = await outcomeOf(fixture.attacker.images.createImage({ image }));
      if (created.value !== undefined) touched.add(created.value.id);
      if (isValidProjectId(text)) {
        const owned = await outcomeOf(fixture.admin.images.createImage({ image: { name: 'owned', owner: text, visibility: Visibility.VISIBILITY_PUBLIC } }));
        if (owned.value !== undefined) touched.add(owned.value.id);
      }
    }
    const attackerImages = await listEverything(fixture.attacker);
    const adminImages = await listEverything(fixture.admin);
    expect(attackerImages.some((image) => fixture.victimIds.slice(0, 2).includes(image.id)), 'the attacker lists a victim image it may not read').toBe(false);

    const expectListed = async (label: string, client: RegistryClient, filters: ListImagesFilters, expected: Image[] | 'INVALID_ARGUMENT', field?: string) => {
      const listed = await listPages(client, filters);
      if (expected === 'INVALID_ARGUMENT') {
        findings.expectCode(label, listed, 'INVALID_ARGUMENT', field);
        return;
      }
      if (findings.expectCode(label, listed, 'OK')) findings.expectSameList(label, ids(listed.value!), ids(expected));
    };

    for (const { label, text } of PAYLOADS) {
      await expectListed(
        `ListImages with name ${label}`,
        fixture.attacker,
        { name: text },
        fitsColumn(text, 255) ? attackerImages.filter((image) => image.name === text) : 'INVALID_ARGUMENT',
        'name',
      );
      await expectListed(
        `ListImages with tag ${label}`,
        fixture.attacker,
        { tags: [text] },
        isValidTag(text) ? attackerImages.filter((image) => image.tags.includes(text)) : 'INVALID_ARGUMENT',
        'tags',
      );
      await expectListed(
        `ListImages with property ${label}=${label}`,
        fixture.attacker,
        { properties: new Map([[text, text]]) },
        fitsColumn(text, 255) ? attackerImages.filter((image) => image.properties.get(text) === text) : 'INVALID_ARGUMENT',
        'properties',
      );
      await expectListed(
        `ListImages with property os_distro=${label}`,
        fixture.attacker,
        { properties: new Map([['os_distro', text]]) },
        attackerImages.filter((image) => image.properties.get('os_distro') === text),
      );
      const ownerFits = fitsColumn(text, 255);
      await expectListed(
        `ListImages with owner ${label}`,
        fixture.attacker,
        { owner: text },
        ownerFits ? attackerImages.filter((image) => image.owner === text) : 'INVALID_ARGUMENT',
        'owner',
      );
      await expectListed(
        `ListImages as admin with owner ${label}`,
        fixture.admin,
        { owner: text },
        ownerFits ? adminImages.filter((image) => image.owner === text) : 'INVALID_ARGUMENT',
        'owner',
      );
      const formatFits = fitsColumn(text, 16);
      await expectListed(
        `ListImages with container_format ${label}`,
        fixture.attacker,
        { containerFormat: text },
        formatFits ? [] : 'INVALID_ARGUMENT',
        'container_format',
      );
      await expectListed(
        `ListImages with disk_format ${label}`,
        fixture.attacker,
        { diskFormat: text },
        formatFits ? [] : 'INVALID_ARGUMENT',
        'disk_format',
      );
      await expectListed(`ListImages with order_by ${label}`, fixture.attacker, { orderBy: text }, 'INVALID_ARGUMENT', 'order_by');
      await expectListed(`ListImages with order_by name ${label}`, fixture.attacker, { orderBy: `name ${text}` }, 'INVALID_ARGUMENT', 'order_by');
      await expectListed(`ListImages with order_by ${label} desc`, fixture.attacker, { orderBy: `${text} desc` }, 'INVALID_ARGUMENT', 'order_by');
      await expectListed(`ListImages with page_token ${label}`, fixture.attacker, { pageToken: text }, 'INVALID_ARGUMENT', 'page_token');
    }
    await finishGroup();
  });

  it('page tokens bind payloads as values', async () => {
    await startGroup();
    const shared = await fixture.attacker.images.createImage({ image: { name: 'two members' } });
    touched.add(shared.id);
    await fixture.attacker.members.createMember({ imageId: shared.id, memberId: 'proj-b' });
    await fixture.attacker.members.createMember({ imageId: shared.id, memberId: 'proj-c' });
    const everything = await listEverything(fixture.attacker);
    const byName = [...everything].sort((first, second) => compareCodePoints(first.name, second.name) || compareCodePoints(first.id, second.id));
    const firstPage = await fixture.attacker.images.listImages({ visibility: VisibilityFilter.VISIBILITY_FILTER_ALL, includeHidden: true, orderBy: 'name', pageSize: 1 });
    expect(firstPage.nextPageToken).not.toBe('');
    const imageBody = JSON.parse(Buffer.from(firstPage.nextPageToken, 'base64url').toString('utf8')) as { k: unknown[] };

    const memberPage = await fixture.attacker.members.listMembers({ imageId: shared.id, pageSize: 1 });
    expect(memberPage.nextPageToken).not.toBe('');
    const memberBody = JSON.parse(Buffer.from(memberPage.nextPageToken, 'base64url').toString('utf8')) as { k: unknown[] };
    const resumeTime = memberBody.k[0] as number;
    const allMembers = (await fixture.attacker.members.listMembers({ imageId: shared.id })).members;
    const forge = (body: { k: unknown[] }, values: unknown[]) => Buffer.from(JSON.stringify({ ...body, k: values }), 'utf8').toString('base64url');

    for (const { label, text } of PAYLOADS) {
      // A forged token keeps its digest, so the server accepts it and resumes after (name, id) = (text, text).
      const listed = await listPages(fixture.attacker, { orderBy: 'name', pageToken: forge(imageBody, [text, text]) });
      const expected = byName.filter((image) => compareCodePoints(image.name, text) > 0 || (image.name === text && compareCodePoints(image.id, text) > 0));
      if (findings.expectCode(`ListImages resuming after name ${label}`, listed, 'OK')) {
        findings.expectSameList(`ListImages resuming after name ${label}`, listed.value!.map((image) => image.id), expected.map((image) => image.id));
      }

      const members = await outcomeOf(fixture.attacker.members.listMembers({ imageId: shared.id, pageToken: forge(memberBody, [memberBody.k[0], text]) }));
      const expectedMembers = allMembers
        .filter((member) => {
          const time = member.createTime!.getTime();
          return time > resumeTime || (time === resumeTime && compareCodePoints(member.memberId, text) > 0);
        })
        .map((member) => member.memberId);
      if (findings.expectCode(`ListMembers resuming after member ${label}`, members, 'OK')) {
        findings.expectSameList(`ListMembers resuming after member ${label}`, members.value!.members.map((member) => member.memberId), expectedMembers);
      }
      const garbage = await outcomeOf(fixture.attacker.members.listMembers({ imageId: shared.id, pageToken: text }));
      findings.expectCode(`ListMembers with page_token ${label}`, garbage, 'INVALID_ARGUMENT', 'page_token');
    }
    await finishGroup();
  });

  it('member calls match payloads literally', async () => {
    await startGroup();
    touched.add(fixture.targetId);
    const victimShared = fixture.victimIds[0]!;
    for (const { label, text } of PAYLOADS) {
      const valid = isValidProjectId(text);
      const invalidOr = (code: string) => (valid ? code : 'INVALID_ARGUMENT');

      // Nothing is stored under the payload yet, so these must not reach proj-b's row.
      findings.expectCode(`GetMember ${label} before it exists`, await outcomeOf(fixture.attacker.members.getMember({ imageId: fixture.targetId, memberId: text })), invalidOr('NOT_FOUND'), 'member_id');
      findings.expectCode(`DeleteMember ${label} before it exists`, await outcomeOf(fixture.attacker.members.deleteMember({ imageId: fixture.targetId, memberId: text })), invalidOr('NOT_FOUND'), 'member_id');

      const created = await outcomeOf(fixture.attacker.members.createMember({ imageId: fixture.targetId, memberId: text }));
      if (!findings.expectCode(`CreateMember ${label}`, created, invalidOr('OK'), 'member_id') || !valid) continue;
      findings.expectEqual(`CreateMember ${label} returns the id`, created.value?.memberId, text);
      const rows = await fixture.reader.select('SELECT HEX(member_id) AS member FROM image_members WHERE image_id = ? AND member_id = ?', [fixture.targetId, text]);
      findings.expectEqual(`member ${label} bytes in the database`, rows.map((row) => row.member), [utf8Hex(text)]);

      const read = await outcomeOf(fixture.attacker.members.getMember({ imageId: fixture.targetId, memberId: text }));
      if (findings.expectCode(`GetMember ${label}`, read, 'OK')) findings.expectEqual(`GetMember ${label} returns the id`, read.value?.memberId, text);
      const listed = await outcomeOf(fixture.attacker.members.listMembers({ imageId: fixture.targetId }));
      if (findings.expectCode(`ListMembers with ${label}`, listed, 'OK')) {
        findings.expectEqual(`ListMembers with ${label}`, sortedStrings(listed.value!.members.map((member) => member.memberId)), sortedStrings(['proj-b', text]));
      }
      const updated = await outcomeOf(fixture.admin.members.updateMember({ imageId: fixture.targetId, memberId: text, status: MemberStatus.MEMBER_STATUS_ACCEPTED }));
      if (findings.expectCode(`UpdateMember ${label}`, updated, 'OK')) findings.expectEqual(`UpdateMember ${label} status`, updated.value?.status, MemberStatus.MEMBER_STATUS_ACCEPTED);
      const deleted = await outcomeOf(fixture.attacker.members.deleteMember({ imageId: fixture.targetId, memberId: text }));
      findings.expectCode(`DeleteMember ${label}`, deleted, 'OK');

      // The attacker cannot read the victim's shared image, whatever the member id is.
      for (const [rpc, call] of [
        ['CreateMember', () => fixture.attacker.members.createMember({ imageId: victimShared, memberId: text })],
        ['GetMember', () => fixture.attacker.members.getMember({ imageId: victimShared, memberId: text })],
        ['UpdateMember', () => fixture.attacker.members.updateMember({ imageId: victimShared, memberId: text, status: MemberStatus.MEMBER_STATUS_ACCEPTED })],
        ['DeleteMember', () => fixture.attacker.members.deleteMember({ imageId: victimShared, memberId: text })],
      ] as const) {
        findings.expectCode(`${rpc} ${label} on the victim's image`, await outcomeOf(call()), 'NOT_FOUND');
      }
    }
    const remaining = await fixture.attacker.members.listMembers({ imageId: fixture.targetId });
    findings.expectEqual('members left on the target', remaining.members.map((member) => member.memberId), ['proj-b']);
    await finishGroup();
  });

  describe('long payloads', () => {
    /** About 8.5 MB of characters that SQL escaping doubles. The request stays under the 16 MiB receive limit. */
    const FILTER_LENGTH = 8_500_000;
    const longFilters: [string, string, (text: string) => Parameters<RegistryClient['images']['listImages']>[0]][] = [
      ['name', "'", (text) => ({ name: text })],
      ['name', '\\', (text) => ({ name: text })],
      ['owner', "'", (text) => ({ owner: text })],
      ['container_format', '\\', (text) => ({ containerFormat: text })],
      ['properties', "'", (text) => ({ properties: new Map([['os_distro', text]]) })],
      ['properties', '\\', (text) => ({ properties: new Map([[text, 'cirros']]) })],
    ];

    // A filter longer than its column matches nothing, so it is rejected before it reaches SQL.
    it.each(longFilters)('%s filter of 8.5 MB of %s', { timeout: 60_000 }, async (field, unit, filters) => {
      await startGroup();
      const listed = await outcomeOf(fixture.attacker.images.listImages(filters(unit.repeat(FILTER_LENGTH))));
      expect(listed.code, listed.message).toBe('INVALID_ARGUMENT');
      expect(listed.message.startsWith(`${field}: `), listed.message).toBe(true);
      await finishGroup();
    });

    const maxProperties = (unit: string) => new Map(Array.from({ length: 128 }, (_, index) => [`key-${index}`, unit.repeat(65_535)]));

    it.each(["'", '\\'])('CreateImage stores 128 largest values of %s', { timeout: 60_000 }, async (unit) => {
      await startGroup();
      const properties = maxProperties(unit);
      const created = await outcomeOf(
        unaryWithDeadline<CreateImageRequest, Image>(
          fixture.largeClient,
          'createImage',
          CreateImageRequest.fromPartial({ image: { name: 'largest properties', properties } }),
          fixture.attackerAuthorization,
        ),
      );
      if (created.value !== undefined) touched.add(created.value.id);
      await finishGroup();
      expect(created.code, created.message).toBe('OK');

      const [stored] = await fixture.reader.select(
        'SELECT COUNT(*) AS count, SUM(LENGTH(value)) AS bytes FROM image_properties WHERE image_id = ?',
        [created.value!.id],
      );
      expect(Number(stored?.count)).toBe(128);
      expect(Number(stored?.bytes)).toBe(128 * 65_535);
      const digest = (map: Map<string, string>) => createHash('sha256').update(JSON.stringify([...map].sort())).digest('hex');
      expect(digest(created.value!.properties)).toBe(digest(properties));
    });

    it.each(["'", '\\'])('UpdateImage stores 128 largest values of %s', { timeout: 60_000 }, async (unit) => {
      await startGroup();
      const image = await fixture.attacker.images.createImage({ image: { name: 'to fill' } });
      touched.add(image.id);
      const updated = await outcomeOf(
        unaryWithDeadline<UpdateImageRequest, Image>(
          fixture.largeClient,
          'updateImage',
          UpdateImageRequest.fromPartial({ image: { id: image.id, properties: maxProperties(unit) }, updateMask: ['properties'] }),
          fixture.attackerAuthorization,
        ),
      );
      await finishGroup();
      expect(updated.code, updated.message).toBe('OK');
      const [stored] = await fixture.reader.select('SELECT SUM(LENGTH(value)) AS bytes FROM image_properties WHERE image_id = ?', [image.id]);
      expect(Number(stored?.bytes)).toBe(128 * 65_535);
    });
  });

  it('victim images stay unchanged', async () => {
    for (const id of fixture.victimIds) {
      const image = await fixture.admin.images.getImage({ id });
      expect(image.owner).toBe('victim');
      expect(image.tags).toContain('keep');
    }
    const members = await fixture.admin.members.listMembers({ imageId: fixture.victimIds[0]! });
    expect(members.members.map((member) => member.memberId).sort()).toEqual(['proj-b', 'proj-c']);
  });
});
