/**
 * Imports images and members exported from OpenStack Glance into the
 * registry's database, which DATABASE_URL names as for the service:
 *
 *   npx tsx src/cli/import-glance.ts [--json] [--database-url URL] FILE…
 *
 * Each FILE contains the JSON of one `GET /v2/images` page or one
 * `GET /v2/images/{id}/members` list.
 */
import { realpathSync } from 'node:fs';
import { resolve } from 'node:path';
import { pathToFileURL } from 'node:url';
import { parseArgs } from 'node:util';
import {
  type ImportReport,
  type ImageReport,
  importGlanceFiles,
  readGlanceFiles,
} from '../app/glance-import.js';
import { quote } from '../domain/errors.js';
import { GlanceFormatError, type GlanceNote, READ_ONLY_DETAIL, plural } from '../domain/glance-mapping.js';
import { type Config, loadConfig } from '../platform/config.js';
import { Database, type DatabaseLogger } from '../persistence/database.js';
import { type DatabaseTarget, parseDatabaseUrl } from '../persistence/database-url.js';

const USAGE =
  'usage: npx tsx src/cli/import-glance.ts [--json] [--database-url URL] FILE...\n' +
  '  FILE            JSON of a Glance GET /v2/images page, or of a GET /v2/images/{id}/members list\n' +
  '  --json          print the report as JSON instead of one line per image\n' +
  '  --database-url  sqlite:PATH or mysql://user:pass@host:port/db (default: DATABASE_URL, as for the service)\n' +
  'Creates each image with its tags, properties and members, or compares it when its id exists.\n' +
  'Images with data in Glance are imported as queued: upload their data to make them active.\n' +
  'Exit status: 0 when every image was created or unchanged, 1 when one was rejected or differs\n' +
  'from the stored one, or the database failed, 2 for usage errors.';

export const EXIT_OK = 0;
export const EXIT_IMPORT_PROBLEM = 1;
export const EXIT_USAGE = 2;

/**
 * Imports `files` and prints the report on stdout. Returns the exit status:
 * 0, 1 when an image was rejected or differs or the database failed, and 2
 * for usage errors, which stop the command before it opens the database.
 */
export async function importGlanceCommand(
  files: string[],
  options: { databaseUrl?: string; json?: boolean },
): Promise<number> {
  if (files.length === 0) {
    console.error(`import-glance: no FILE given\n${USAGE}`);
    return EXIT_USAGE;
  }
  let config: Config;
  let target: DatabaseTarget;
  try {
    config = loadConfig(options.databaseUrl === undefined ? process.env : { ...process.env, DATABASE_URL: options.databaseUrl });
    target = parseDatabaseUrl(config.DATABASE_URL);
  } catch (error) {
    // loadConfig throws ConfigError, and parseDatabaseUrl a plain Error, each naming the bad value.
    if (!(error instanceof Error)) throw error;
    console.error(`import-glance: ${error.message}`);
    return EXIT_USAGE;
  }
  let glanceFiles;
  try {
    glanceFiles = await readGlanceFiles(files);
  } catch (error) {
    if (!(error instanceof GlanceFormatError)) throw error;
    console.error(`import-glance: ${error.message}; nothing was imported`);
    return EXIT_USAGE;
  }

  const log = stderrLogger();
  const database = new Database(target, { log, statementTimeoutMs: config.DATABASE_STATEMENT_TIMEOUT_S * 1000 });
  let report: ImportReport;
  try {
    await database.migrate(log);
    report = await importGlanceFiles(database, glanceFiles, { memberQuota: config.IMAGE_MEMBER_QUOTA });
  } catch (error) {
    console.error(`import-glance: the import into ${target.redacted} failed: ${(error as Error).message}`);
    return EXIT_IMPORT_PROBLEM;
  } finally {
    await database.close();
  }

  process.stdout.write(options.json ? `${JSON.stringify(report, null, 2)}\n` : formatReport(report));
  return report.totals.rejected + report.totals.differs > 0 ? EXIT_IMPORT_PROBLEM : EXIT_OK;
}

/** Formats one line per file note and per image, notes and differences indented below, and the totals. */
export function formatReport(report: ImportReport): string {
  const lines: string[] = [];
  for (const file of report.files) {
    for (const note of file.notes) lines.push(`${file.path}: ${formatNote(note)}`);
  }
  for (const image of report.images) lines.push(...formatImage(image));
  const { created, unchanged, differs, rejected } = report.totals;
  const total = created + unchanged + differs + rejected;
  const nothingWritten = created === 0 ? '; nothing was written' : '';
  lines.push(`${total} images: ${created} created, ${unchanged} unchanged, ${differs} differ, ${rejected} rejected${nothingWritten}`);
  return `${lines.join('\n')}\n`;
}

/**
 * Formats an image's line. Notes are shown except for unchanged images,
 * whose notes the run that created them showed; --json always has them.
 */
function formatImage(image: ImageReport): string[] {
  const members = image.members > 0 ? `, ${plural(image.members, 'member')}` : '';
  let line = `${image.outcome.padEnd(9)} ${image.id} ${quote(image.name)} (${image.file}${members})`;
  if (image.reason !== undefined) line += `: ${image.reason}`;
  const lines = [line];
  for (const difference of image.differences ?? []) {
    lines.push(`    ${difference.field}: registry ${JSON.stringify(difference.registry)}, Glance ${JSON.stringify(difference.glance)}`);
  }
  if (image.outcome === 'unchanged') return lines;
  const readOnlyKeys = image.notes.filter(isReadOnlyNote).map((note) => note.key);
  for (const note of image.notes.filter((note) => !isReadOnlyNote(note))) lines.push(`    ${formatNote(note)}`);
  if (readOnlyKeys.length > 0) lines.push(`    dropped read-only Glance keys: ${readOnlyKeys.join(', ')}`);
  return lines;
}

/** Read-only keys are links and store locations, listed together on one line. */
function isReadOnlyNote(note: GlanceNote): boolean {
  return note.action === 'dropped' && note.detail.startsWith(READ_ONLY_DETAIL);
}

function formatNote(note: GlanceNote): string {
  return `${note.action} ${note.key}: ${note.detail}`;
}

/** Sends the database layer's messages, such as applied migrations, to stderr, leaving stdout to the report. */
function stderrLogger(): DatabaseLogger {
  const write = (fields: object, message: string) => console.error(`import-glance: ${message} ${JSON.stringify(fields)}`);
  return { info: write, warn: write, debug: () => {} };
}

async function main(): Promise<void> {
  let parsed;
  try {
    parsed = parseArgs({
      allowPositionals: true,
      options: {
        json: { type: 'boolean', default: false },
        'database-url': { type: 'string' },
        help: { type: 'boolean', default: false },
      },
    });
  } catch (error) {
    console.error(`import-glance: ${(error as Error).message}\n${USAGE}`);
    process.exitCode = EXIT_USAGE;
    return;
  }
  if (parsed.values.help) {
    console.log(USAGE);
    return;
  }
  process.exitCode = await importGlanceCommand(parsed.positionals, {
    databaseUrl: parsed.values['database-url'],
    json: parsed.values.json,
  });
}

/** Returns whether this module is the script Node was started with, not an import. */
function isEntryPoint(): boolean {
  const script = process.argv[1];
  if (script === undefined) return false;
  try {
    return import.meta.url === pathToFileURL(realpathSync(resolve(script))).href;
  } catch {
    return false;
  }
}

if (isEntryPoint()) await main();
