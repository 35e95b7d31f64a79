/** CPU figures of the whole machine and of the database server, read from Linux's /proc. */
import { readFileSync, readdirSync } from 'node:fs';

/** Jiffies of all CPUs from the first line of /proc/stat: busy (everything but idle and iowait) and total. */
export interface MachineTicks {
  busy: number;
  total: number;
}

export function readMachineTicks(): MachineTicks {
  const line = readFileSync('/proc/stat', 'latin1').split('\n', 1)[0]!;
  const fields = line.trim().split(/\s+/).slice(1).map(Number);
  const total = fields.reduce((sum, value) => sum + value, 0);
  const idle = (fields[3] ?? 0) + (fields[4] ?? 0);
  return { busy: total - idle, total };
}

/** Percentage of all CPUs' time that was busy between two readings. */
export function busyPercent(before: MachineTicks, after: MachineTicks): number {
  const total = after.total - before.total;
  return total <= 0 ? 0 : (100 * (after.busy - before.busy)) / total;
}

/**
 * Returns the pid of a MariaDB or MySQL server process on this machine, or
 * null when none is visible. The benchmark reads its CPU time, which
 * includes the work of every other client of that server.
 */
export function findDatabaseServerPid(): number | null {
  for (const entry of readdirSync('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    try {
      const name = readFileSync(`/proc/${entry}/comm`, 'latin1').trim();
      if (name === 'mariadbd' || name === 'mysqld') return Number(entry);
    } catch {
      // The process ended while the folder was read.
    }
  }
  return null;
}
