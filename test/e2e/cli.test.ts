/**
 * Runs the image-registry command-line client as people do: the package's
 * bin launcher in a child process, against a real server on SQLite.
 */
import { execFile, execFileSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { decodeJwt } from 'jose';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ImageStatus, Visibility } from '../../gen/imageregistry/v1/image.js';
import { MemberStatus } from '../../gen/imageregistry/v1/member_service.js';
import { failure, RegistryHarness } from '../support/registry-harness.js';

const REPOSITORY = fileURLToPath(new URL('../..', import.meta.url));
const PACKAGE = JSON.parse(readFileSync(join(REPOSITORY, 'package.json'), 'utf8')) as { bin: Record<string, string> };
const LAUNCHER = join(REPOSITORY, PACKAGE.bin['image-registry']!);

const IMAGE_ID = '7d0f3a52-9c1e-4b8a-a6f4-2e5d8c9b1a01';
const MISSING_ID = '7d0f3a52-9c1e-4b8a-a6f4-2e5d8c9b1aff';

interface CliResult {
  code: number;
  stdout: string;
  stderr: string;
}

function hasCommand(name: string): boolean {
  try {
    execFileSync('sh', ['-c', `command -v ${name}`], { stdio: 'ignore' });
    return true;
  } catch {
    return false;
  }
}

describe('image-registry CLI', () => {
  let registry: RegistryHarness;
  let redToken: string;
  let blueToken: string;
  let folder: string;

  /** Runs the launcher with `args` as the caller of `token`, and resolves even when it exits non-zero. */
  function cli(args: string[], token: string | null = redToken): Promise<CliResult> {
    const environment: NodeJS.ProcessEnv = {
      ...process.env,
      IMAGE_REGISTRY_ADDR: registry.address,
      AUTH_JWT_SECRET: registry.secret,
    };
    delete environment.IMAGE_REGISTRY_TOKEN;
    if (token !== null) environment.IMAGE_REGISTRY_TOKEN = token;
    return new Promise((resolve) => {
      execFile(
        process.execPath,
        [LAUNCHER, ...args],
        { cwd: REPOSITORY, env: environment, maxBuffer: 64 * 1024 * 1024, encoding: 'buffer', timeout: 20_000 },
        (error, stdout, stderr) => {
          // error.code is the exit status, or not a number when the child was killed or failed to start.
          let code = 0;
          if (error !== null) code = typeof error.code === 'number' ? error.code : -1;
          resolve({ code, stdout: stdout.toString('latin1'), stderr: stderr.toString() });
        },
      );
    });
  }

  /** Runs the launcher and fails the test with its stderr unless it exits 0. */
  async function cliOk(args: string[], token: string | null = redToken): Promise<string> {
    const result = await cli(args, token);
    expect(result.stderr).toBe('');
    expect(result.code).toBe(0);
    return result.stdout;
  }

  beforeAll(async () => {
    registry = await RegistryHarness.start('sqlite');
    redToken = await registry.token('cli-red');
    blueToken = await registry.token('cli-blue');
    folder = mkdtempSync(join(tmpdir(), 'registry-cli-'));
  });
  afterAll(async () => {
    await registry?.stop();
    if (folder !== undefined) rmSync(folder, { recursive: true, force: true });
  });

  it('package.json bin points at the launcher', () => {
    expect(PACKAGE.bin['image-registry']).toBe('src/cli/image-registry.mjs');
  });

  it('creates an image and shows it', async () => {
    const stdout = await cliOk([
      'image', 'create', '--id', IMAGE_ID, '--name', 'cli-base', '--tag', 'cli', '--tag', 'base',
      '--property', 'os_distro=ubuntu', '--property', 'Build Note=a=b', '--disk-format', 'qcow2',
      '--container-format', 'bare', '--min-ram', '512',
    ]);
    expect(stdout).toMatch(new RegExp(`^id +${IMAGE_ID}$`, 'm'));
    expect(stdout).toMatch(/^status +QUEUED$/m);
    expect(stdout).toMatch(/^visibility +SHARED$/m);
    expect(stdout).toMatch(/^tags +base,cli$/m);

    const stored = await (await registry.as('cli-red')).images.getImage({ id: IMAGE_ID });
    expect(stored.name).toBe('cli-base');
    expect(stored.minRam).toBe(512);
    expect(stored.diskFormat).toBe('qcow2');
    expect(Object.fromEntries(stored.properties)).toEqual({ os_distro: 'ubuntu', 'Build Note': 'a=b' });

    const asJson = JSON.parse(await cliOk(['image', 'show', IMAGE_ID, '--json']));
    expect(asJson.id).toBe(IMAGE_ID);
    expect(asJson.name).toBe('cli-base');
    expect(asJson.status).toBe('IMAGE_STATUS_QUEUED');
    expect(asJson.owner).toBe('cli-red');
    expect(asJson.properties).toEqual({ os_distro: 'ubuntu', 'Build Note': 'a=b' });
  });

  it('lists as a table and as JSON, following pages', async () => {
    for (const name of ['cli-extra-1', 'cli-extra-2', 'cli-extra-3', 'cli-extra-4']) {
      await cliOk(['--json', 'image', 'create', '--name', name, '--tag', 'extra']);
    }

    const table = (await cliOk(['image', 'list'])).trimEnd().split('\n');
    expect(table[0]).toMatch(/^ID +NAME +STATUS +VISIBILITY +OWNER +SIZE +CREATED$/);
    expect(table).toHaveLength(6);
    const baseRow = table.find((line) => line.startsWith(IMAGE_ID));
    expect(baseRow).toMatch(/^\S+ +cli-base +QUEUED +SHARED +cli-red +\S+$/);

    // Three pages of two, so the client must follow next_page_token twice.
    const paged = JSON.parse(await cliOk(['image', 'list', '--json', '--page-size', '2', '--order-by', 'name']));
    expect(paged.map((image: { name: string }) => image.name)).toEqual([
      'cli-base', 'cli-extra-1', 'cli-extra-2', 'cli-extra-3', 'cli-extra-4',
    ]);

    const limitedArgs = ['image', 'list', '--json', '--page-size', '2', '--limit', '3', '--order-by', 'name'];
    const limited = JSON.parse(await cliOk(limitedArgs));
    expect(limited.map((image: { name: string }) => image.name)).toEqual(['cli-base', 'cli-extra-1', 'cli-extra-2']);

    const tagged = JSON.parse(await cliOk(['image', 'list', '--json', '--tag', 'cli', '--property', 'os_distro=ubuntu']));
    expect(tagged.map((image: { id: string }) => image.id)).toEqual([IMAGE_ID]);
  });

  it('updates only the fields given', async () => {
    const stdout = await cliOk([
      'image', 'update', IMAGE_ID, '--name', 'cli-base-2', '--min-disk', '20', '--protected',
      '--property', 'osVersion=24.04', '--remove-property', 'Build Note',
    ]);
    expect(stdout).toMatch(/^name +cli-base-2$/m);

    const stored = await (await registry.as('cli-red')).images.getImage({ id: IMAGE_ID });
    expect(stored.name).toBe('cli-base-2');
    expect(stored.minDisk).toBe(20);
    expect(stored.protected).toBe(true);
    expect(Object.fromEntries(stored.properties)).toEqual({ os_distro: 'ubuntu', osVersion: '24.04' });
    // Fields that no option named keep their values.
    expect(stored.minRam).toBe(512);
    expect([...stored.tags].sort()).toEqual(['base', 'cli']);
    expect(stored.visibility).toBe(Visibility.VISIBILITY_SHARED);
    expect(stored.diskFormat).toBe('qcow2');
  });

  it('adds a member who accepts the image', async () => {
    const added = await cliOk(['member', 'add', IMAGE_ID, 'cli-blue']);
    expect(added).toMatch(new RegExp(`^${IMAGE_ID} +cli-blue +PENDING `, 'm'));

    // Without a member id, accept acts for the token's project.
    const accepted = await cliOk(['member', 'accept', IMAGE_ID], blueToken);
    expect(accepted).toMatch(/cli-blue +ACCEPTED /);

    const members = JSON.parse(await cliOk(['member', 'list', IMAGE_ID, '--json']));
    expect(members).toHaveLength(1);
    expect(members[0].memberId).toBe('cli-blue');
    expect(members[0].status).toBe('MEMBER_STATUS_ACCEPTED');

    const stored = await (await registry.as('cli-blue')).members.getMember({ imageId: IMAGE_ID, memberId: 'cli-blue' });
    expect(stored.status).toBe(MemberStatus.MEMBER_STATUS_ACCEPTED);
    const blueListing = JSON.parse(await cliOk(['image', 'list', '--json'], blueToken));
    expect(blueListing.map((image: { id: string }) => image.id)).toEqual([IMAGE_ID]);
  });

  it('uploads a file and downloads it back unchanged', async () => {
    // Larger than one 1 MiB chunk, and not a multiple of it.
    const data = randomBytes(2 * 1024 * 1024 + 12345);
    const input = join(folder, 'disk.img');
    writeFileSync(input, data);

    const uploaded = await cli(['image', 'upload', IMAGE_ID, input, '--json']);
    // stderr is a pipe here, so no progress bar is drawn.
    expect(uploaded.stderr).toBe('');
    expect(uploaded.code).toBe(0);
    const image = JSON.parse(uploaded.stdout);
    expect(image.status).toBe('IMAGE_STATUS_ACTIVE');
    expect(image.size).toBe(String(data.length));

    const output = join(folder, 'disk-copy.img');
    const downloaded = await cliOk(['image', 'download', IMAGE_ID, '--out', output], blueToken);
    expect(downloaded).toBe(`wrote ${data.length} bytes of image ${IMAGE_ID} to ${output}\n`);
    expect(readFileSync(output).equals(data)).toBe(true);

    const toStdout = await cli(['image', 'download', IMAGE_ID], blueToken);
    expect(toStdout.code).toBe(0);
    expect(Buffer.from(toStdout.stdout, 'latin1').equals(data)).toBe(true);
  });

  it.skipIf(!hasCommand('script'))('draws a progress bar when stderr is a terminal', async () => {
    const created = JSON.parse(await cliOk(['--json', 'image', 'create', '--name', 'cli-progress']));
    const input = join(folder, 'progress.img');
    writeFileSync(input, randomBytes(3 * 1024 * 1024));
    const command = [process.execPath, LAUNCHER, 'image', 'upload', created.id, input]
      .map((word) => `'${word}'`)
      .join(' ');
    // util-linux script runs the command on a pseudo-terminal, so stderr is a TTY. It must run
    // asynchronously, because the server handles calls on this process's event loop.
    const terminalOutput = await new Promise<string>((resolve, reject) => {
      execFile(
        'script',
        ['-qec', `${command} > /dev/null`, '/dev/null'],
        { env: { ...process.env, IMAGE_REGISTRY_ADDR: registry.address, IMAGE_REGISTRY_TOKEN: redToken }, timeout: 20_000 },
        (error, stdout) => (error ? reject(error) : resolve(stdout)),
      );
    });
    expect(terminalOutput).toContain('upload');
    expect(terminalOutput).toContain('100% | 3.0 MiB of 3.0 MiB');
  });

  it('deletes an image, which is then not found', async () => {
    const protectedDelete = await cli(['image', 'delete', IMAGE_ID]);
    expect(protectedDelete.code).toBe(1);
    expect(protectedDelete.stderr).toMatch(/^error: FAILED_PRECONDITION: /);

    await cliOk(['image', 'update', IMAGE_ID, '--no-protected']);
    expect(await cliOk(['image', 'delete', IMAGE_ID])).toBe(`deleted image ${IMAGE_ID}\n`);
    const lookup = await failure((await registry.as('cli-red')).images.getImage({ id: IMAGE_ID }));
    expect(lookup.code).toBe('NOT_FOUND');
  });

  it('exits 1 with the gRPC status on a failed call', async () => {
    const result = await cli(['image', 'show', MISSING_ID]);
    expect(result.code).toBe(1);
    expect(result.stdout).toBe('');
    expect(result.stderr).toBe(`error: NOT_FOUND: image "${MISSING_ID}" not found\n`);
  });

  it('exits 2 on usage errors', async () => {
    const badOption = await cli(['image', 'list', '--visibility', 'everyone']);
    expect(badOption.code).toBe(2);
    expect(badOption.stderr).toContain("error: option '--visibility <visibility>' argument 'everyone' is invalid");

    const emptyUpdate = await cli(['image', 'update', MISSING_ID]);
    expect(emptyUpdate.code).toBe(2);
    expect(emptyUpdate.stderr).toMatch(/^error: nothing to update/);

    const noToken = await cli(['image', 'list'], null);
    expect(noToken.code).toBe(2);
    expect(noToken.stderr).toMatch(/^error: missing token: pass --token or set IMAGE_REGISTRY_TOKEN/);
  });

  it('mints a token that the server accepts', async () => {
    const minted = await cliOk(['token', '--project', 'cli-minted', '--admin'], null);
    const token = minted.trim();
    expect(minted).toBe(`${token}\n`);
    const claims = decodeJwt(token);
    expect(claims.project_id).toBe('cli-minted');
    expect(claims.roles).toEqual(['admin']);

    const createArgs = ['--token', token, '--json', 'image', 'create', '--name', 'cli-minted-image'];
    const created = JSON.parse(await cliOk(createArgs, null));
    expect(created.owner).toBe('cli-minted');
    const stored = await (await registry.as('cli-minted')).images.getImage({ id: created.id });
    expect(stored.status).toBe(ImageStatus.IMAGE_STATUS_QUEUED);
  });
});
