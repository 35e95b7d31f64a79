/**
 * The Glance import command against real databases. It imports the fixture
 * (Glance API pages and member lists), the real service then serves what it
 * wrote, and a second run changes nothing.
 */
import { execFile } from 'node:child_process';
import { mkdtempSync, readdirSync, rmSync, writeFileSync, existsSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, afterEach, beforeAll, describe, expect, it, vi } from 'vitest';
import { ImageStatus, Visibility } from '../../gen/imageregistry/v1/image.js';
import { VisibilityFilter } from '../../gen/imageregistry/v1/image_service.js';
import { MemberStatus } from '../../gen/imageregistry/v1/member_service.js';
import type { ImportReport, ImageReport } from '../../src/app/glance-import.js';
import { importGlanceCommand } from '../../src/cli/import-glance.js';
import { Database } from '../../src/persistence/database.js';
import { parseDatabaseUrl } from '../../src/persistence/database-url.js';
import { findImage } from '../../src/persistence/image-store.js';
import { listMembers } from '../../src/persistence/member-store.js';
import { createTestDatabase, testedBackends } from '../support/databases.js';
import { RegistryHarness, failure } from '../support/registry-harness.js';

const REPOSITORY = fileURLToPath(new URL('../../', import.meta.url));
const CLI = join(REPOSITORY, 'src/cli/import-glance.ts');
const FIXTURES = fileURLToPath(new URL('../fixtures/glance/', import.meta.url));
const FIXTURE_FILES = readdirSync(FIXTURES)
  .filter((name) => name.endsWith('.json'))
  .sort()
  .map((name) => join(FIXTURES, name));

const OPS = '5ef70662f8b34079a6eddb8da9d75fe8';
const RED = 'a3f1c9e2b7d44e6f9c0b1d2e3f4a5b6c';
const BLUE = 'b4e2d0f3c8e55f7a0d1c2e3f4a5b6c7d';
const GREEN = 'c5f3e1a4d9f66a8b1e2d3f4a5b6c7d8e';
const YELLOW = 'd6a4f2b5e0a77b9c2f3e4a5b6c7d8e9f';

const CIRROS = '1bea47ed-f6a9-463b-b423-14b9cca9ad27';
const UBUNTU = '781b3762-9469-4cec-b58d-3349e5de4e9c';
const SHARED = '4c9d2b1e-7a6f-4b3c-8e2d-9f1a0b3c4d03';
const PRIVATE = 'd2a4f6b8-1c3e-4a5b-9d7f-0e2c4a6b8d05';
const HIDDEN = 'e5b7d9f1-3a5c-4e7b-8f9a-1c3e5a7b9d06';
const LEGACY = 'f6c8e0a2-4b6d-4f8c-9a0b-2d4f6b8d0e07';
const V1_PUBLIC = '0a1b2c3d-4e5f-4a6b-8c7d-9e0f1a2b3c08';
const V1_PRIVATE = '1b2c3d4e-5f6a-4b7c-9d8e-0f1a2b3c4d09';
const V1_DELETED = '2c3d4e5f-6a7b-4c8d-8e9f-1a2b3c4d5e10';
const FIXTURE_IMAGE_COUNT = 9;

/** The data of the fixture's cirros image, whose size, MD5 and SHA-512 the fixture gives. */
const CIRROS_DATA = Buffer.from('hello, image\n');

interface CommandResult {
  code: number | null;
  stdout: string;
  stderr: string;
}

/** Runs the command as a user would, in a child process with tsx. */
function runCli(args: string[], environment: Record<string, string> = {}): Promise<CommandResult> {
  return new Promise((resolve) => {
    execFile(
      process.execPath,
      ['--import', 'tsx', CLI, ...args],
      { cwd: REPOSITORY, env: { ...process.env, ...environment }, timeout: 60_000 },
      (error, stdout, stderr) => {
        let code: number | null = 0;
        if (error !== null) code = typeof error.code === 'number' ? error.code : null;
        resolve({ code, stdout, stderr });
      },
    );
  });
}

/** Runs the command with --json on DATABASE_URL and parses its report. */
async function runImport(
  databaseUrl: string,
  files: string[],
  environment: Record<string, string> = {},
): Promise<{ code: number | null; report: ImportReport; stderr: string }> {
  const result = await runCli(['--json', ...files], { DATABASE_URL: databaseUrl, ...environment });
  if (result.stdout === '') throw new Error(`import-glance printed no report (exit ${result.code}): ${result.stderr}`);
  return { code: result.code, report: JSON.parse(result.stdout) as ImportReport, stderr: result.stderr };
}

function imageReport(report: ImportReport, id: string): ImageReport {
  const found = report.images.find((image) => image.id === id);
  if (found === undefined) throw new Error(`the report has no image ${id}`);
  return found;
}

function noteKeys(image: ImageReport, action: 'mapped' | 'dropped'): string[] {
  return image.notes.filter((note) => note.action === action).map((note) => note.key);
}

describe.each(testedBackends())('import-glance on %s', (backend) => {
  let registry: RegistryHarness;
  let first: Awaited<ReturnType<typeof runImport>>;

  beforeAll(async () => {
    registry = await RegistryHarness.start(backend);
    first = await runImport(registry.databaseUrl, FIXTURE_FILES);
  }, 120_000);
  afterAll(async () => registry?.stop());

  it('creates every fixture image', () => {
    expect(first.code).toBe(0);
    expect(first.report.totals).toEqual({ created: FIXTURE_IMAGE_COUNT, unchanged: 0, differs: 0, rejected: 0 });
    expect(first.report.images.map((image) => image.outcome)).toEqual(Array(FIXTURE_IMAGE_COUNT).fill('created'));
  });

  it('keeps the fields of a public image', async () => {
    const image = await (await registry.as('any-project')).images.getImage({ id: CIRROS });
    expect(image.name).toBe('cirros-0.6.2-x86_64-disk');
    expect(image.visibility).toBe(Visibility.VISIBILITY_PUBLIC);
    expect(image.owner).toBe(OPS);
    expect(image.status).toBe(ImageStatus.IMAGE_STATUS_QUEUED);
    expect(image.protected).toBe(false);
    expect(image.hidden).toBe(false);
    expect(image.containerFormat).toBe('bare');
    expect(image.diskFormat).toBe('raw');
    expect(image.minDisk).toBe(0);
    expect(image.minRam).toBe(64);
    expect(image.size).toBe('13');
    expect(image.virtualSize).toBe('13');
    expect(image.checksum).toBe('1cbd8cdd6965af2fa4535a0a1dec1f6c');
    expect(image.hashAlgo).toBe('sha512');
    expect(image.hashValue).toMatch(/^3848ec2673bd87a4/);
    expect(image.tags).toEqual(['cirros']);
    expect(Object.fromEntries(image.properties)).toEqual({ os_distro: 'cirros', architecture: 'x86_64' });
    expect(image.createTime?.toISOString()).toBe('2024-03-01T09:00:00.000Z');
    expect(image.updateTime?.toISOString()).toBe('2024-03-01T09:00:05.000Z');
  });

  it('reports the queued status of active images', () => {
    const cirros = imageReport(first.report, CIRROS);
    expect(cirros.notes.find((note) => note.key === 'status')?.detail).toMatch(/active in Glance: imported as queued/);
  });

  it('keeps a community image out of default listings', async () => {
    const blue = await registry.as(BLUE);
    const image = await blue.images.getImage({ id: UBUNTU });
    expect(image.visibility).toBe(Visibility.VISIBILITY_COMMUNITY);
    expect(image.tags.sort()).toEqual(['lts', 'ubuntu']);
    const listed = await blue.images.listImages({ pageSize: 100 });
    expect(listed.images.map((listedImage) => listedImage.id)).not.toContain(UBUNTU);
    const community = await blue.images.listImages({ visibility: VisibilityFilter.VISIBILITY_FILTER_COMMUNITY, owner: OPS });
    expect(community.images.map((listedImage) => listedImage.id)).toEqual([UBUNTU]);
  });

  it('imports the members of a shared image', async () => {
    const owner = await registry.as(RED);
    const image = await owner.images.getImage({ id: SHARED });
    expect(image.visibility).toBe(Visibility.VISIBILITY_SHARED);
    expect(image.protected).toBe(true);
    const { members } = await owner.members.listMembers({ imageId: SHARED });
    expect(members.map((member) => [member.memberId, member.status])).toEqual([
      [BLUE, MemberStatus.MEMBER_STATUS_PENDING],
      [GREEN, MemberStatus.MEMBER_STATUS_ACCEPTED],
      [YELLOW, MemberStatus.MEMBER_STATUS_REJECTED],
    ]);
    expect(members[1]?.createTime?.toISOString()).toBe('2023-05-10T12:06:00.000Z');
    expect(members[1]?.updateTime?.toISOString()).toBe('2023-05-12T08:00:00.000Z');
  });

  it('gives shared access by member status', async () => {
    const accepted = await (await registry.as(GREEN)).images.listImages({ pageSize: 100 });
    expect(accepted.images.map((image) => image.id)).toContain(SHARED);
    const pending = await (await registry.as(BLUE)).images.listImages({ pageSize: 100 });
    expect(pending.images.map((image) => image.id)).not.toContain(SHARED);
    const byId = await (await registry.as(BLUE)).images.getImage({ id: SHARED });
    expect(byId.id).toBe(SHARED);
    const outsider = await failure((await registry.as('team-outside')).images.getImage({ id: SHARED }));
    expect(outsider.code).toBe('NOT_FOUND');
  });

  it('reports the members of a private image', async () => {
    const privateImage = imageReport(first.report, PRIVATE);
    expect(privateImage.members).toBe(1);
    expect(privateImage.notes.find((note) => note.key === 'members')?.detail).toMatch(/granting no access while the image is private/);
    const owner = await registry.as(BLUE);
    const image = await owner.images.getImage({ id: PRIVATE });
    expect(image.visibility).toBe(Visibility.VISIBILITY_PRIVATE);
    expect(image.containerFormat).toBe('');
    expect(image.size).toBeUndefined();
    const members = await failure(owner.members.listMembers({ imageId: PRIVATE }));
    expect(members.code).toBe('FAILED_PRECONDITION');
    const member = await failure((await registry.as(RED)).images.getImage({ id: PRIVATE }));
    expect(member.code).toBe('NOT_FOUND');
  });

  it('keeps a hidden image out of listings', async () => {
    const admin = await registry.as(OPS, { admin: true });
    const image = await admin.images.getImage({ id: HIDDEN });
    expect(image.hidden).toBe(true);
    expect(image.protected).toBe(true);
    expect(image.status).toBe(ImageStatus.IMAGE_STATUS_QUEUED);
    const listed = await admin.images.listImages({ pageSize: 100 });
    expect(listed.images.map((listedImage) => listedImage.id)).not.toContain(HIDDEN);
    const withHidden = await admin.images.listImages({ pageSize: 100, includeHidden: true });
    expect(withHidden.images.map((listedImage) => listedImage.id)).toContain(HIDDEN);
    const note = imageReport(first.report, HIDDEN).notes.find((entry) => entry.key === 'status');
    expect(note?.detail).toMatch(/deactivated in Glance/);
  });

  it('turns string extra keys into properties', async () => {
    const image = await (await registry.as(RED)).images.getImage({ id: LEGACY });
    expect(Object.fromEntries(image.properties)).toEqual({
      hw_disk_bus: 'scsi',
      'com.example:build-id': '2021.3',
      vmware_adaptertype: 'lsiLogic',
    });
    expect(image.hashAlgo).toBe('sha256');
    expect(image.hashValue).toHaveLength(64);
    expect(image.containerFormat).toBe('ova');
    expect(image.minDisk).toBe(20);
  });

  it('reports read-only and non-string keys', () => {
    const legacy = imageReport(first.report, LEGACY);
    expect(noteKeys(legacy, 'dropped').sort()).toEqual(
      [
        'appliance_flags',
        'direct_url',
        'file',
        'hw_cpu_cores',
        'locations',
        'os_glance_failed_import',
        'os_glance_importing_to_stores',
        'schema',
        'self',
        'stores',
      ].sort(),
    );
    const nextLink = first.report.files.find((file) => file.path.endsWith('images-page-1.json'))?.notes;
    expect(nextLink?.map((note) => note.key)).toEqual(['next']);
  });

  it('maps is_public to visibility', async () => {
    const admin = await registry.as(OPS, { admin: true });
    const publicImage = await admin.images.getImage({ id: V1_PUBLIC });
    expect(publicImage.visibility).toBe(Visibility.VISIBILITY_PUBLIC);
    expect(Object.fromEntries(publicImage.properties)).toEqual({ os_distro: 'debian', os_version: '8' });
    expect(publicImage.createTime?.toISOString()).toBe('2015-06-01T10:00:00.000Z');
    const privateImage = await admin.images.getImage({ id: V1_PRIVATE });
    expect(privateImage.visibility).toBe(Visibility.VISIBILITY_PRIVATE);
    expect(noteKeys(imageReport(first.report, V1_PUBLIC), 'mapped')).toEqual(
      expect.arrayContaining(['is_public', 'deleted', 'properties']),
    );
    expect(noteKeys(imageReport(first.report, V1_PUBLIC), 'dropped')).toEqual(['deleted_at']);
  });

  it('keeps the id of a deleted image taken', async () => {
    const admin = await registry.as(OPS, { admin: true });
    const read = await failure(admin.images.getImage({ id: V1_DELETED }));
    expect(read.code).toBe('NOT_FOUND');
    const create = await failure(admin.images.createImage({ imageId: V1_DELETED, image: { name: 'reuse' } }));
    expect(create.code).toBe('ALREADY_EXISTS');
  });

  it('second run changes nothing', async () => {
    const admin = await registry.as(OPS, { admin: true });
    const before = await admin.images.getImage({ id: SHARED });
    const second = await runImport(registry.databaseUrl, FIXTURE_FILES);
    expect(second.code).toBe(0);
    expect(second.report.totals).toEqual({ created: 0, unchanged: FIXTURE_IMAGE_COUNT, differs: 0, rejected: 0 });
    const after = await admin.images.getImage({ id: SHARED });
    expect(after).toEqual(before);
  });

  it('prints unchanged images in the summary', async () => {
    const result = await runCli(FIXTURE_FILES, { DATABASE_URL: registry.databaseUrl });
    expect(result.code).toBe(0);
    expect(result.stdout).toContain(`unchanged ${SHARED} "red-app-base"`);
    expect(result.stdout).toMatch(/9 images: 0 created, 9 unchanged, 0 differ, 0 rejected; nothing was written\n$/);
  });

  it('accepts data uploaded after the import', async () => {
    const owner = await registry.as(OPS);
    const before = await owner.images.getImage({ id: CIRROS });
    const uploaded = await owner.data.upload(
      {
        imageId: CIRROS,
        expectedSize: Number(before.size),
        expectedChecksum: before.checksum,
        expectedHashValue: before.hashValue,
      },
      [CIRROS_DATA],
    );
    expect(uploaded.status).toBe(ImageStatus.IMAGE_STATUS_ACTIVE);

    const again = await runImport(registry.databaseUrl, FIXTURE_FILES);
    expect(again.code).toBe(0);
    const cirros = imageReport(again.report, CIRROS);
    expect(cirros.outcome).toBe('unchanged');
    expect(cirros.notes.some((note) => /uploaded after the import/.test(note.detail))).toBe(true);
  });

  it('reports an image changed since the import', async () => {
    const admin = await registry.as(OPS, { admin: true });
    await admin.images.updateImage({ image: { id: UBUNTU, name: 'ubuntu-22.04-renamed' }, updateMask: ['name'] });
    await (await registry.as(GREEN)).members.updateMember({
      imageId: SHARED,
      memberId: GREEN,
      status: MemberStatus.MEMBER_STATUS_REJECTED,
    });

    const result = await runImport(registry.databaseUrl, FIXTURE_FILES);
    expect(result.code).toBe(1);
    expect(result.report.totals.differs).toBe(2);
    const ubuntu = imageReport(result.report, UBUNTU);
    expect(ubuntu.outcome).toBe('differs');
    expect(ubuntu.differences).toEqual(
      expect.arrayContaining([{ field: 'name', registry: 'ubuntu-22.04-renamed', glance: 'ubuntu-22.04' }]),
    );
    const shared = imageReport(result.report, SHARED);
    expect(shared.differences).toEqual(
      expect.arrayContaining([{ field: `members.${GREEN}.status`, registry: 'rejected', glance: 'accepted' }]),
    );
    const kept = await admin.images.getImage({ id: UBUNTU });
    expect(kept.name).toBe('ubuntu-22.04-renamed');
  });
});

describe.each(testedBackends())('import-glance rejections on %s', (backend) => {
  let registry: RegistryHarness;
  let folder: string;

  beforeAll(async () => {
    registry = await RegistryHarness.start(backend);
    folder = mkdtempSync(join(tmpdir(), 'glance-import-'));
  });
  afterAll(async () => {
    await registry?.stop();
    if (folder !== undefined) rmSync(folder, { recursive: true, force: true });
  });

  const base = (id: string, fields: Record<string, unknown> = {}) => ({
    id,
    name: `image-${id.slice(0, 4)}`,
    status: 'queued',
    visibility: 'private',
    owner: RED,
    protected: false,
    tags: [],
    created_at: '2020-01-01T00:00:00Z',
    updated_at: '2020-01-02T00:00:00Z',
    ...fields,
  });
  const member = (imageId: string, memberId: string, status = 'pending') => ({
    image_id: imageId,
    member_id: memberId,
    status,
    created_at: '2020-01-03T00:00:00Z',
    updated_at: '2020-01-03T00:00:00Z',
    schema: '/v2/schemas/member',
  });
  const writeJson = (name: string, value: unknown) => {
    const path = join(folder, name);
    writeFileSync(path, JSON.stringify(value));
    return path;
  };

  it('rejects invalid images and imports the rest', async () => {
    const ids = {
      valid: '10000000-0000-4000-8000-000000000001',
      badFormat: '10000000-0000-4000-8000-000000000002',
      reservedKey: '10000000-0000-4000-8000-000000000003',
      noOwner: '10000000-0000-4000-8000-000000000004',
      ownerMember: '10000000-0000-4000-8000-000000000005',
      badTime: '10000000-0000-4000-8000-000000000006',
      orphan: '10000000-0000-4000-8000-000000000007',
      v1Shared: '10000000-0000-4000-8000-000000000008',
    };
    const page = writeJson('page.json', {
      images: [
        base(ids.valid, { os_distro: 'alpine' }),
        base(ids.badFormat, { disk_format: 'qcow3' }),
        base(ids.reservedKey, { hidden: 'yes' }),
        base(ids.noOwner, { owner: null }),
        base(ids.ownerMember, { visibility: 'shared' }),
        base(ids.badTime, { created_at: '2021-02-30T00:00:00Z' }),
        base(ids.v1Shared, { visibility: undefined, is_public: false }),
      ],
      schema: '/v2/schemas/images',
    });
    const members = writeJson('members.json', {
      members: [member(ids.ownerMember, RED), member(ids.orphan, BLUE), member(ids.v1Shared, BLUE, 'accepted')],
      schema: '/v2/schemas/members',
    });

    const result = await runImport(registry.databaseUrl, [page, members]);
    expect(result.code).toBe(1);
    expect(result.report.totals).toEqual({ created: 2, unchanged: 0, differs: 0, rejected: 6 });
    expect(imageReport(result.report, ids.valid).outcome).toBe('created');
    const reasons = Object.fromEntries(result.report.images.map((image) => [image.id, image.reason ?? '']));
    expect(reasons[ids.badFormat]).toMatch(/^disk_format: "qcow3" is not one of/);
    expect(reasons[ids.reservedKey]).toMatch(/^properties: key "hidden" is reserved/);
    expect(reasons[ids.noOwner]).toMatch(/^owner: is missing/);
    expect(reasons[ids.ownerMember]).toMatch(/owns image .* and cannot be its member/);
    expect(reasons[ids.badTime]).toMatch(/^created_at: "2021-02-30T00:00:00Z" is not a valid date and time/);
    expect(reasons[ids.orphan]).toMatch(/which no images file lists/);

    const admin = await registry.as(OPS, { admin: true });
    for (const id of [ids.badFormat, ids.reservedKey, ids.noOwner, ids.ownerMember, ids.badTime, ids.orphan]) {
      const read = await failure(admin.images.getImage({ id }));
      expect(read.code, id).toBe('NOT_FOUND');
    }
    const shared = await admin.images.getImage({ id: ids.v1Shared });
    expect(shared.visibility).toBe(Visibility.VISIBILITY_SHARED);
    const sharedMembers = await admin.members.listMembers({ imageId: ids.v1Shared });
    expect(sharedMembers.members.map((row) => row.status)).toEqual([MemberStatus.MEMBER_STATUS_ACCEPTED]);
  });

  it('rejects an image over the member quota', async () => {
    const id = '20000000-0000-4000-8000-000000000001';
    const page = writeJson('quota-page.json', { images: [base(id, { visibility: 'shared' })] });
    const members = writeJson('quota-members.json', { members: [member(id, BLUE), member(id, GREEN)] });
    const result = await runImport(registry.databaseUrl, [page, members], { IMAGE_MEMBER_QUOTA: '1' });
    expect(result.code).toBe(1);
    expect(imageReport(result.report, id).reason).toMatch(/has 2 members, more than IMAGE_MEMBER_QUOTA of 1/);
  });

  it('rejects one id listed twice with different contents', async () => {
    const id = '30000000-0000-4000-8000-000000000001';
    const firstPage = writeJson('twice-1.json', { images: [base(id)] });
    const secondPage = writeJson('twice-2.json', { images: [base(id, { name: 'other' })] });
    const result = await runImport(registry.databaseUrl, [firstPage, secondPage]);
    expect(result.code).toBe(1);
    expect(imageReport(result.report, id).reason).toMatch(/listed in .*twice-1\.json and again in .*twice-2\.json/);
  });
});

describe.each(testedBackends())('import-glance into an empty database on %s', (backend) => {
  afterEach(() => {
    vi.restoreAllMocks();
  });

  it('migrates the database and writes the rows', async () => {
    const database = await createTestDatabase(backend);
    const output: string[] = [];
    vi.spyOn(process.stdout, 'write').mockImplementation((chunk) => {
      output.push(String(chunk));
      return true;
    });
    vi.spyOn(console, 'error').mockImplementation(() => {});
    try {
      const code = await importGlanceCommand(FIXTURE_FILES, { databaseUrl: database.url, json: true });
      vi.restoreAllMocks();
      expect(code).toBe(0);
      const report = JSON.parse(output.join('')) as ImportReport;
      expect(report.totals.created).toBe(FIXTURE_IMAGE_COUNT);

      const reader = new Database(parseDatabaseUrl(database.url));
      try {
        const image = await findImage(reader, reader.knex, SHARED);
        expect(image?.owner).toBe(RED);
        expect(image?.status).toBe('queued');
        const members = await listMembers(reader.knex, SHARED, { onlyMemberId: null, after: null, limit: 10 });
        expect(members.map((row) => row.status)).toEqual(['pending', 'accepted', 'rejected']);
        const deleted = await findImage(reader, reader.knex, V1_DELETED);
        expect(deleted?.status).toBe('deleted');
        expect(deleted?.updateTime).toBe(Date.parse('2016-01-10T08:00:00Z'));
      } finally {
        await reader.close();
      }
    } finally {
      await database.drop();
    }
  });
});

describe('import-glance usage errors', () => {
  let folder: string;

  beforeAll(() => {
    folder = mkdtempSync(join(tmpdir(), 'glance-usage-'));
  });
  afterAll(() => rmSync(folder, { recursive: true, force: true }));
  afterEach(() => {
    vi.restoreAllMocks();
  });

  /** Runs the command in-process and returns its exit status and stderr. */
  async function runInProcess(files: string[], databaseUrl: string): Promise<{ code: number; stderr: string }> {
    const messages: string[] = [];
    vi.spyOn(console, 'error').mockImplementation((message: unknown) => {
      messages.push(String(message));
    });
    const code = await importGlanceCommand(files, { databaseUrl });
    vi.restoreAllMocks();
    return { code, stderr: messages.join('\n') };
  }

  const cases: [string, () => string[], RegExp][] = [
    ['no file', () => [], /no FILE given/],
    ['missing file', () => [join(folder, 'absent.json')], /absent\.json: cannot be read/],
    ['invalid JSON', () => [write('broken.json', '{"images": [')], /broken\.json: is not valid JSON/],
    ['neither images nor members', () => [write('other.json', '{"servers": []}')], /neither an "images" array/],
    ['member without image_id', () => [write('member.json', '{"members": [{"member_id": "x"}]}')], /members\[0\] has no image_id/],
  ];

  function write(name: string, text: string): string {
    const path = join(folder, name);
    writeFileSync(path, text);
    return path;
  }

  it.each(cases)('exits 2 for %s', async (_name, files, message) => {
    const databasePath = join(folder, 'untouched', 'registry.sqlite');
    const result = await runInProcess(files(), `sqlite:${databasePath}`);
    expect(result.code).toBe(2);
    expect(result.stderr).toMatch(message);
    expect(existsSync(databasePath)).toBe(false);
  });

  it('exits 2 for an unsupported database URL', async () => {
    const result = await runInProcess(FIXTURE_FILES, 'postgres://127.0.0.1/registry');
    expect(result.code).toBe(2);
    expect(result.stderr).toMatch(/DATABASE_URL/);
  });

  it('exits 1 for an unreachable database', async () => {
    // Nothing listens on port 1 of the loopback address, so the connection is refused at once.
    const result = await runInProcess(FIXTURE_FILES, 'mysql://root@127.0.0.1:1/registry');
    expect(result.code).toBe(1);
    expect(result.stderr).toMatch(/the import into mysql:\/\/root@127\.0\.0\.1:1\/registry failed/);
  });

  it('exits 2 for an unknown option', async () => {
    const result = await runCli(['--overwrite', ...FIXTURE_FILES]);
    expect(result.code).toBe(2);
    expect(result.stderr).toMatch(/Unknown option '--overwrite'/);
  });
});
