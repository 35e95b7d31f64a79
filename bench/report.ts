/** Summaries of the benchmark's runs: the comparison table, the per-run details and the goal checks. */
import { type PhaseResult, type ServerRunResult, median, round } from './measure.js';

/** Goals: registry RSS growth under 64 MiB in each direction, and at least half the bare stream's throughput. */
export const RSS_GROWTH_GOAL_MIB = 64;
export const THROUGHPUT_RATIO_GOAL = 0.5;

const DIRECTIONS = ['upload', 'download'] as const;
type Direction = (typeof DIRECTIONS)[number];

/** One run: the registry and the bare server, measured one after the other. */
export interface RunPair {
  registry: ServerRunResult;
  bare: ServerRunResult;
}

/** One direction over all runs. Throughputs and ratios are medians, RSS growths the maximum. */
export interface DirectionSummary {
  direction: Direction;
  registryMiBPerSecond: number;
  bareMiBPerSecond: number;
  /** Median of the per-run ratios of registry to bare throughput. */
  ratio: number;
  ratioMin: number;
  ratioMax: number;
  registryRssGrowthMiB: number;
  bareRssGrowthMiB: number;
  rssGoalMet: boolean;
  throughputGoalMet: boolean;
}

function fixed(value: number | null, digits = 1): string {
  return value === null ? 'n/a' : value.toFixed(digits);
}

export function summarize(runs: RunPair[]): DirectionSummary[] {
  return DIRECTIONS.map((direction) => {
    const registry = runs.map((run) => run.registry[direction]);
    const bare = runs.map((run) => run.bare[direction]);
    const ratios = runs.map((run) => run.registry[direction].mibPerSecond / run.bare[direction].mibPerSecond);
    const registryRssGrowthMiB = Math.max(...registry.map((phase) => phase.rssGrowthMiB));
    const ratio = round(median(ratios), 2);
    return {
      direction,
      registryMiBPerSecond: round(median(registry.map((phase) => phase.mibPerSecond)), 1),
      bareMiBPerSecond: round(median(bare.map((phase) => phase.mibPerSecond)), 1),
      ratio,
      ratioMin: round(Math.min(...ratios), 2),
      ratioMax: round(Math.max(...ratios), 2),
      registryRssGrowthMiB,
      bareRssGrowthMiB: Math.max(...bare.map((phase) => phase.rssGrowthMiB)),
      rssGoalMet: registryRssGrowthMiB < RSS_GROWTH_GOAL_MIB,
      throughputGoalMet: ratio >= THROUGHPUT_RATIO_GOAL,
    };
  });
}

function markdownTable(headers: string[], rows: string[][]): string {
  return [headers, headers.map(() => '---'), ...rows].map((cells) => `| ${cells.join(' | ')} |`).join('\n');
}

function detailRow(run: number, server: string, direction: Direction, baselineRssMiB: number, phase: PhaseResult): string[] {
  return [
    String(run),
    server,
    direction,
    fixed(phase.mibPerSecond),
    fixed(phase.seconds, 2),
    fixed(phase.serverCpuSeconds, 2),
    fixed(phase.clientCpuSeconds, 2),
    fixed(baselineRssMiB),
    fixed(phase.sampledPeakRssMiB),
    fixed(phase.kernelPeakRssMiB),
    fixed(phase.rssGrowthMiB),
  ];
}

/** Formats the summary table, the per-run details and one line per goal, as Markdown. */
export function formatReport(runs: RunPair[], summaries: DirectionSummary[]): string {
  const summary = markdownTable(
    ['direction', 'registry MiB/s', 'bare MiB/s', 'ratio', 'registry RSS growth MiB'],
    summaries.map((row) => [
      row.direction,
      fixed(row.registryMiBPerSecond),
      fixed(row.bareMiBPerSecond),
      runs.length > 1 ? `${fixed(row.ratio, 2)} (${fixed(row.ratioMin, 2)}–${fixed(row.ratioMax, 2)})` : fixed(row.ratio, 2),
      fixed(row.registryRssGrowthMiB),
    ]),
  );
  const note =
    runs.length > 1
      ? `Medians of ${runs.length} runs, the ratio's range in brackets, and the largest RSS growth of any run.`
      : 'One run.';

  const detailRows: string[][] = [];
  runs.forEach((run, index) => {
    for (const server of ['registry', 'bare'] as const) {
      for (const direction of DIRECTIONS) {
        detailRows.push(detailRow(index + 1, server, direction, run[server].baselineRssMiB, run[server][direction]));
      }
    }
  });
  const details = markdownTable(
    ['run', 'server', 'direction', 'MiB/s', 'seconds', 'server CPU s', 'client CPU s', 'baseline RSS MiB', 'sampled peak MiB', 'VmHWM peak MiB', 'growth MiB'],
    detailRows,
  );

  const goals = summaries.flatMap((row) => [
    `${row.direction}: registry RSS growth ${fixed(row.registryRssGrowthMiB)} MiB, goal under ${RSS_GROWTH_GOAL_MIB} MiB: ${row.rssGoalMet ? 'met' : 'MISSED'}`,
    `${row.direction}: registry at ${fixed(row.ratio, 2)} of the bare throughput, goal at least ${THROUGHPUT_RATIO_GOAL}: ${row.throughputGoalMet ? 'met' : 'MISSED'}`,
  ]);
  return `${summary}\n\n${note}\n\n${details}\n\n${goals.join('\n')}`;
}
