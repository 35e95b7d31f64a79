/**
 * The image-registry command-line client. It calls ImageService and
 * MemberService with a bearer token, and prints tables or JSON.
 *
 * Exit status: 0 on success, 1 when a call or a local file operation fails,
 * 2 when the command line is invalid.
 */
import * as grpc from '@grpc/grpc-js';
import { Command, CommanderError, Option } from 'commander';
import { DEFAULT_ADDRESS, UsageError, isServiceError } from './connection.js';
import { imageCommand } from './image-command.js';
import { importGlanceCommand } from './import-glance.js';
import { memberCommand } from './member-command.js';
import { tokenCommand } from './token-command.js';

const EXIT_FAILURE = 1;
const EXIT_USAGE = 2;

function buildProgram(): Command {
  const program = new Command('image-registry')
    .description('Command-line client of the image registry: images, their data and their members.')
    .addOption(new Option('--addr <host:port>', 'server address').env('IMAGE_REGISTRY_ADDR').default(DEFAULT_ADDRESS))
    .addOption(new Option('--token <jwt>', 'bearer token sent with every call').env('IMAGE_REGISTRY_TOKEN'))
    .option('--tls', "use TLS, and verify the server against Node's default CA certificates")
    .option('--tls-ca <file>', 'use TLS, and verify the server against this PEM CA bundle')
    .option('--tls-cert <file>', 'PEM client certificate for mutual TLS; needs --tls-key')
    .option('--tls-key <file>', 'PEM private key of --tls-cert')
    .option('--json', "print protobuf's JSON mapping instead of tables")
    .addCommand(imageCommand())
    .addCommand(memberCommand())
    .addCommand(tokenCommand())
    .addCommand(importGlanceCliCommand());
  configureEveryCommand(program);
  return program;
}

/** Returns the `import-glance` command, which writes to the database directly instead of calling the server. */
function importGlanceCliCommand(): Command {
  return new Command('import-glance')
    .description(
      "import images and members from JSON files of Glance's v2 API (pages of GET /v2/images and " +
        'GET /v2/images/{id}/members) straight into the database; a second run changes nothing',
    )
    .argument('<files...>', 'JSON files to import')
    .option('--database-url <url>', 'the registry database (default: DATABASE_URL, as the service reads it)')
    .action(async (files: string[], options: { databaseUrl?: string }, command: Command) => {
      const json = (command.optsWithGlobals() as { json?: boolean }).json === true;
      process.exitCode = await importGlanceCommand(files, { databaseUrl: options.databaseUrl, json });
    });
}

/**
 * Makes every command throw on a usage error instead of exiting with
 * commander's status 1. Commands added with addCommand() do not inherit
 * these settings, so each one gets them here.
 */
function configureEveryCommand(command: Command): void {
  command.exitOverride().showHelpAfterError('(add --help for usage)').configureHelp({ showGlobalOptions: true });
  for (const subcommand of command.commands) configureEveryCommand(subcommand);
}

/** Prints an error to stderr and returns the exit status for it. */
function reportError(error: unknown): number {
  if (error instanceof CommanderError) {
    // Commander has printed the help or the error already.
    return error.exitCode === 0 ? 0 : EXIT_USAGE;
  }
  if (error instanceof UsageError) {
    process.stderr.write(`error: ${error.message}\n`);
    return EXIT_USAGE;
  }
  if (isServiceError(error)) {
    process.stderr.write(`error: ${grpc.status[error.code]}: ${error.details}\n`);
    return EXIT_FAILURE;
  }
  process.stderr.write(`error: ${error instanceof Error ? error.message : String(error)}\n`);
  return EXIT_FAILURE;
}

// A reader that closes the pipe early, such as `| head`, is not an error.
process.stdout.on('error', (error: NodeJS.ErrnoException) => {
  if (error.code === 'EPIPE') process.exit(0);
  throw error;
});

try {
  await buildProgram().parseAsync(process.argv);
} catch (error) {
  process.exitCode = reportError(error);
}
