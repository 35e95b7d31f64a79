/**
 * The load benchmark's records and their Markdown tables: one per backend
 * and size, the bare server's runs, and the goal checks.
 */
import type { LoadResult } from './generator.js';
import type { ScenarioName } from './options.js';
import type { Backend, SeedMarker } from './seed-database.js';

/** Goals of the load benchmark; docs/benchmarks.md gives their reasons. */
export const GOALS = {
  /** GetImage on MySQL: at least this share of the bare server's calls per second. */
  getImageMinRatio: 0.6,
  /** Listing p99 at the largest size over the same at the smallest size, at most. */
  listingSizeMaxRatio: 1.5,
  /** list-deep p99 over list-first p99 at one size, at most. */
  deepOverFirstMaxRatio: 1.5,
  /** Server peak RSS under the mixed workload, below this. */
  mixedMaxRssMiB: 200,
};

export interface Ratios {
  callsPerSecond: number;
  p50: number | null;
  p99: number | null;
}

export interface ScenarioRecord extends LoadResult {
  scenario: ScenarioName;
  /** Context for reading the row, such as the depth of the deep page. */
  detail: string;
  /** This scenario over the bare server's mean. */
  ratioToBare: Ratios | null;
}

export interface SizeRecord {
  backend: Backend;
  imageCount: number;
  label: string;
  database: string;
  seed: { reused: boolean; marker: SeedMarker };
  deepPage: { depth: number; shortened: boolean } | null;
  sampledTargets: { readers: number; ownedShared: number; forUpdateMember: number };
  scenarios: ScenarioRecord[];
  /** Warnings and errors the registry logged, and its stderr. */
  serverProblems: string[];
}

export interface BareRecord {
  when: 'before' | 'after';
  result: LoadResult;
}

function fixed(value: number | null | undefined, digits = 1): string {
  return value === null || value === undefined ? 'n/a' : value.toFixed(digits);
}

function markdownTable(headers: string[], rows: string[][]): string {
  return [headers, headers.map(() => '---'), ...rows].map((cells) => `| ${cells.join(' | ')} |`).join('\n');
}

function errorCount(result: LoadResult): number {
  return Object.values(result.errors).reduce((sum, count) => sum + count, 0);
}

/** Returns the mean of the bare server's runs, which the ratios divide by. */
export function bareReference(bare: BareRecord[]): { callsPerSecond: number; p50: number | null; p99: number | null } | null {
  if (bare.length === 0) return null;
  const mean = (values: (number | null)[]) => {
    const known = values.filter((value): value is number => value !== null);
    return known.length === 0 ? null : known.reduce((sum, value) => sum + value, 0) / known.length;
  };
  return {
    callsPerSecond: mean(bare.map((run) => run.result.callsPerSecond))!,
    p50: mean(bare.map((run) => run.result.latencyMs?.p50 ?? null)),
    p99: mean(bare.map((run) => run.result.latencyMs?.p99 ?? null)),
  };
}

export function ratiosTo(result: LoadResult, reference: ReturnType<typeof bareReference>): Ratios | null {
  if (reference === null) return null;
  const divide = (value: number | undefined, by: number | null) => (value === undefined || by === null || by === 0 ? null : value / by);
  return {
    callsPerSecond: result.callsPerSecond / reference.callsPerSecond,
    p50: divide(result.latencyMs?.p50, reference.p50),
    p99: divide(result.latencyMs?.p99, reference.p99),
  };
}

function cpuCells(result: LoadResult): string[] {
  return [
    fixed(result.cores.server, 2),
    fixed(result.cores.client, 2),
    fixed(result.cores.database, 2),
    fixed(result.cores.others, 2),
    fixed(result.rssMiB.peak),
  ];
}

export function formatBare(bare: BareRecord[]): string {
  const table = markdownTable(
    ['bare run', 'calls/s', 'p50 ms', 'p90 ms', 'p99 ms', 'errors', 'server cores', 'client cores', 'DB cores', 'other cores', 'peak RSS MiB'],
    bare.map(({ when, result }) => [
      when,
      fixed(result.callsPerSecond, 0),
      fixed(result.latencyMs?.p50, 2),
      fixed(result.latencyMs?.p90, 2),
      fixed(result.latencyMs?.p99, 2),
      String(errorCount(result)),
      ...cpuCells(result),
    ]),
  );
  const clientBound = bare.some(({ result }) => result.cores.client >= result.cores.server);
  const note = clientBound
    ? '\nThe client used more CPU than the bare server: on this machine the generator, not grpc-js on the server, limits the bare rate, so ratios to it are upper bounds.'
    : '';
  return `Bare grpc-js server, empty unary handler:\n\n${table}${note}`;
}

export function formatSize(record: SizeRecord): string {
  const seed = record.seed.reused ? `reused, seeded ${record.seed.marker.seededAt}` : `seeded in ${record.seed.marker.seconds.total} s`;
  const heading = `${record.backend}, ${record.imageCount.toLocaleString('en-US')} images (${record.database}, ${seed}):`;
  const table = markdownTable(
    [
      'scenario',
      'calls/s',
      '× bare',
      'p50 ms',
      'p90 ms',
      'p99 ms',
      'p99 × bare',
      'errors',
      'server cores',
      'client cores',
      'DB cores',
      'other cores',
      'peak RSS MiB',
    ],
    record.scenarios.map((row) => [
      row.detail === '' ? row.scenario : `${row.scenario} (${row.detail})`,
      fixed(row.callsPerSecond, 0),
      fixed(row.ratioToBare?.callsPerSecond, 2),
      fixed(row.latencyMs?.p50, 2),
      fixed(row.latencyMs?.p90, 2),
      fixed(row.latencyMs?.p99, 2),
      fixed(row.ratioToBare?.p99, 1),
      String(errorCount(row)),
      ...cpuCells(row),
    ]),
  );
  const parts = [heading, '', table];
  for (const row of record.scenarios) {
    if (row.operations.length > 0) {
      parts.push(
        '',
        `${row.scenario}, per operation:`,
        '',
        markdownTable(
          ['operation', 'calls/s', 'p50 ms', 'p99 ms'],
          row.operations.map((operation) => [
            operation.label,
            fixed(operation.callsPerSecond, 0),
            fixed(operation.latencyMs?.p50, 2),
            fixed(operation.latencyMs?.p99, 2),
          ]),
        ),
      );
    }
    const problems = [
      ...Object.entries(row.warmupErrors).map(([key, count]) => `${count} failed during the warm-up: ${key}`),
      ...row.errorSamples.map((sample) => `error: ${sample}`),
      ...row.checkFailures.map((failure) => `wrong response during the warm-up: ${failure}`),
    ];
    if (problems.length > 0) parts.push('', `${row.scenario}:`, ...problems.map((line) => `  ${line}`));
  }
  if (record.serverProblems.length > 0) {
    parts.push('', 'The registry logged these warnings or errors (last 10):', ...record.serverProblems.slice(-10).map((line) => `  ${line}`));
  }
  return parts.join('\n');
}

/** Share of one core that other processes may use before the report warns that the machine was not quiet. */
const QUIET_OTHER_CORES = 0.2;

/** Returns a warning when processes outside the benchmark used the CPU during some window, or ''. */
export function formatQuietness(bare: BareRecord[], sizes: SizeRecord[]): string {
  const results = [...bare.map((run) => run.result), ...sizes.flatMap((size) => size.scenarios)];
  const busiest = Math.max(0, ...results.map((result) => result.cores.others));
  if (busiest <= QUIET_OTHER_CORES) return '';
  return (
    `Warning: other processes used up to ${busiest.toFixed(2)} cores during the measured windows (column "other cores"), ` +
    'so these figures are lower and noisier than on a quiet machine.'
  );
}

export interface GoalCheck {
  goal: string;
  value: number | null;
  limit: number;
  /** True when the value must not exceed the limit, false when it must reach it. */
  atMost: boolean;
  /** Null when the run has no figure for it, such as a scenario without successful calls. */
  met: boolean | null;
}

function find(record: SizeRecord | undefined, scenario: ScenarioName): ScenarioRecord | undefined {
  return record?.scenarios.find((row) => row.scenario === scenario);
}

/** Checks each goal that this run has the figures for. */
export function checkGoals(sizes: SizeRecord[]): GoalCheck[] {
  const checks: GoalCheck[] = [];
  const add = (goal: string, value: number | null | undefined, limit: number, atMost: boolean) => {
    const known = value ?? null;
    let met: boolean | null = null;
    if (known !== null) met = atMost ? known <= limit : known >= limit;
    checks.push({ goal, value: known, limit, atMost, met });
  };
  for (const record of sizes) {
    const where = `${record.backend} ${record.label}`;
    const getImage = find(record, 'get-image');
    if (record.backend === 'mysql' && getImage !== undefined) {
      add(`${where}: get-image calls/s over bare`, getImage.ratioToBare?.callsPerSecond, GOALS.getImageMinRatio, false);
    }
    const first = find(record, 'list-first');
    const deep = find(record, 'list-deep');
    if (first?.latencyMs && deep?.latencyMs) {
      add(`${where}: list-deep p99 over list-first p99`, deep.latencyMs.p99 / first.latencyMs.p99, GOALS.deepOverFirstMaxRatio, true);
    }
    const mixed = find(record, 'mixed');
    if (mixed !== undefined) add(`${where}: mixed, server peak RSS MiB`, mixed.rssMiB.peak, GOALS.mixedMaxRssMiB, true);
  }
  for (const backend of new Set(sizes.map((record) => record.backend))) {
    const ofBackend = sizes.filter((record) => record.backend === backend).sort((a, b) => a.imageCount - b.imageCount);
    if (ofBackend.length < 2) continue;
    const smallest = ofBackend[0]!;
    const largest = ofBackend[ofBackend.length - 1]!;
    for (const scenario of ['list-first', 'list-deep'] as const) {
      const small = find(smallest, scenario)?.latencyMs?.p99;
      const large = find(largest, scenario)?.latencyMs?.p99;
      if (small === undefined || large === undefined) continue;
      add(`${backend}: ${scenario} p99 at ${largest.label} over ${smallest.label}`, large / small, GOALS.listingSizeMaxRatio, true);
    }
  }
  return checks;
}

export function formatGoals(checks: GoalCheck[]): string {
  if (checks.length === 0) return 'No goal can be checked with the scenarios and sizes of this run.';
  return checks
    .map((check) => {
      let verdict = 'no figure';
      if (check.met !== null) verdict = check.met ? 'met' : 'MISSED';
      return `${check.goal}: ${fixed(check.value, 2)}, goal ${check.atMost ? 'at most' : 'at least'} ${check.limit}: ${verdict}`;
    })
    .join('\n');
}
