/** Persistence against real databases: migrations, collation, and driver errors. */
import { pino } from 'pino';
import { afterEach, describe, expect, it } from 'vitest';
import { RegistryError } from '../../src/domain/errors.js';
import { runUntilCallEnds } from '../../src/persistence/call-cancellation.js';
import { Database } from '../../src/persistence/database.js';
import { parseDatabaseUrl } from '../../src/persistence/database-url.js';
import { migrationSource } from '../../src/persistence/migrations.js';
import { type TestDatabase, createTestDatabase, testedBackends } from '../support/databases.js';

const silent = pino({ level: 'silent' });
const ALL_MIGRATIONS = ['0001_create_tables', '0002_add_listing_keys'];

/** Creates a table of its own for tests of transactions, so that no foreign key gets in the way. */
async function createStepsTable(database: Database): Promise<void> {
  await database.knex.schema.createTable('call_steps', (table) => table.string('step', 32).primary());
}

describe.each(testedBackends())('database on %s', (backend) => {
  const opened: Database[] = [];
  let testDatabase: TestDatabase | undefined;

  async function open(count: number): Promise<Database[]> {
    testDatabase ??= await createTestDatabase(backend);
    const databases = Array.from({ length: count }, () => new Database(parseDatabaseUrl(testDatabase!.url)));
    opened.push(...databases);
    return databases;
  }

  afterEach(async () => {
    await Promise.all(opened.splice(0).map((database) => database.close()));
    await testDatabase?.drop();
    testDatabase = undefined;
  });

  it('lets several instances migrate one fresh database at once', { timeout: 90_000 }, async () => {
    // SQLite allows one writer, so concurrency matters on MySQL; both must pass.
    const instances = await open(backend === 'mysql' ? 5 : 2);
    await Promise.all(instances.map((database) => database.migrate(silent)));

    const applied = await instances[0]!.knex('knex_migrations').select('name');
    expect(applied.map((row) => row.name)).toEqual(ALL_MIGRATIONS);
  });

  it.runIf(backend === 'mysql')('recovers from a start killed during the first migration', async () => {
    const [database] = await open(1);
    const knex = database!.knex;
    // What a start killed after Knex took its lock and MySQL created one table leaves behind.
    await knex.schema.createTable('knex_migrations_lock', (table) => {
      table.increments('index').primary();
      table.integer('is_locked');
    });
    await knex('knex_migrations_lock').insert({ is_locked: 1 });
    await knex.schema.createTable('images', (table) => table.string('id', 36).primary());

    await database!.migrate(silent);

    const applied = await knex('knex_migrations').select('name');
    expect(applied.map((row) => row.name)).toEqual(ALL_MIGRATIONS);
    expect(await knex.schema.hasColumn('images', 'visibility')).toBe(true);
    expect(await knex.schema.hasTable('image_members')).toBe(true);
  });

  it('applies nothing on a second start', async () => {
    const [first, second] = await open(2);
    await first!.migrate(silent);
    await second!.migrate(silent);
    const applied = await second!.knex('knex_migrations').count({ count: '*' }).first();
    expect(Number(applied!.count)).toBe(ALL_MIGRATIONS.length);
  });

  it.runIf(backend === 'mysql')('recovers from a start killed during the second migration', async () => {
    const [database] = await open(1);
    await database!.migrate(silent);
    const knex = database!.knex;
    // MySQL commits each ALTER, so a killed start can leave the column and one index without the record.
    await knex('knex_migrations').where('name', '0002_add_listing_keys').delete();
    await knex.schema.alterTable('images', (table) => table.dropIndex([], 'images_visibility_owner_created'));

    await database!.migrate(silent);

    const applied = await knex('knex_migrations').select('name');
    expect(applied.map((row) => row.name)).toEqual(ALL_MIGRATIONS);
    const [indexes] = (await knex.raw('SHOW INDEX FROM images WHERE Key_name = ?', [
      'images_visibility_owner_created',
    ])) as [unknown[]];
    expect(indexes.length).toBe(4);
  });

  it('copies image create times into existing member rows', async () => {
    const [database] = await open(1);
    const knex = database!.knex;
    await knex.migrate.up({ migrationSource });
    await knex('images').insert({ id: 'image-a', status: 'queued', visibility: 'shared', owner: 'owner', create_time: 1234, update_time: 1234 });
    await knex('image_members').insert({ image_id: 'image-a', member_id: 'member', status: 'pending', create_time: 5678, update_time: 5678 });

    await database!.migrate(silent);

    const row = await knex('image_members').first('image_create_time').where('image_id', 'image-a');
    expect(Number(row.image_create_time)).toBe(1234);
  });

  it('call ending mid-transaction commits nothing', async () => {
    const [database] = await open(1);
    await createStepsTable(database!);
    const call = new AbortController();
    const ended = new RegistryError('DEADLINE_EXCEEDED', 'the deadline passed', 'DEADLINE_EXCEEDED');
    const outcome = runUntilCallEnds(call.signal, () =>
      database!.write(async (trx) => {
        await trx('call_steps').insert({ step: 'one' });
        call.abort(ended);
        await trx('call_steps').insert({ step: 'two' });
      }),
    );
    await expect(outcome).rejects.toBe(ended);
    expect(await database!.knex('call_steps').select('step')).toEqual([]);
  });

  it('call ending before commit commits nothing', async () => {
    const [database] = await open(1);
    await createStepsTable(database!);
    const call = new AbortController();
    const outcome = runUntilCallEnds(call.signal, () =>
      database!.write(async (trx) => {
        await trx('call_steps').insert({ step: 'only' });
        call.abort(new RegistryError('CANCELLED', 'the client cancelled the call', 'CANCELLED'));
      }),
    );
    await expect(outcome).rejects.toMatchObject({ kind: 'CANCELLED' });
    expect(await database!.knex('call_steps').select('step')).toEqual([]);
  });

  it('work outside a call always runs', async () => {
    const [database] = await open(1);
    await createStepsTable(database!);
    await database!.write((trx) => trx('call_steps').insert({ step: 'outside' }));
    expect(await database!.knex('call_steps').select('step')).toEqual([{ step: 'outside' }]);
  });

  it.runIf(backend === 'mysql')('deadlocked transaction is retried and succeeds', async () => {
    const [first, second] = await open(2);
    await createStepsTable(first!);
    await first!.knex('call_steps').insert([{ step: 'a' }, { step: 'b' }]);
    let bothHoldOneRow: () => void = () => {};
    const barrier = new Promise<void>((resolve) => {
      let waiting = 2;
      bothHoldOneRow = () => {
        waiting -= 1;
        if (waiting === 0) resolve();
      };
    });
    let attempts = 0;
    // Each locks one row, waits until the other holds its row, then requests the other's row.
    const crossing = (database: Database, own: string, other: string) =>
      database.write(async (trx) => {
        attempts += 1;
        await trx('call_steps').where('step', own).update({ step: own });
        bothHoldOneRow();
        await barrier;
        await trx('call_steps').where('step', other).update({ step: other });
        return own;
      });

    const results = await Promise.all([crossing(first!, 'a', 'b'), crossing(second!, 'b', 'a')]);

    expect(results).toEqual(['a', 'b']);
    // InnoDB rolled one of them back, and Database.write ran it again.
    expect(attempts).toBe(3);
  });

  it('lock conflict that persists ends ABORTED after 6 attempts', async () => {
    const [database] = await open(1);
    await createStepsTable(database!);
    let attempts = 0;
    const outcome = database!.write(async () => {
      attempts += 1;
      throw Object.assign(new Error('Deadlock found when trying to get lock'), { code: 'ER_LOCK_DEADLOCK' });
    });
    await expect(outcome).rejects.toMatchObject({ kind: 'ABORTED', reason: 'CONCURRENT_CHANGE' });
    expect(attempts).toBe(6);
  });

  it('compares names by code point without padding or case folding', async () => {
    const [database] = await open(1);
    await database!.migrate(silent);
    const names = ['a', 'a ', 'A', 'b', 'é', 'Z', '😀'];
    await database!.knex('images').insert(
      names.map((name, index) => ({
        id: `00000000-0000-4000-8000-00000000000${index}`,
        name,
        status: 'queued',
        visibility: 'private',
        owner: 'p',
        create_time: 1,
        update_time: 1,
      })),
    );
    const equalToA = await database!.knex('images').select('name').where('name', 'a');
    expect(equalToA.map((row) => row.name)).toEqual(['a']);

    const ordered = await database!.knex('images').select('name').orderBy('name');
    expect(ordered.map((row) => row.name)).toEqual(['A', 'Z', 'a', 'a ', 'b', 'é', '😀']);
  });

  it('keeps millisecond times exactly', async () => {
    const [database] = await open(1);
    await database!.migrate(silent);
    const time = 1_796_403_374_940;
    await database!.knex('images').insert({
      id: '00000000-0000-4000-8000-000000000001',
      status: 'queued',
      visibility: 'private',
      owner: 'p',
      create_time: time,
      update_time: time + 1,
    });
    const row = await database!.knex('images').first('create_time', 'update_time');
    expect(Number(row.create_time)).toBe(time);
    expect(Number(row.update_time)).toBe(time + 1);
  });
});

describe('unreachable database', () => {
  it('turns a refused connection into UNAVAILABLE', async () => {
    // Port 9 on loopback: nothing listens there on these machines.
    const database = new Database(parseDatabaseUrl('mysql://root@127.0.0.1:9/none'));
    try {
      const error = await database.read((db) => db.raw('SELECT 1')).catch((caught: unknown) => caught);
      expect(error).toBeInstanceOf(RegistryError);
      expect((error as RegistryError).kind).toBe('UNAVAILABLE');
      expect((error as RegistryError).message).toMatch(/database is unreachable/);
    } finally {
      await database.close();
    }
  });
});
