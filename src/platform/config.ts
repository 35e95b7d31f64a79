/**
 * The service's configuration, read from the environment once at start. A
 * bad value stops the process with a message that names the variable.
 */
import { z } from 'zod';

const LOG_LEVELS = ['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'] as const;

const listenAddress = z
  .string()
  .regex(/^(\[[0-9a-fA-F:.]+\]|[^:\s]+):(\d{1,5})$/, 'must be host:port, such as 127.0.0.1:50051 or [::1]:0')
  .refine((value) => Number(value.slice(value.lastIndexOf(':') + 1)) <= 65_535, 'port must be 0 to 65535');

const integerText = (description: string) =>
  z.string().regex(/^-?\d+$/, `must be ${description}`).transform(Number);

const optionalText = z
  .string()
  .optional()
  .transform((value) => (value === undefined || value === '' ? undefined : value));

const environmentSchema = z.object({
  GRPC_LISTEN: listenAddress.default('127.0.0.1:50051'),
  METRICS_LISTEN: listenAddress.optional(),
  DATABASE_URL: z
    .string()
    .regex(/^(mysql:\/\/|sqlite:)/, 'must be mysql://user:pass@host:port/db or sqlite:PATH')
    .default('sqlite:./data/registry.sqlite'),
  // RFC 7518 (section 3.2) requires an HS256 key of at least 256 bits.
  AUTH_JWT_SECRET: optionalText.refine(
    (value) => value === undefined || Buffer.byteLength(value, 'utf8') >= 32,
    'must be at least 32 bytes (256 bits) long for HS256',
  ),
  AUTH_JWT_PUBLIC_KEY_FILE: optionalText,
  AUTH_JWKS_FILE: optionalText,
  AUTH_JWT_ISSUER: optionalText,
  AUTH_JWT_AUDIENCE: optionalText,
  AUTH_CLOCK_TOLERANCE_S: integerText('a whole number of seconds, 0 or more')
    .pipe(z.number().min(0, 'must be 0 or more'))
    .default(30),
  IMAGE_MEMBER_QUOTA: integerText('a whole number; negative means unlimited').default(128),
  IMAGE_STORE_DIR: z.string().min(1).default('./data/images'),
  IMAGE_SIZE_CAP: integerText('a whole number of bytes, 0 or more')
    .pipe(z.number().min(0, 'must be 0 or more').max(Number.MAX_SAFE_INTEGER, 'must be at most 2^53 - 1'))
    .default(1024 ** 4),
  PROJECT_STORAGE_QUOTA: integerText('a whole number of bytes; negative means unlimited')
    .pipe(z.number().max(Number.MAX_SAFE_INTEGER, 'must be at most 2^53 - 1'))
    .default(-1),
  UPLOAD_LEASE_S: integerText('a whole number of seconds, 1 or more')
    .pipe(z.number().min(1, 'must be 1 or more'))
    .default(60),
  LOG_LEVEL: z.enum(LOG_LEVELS).default('info'),
  GRPC_TLS_CERT: optionalText,
  GRPC_TLS_KEY: optionalText,
  GRPC_TLS_CLIENT_CA: optionalText,
  DATABASE_STATEMENT_TIMEOUT_S: integerText('a whole number of seconds, 1 or more')
    .pipe(z.number().min(1, 'must be 1 or more'))
    .default(5),
  SHUTDOWN_GRACE_S: integerText('a whole number of seconds, 0 or more')
    .pipe(z.number().min(0, 'must be 0 or more'))
    .default(10),
});

export type Config = z.infer<typeof environmentSchema> & {
  /** The folder of the generated secret and the default SQLite file. */
  dataDir: string;
};

export class ConfigError extends Error {}

/** Reads and validates the configuration, throwing ConfigError naming each bad variable. */
export function loadConfig(environment: NodeJS.ProcessEnv = process.env): Config {
  const picked = Object.fromEntries(
    Object.keys(environmentSchema.shape).map((name) => [name, emptyToUndefined(environment[name])]),
  );
  const result = environmentSchema.safeParse(picked);
  if (!result.success) {
    const problems = result.error.issues.map((issue) => {
      const name = String(issue.path[0]);
      return `${name}=${shownValue(name, environment[name] ?? '')}: ${issue.message}`;
    });
    throw new ConfigError(`invalid configuration:\n  ${problems.join('\n  ')}`);
  }
  const config = result.data;
  if ((config.GRPC_TLS_CERT === undefined) !== (config.GRPC_TLS_KEY === undefined)) {
    throw new ConfigError('invalid configuration: set GRPC_TLS_CERT and GRPC_TLS_KEY together, or neither');
  }
  if (config.GRPC_TLS_CLIENT_CA !== undefined && config.GRPC_TLS_CERT === undefined) {
    throw new ConfigError('invalid configuration: GRPC_TLS_CLIENT_CA needs GRPC_TLS_CERT and GRPC_TLS_KEY');
  }
  if (config.AUTH_JWT_PUBLIC_KEY_FILE !== undefined && config.AUTH_JWKS_FILE !== undefined) {
    throw new ConfigError('invalid configuration: set AUTH_JWT_PUBLIC_KEY_FILE or AUTH_JWKS_FILE, not both');
  }
  return { ...config, dataDir: './data' };
}

/** Quotes a variable's value for an error message, hiding secrets and passwords. */
function shownValue(name: string, value: string): string {
  if (name === 'AUTH_JWT_SECRET') return '(hidden)';
  return JSON.stringify(value.replace(/\/\/([^:/@]*):[^@]*@/, '//$1:***@'));
}

function emptyToUndefined(value: string | undefined): string | undefined {
  return value === '' ? undefined : value;
}
