/**
 * Schema migrations, loaded from code so that they run the same from tsc
 * output, tsx and vitest. Times are epoch milliseconds in BIGINT columns on
 * both databases; text compares by code point on both.
 */
import type { Knex } from 'knex';

interface Migration {
  up(knex: Knex): Promise<void>;
  down(knex: Knex): Promise<void>;
}

/**
 * MariaDB's utf8mb4_nopad_bin and MySQL 8's utf8mb4_0900_bin compare by code
 * point without padding trailing spaces, as SQLite does.
 */
async function binaryCollation(knex: Knex): Promise<string> {
  const [rows] = (await knex.raw('SELECT VERSION() AS version')) as [{ version: string }[]];
  return /mariadb/i.test(rows[0]?.version ?? '') ? 'utf8mb4_nopad_bin' : 'utf8mb4_0900_bin';
}

async function tableOptions(knex: Knex): Promise<(table: Knex.CreateTableBuilder) => void> {
  if (knex.client.dialect !== 'mysql') return () => {};
  const collation = await binaryCollation(knex);
  return (table) => {
    table.engine('InnoDB');
    table.charset('utf8mb4');
    table.collate(collation);
  };
}

const createTables: Migration = {
  async up(knex) {
    const withOptions = await tableOptions(knex);

    // MySQL commits each CREATE TABLE at once, so a start killed halfway can
    // leave some tables behind without recording the migration. No instance
    // writes before this migration is recorded, so such tables are empty
    // and are made again.
    for (const table of ['image_members', 'image_properties', 'image_tags', 'images']) {
      await knex.schema.dropTableIfExists(table);
    }

    await knex.schema.createTable('images', (table) => {
      withOptions(table);
      table.string('id', 36).primary();
      table.string('name', 255).notNullable().defaultTo('');
      table.string('status', 16).notNullable();
      table.string('visibility', 16).notNullable();
      table.boolean('protected').notNullable().defaultTo(false);
      table.boolean('hidden').notNullable().defaultTo(false);
      table.string('owner', 255).notNullable();
      table.string('container_format', 16).notNullable().defaultTo('');
      table.string('disk_format', 16).notNullable().defaultTo('');
      table.integer('min_disk').notNullable().defaultTo(0);
      table.integer('min_ram').notNullable().defaultTo(0);
      table.bigInteger('size').nullable();
      table.bigInteger('virtual_size').nullable();
      table.string('checksum', 32).notNullable().defaultTo('');
      table.string('hash_algo', 16).notNullable().defaultTo('');
      table.string('hash_value', 128).notNullable().defaultTo('');
      // UTF-8 bytes of the tags and properties, so that a listing can cut a
      // page to a response size before loading them.
      table.integer('metadata_bytes').notNullable().defaultTo(0);
      // While SAVING: epoch milliseconds until which the uploading process
      // keeps the image. A later upload may take over an expired one.
      table.bigInteger('upload_expires_at').nullable();
      table.bigInteger('create_time').notNullable();
      table.bigInteger('update_time').notNullable();
      // The listing's default order within one visibility or one owner.
      table.index(['visibility', 'create_time', 'id'], 'images_visibility_created');
      table.index(['owner', 'create_time', 'id'], 'images_owner_created');
      table.index(['create_time', 'id'], 'images_created');
    });

    await knex.schema.createTable('image_tags', (table) => {
      withOptions(table);
      table.string('image_id', 36).notNullable().references('id').inTable('images').onDelete('CASCADE');
      table.string('tag', 255).notNullable();
      table.primary(['image_id', 'tag']);
      table.index(['tag', 'image_id'], 'image_tags_tag');
    });

    await knex.schema.createTable('image_properties', (table) => {
      withOptions(table);
      table.string('image_id', 36).notNullable().references('id').inTable('images').onDelete('CASCADE');
      table.string('name', 255).notNullable();
      // TEXT stores up to 65,535 bytes on MySQL, the limit of a property value.
      table.text('value').notNullable();
      table.primary(['image_id', 'name']);
    });

    await knex.schema.createTable('image_members', (table) => {
      withOptions(table);
      table.string('image_id', 36).notNullable().references('id').inTable('images').onDelete('CASCADE');
      table.string('member_id', 255).notNullable();
      table.string('status', 16).notNullable();
      table.bigInteger('create_time').notNullable();
      table.bigInteger('update_time').notNullable();
      // One row per project and image: duplicate members are impossible.
      table.primary(['image_id', 'member_id']);
      // "Shared with me" lookups filter on the member project and status.
      table.index(['member_id', 'status', 'image_id'], 'image_members_member_status');
    });
  },

  async down(knex) {
    await knex.schema.dropTable('image_members');
    await knex.schema.dropTable('image_properties');
    await knex.schema.dropTable('image_tags');
    await knex.schema.dropTable('images');
  },
};

async function hasIndex(knex: Knex, table: string, index: string): Promise<boolean> {
  const found =
    knex.client.dialect === 'mysql'
      ? await knex('information_schema.STATISTICS')
          .first('INDEX_NAME')
          .whereRaw('TABLE_SCHEMA = DATABASE()')
          .where({ TABLE_NAME: table, INDEX_NAME: index })
      : await knex('sqlite_master').first('name').where({ type: 'index', tbl_name: table, name: index });
  return found !== undefined;
}

/**
 * Copies each image's create_time into its member rows and indexes them by
 * project, status and that time, so that a project's "shared with me"
 * images come from one index in the default listing order. Also indexes
 * images by visibility and owner, for listings filtered on both. An
 * image's create_time never changes.
 */
const addListingKeys: Migration = {
  async up(knex) {
    // MySQL commits each ALTER at once, so a start killed halfway leaves
    // some of the steps done; each step checks first.
    if (!(await knex.schema.hasColumn('image_members', 'image_create_time'))) {
      await knex.schema.alterTable('image_members', (table) => {
        table.bigInteger('image_create_time').notNullable().defaultTo(0);
      });
    }
    await knex('image_members').update({
      image_create_time: knex('images').select('create_time').where('images.id', knex.ref('image_members.image_id')),
    });
    if (!(await hasIndex(knex, 'image_members', 'image_members_member_status_created'))) {
      await knex.schema.alterTable('image_members', (table) => {
        table.index(['member_id', 'status', 'image_create_time', 'image_id'], 'image_members_member_status_created');
      });
    }
    // Replaced by the index above, which starts with the same columns.
    if (await hasIndex(knex, 'image_members', 'image_members_member_status')) {
      await knex.schema.alterTable('image_members', (table) => table.dropIndex([], 'image_members_member_status'));
    }
    if (!(await hasIndex(knex, 'images', 'images_visibility_owner_created'))) {
      await knex.schema.alterTable('images', (table) => {
        table.index(['visibility', 'owner', 'create_time', 'id'], 'images_visibility_owner_created');
      });
    }
  },

  async down(knex) {
    await knex.schema.alterTable('images', (table) => table.dropIndex([], 'images_visibility_owner_created'));
    await knex.schema.alterTable('image_members', (table) => {
      table.index(['member_id', 'status', 'image_id'], 'image_members_member_status');
      table.dropIndex([], 'image_members_member_status_created');
      table.dropColumn('image_create_time');
    });
  },
};

const MIGRATIONS: Record<string, Migration> = {
  '0001_create_tables': createTables,
  '0002_add_listing_keys': addListingKeys,
};

/** A Knex migration source that serves the migrations above, in name order. */
export const migrationSource: Knex.MigrationSource<string> = {
  getMigrations: async () => Object.keys(MIGRATIONS).sort(),
  getMigrationName: (name) => name,
  getMigration: async (name) => MIGRATIONS[name]!,
};
