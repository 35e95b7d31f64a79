/**
 * Decides once per run whether the MySQL suite runs. It connects to
 * MYSQL_TEST_URL (default mysql://root@127.0.0.1:3306). When MySQL does not
 * answer, the suite is skipped with a printed notice, or, with
 * REQUIRE_MYSQL=1, the whole run fails.
 */
import mysql from 'mysql2/promise';
import type { TestProject } from 'vitest/node';

declare module 'vitest' {
  export interface ProvidedContext {
    /** Server URL without a database, or null when the MySQL suite is skipped. */
    mysqlServerUrl: string | null;
  }
}

export default async function setup(project: TestProject): Promise<void> {
  const url = process.env.MYSQL_TEST_URL ?? 'mysql://root@127.0.0.1:3306';
  try {
    const connection = await mysql.createConnection({ uri: url, connectTimeout: 3000 });
    await connection.query('SELECT 1');
    await connection.end();
    project.provide('mysqlServerUrl', url);
  } catch (error) {
    const reason = `MySQL at ${url.replace(/:[^:@/]*@/, ':***@')} did not answer (${(error as Error).message})`;
    if (process.env.REQUIRE_MYSQL === '1') {
      throw new Error(`${reason}, and REQUIRE_MYSQL=1 requires the MySQL suite`);
    }
    console.warn(`\nNOTICE: the MySQL suite is SKIPPED: ${reason}. Set MYSQL_TEST_URL to run it.\n`);
    project.provide('mysqlServerUrl', null);
  }
}
