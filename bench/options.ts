/** Command-line options of bench/image-data.ts, each with an environment variable as fallback. */
import { tmpdir } from 'node:os';
import { parseArgs } from 'node:util';

/** The registry's receive limit is 16 MiB per message, and a chunk message adds a few bytes of protobuf framing. */
const MAX_CHUNK_KIB = 16 * 1024 - 1;
const MAX_RUNS = 20;

/** The options `npm start` gives node, so that the benchmark measures the server as it ships. */
const DEFAULT_SERVER_NODE_OPTIONS = '--initial-old-space-size=64';

export const HELP = `Usage: npm run bench:data -- [options]

Uploads and downloads one generated image through the registry's
ImageService and through a bare grpc-js byte stream, and compares the
throughput and the servers' RSS. Each option can also be set with the
environment variable in brackets.

  --size-mib N           image size in MiB (BENCH_SIZE_MIB, default 1024)
  --chunk-kib N          upload chunk size in KiB, 1 to ${MAX_CHUNK_KIB} (BENCH_CHUNK_KIB, default 256);
                         the registry always downloads in 256 KiB chunks
  --runs N               runs of both servers, each with fresh servers and a fresh database;
                         the table gives medians (BENCH_RUNS, 1 to ${MAX_RUNS}, default 3)
  --database NAME        sqlite or mysql (BENCH_DATABASE, default sqlite)
  --mysql-url URL        MySQL server for --database mysql; a database bench_<random> is
                         created there and dropped at the end
                         (BENCH_MYSQL_URL, default mysql://root@127.0.0.1:3306)
  --temp-dir PATH        parent folder of the run's SQLite file and image store
                         (BENCH_TEMP_DIR, default the system's temporary folder)
  --timeout-s N          time limit of each transfer in seconds (BENCH_TIMEOUT_S, default 900)
  --sample-ms N          interval between RSS readings in milliseconds (BENCH_SAMPLE_MS, default 50)
  --settle-ms N          quiet time before the upload whose readings give the baseline RSS,
                         in milliseconds (BENCH_SETTLE_MS, default 1000)
  --client-window-kib N  HTTP/2 receive window of both clients in KiB, the grpc-js option
                         grpc-node.flow_control_window (BENCH_CLIENT_WINDOW_KIB, default
                         unset: Node's 64 KiB - 1 byte); changes the download direction only
  --server-node-options TEXT
                         node options for both servers, separated by spaces
                         (BENCH_SERVER_NODE_OPTIONS, default the ones npm start uses:
                         --initial-old-space-size=64)
  --cpu-prof             run both servers with node --cpu-prof, writing the profiles to
                         bench/results/cpu-profiles-<timestamp>/ (BENCH_CPU_PROF=1)
  --help                 print this text
`;

export interface Options {
  sizeMiB: number;
  chunkKiB: number;
  runs: number;
  database: 'sqlite' | 'mysql';
  mysqlUrl: string;
  tempDir: string;
  timeoutS: number;
  sampleMs: number;
  settleMs: number;
  clientWindowKiB: number | null;
  /** Extra node command-line options for both server processes. */
  serverNodeOptions: string[];
  cpuProf: boolean;
}

export class UsageError extends Error {}

function parseWholeNumber(option: string, text: string, min: number, max: number): number {
  const value = Number(text);
  if (!/^\d+$/.test(text) || value < min || value > max) {
    throw new UsageError(`--${option}: expected a whole number from ${min} to ${max}, got ${JSON.stringify(text)}`);
  }
  return value;
}

/** Parses the options, or returns null for --help. Throws UsageError or a parseArgs error on a bad option. */
export function parseOptions(argv: string[]): Options | null {
  const { values } = parseArgs({
    args: argv,
    options: {
      'size-mib': { type: 'string' },
      'chunk-kib': { type: 'string' },
      runs: { type: 'string' },
      database: { type: 'string' },
      'mysql-url': { type: 'string' },
      'temp-dir': { type: 'string' },
      'timeout-s': { type: 'string' },
      'sample-ms': { type: 'string' },
      'settle-ms': { type: 'string' },
      'client-window-kib': { type: 'string' },
      'server-node-options': { type: 'string' },
      'cpu-prof': { type: 'boolean' },
      help: { type: 'boolean' },
    },
    strict: true,
  });
  if (values.help) return null;
  const env = process.env;
  const database = values.database ?? env.BENCH_DATABASE ?? 'sqlite';
  if (database !== 'sqlite' && database !== 'mysql') {
    throw new UsageError(`--database: expected sqlite or mysql, got ${JSON.stringify(database)}`);
  }
  const mysqlUrl = (values['mysql-url'] ?? env.BENCH_MYSQL_URL ?? 'mysql://root@127.0.0.1:3306').replace(/\/+$/, '');
  if (!mysqlUrl.startsWith('mysql://')) throw new UsageError(`--mysql-url: expected mysql://user@host:port, got ${JSON.stringify(mysqlUrl)}`);
  const window = values['client-window-kib'] ?? env.BENCH_CLIENT_WINDOW_KIB;
  return {
    sizeMiB: parseWholeNumber('size-mib', values['size-mib'] ?? env.BENCH_SIZE_MIB ?? '1024', 1, 1024 * 1024),
    chunkKiB: parseWholeNumber('chunk-kib', values['chunk-kib'] ?? env.BENCH_CHUNK_KIB ?? '256', 1, MAX_CHUNK_KIB),
    runs: parseWholeNumber('runs', values.runs ?? env.BENCH_RUNS ?? '3', 1, MAX_RUNS),
    database,
    mysqlUrl,
    tempDir: values['temp-dir'] ?? env.BENCH_TEMP_DIR ?? tmpdir(),
    timeoutS: parseWholeNumber('timeout-s', values['timeout-s'] ?? env.BENCH_TIMEOUT_S ?? '900', 1, 86_400),
    sampleMs: parseWholeNumber('sample-ms', values['sample-ms'] ?? env.BENCH_SAMPLE_MS ?? '50', 1, 10_000),
    settleMs: parseWholeNumber('settle-ms', values['settle-ms'] ?? env.BENCH_SETTLE_MS ?? '1000', 100, 60_000),
    // 2^31 - 1 bytes is the largest window that HTTP/2 allows.
    clientWindowKiB: window === undefined ? null : parseWholeNumber('client-window-kib', window, 64, 2_097_151),
    serverNodeOptions: (values['server-node-options'] ?? env.BENCH_SERVER_NODE_OPTIONS ?? DEFAULT_SERVER_NODE_OPTIONS).split(' ').filter((word) => word !== ''),
    cpuProf: values['cpu-prof'] ?? env.BENCH_CPU_PROF === '1',
  };
}
