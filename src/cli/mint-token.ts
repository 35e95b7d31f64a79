/**
 * Prints a development JWT signed with the local HS256 secret
 * (AUTH_JWT_SECRET, or the secret the server keeps in ./data/jwt-secret),
 * for grpcurl and `buf curl`:
 *
 *   npm run --silent token -- --project P [--admin | --role reader] [--ttl 3600]
 */
import { pathToFileURL } from 'node:url';
import { parseArgs } from 'node:util';
import { SignJWT } from 'jose';
import { validateProjectId } from '../domain/image-fields.js';
import { loadOrCreateSecret } from '../platform/jwt-secret.js';

const USAGE =
  'usage: npm run --silent token -- --project PROJECT [--admin | --role ROLE] [--subject SUB] [--ttl SECONDS]\n' +
  '  --project  project id the token acts for (required)\n' +
  '  --admin    give the admin role instead of member\n' +
  '  --role     give this one role: reader, member or admin (default member)\n' +
  '  --subject  the sub claim (default "dev-user")\n' +
  '  --ttl      seconds until the token expires (default 43200, 12 hours)';

async function main(): Promise<void> {
  let values;
  try {
    ({ values } = parseArgs({
      options: {
        project: { type: 'string' },
        admin: { type: 'boolean', default: false },
        role: { type: 'string' },
        subject: { type: 'string', default: 'dev-user' },
        ttl: { type: 'string', default: '43200' },
        help: { type: 'boolean', default: false },
      },
    }));
  } catch (error) {
    console.error(`${(error as Error).message}\n${USAGE}`);
    process.exit(2);
  }
  if (values.help) {
    console.log(USAGE);
    return;
  }
  const ttl = Number(values.ttl);
  if (values.project === undefined || values.project === '' || !Number.isInteger(ttl) || ttl <= 0) {
    console.error(USAGE);
    process.exit(2);
  }
  const role = values.admin ? 'admin' : (values.role ?? 'member');
  if (!['reader', 'member', 'admin'].includes(role)) {
    console.error(`--role ${JSON.stringify(role)} is not one of reader, member, admin\n${USAGE}`);
    process.exit(2);
  }
  try {
    validateProjectId('--project', values.project);
  } catch (error) {
    console.error((error as Error).message);
    process.exit(2);
  }
  console.log(await signDevelopmentToken({ project: values.project, role, subject: values.subject, ttlSeconds: ttl }));
}

export interface DevelopmentTokenOptions {
  project: string;
  role: string;
  subject: string;
  ttlSeconds: number;
}

/**
 * Signs an HS256 token with AUTH_JWT_SECRET, or with the secret in
 * `dataFolder` that a server started from the same folder uses (created
 * when missing).
 */
export async function signDevelopmentToken(options: DevelopmentTokenOptions, dataFolder = './data'): Promise<string> {
  const secret = process.env.AUTH_JWT_SECRET || loadOrCreateSecret(dataFolder);
  return new SignJWT({ project_id: options.project, roles: [options.role] })
    .setProtectedHeader({ alg: 'HS256', typ: 'JWT' })
    .setSubject(options.subject)
    .setIssuedAt()
    .setExpirationTime(Math.floor(Date.now() / 1000) + options.ttlSeconds)
    .sign(new TextEncoder().encode(secret));
}

// Runs only as a script, so that the token command can import signDevelopmentToken.
if (import.meta.url === pathToFileURL(process.argv[1] ?? '').href) await main();
