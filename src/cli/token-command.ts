/** The `token` command: mints a development token as src/cli/mint-token.ts does. */
import { existsSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { Command, Option } from 'commander';
import { validateProjectId } from '../domain/image-fields.js';
import { UsageError } from './connection.js';
import { signDevelopmentToken } from './mint-token.js';
import { parsePositiveInteger } from './option-parsers.js';

interface TokenOptions {
  project: string;
  admin?: boolean;
  role?: string;
  subject?: string;
  ttl?: number;
}

/** Returns the nearest folder above this file that has a package.json: the repository root. */
function packageRoot(): string {
  let folder = dirname(fileURLToPath(import.meta.url));
  while (!existsSync(join(folder, 'package.json'))) {
    const parent = dirname(folder);
    if (parent === folder) throw new Error(`no package.json above ${fileURLToPath(import.meta.url)}`);
    folder = parent;
  }
  return folder;
}

/**
 * Prints a token signed the way `npm run token` signs it, with the secret
 * in the repository's data folder, which a server started with `npm start`
 * there uses.
 */
async function mintToken(options: TokenOptions): Promise<void> {
  try {
    validateProjectId('--project', options.project);
  } catch (error) {
    throw new UsageError((error as Error).message);
  }
  const role = options.admin ? 'admin' : (options.role ?? 'member');
  const token = await signDevelopmentToken(
    { project: options.project, role, subject: options.subject ?? 'dev-user', ttlSeconds: options.ttl ?? 43_200 },
    join(packageRoot(), 'data'),
  );
  console.log(token);
}

export function tokenCommand(): Command {
  return new Command('token')
    .description(
      'print a development token signed with HS256 using AUTH_JWT_SECRET, or the secret in the repository\'s ' +
        'data/jwt-secret that `npm start` uses (created when missing)',
    )
    .requiredOption('--project <project>', 'project id the token acts for (the project_id claim)')
    .addOption(new Option('--admin', 'give the admin role instead of member').conflicts('role'))
    .addOption(new Option('--role <role>', 'give this one role (default: member)').choices(['reader', 'member', 'admin']))
    .option('--subject <subject>', 'the sub claim (default: "dev-user")')
    .option('--ttl <seconds>', 'seconds until the token expires (default: 43200, 12 hours)', parsePositiveInteger)
    .action(mintToken);
}
