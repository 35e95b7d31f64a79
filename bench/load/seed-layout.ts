/**
 * Table layout helpers of the seeder: a fingerprint that shows whether a
 * seeded database still matches the migrations, a check of the columns the
 * seeder writes, and dropping and rebuilding secondary indexes around a
 * bulk load.
 */
import { createHash } from 'node:crypto';
import { IMAGE_COLUMNS } from '../../src/persistence/image-rows.js';
import type { SeedConnection } from './seed-connection.js';

export const MARKER_TABLE = 'bench_seed_marker';
/** Tables that the fingerprint leaves out: Knex's bookkeeping and the marker. */
const UNFINGERPRINTED_TABLES = new Set(['knex_migrations', 'knex_migrations_lock', MARKER_TABLE]);

export const MEMBER_COLUMNS = ['image_id', 'member_id', 'status', 'create_time', 'update_time'] as const;
export const TAG_COLUMNS = ['image_id', 'tag'] as const;
export const PROPERTY_COLUMNS = ['image_id', 'name', 'value'] as const;

/** upload_expires_at is set only while an image is SAVING, and no seeded image is. */
export const SEEDED_IMAGE_COLUMNS = [...new Set([...IMAGE_COLUMNS, 'upload_expires_at'])];

/** The columns the seeder writes, per table, in the layout of the first migration. */
export const SEEDED_COLUMNS: Record<string, readonly string[]> = {
  images: SEEDED_IMAGE_COLUMNS,
  image_tags: TAG_COLUMNS,
  image_properties: PROPERTY_COLUMNS,
  image_members: MEMBER_COLUMNS,
};

export async function tableNames(connection: SeedConnection): Promise<string[]> {
  const rows =
    connection.backend === 'sqlite'
      ? await connection.query<{ name: string }>("SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%'")
      : await connection.query<{ name: string }>(
          'SELECT TABLE_NAME AS name FROM information_schema.TABLES WHERE TABLE_SCHEMA = DATABASE()',
        );
  return rows.map((row) => row.name).sort();
}

export async function appliedMigrations(connection: SeedConnection): Promise<string[]> {
  const rows = await connection.query<{ name: string }>('SELECT name FROM knex_migrations ORDER BY name');
  return rows.map((row) => row.name);
}

/**
 * Describes the table layout (columns, types, defaults, indexes, keys) and
 * the applied migrations as sorted text lines, so that two databases with
 * the same layout give the same lines whatever order the indexes were built in.
 */
export async function layoutLines(connection: SeedConnection): Promise<string[]> {
  const lines: string[] = (await appliedMigrations(connection)).map((name) => `migration ${name}`);
  if (connection.backend === 'sqlite') {
    const rows = await connection.query<{ type: string; name: string; sql: string | null }>(
      "SELECT type, name, sql FROM sqlite_master WHERE name NOT LIKE 'sqlite_%'",
    );
    for (const row of rows) {
      if (UNFINGERPRINTED_TABLES.has(row.name) || row.sql === null) continue;
      lines.push(`${row.type} ${row.name}: ${row.sql.replace(/\s+/g, ' ')}`);
    }
    return lines.sort();
  }
  for (const table of await tableNames(connection)) {
    if (UNFINGERPRINTED_TABLES.has(table)) continue;
    const [row] = await connection.query<{ 'Create Table': string }>(`SHOW CREATE TABLE \`${table}\``);
    const body = row!['Create Table'].replace(/ AUTO_INCREMENT=\d+/, '');
    for (const line of body.split('\n')) lines.push(`${table}: ${line.trim().replace(/,$/, '')}`);
  }
  return lines.sort();
}

export function fingerprintOf(lines: string[]): string {
  return createHash('sha256').update(lines.join('\n')).digest('hex').slice(0, 16);
}

/**
 * Compares the columns of the layout the rows are loaded into with the
 * ones the seeder writes, and throws on any difference: a column left to
 * its default would hold a value that the service itself would never
 * write. Returns notes on tables that the seeder leaves empty.
 */
export async function checkColumns(connection: SeedConnection): Promise<string[]> {
  const notes: string[] = [];
  for (const table of await tableNames(connection)) {
    if (UNFINGERPRINTED_TABLES.has(table)) continue;
    const seeded = SEEDED_COLUMNS[table];
    if (seeded === undefined) {
      notes.push(`table ${table} is left empty: the seeder does not know it`);
      continue;
    }
    const rows =
      connection.backend === 'sqlite'
        ? await connection.query<{ name: string }>(`SELECT name FROM pragma_table_info('${table}')`)
        : await connection.query<{ name: string }>(
            'SELECT COLUMN_NAME AS name FROM information_schema.COLUMNS WHERE TABLE_SCHEMA = DATABASE() AND TABLE_NAME = ?',
            [table],
          );
    const live = rows.map((row) => row.name);
    const missing = seeded.filter((column) => !live.includes(column));
    const unknown = live.filter((column) => !seeded.includes(column));
    if (missing.length > 0 || unknown.length > 0) {
      throw new Error(
        `the seeder's columns of table ${table} differ from the first migration's: ` +
          `missing from the table: [${missing.join(', ')}], not written by the seeder: [${unknown.join(', ')}]. ` +
          'Generate and write them in bench/load/seed-rows.ts and bench/load/seed-layout.ts',
      );
    }
  }
  return notes;
}

export interface SecondaryIndex {
  table: string;
  name: string;
  /** The statement that builds it again. */
  create: string;
}

interface MysqlIndexRow {
  Key_name: string;
  Column_name: string;
  Sub_part: number | null;
  Non_unique: number;
  Collation: string | null;
  Index_type: string;
}

/** Drops the secondary B-tree indexes of the seeded tables and returns how to build them again. */
export async function dropSecondaryIndexes(connection: SeedConnection): Promise<SecondaryIndex[]> {
  const tables = Object.keys(SEEDED_COLUMNS);
  const dropped: SecondaryIndex[] = [];
  if (connection.backend === 'sqlite') {
    const rows = await connection.query<{ name: string; tbl_name: string; sql: string }>(
      `SELECT name, tbl_name, sql FROM sqlite_master WHERE type = 'index' AND sql IS NOT NULL AND tbl_name IN (${tables.map(() => '?').join(', ')})`,
      tables,
    );
    for (const row of rows) {
      await connection.run(`DROP INDEX "${row.name}"`);
      dropped.push({ table: row.tbl_name, name: row.name, create: row.sql });
    }
    return dropped;
  }
  for (const table of tables) {
    const rows = await connection.query<MysqlIndexRow>(`SHOW INDEX FROM \`${table}\``);
    const byName = new Map<string, MysqlIndexRow[]>();
    for (const row of rows) {
      if (row.Key_name === 'PRIMARY' || row.Index_type !== 'BTREE') continue;
      byName.set(row.Key_name, [...(byName.get(row.Key_name) ?? []), row]);
    }
    for (const [name, parts] of byName) {
      const columns = parts.map(
        (part) => `\`${part.Column_name}\`${part.Sub_part === null ? '' : `(${part.Sub_part})`}${part.Collation === 'D' ? ' DESC' : ''}`,
      );
      const kind = parts[0]!.Non_unique === 0 ? 'UNIQUE INDEX' : 'INDEX';
      try {
        await connection.run(`ALTER TABLE \`${table}\` DROP INDEX \`${name}\``);
      } catch (error) {
        // ER_DROP_INDEX_FK: a foreign key needs this index, so it stays and is updated row by row.
        if ((error as { errno?: number }).errno === 1553) continue;
        throw error;
      }
      dropped.push({ table, name, create: `ADD ${kind} \`${name}\` (${columns.join(', ')})` });
    }
  }
  return dropped;
}

export async function rebuildIndexes(connection: SeedConnection, indexes: SecondaryIndex[]): Promise<void> {
  if (connection.backend === 'sqlite') {
    for (const index of indexes) await connection.run(index.create);
    return;
  }
  const byTable = new Map<string, string[]>();
  for (const index of indexes) byTable.set(index.table, [...(byTable.get(index.table) ?? []), index.create]);
  // One ALTER TABLE per table builds all its indexes in one pass over the rows.
  for (const [table, clauses] of byTable) await connection.run(`ALTER TABLE \`${table}\` ${clauses.join(', ')}`);
}

export async function countRows(connection: SeedConnection, table: string): Promise<number> {
  const [row] = await connection.query<{ count: number | string }>(`SELECT COUNT(*) AS count FROM ${table}`);
  return Number(row!.count);
}
