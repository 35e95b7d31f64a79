/**
 * Runs the README's walkthrough as a newcomer would: every `npx buf curl`
 * command in it, against a real server, through reflection alone (buf curl
 * gets no proto files). The grpcurl forms are the same calls and are not
 * run, because grpcurl is not installed on these machines.
 */
import { execFile } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Visibility } from '../../gen/imageregistry/v1/image.js';
import { MemberStatus } from '../../gen/imageregistry/v1/member_service.js';
import { RegistryHarness } from '../support/registry-harness.js';

const run = promisify(execFile);
const README_ADDRESS = '127.0.0.1:50051';

/** Returns the shell commands of the walkthrough's sh blocks, with continuation lines joined. */
function walkthroughCommands(): string[] {
  const readme = readFileSync(new URL('../../README.md', import.meta.url), 'utf8');
  const section = readme.split('<!-- walkthrough:start -->')[1]?.split('<!-- walkthrough:end -->')[0];
  if (section === undefined) throw new Error('README.md has no walkthrough markers');
  const blocks = [...section.matchAll(/```sh\n([\s\S]*?)```/g)].map((match) => match[1]!);
  return blocks
    .flatMap((block) => block.replace(/\\\n\s*/g, ' ').split('\n'))
    .map((line) => line.trim())
    .filter((line) => line !== '' && !line.startsWith('#'));
}

describe('README walkthrough', () => {
  let registry: RegistryHarness;

  beforeAll(async () => {
    registry = await RegistryHarness.start('sqlite');
  });
  afterAll(async () => registry?.stop());

  it('shows each call in grpcurl and buf curl form', () => {
    const commands = walkthroughCommands();
    const grpcurlCalls = commands.filter((line) => line.startsWith('grpcurl '));
    const bufCalls = commands.filter((line) => line.startsWith('npx buf curl ') && !line.includes('--list-services'));
    expect(bufCalls.length).toBeGreaterThan(8);
    expect(grpcurlCalls.length).toBe(bufCalls.length);
  });

  it('runs every buf curl command against a real server', { timeout: 180_000 }, async () => {
    const script = walkthroughCommands()
      .filter((line) => !line.startsWith('grpcurl '))
      .map((line) => line.replaceAll(README_ADDRESS, registry.address))
      .join('\n');
    const { stdout } = await run('bash', ['-euo', 'pipefail', '-c', script], {
      cwd: new URL('../..', import.meta.url).pathname,
      env: { ...process.env, AUTH_JWT_SECRET: registry.secret },
      maxBuffer: 16 * 1024 * 1024,
    });
    expect(stdout).toContain('imageregistry.v1.ImageService');
    expect(stdout).toContain('imageregistry.v1.MemberService');
    expect(stdout).toContain('grpc.health.v1.Health');
    expect(stdout).toContain('"chunk": "aGVsbG8sIGltYWdlCg=="');

    const ops = await registry.as('cloud-ops', { admin: true });
    const retired = await ops.images.getImage({ id: '0b7e4f0a-3c2d-4e61-8f7a-1d2c3b4a5e02' });
    expect(retired.visibility).toBe(Visibility.VISIBILITY_COMMUNITY);

    const blue = await registry.as('team-blue');
    const membership = await blue.members.getMember({
      imageId: '4c9d2b1e-7a6f-4b3c-8e2d-9f1a0b3c4d03',
      memberId: 'team-blue',
    });
    expect(membership.status).toBe(MemberStatus.MEMBER_STATUS_ACCEPTED);
    const listed = (await blue.images.listImages({})).images.map((image) => image.name);
    expect(listed).toEqual(['red-app-base']);

    const downloaded = await blue.data.download('4c9d2b1e-7a6f-4b3c-8e2d-9f1a0b3c4d03');
    expect(downloaded.data.toString()).toBe('hello, image\n');
  });

  it('calls the health service by reflection without a token', async () => {
    const { stdout } = await run(
      'npx',
      ['buf', 'curl', '--protocol', 'grpc', '--http2-prior-knowledge', `http://${registry.address}/grpc.health.v1.Health/Check`],
      { cwd: new URL('../..', import.meta.url).pathname },
    );
    expect(JSON.parse(stdout)).toEqual({ status: 'SERVING' });
  });
});
