/**
 * Rows of a seeded database that the scenarios call on, read with SQL
 * before the registry starts: member rows for GetImage, shared images and
 * their owners for CreateMember, and shared images that get a membership
 * for UpdateMember. The samples start at ids spread evenly over the id
 * space, so every run on the same seed calls on the same rows.
 *
 * Member rows that a run adds have ids starting with RUN_MEMBER_PREFIX and
 * are deleted before and after each run, so the seed itself never changes.
 */
import knexFactory, { type Knex } from 'knex';
import { parseDatabaseUrl } from '../../src/persistence/database-url.js';

export const RUN_MEMBER_PREFIX = 'bench-run-';
/** The character after '-' in code point order, which ends the range of ids with the prefix. */
const RUN_MEMBER_PREFIX_END = 'bench-run.';

export interface CallTarget {
  project: string;
  imageId: string;
}

export interface Targets {
  /** Member rows of shared images: the member project reads the image. */
  readers: CallTarget[];
  /** Shared images with their owners, who add members to them. */
  ownedShared: CallTarget[];
  /** Further shared images with their owners, each of which gets one membership for UpdateMember to change. */
  forUpdateMember: CallTarget[];
}

const READER_STARTS = 200;
const READERS_PER_START = 5;
const OWNED_STARTS = 200;
const OWNED_PER_START = 25;
const UPDATE_STARTS = 100;
const UPDATE_PER_START = 5;

/** Returns an id-shaped string at `fraction` of the id space, for a range scan to start from. */
function idAt(fraction: number): string {
  return Math.floor(fraction * 4_294_967_296)
    .toString(16)
    .padStart(8, '0');
}

async function withKnex<T>(url: string, work: (knex: Knex) => Promise<T>): Promise<T> {
  const knex = knexFactory(parseDatabaseUrl(url).knexConfig);
  try {
    return await work(knex);
  } finally {
    await knex.destroy();
  }
}

/** Deletes the member rows that runs added, and returns how many there were. */
export function deleteRunMembers(url: string): Promise<number> {
  return withKnex(url, (knex) =>
    knex('image_members').where('member_id', '>=', RUN_MEMBER_PREFIX).where('member_id', '<', RUN_MEMBER_PREFIX_END).delete(),
  );
}

async function sampleSharedImages(knex: Knex, starts: number, perStart: number, offset: number): Promise<CallTarget[]> {
  const found = new Map<string, string>();
  for (let start = 0; start < starts; start++) {
    const rows = (await knex('images')
      .select('id', 'owner')
      .where('id', '>=', idAt((start + offset) / starts))
      .where('visibility', 'shared')
      .whereNot('status', 'deleted')
      .orderBy('id')
      .limit(perStart)) as { id: string; owner: string }[];
    for (const row of rows) found.set(row.id, row.owner);
  }
  return [...found].map(([imageId, project]) => ({ project, imageId }));
}

export function sampleTargets(url: string): Promise<Targets> {
  return withKnex(url, async (knex) => {
    const readers = new Map<string, CallTarget>();
    for (let start = 0; start < READER_STARTS; start++) {
      const rows = (await knex('image_members')
        .select('image_id', 'member_id')
        .where('image_id', '>=', idAt((start + 0.5) / READER_STARTS))
        .orderBy([{ column: 'image_id' }, { column: 'member_id' }])
        .limit(READERS_PER_START)) as { image_id: string; member_id: string }[];
      for (const row of rows) readers.set(`${row.image_id} ${row.member_id}`, { project: row.member_id, imageId: row.image_id });
    }
    const ownedShared = await sampleSharedImages(knex, OWNED_STARTS, OWNED_PER_START, 0.5);
    const owned = new Set(ownedShared.map((target) => target.imageId));
    // Other images than CreateMember's, so that the memberships to update never count towards its quota checks.
    const forUpdateMember = (await sampleSharedImages(knex, UPDATE_STARTS, UPDATE_PER_START + 10, 0.7))
      .filter((target) => !owned.has(target.imageId))
      .slice(0, UPDATE_STARTS * UPDATE_PER_START);
    if (readers.size === 0 || ownedShared.length === 0 || forUpdateMember.length === 0) {
      throw new Error(`the database at ${parseDatabaseUrl(url).redacted} has too few shared images and members to call on`);
    }
    return { readers: [...readers.values()], ownedShared, forUpdateMember };
  });
}
