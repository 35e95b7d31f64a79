/**
 * Seeded databases for the load benchmark: one per backend and image count,
 * filled with the rows of seed-rows.ts by multi-row INSERTs in transactions,
 * straight through the database driver rather than the service.
 *
 * The service's first migration creates the tables, and the rows go into
 * that layout with its secondary indexes dropped and built again afterwards,
 * which is much faster than updating them row by row. The later migrations
 * then run with the service's own code, so that they fill derived columns
 * and build their indexes as on a production database. A marker row records the image
 * count, the generator's version and a fingerprint of the table layout, so a
 * later run reuses the database when all three still match and seeds it
 * again from scratch otherwise.
 *
 * MySQL databases are named bench_load_<size> on the given server, and
 * SQLite files are <seed folder>/load-<size>.sqlite.
 */
import { randomBytes } from 'node:crypto';
import { mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import BetterSqlite3 from 'better-sqlite3';
import mysql from 'mysql2/promise';
import { Database, type DatabaseLogger } from '../../src/persistence/database.js';
import { parseDatabaseUrl } from '../../src/persistence/database-url.js';
import { rowFromImage } from '../../src/persistence/image-rows.js';
import { migrationSource } from '../../src/persistence/migrations.js';
import { type Backend, type SeedConnection, mysqlConnection, sqliteConnection } from './seed-connection.js';
import {
  MARKER_TABLE,
  MEMBER_COLUMNS,
  PROPERTY_COLUMNS,
  SEEDED_COLUMNS,
  SEEDED_IMAGE_COLUMNS,
  TAG_COLUMNS,
  appliedMigrations,
  checkColumns,
  countRows,
  dropSecondaryIndexes,
  fingerprintOf,
  layoutLines,
  rebuildIndexes,
} from './seed-layout.js';
import { SEED_FORMAT_VERSION, type SeedImage, seedImageAt } from './seed-rows.js';

export type { Backend } from './seed-connection.js';

export interface SeedLocation {
  backend: Backend;
  imageCount: number;
  /** Size label used in names, such as "10k" or "1m". */
  label: string;
  /** DATABASE_URL for the service. */
  url: string;
  /** "bench_load_10k" on MySQL, or the file path on SQLite. */
  name: string;
}

export interface SeedSettings {
  /** MySQL server URL without a database, such as mysql://root@127.0.0.1:3306. */
  mysqlUrl: string;
  /** Folder of the seeded SQLite files. */
  seedDir: string;
}

/** Contents of the marker row. */
export interface SeedMarker {
  formatVersion: number;
  imageCount: number;
  schemaFingerprint: string;
  migrations: string[];
  seededAt: string;
  rows: Record<string, number>;
  /**
   * Seconds spent generating and inserting rows; migrating, dropping and
   * building indexes around that; running the later migrations; and in all.
   */
  seconds: { insert: number; indexes: number; laterMigrations: number; total: number };
}

export interface SeedOutcome {
  location: SeedLocation;
  reused: boolean;
  marker: SeedMarker;
}

const IMAGES_PER_TRANSACTION = 5_000;
const PROGRESS_INTERVAL_MS = 5_000;

export function sizeLabel(imageCount: number): string {
  if (imageCount % 1_000_000 === 0) return `${imageCount / 1_000_000}m`;
  if (imageCount % 1_000 === 0) return `${imageCount / 1_000}k`;
  return String(imageCount);
}

export function seedLocation(backend: Backend, imageCount: number, settings: SeedSettings): SeedLocation {
  const label = sizeLabel(imageCount);
  if (backend === 'sqlite') {
    const path = resolve(settings.seedDir, `load-${label}.sqlite`);
    return { backend, imageCount, label, url: `sqlite:${path}`, name: path };
  }
  const name = `bench_load_${label}`;
  return { backend, imageCount, label, url: `${serverUrl(settings.mysqlUrl)}/${name}`, name };
}

function serverUrl(mysqlUrl: string): string {
  return mysqlUrl.replace(/\/+$/, '');
}

/** A logger for the service's migration code that prints only warnings. */
const migrationLog: DatabaseLogger = {
  info: () => {},
  debug: () => {},
  warn: (fields, message) => console.error(`migrations: ${message} ${JSON.stringify(fields)}`),
};

async function openConnection(location: SeedLocation): Promise<SeedConnection> {
  return location.backend === 'sqlite' ? sqliteConnection(location.name) : mysqlConnection(location.url);
}

/** Runs the service's migrations on a database, with the service's own code. */
async function migrate(url: string): Promise<void> {
  const database = new Database(parseDatabaseUrl(url));
  try {
    await database.migrate(migrationLog);
  } finally {
    await database.close();
  }
}

async function withServerConnection<T>(settings: SeedSettings, work: (connection: mysql.Connection) => Promise<T>): Promise<T> {
  const connection = await mysql.createConnection({ uri: serverUrl(settings.mysqlUrl) });
  try {
    return await work(connection);
  } finally {
    await connection.end();
  }
}

async function databaseExists(location: SeedLocation, settings: SeedSettings): Promise<boolean> {
  if (location.backend === 'sqlite') {
    try {
      const db = new BetterSqlite3(location.name, { fileMustExist: true });
      db.close();
      return true;
    } catch {
      return false;
    }
  }
  return withServerConnection(settings, async (connection) => {
    const [rows] = await connection.query('SELECT SCHEMA_NAME FROM information_schema.SCHEMATA WHERE SCHEMA_NAME = ?', [location.name]);
    return (rows as unknown[]).length > 0;
  });
}

/** Removes a seeded database: the MySQL database, or the SQLite file with its WAL and shared-memory files. */
export async function dropSeeded(location: SeedLocation, settings: SeedSettings): Promise<void> {
  if (location.backend === 'sqlite') {
    for (const suffix of ['', '-wal', '-shm', '-journal']) rmSync(`${location.name}${suffix}`, { force: true });
    return;
  }
  await withServerConnection(settings, (connection) => connection.query(`DROP DATABASE IF EXISTS \`${location.name}\``));
}

async function createEmpty(location: SeedLocation, settings: SeedSettings): Promise<void> {
  await dropSeeded(location, settings);
  if (location.backend === 'sqlite') {
    mkdirSync(resolve(location.name, '..'), { recursive: true });
    return;
  }
  await withServerConnection(settings, (connection) => connection.query(`CREATE DATABASE \`${location.name}\``));
}

/** Layouts that freshLayout has computed in this process, per backend and MySQL server. */
const freshLayouts = new Map<string, Promise<string[]>>();

/**
 * Returns the layout lines that the current migrations give an empty
 * database of this backend, computed once per process on a scratch database.
 */
export function freshLayout(backend: Backend, settings: SeedSettings): Promise<string[]> {
  const key = backend === 'sqlite' ? backend : `${backend} ${serverUrl(settings.mysqlUrl)}`;
  let layout = freshLayouts.get(key);
  if (layout === undefined) {
    layout = migrateScratchDatabase(backend, settings);
    freshLayouts.set(key, layout);
  }
  return layout;
}

async function migrateScratchDatabase(backend: Backend, settings: SeedSettings): Promise<string[]> {
  if (backend === 'sqlite') {
    const folder = mkdtempSync(join(tmpdir(), 'bench-schema-'));
    try {
      const path = join(folder, 'schema.sqlite');
      await migrate(`sqlite:${path}`);
      const connection = sqliteConnection(path);
      try {
        return await layoutLines(connection);
      } finally {
        await connection.close();
      }
    } finally {
      rmSync(folder, { recursive: true, force: true });
    }
  }
  const name = `bench_schema_${randomBytes(6).toString('hex')}`;
  await withServerConnection(settings, (connection) => connection.query(`CREATE DATABASE \`${name}\``));
  try {
    const url = `${serverUrl(settings.mysqlUrl)}/${name}`;
    await migrate(url);
    const connection = await mysqlConnection(url);
    try {
      return await layoutLines(connection);
    } finally {
      await connection.close();
    }
  } finally {
    await withServerConnection(settings, (connection) => connection.query(`DROP DATABASE IF EXISTS \`${name}\``));
  }
}

/** Reads the marker, or returns null when the table or its row is missing or unreadable. */
async function readMarker(connection: SeedConnection): Promise<SeedMarker | null> {
  try {
    const rows = await connection.query<{ marker: string }>(`SELECT marker FROM ${MARKER_TABLE}`);
    return rows.length === 1 ? (JSON.parse(rows[0]!.marker) as SeedMarker) : null;
  } catch {
    return null;
  }
}

/**
 * Returns why the database cannot be reused, or null when its marker and
 * layout match what this code would seed.
 */
async function reasonToReseed(location: SeedLocation, settings: SeedSettings, fresh: string[]): Promise<string | null> {
  if (!(await databaseExists(location, settings))) return 'it does not exist yet';
  const connection = await openConnection(location);
  try {
    const marker = await readMarker(connection);
    if (marker === null) return 'it has no seed marker, so an earlier seeding did not finish';
    if (marker.formatVersion !== SEED_FORMAT_VERSION) {
      return `it was seeded by generator version ${marker.formatVersion}, and this is version ${SEED_FORMAT_VERSION}`;
    }
    if (marker.imageCount !== location.imageCount) return `it has ${marker.imageCount} images, not ${location.imageCount}`;
    if (marker.schemaFingerprint !== fingerprintOf(fresh)) return 'the migrations have changed since it was seeded';
    const live = await layoutLines(connection);
    if (fingerprintOf(live) !== fingerprintOf(fresh)) return 'its table layout differs from what the migrations create now';
    return null;
  } finally {
    await connection.close();
  }
}

/** Rows of one transaction, in each table's column order. */
interface RowBatch {
  images: unknown[][];
  tags: unknown[][];
  properties: unknown[][];
  members: unknown[][];
}

/**
 * better-sqlite3 binds no booleans, and MySQL stores them as TINYINT, so
 * both get 1 and 0. A column that the image row lacks is NULL.
 */
function sqlValue(value: unknown): unknown {
  if (value === undefined) return null;
  if (value === true) return 1;
  if (value === false) return 0;
  return value;
}

function buildBatch(start: number, end: number, imageCount: number): RowBatch {
  const batch: RowBatch = { images: [], tags: [], properties: [], members: [] };
  for (let index = start; index < end; index++) {
    const { image, members }: SeedImage = seedImageAt(index, imageCount);
    const row = rowFromImage(image) as unknown as Record<string, unknown>;
    batch.images.push(SEEDED_IMAGE_COLUMNS.map((column) => sqlValue(row[column])));
    for (const tag of image.tags) batch.tags.push([image.id, tag]);
    for (const [name, value] of Object.entries(image.properties)) batch.properties.push([image.id, name, value]);
    for (const member of members) {
      batch.members.push([member.imageId, member.memberId, member.status, member.createTime, member.updateTime]);
    }
  }
  return batch;
}

/**
 * Sends one transaction's statements without waiting between them, so that
 * the caller can generate the next batch while MySQL works. A failure rolls
 * back what it can. A half-written seed has no marker, so it is never reused.
 */
function writeBatch(connection: SeedConnection, batch: RowBatch): Promise<void> {
  const statements = [
    connection.run('BEGIN'),
    connection.insertRows('images', SEEDED_IMAGE_COLUMNS, batch.images),
    connection.insertRows('image_tags', TAG_COLUMNS, batch.tags),
    connection.insertRows('image_properties', PROPERTY_COLUMNS, batch.properties),
    connection.insertRows('image_members', MEMBER_COLUMNS, batch.members),
    connection.run('COMMIT'),
  ];
  return Promise.all(statements).then(
    () => {},
    async (error: unknown) => {
      await connection.run('ROLLBACK').catch(() => {});
      throw error;
    },
  );
}

/** Generates and inserts every row, generating the next transaction's rows while MySQL writes the last. */
async function insertAll(connection: SeedConnection, imageCount: number, log: (line: string) => void): Promise<Record<string, number>> {
  const rows = { images: 0, image_tags: 0, image_properties: 0, image_members: 0 };
  const started = performance.now();
  let lastProgress = started;
  let previous: Promise<void> = Promise.resolve();
  for (let start = 0; start < imageCount; start += IMAGES_PER_TRANSACTION) {
    const batch = buildBatch(start, Math.min(imageCount, start + IMAGES_PER_TRANSACTION), imageCount);
    await previous;
    rows.images += batch.images.length;
    rows.image_tags += batch.tags.length;
    rows.image_properties += batch.properties.length;
    rows.image_members += batch.members.length;
    previous = writeBatch(connection, batch);
    const now = performance.now();
    if (now - lastProgress >= PROGRESS_INTERVAL_MS) {
      lastProgress = now;
      const rate = Math.round(rows.images / ((now - started) / 1000));
      log(`  ${rows.images.toLocaleString('en-US')} of ${imageCount.toLocaleString('en-US')} images generated, ${rate.toLocaleString('en-US')} images/s`);
    }
  }
  await previous;
  return rows;
}

/** Applies only the first migration, the table layout that the seeder's rows are written for, and returns its name. */
async function migrateToFirst(url: string): Promise<string> {
  const [first] = await migrationSource.getMigrations([]);
  if (first === undefined) throw new Error('the service has no migrations');
  const database = new Database(parseDatabaseUrl(url));
  try {
    await database.knex.migrate.up({ migrationSource, name: first });
  } finally {
    await database.close();
  }
  return first;
}

/** Loads every row into the first migration's layout, with the secondary indexes built afterwards. */
async function load(location: SeedLocation, log: (line: string) => void): Promise<{ rows: Record<string, number>; insertSeconds: number }> {
  const connection = await openConnection(location);
  try {
    for (const note of await checkColumns(connection)) log(`  note: ${note}`);
    if (connection.backend === 'mysql') {
      // Off for this session only: the rows are generated consistent, and the checks would cost a lookup per row.
      await connection.run('SET SESSION unique_checks = 0, foreign_key_checks = 0');
    }
    const indexes = await dropSecondaryIndexes(connection);
    const started = performance.now();
    const rows = await insertAll(connection, location.imageCount, log);
    const insertSeconds = (performance.now() - started) / 1000;
    log(`  building ${indexes.length} secondary indexes`);
    await rebuildIndexes(connection, indexes);
    return { rows, insertSeconds };
  } finally {
    await connection.close();
  }
}

/**
 * Seeds an empty database and writes its marker. The rows are loaded into
 * the first migration's layout, and the later migrations then run with the
 * service's own code, so that they fill derived columns and build indexes
 * as they would on a production database.
 */
async function seed(location: SeedLocation, fresh: string[], log: (line: string) => void): Promise<SeedMarker> {
  const started = performance.now();
  const first = await migrateToFirst(location.url);
  log(`  loading rows into the layout of migration ${first}`);
  const { rows, insertSeconds } = await load(location, log);
  const loaded = performance.now();
  log('  applying the later migrations');
  await migrate(location.url);
  const migrated = performance.now();

  const connection = await openConnection(location);
  try {
    if (connection.backend === 'mysql') {
      // Fresh statistics, as InnoDB would gather them on its own once enough rows changed.
      await connection.run(`ANALYZE TABLE ${Object.keys(SEEDED_COLUMNS).join(', ')}`);
    }
    for (const [table, expected] of Object.entries(rows)) {
      const actual = await countRows(connection, table);
      if (actual !== expected) throw new Error(`table ${table} has ${actual} rows after seeding, expected ${expected}`);
    }
    const live = await layoutLines(connection);
    if (fingerprintOf(live) !== fingerprintOf(fresh)) {
      const missing = fresh.filter((line) => !live.includes(line));
      const extra = live.filter((line) => !fresh.includes(line));
      throw new Error(
        'the seeded table layout differs from the one the migrations create on an empty database:\n' +
          `  missing: ${missing.join('\n           ')}\n  extra:   ${extra.join('\n           ')}`,
      );
    }
    const marker: SeedMarker = {
      formatVersion: SEED_FORMAT_VERSION,
      imageCount: location.imageCount,
      schemaFingerprint: fingerprintOf(fresh),
      migrations: await appliedMigrations(connection),
      seededAt: new Date().toISOString(),
      rows,
      seconds: {
        insert: round(insertSeconds),
        indexes: round((loaded - started) / 1000 - insertSeconds),
        laterMigrations: round((migrated - loaded) / 1000),
        total: round((performance.now() - started) / 1000),
      },
    };
    await connection.run(`CREATE TABLE ${MARKER_TABLE} (marker TEXT NOT NULL)`);
    await connection.run(`INSERT INTO ${MARKER_TABLE} (marker) VALUES (?)`, [JSON.stringify(marker)]);
    return marker;
  } finally {
    await connection.close();
  }
}

function round(value: number): number {
  return Math.round(value * 100) / 100;
}

/**
 * Returns a seeded database for the backend and image count: the existing
 * one when its marker matches, otherwise a new one, replacing any database
 * or file of that name. `force` seeds again in any case.
 */
export async function ensureSeeded(
  location: SeedLocation,
  settings: SeedSettings,
  options: { force: boolean; log: (line: string) => void },
): Promise<SeedOutcome> {
  const fresh = await freshLayout(location.backend, settings);
  const reason = options.force ? 'seeding was forced' : await reasonToReseed(location, settings, fresh);
  if (reason === null) {
    const connection = await openConnection(location);
    try {
      const marker = (await readMarker(connection))!;
      options.log(`${location.backend} ${location.label}: reusing ${location.name}, seeded ${marker.seededAt}`);
      return { location, reused: true, marker };
    } finally {
      await connection.close();
    }
  }
  options.log(`${location.backend} ${location.label}: seeding ${location.name}, because ${reason}`);
  await createEmpty(location, settings);
  const marker = await seed(location, fresh, options.log);
  const total = marker.rows.images! + marker.rows.image_tags! + marker.rows.image_properties! + marker.rows.image_members!;
  options.log(
    `${location.backend} ${location.label}: seeded ${JSON.stringify(marker.rows)} in ${marker.seconds.total} s ` +
      `(inserts ${marker.seconds.insert} s, first migration and indexes ${marker.seconds.indexes} s, ` +
      `later migrations ${marker.seconds.laterMigrations} s; ` +
      `${Math.round(location.imageCount / marker.seconds.total).toLocaleString('en-US')} images/s, ` +
      `${Math.round(total / marker.seconds.total).toLocaleString('en-US')} rows/s overall)`,
  );
  return { location, reused: false, marker };
}
