/**
 * Draws the p99 latency of the default listing (scenarios list-first and
 * list-deep) against the number of images, from the JSON files that
 * `npm run bench` writes, as a hand-written SVG: one line per backend and
 * scenario, on a logarithmic size axis. Each point comes from the newest
 * file that measured it, so sizes may come from different runs, and the
 * chart names the runs it used.
 *
 *   npm run bench:chart                                   # every bench/results/load-*.json
 *   npm run bench:chart -- --out docs/listing-p99.svg bench/results/load-A.json bench/results/load-B.json
 */
import { readFileSync, readdirSync, writeFileSync } from 'node:fs';
import { join, relative, resolve } from 'node:path';
import { parseArgs } from 'node:util';

const REPOSITORY_ROOT = resolve(import.meta.dirname, '..');
const RESULTS_FOLDER = join(REPOSITORY_ROOT, 'bench', 'results');
const SCENARIOS = ['list-first', 'list-deep'] as const;
/** The goal: listing p99 at the largest size within this factor of the smallest size's. */
const GOAL_RATIO = 1.5;

const HELP = `Usage: npm run bench:chart -- [--out FILE] [RESULT.json ...]

Draws listing p99 against table size as SVG from load benchmark results
(default: every bench/results/load-*.json). Each point is taken from the
newest file that has it.

  --out FILE   where to write the SVG (default bench/results/listing-p99.svg)
  --help       print this text
`;

/** The parts of a results file that the chart reads. */
interface ResultFile {
  startedAt: string;
  options: { inFlight: number };
  sizes: {
    backend: string;
    imageCount: number;
    label: string;
    scenarios: { scenario: string; detail: string; latencyMs: { p99: number } | null }[];
  }[];
}

interface Point {
  backend: string;
  scenario: string;
  imageCount: number;
  label: string;
  p99: number;
  detail: string;
  startedAt: string;
  inFlight: number;
}

const WIDTH = 760;
const HEIGHT = 460;
const MARGIN = { left: 70, right: 190, top: 60, bottom: 70 };
const COLORS: Record<string, string> = { mysql: '#1f77b4', sqlite: '#d62728' };
const DASHES: Record<string, string> = { 'list-first': '', 'list-deep': '6 4' };

function escapeXml(text: string): string {
  return text.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;').replace(/"/g, '&quot;');
}

/** Returns the newest point per backend, scenario and size. */
function collectPoints(files: string[]): Point[] {
  const newest = new Map<string, Point>();
  for (const file of files) {
    const result = JSON.parse(readFileSync(file, 'utf8')) as ResultFile;
    for (const size of result.sizes ?? []) {
      for (const row of size.scenarios) {
        if (!(SCENARIOS as readonly string[]).includes(row.scenario) || row.latencyMs === null) continue;
        const point: Point = {
          backend: size.backend,
          scenario: row.scenario,
          imageCount: size.imageCount,
          label: size.label,
          p99: row.latencyMs.p99,
          detail: row.detail,
          startedAt: result.startedAt,
          inFlight: result.options.inFlight,
        };
        const key = `${point.backend} ${point.scenario} ${point.imageCount}`;
        const known = newest.get(key);
        if (known === undefined || known.startedAt < point.startedAt) newest.set(key, point);
      }
    }
  }
  return [...newest.values()];
}

/** Returns about `count` round tick values from 0 to at least `max`. */
function linearTicks(max: number, count: number): number[] {
  const rough = max / count;
  const magnitude = 10 ** Math.floor(Math.log10(rough));
  const step = [1, 2, 2.5, 5, 10].map((factor) => factor * magnitude).find((candidate) => candidate >= rough)!;
  const ticks: number[] = [];
  for (let value = 0; value < max + step; value += step) ticks.push(value);
  return ticks;
}

function drawChart(points: Point[], sources: string[]): string {
  const plotWidth = WIDTH - MARGIN.left - MARGIN.right;
  const plotHeight = HEIGHT - MARGIN.top - MARGIN.bottom;
  const sizes = [...new Set(points.map((point) => point.imageCount))].sort((a, b) => a - b);
  const logMin = Math.log10(sizes[0]!) - 0.25;
  const logMax = Math.log10(sizes[sizes.length - 1]!) + 0.25;
  const smallestP99 = (backend: string, scenario: string) =>
    points.filter((point) => point.backend === backend && point.scenario === scenario).sort((a, b) => a.imageCount - b.imageCount)[0]!.p99;
  const sizesOf = (backend: string, scenario: string) =>
    points.filter((point) => point.backend === backend && point.scenario === scenario).length;
  // Only series with more than one size get a goal line, so only they widen the axis for it.
  const goalMax = Math.max(
    0,
    ...points
      .filter((point) => sizesOf(point.backend, point.scenario) > 1)
      .map((point) => GOAL_RATIO * smallestP99(point.backend, point.scenario)),
  );
  const yTicks = linearTicks(Math.max(goalMax, ...points.map((point) => point.p99)) * 1.05, 5);
  const yMax = yTicks[yTicks.length - 1]!;
  const x = (imageCount: number) => MARGIN.left + ((Math.log10(imageCount) - logMin) / (logMax - logMin)) * plotWidth;
  const y = (p99: number) => MARGIN.top + plotHeight - (p99 / yMax) * plotHeight;

  const parts: string[] = [
    `<svg xmlns="http://www.w3.org/2000/svg" width="${WIDTH}" height="${HEIGHT}" viewBox="0 0 ${WIDTH} ${HEIGHT}" font-family="sans-serif" font-size="12">`,
    `<rect width="${WIDTH}" height="${HEIGHT}" fill="white"/>`,
    `<text x="${MARGIN.left}" y="24" font-size="15" font-weight="bold">ListImages default listing: p99 latency against images in the table</text>`,
    `<text x="${MARGIN.left}" y="42" fill="#555">${escapeXml(`newest result per point; ${[...new Set(points.map((point) => point.inFlight))].join(' or ')} calls in flight`)}</text>`,
  ];
  for (const tick of yTicks) {
    parts.push(
      `<line x1="${MARGIN.left}" x2="${MARGIN.left + plotWidth}" y1="${y(tick)}" y2="${y(tick)}" stroke="#ddd"/>`,
      `<text x="${MARGIN.left - 8}" y="${y(tick) + 4}" text-anchor="end">${tick}</text>`,
    );
  }
  for (const size of sizes) {
    const label = points.find((point) => point.imageCount === size)!.label;
    parts.push(
      `<line x1="${x(size)}" x2="${x(size)}" y1="${MARGIN.top}" y2="${MARGIN.top + plotHeight}" stroke="#eee"/>`,
      `<text x="${x(size)}" y="${MARGIN.top + plotHeight + 18}" text-anchor="middle">${escapeXml(label.replace(/m$/, 'M'))}</text>`,
    );
  }
  parts.push(
    `<line x1="${MARGIN.left}" x2="${MARGIN.left + plotWidth}" y1="${MARGIN.top + plotHeight}" y2="${MARGIN.top + plotHeight}" stroke="black"/>`,
    `<line x1="${MARGIN.left}" x2="${MARGIN.left}" y1="${MARGIN.top}" y2="${MARGIN.top + plotHeight}" stroke="black"/>`,
    `<text x="${MARGIN.left + plotWidth / 2}" y="${MARGIN.top + plotHeight + 40}" text-anchor="middle">images in the table (logarithmic)</text>`,
    `<text transform="translate(20 ${MARGIN.top + plotHeight / 2}) rotate(-90)" text-anchor="middle">p99 latency, ms</text>`,
  );

  const series = [...new Set(points.map((point) => `${point.backend} ${point.scenario}`))].sort();
  series.forEach((name, index) => {
    const ofSeries = points.filter((point) => `${point.backend} ${point.scenario}` === name).sort((a, b) => a.imageCount - b.imageCount);
    const { backend, scenario } = ofSeries[0]!;
    const color = COLORS[backend] ?? '#333';
    const dash = DASHES[scenario] ?? '';
    const path = ofSeries.map((point) => `${x(point.imageCount).toFixed(1)},${y(point.p99).toFixed(1)}`).join(' ');
    parts.push(`<polyline points="${path}" fill="none" stroke="${color}" stroke-width="2"${dash === '' ? '' : ` stroke-dasharray="${dash}"`}/>`);
    if (ofSeries.length > 1) {
      const goal = y(GOAL_RATIO * ofSeries[0]!.p99);
      const from = x(ofSeries[0]!.imageCount);
      const to = x(ofSeries[ofSeries.length - 1]!.imageCount);
      parts.push(`<line x1="${from}" x2="${to}" y1="${goal}" y2="${goal}" stroke="${color}" stroke-opacity="0.4" stroke-dasharray="1 3"/>`);
    }
    for (const point of ofSeries) {
      parts.push(
        `<circle cx="${x(point.imageCount)}" cy="${y(point.p99)}" r="4" fill="${color}"><title>${escapeXml(
          `${name}, ${point.label}: p99 ${point.p99.toFixed(2)} ms (${point.detail}), run of ${point.startedAt}`,
        )}</title></circle>`,
        `<text x="${x(point.imageCount) + 6}" y="${y(point.p99) - 6}" fill="${color}">${point.p99.toFixed(1)}</text>`,
      );
    }
    const legendY = MARGIN.top + 10 + index * 20;
    const legendX = MARGIN.left + plotWidth + 20;
    parts.push(
      `<line x1="${legendX}" x2="${legendX + 30}" y1="${legendY}" y2="${legendY}" stroke="${color}" stroke-width="2"${dash === '' ? '' : ` stroke-dasharray="${dash}"`}/>`,
      `<text x="${legendX + 36}" y="${legendY + 4}">${escapeXml(name)}</text>`,
    );
  });
  const noteY = MARGIN.top + 10 + series.length * 20 + 10;
  parts.push(
    `<text x="${MARGIN.left + plotWidth + 20}" y="${noteY}" fill="#555" font-size="11">dotted: ${GOAL_RATIO} × the p99 at the</text>`,
    `<text x="${MARGIN.left + plotWidth + 20}" y="${noteY + 14}" fill="#555" font-size="11">smallest size, the goal's limit</text>`,
  );
  const sourceY = HEIGHT - 12;
  parts.push(`<text x="${MARGIN.left}" y="${sourceY}" fill="#555" font-size="10">${escapeXml(`from ${sources.join(', ')}`)}</text>`, '</svg>');
  return `${parts.join('\n')}\n`;
}

function main(): number {
  const { values, positionals } = parseArgs({
    options: { out: { type: 'string' }, help: { type: 'boolean' } },
    allowPositionals: true,
  });
  if (values.help) {
    console.log(HELP);
    return 0;
  }
  const files =
    positionals.length > 0
      ? positionals.map((file) => resolve(file))
      : readdirSync(RESULTS_FOLDER)
          .filter((name) => /^load-.*\.json$/.test(name))
          .map((name) => join(RESULTS_FOLDER, name));
  const points = collectPoints(files);
  if (points.length === 0) {
    console.error(`no list-first or list-deep results in ${files.length} files; run npm run bench first\n\n${HELP}`);
    return 1;
  }
  const used = [...new Set(points.map((point) => point.startedAt))].sort();
  const out = resolve(values.out ?? join(RESULTS_FOLDER, 'listing-p99.svg'));
  writeFileSync(out, drawChart(points, used.map((startedAt) => `run of ${startedAt}`)));
  for (const point of points.sort((a, b) => a.backend.localeCompare(b.backend) || a.scenario.localeCompare(b.scenario) || a.imageCount - b.imageCount)) {
    console.log(`${point.backend} ${point.scenario} ${point.label}: p99 ${point.p99.toFixed(2)} ms (run of ${point.startedAt})`);
  }
  console.log(`chart: ${relative(process.cwd(), out)}`);
  return 0;
}

process.exitCode = main();
