/**
 * Seeds the load benchmark's databases ahead of `npm run bench`, which
 * would otherwise seed them on first use, or drops them with --drop.
 * bench/load/seed-rows.ts describes the data.
 *
 *   npm run bench:seed -- --backend mysql --sizes 10k
 */
import { type SeedOptions, SEED_HELP, UsageError, parseSeedOptions } from './load/options.js';
import { dropSeeded, ensureSeeded, seedLocation } from './load/seed-database.js';

async function main(): Promise<number> {
  let options: SeedOptions | null;
  try {
    options = parseSeedOptions(process.argv.slice(2));
  } catch (error) {
    if (!(error instanceof UsageError) && (error as { code?: string }).code?.startsWith('ERR_PARSE_ARGS') !== true) throw error;
    console.error(`${(error as Error).message}\n\n${SEED_HELP}`);
    return 2;
  }
  if (options === null) {
    console.log(SEED_HELP);
    return 0;
  }
  for (const { backend, imageCount } of options.sizes) {
    const location = seedLocation(backend, imageCount, options);
    if (options.drop) {
      await dropSeeded(location, options);
      console.log(`${backend} ${location.label}: dropped ${location.name}`);
      continue;
    }
    await ensureSeeded(location, options, { force: options.force, log: (line) => console.log(line) });
  }
  return 0;
}

process.exitCode = await main();
