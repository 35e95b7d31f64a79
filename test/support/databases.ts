/** Fresh databases for tests: a SQLite file in a temporary folder, or a new MySQL database. */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import mysql from 'mysql2/promise';
import { inject } from 'vitest';

export type BackendName = 'sqlite' | 'mysql';

export interface TestDatabase {
  url: string;
  drop(): Promise<void>;
}

/** The backends this run tests: SQLite always, MySQL when the global setup found it. */
export function testedBackends(): BackendName[] {
  return inject('mysqlServerUrl') === null ? ['sqlite'] : ['sqlite', 'mysql'];
}

export async function createTestDatabase(backend: BackendName): Promise<TestDatabase> {
  if (backend === 'sqlite') {
    const folder = mkdtempSync(join(tmpdir(), 'registry-test-'));
    return {
      url: `sqlite:${join(folder, 'registry.sqlite')}`,
      drop: async () => rmSync(folder, { recursive: true, force: true }),
    };
  }
  const serverUrl = inject('mysqlServerUrl');
  if (serverUrl === null) throw new Error('the MySQL suite is skipped in this run');
  const name = `registry_test_${process.pid}_${Math.random().toString(36).slice(2, 10)}`;
  const admin = await mysql.createConnection({ uri: serverUrl });
  await admin.query(`CREATE DATABASE \`${name}\``);
  await admin.end();
  return {
    url: `${serverUrl.replace(/\/+$/, '')}/${name}`,
    drop: async () => {
      const connection = await mysql.createConnection({ uri: serverUrl });
      await connection.query(`DROP DATABASE IF EXISTS \`${name}\``);
      await connection.end();
    },
  };
}
