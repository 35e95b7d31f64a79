/** Facts about the machine and the measured code, recorded with every result. */
import { execFileSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { availableParallelism, release, totalmem } from 'node:os';
import { join } from 'node:path';

const MIB = 1024 * 1024;

export function machineFacts(repositoryRoot: string): Record<string, unknown> {
  const cpuinfo = readFileSync('/proc/cpuinfo', 'utf8');
  const grpcPackage = JSON.parse(readFileSync(join(repositoryRoot, 'node_modules/@grpc/grpc-js/package.json'), 'utf8')) as {
    version: string;
  };
  return {
    nproc: availableParallelism(),
    cpuModel: /^model name\s*:\s*(.*)$/m.exec(cpuinfo)?.[1] ?? 'unknown',
    memoryMiB: Math.round(totalmem() / MIB),
    kernel: release(),
    nodeVersion: process.version,
    grpcJsVersion: grpcPackage.version,
  };
}

/**
 * Returns the commit of the measured code, and the paths under src, gen and
 * proto that differ from it, or null when git cannot tell.
 */
export function sourceRevision(repositoryRoot: string): { commit: string; uncommittedChanges: string[] } | null {
  try {
    const git = (...args: string[]) => execFileSync('git', args, { cwd: repositoryRoot, encoding: 'utf8' }).trim();
    const changes = git('status', '--porcelain', '--', 'src', 'gen', 'proto');
    return { commit: git('rev-parse', 'HEAD'), uncommittedChanges: changes === '' ? [] : changes.split('\n') };
  } catch {
    return null;
  }
}

/** Returns the version string of the MySQL or MariaDB server at `url`, or null when it cannot be reached. */
export async function databaseServerVersion(url: string): Promise<string | null> {
  const mysql = await import('mysql2/promise');
  try {
    const connection = await mysql.createConnection({ uri: url, connectTimeout: 5000 });
    try {
      const [rows] = await connection.query('SELECT VERSION() AS version');
      return (rows as { version: string }[])[0]?.version ?? null;
    } finally {
      await connection.end();
    }
  } catch {
    return null;
  }
}
