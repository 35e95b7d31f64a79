/**
 * ListImages filters, page sizes, page tokens and sort orders, on both
 * databases. Each suite keeps its images apart by project, so that a
 * caller's listing holds only the images its test created.
 */
import { randomUUID } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ImageStatus, Visibility, type Image } from '../../gen/imageregistry/v1/image.js';
import {
  type DeepPartial,
  type ListImagesRequest,
  type ListImagesResponse,
  MemberStatusFilter,
  VisibilityFilter,
} from '../../gen/imageregistry/v1/image_service.js';
import { MemberStatus } from '../../gen/imageregistry/v1/member_service.js';
import { testedBackends } from '../support/databases.js';
import { RegistryHarness, type RegistryClient, failure } from '../support/registry-harness.js';

type ListRequest = DeepPartial<ListImagesRequest>;

/**
 * Fetches every page of a listing and returns the pages. Fails when a page
 * with a next token is not full, or when a page after a token is empty.
 */
async function listPages(
  client: RegistryClient,
  request: ListRequest,
  pageSize: number,
): Promise<ListImagesResponse[]> {
  const pages: ListImagesResponse[] = [];
  let pageToken = '';
  for (let pageNumber = 1; pageNumber <= 500; pageNumber++) {
    const page = await client.images.listImages({ ...request, pageSize, pageToken });
    pages.push(page);
    if (page.nextPageToken === '') {
      if (pageNumber > 1) expect(page.images.length, 'page after a next_page_token is empty').toBeGreaterThan(0);
      return pages;
    }
    expect(page.images, `page ${pageNumber} has a next_page_token but is not full`).toHaveLength(pageSize);
    pageToken = page.nextPageToken;
  }
  throw new Error('the listing did not end within 500 pages');
}

async function listAll(client: RegistryClient, request: ListRequest = {}, pageSize = 100): Promise<Image[]> {
  return (await listPages(client, request, pageSize)).flatMap((page) => page.images);
}

function expectNoDuplicates(images: readonly Image[]): void {
  const ids = images.map((image) => image.id);
  expect(new Set(ids).size, `duplicates in ${ids.join(', ')}`).toBe(ids.length);
}

/** Negative when `a` comes first by Unicode code point, as the databases compare text. */
function compareCodePoints(a: string, b: string): number {
  const left = [...a];
  const right = [...b];
  for (let index = 0; index < Math.min(left.length, right.length); index++) {
    const difference = left[index]!.codePointAt(0)! - right[index]!.codePointAt(0)!;
    if (difference !== 0) return difference;
  }
  return left.length - right.length;
}

function compareBigInts(a: bigint, b: bigint): number {
  if (a < b) return -1;
  if (a > b) return 1;
  return 0;
}

/**
 * Compares two images on one sort field in ascending order: text by code
 * point, status by its enum name, times in milliseconds, and an unset size
 * below every set size.
 */
function compareOnField(a: Image, b: Image, field: string): number {
  switch (field) {
    case 'name':
      return compareCodePoints(a.name, b.name);
    case 'status':
      return compareCodePoints(ImageStatus[a.status], ImageStatus[b.status]);
    case 'create_time':
      return a.createTime!.getTime() - b.createTime!.getTime();
    case 'update_time':
      return a.updateTime!.getTime() - b.updateTime!.getTime();
    case 'size':
      return compareBigInts(
        a.size === undefined ? -1n : BigInt(a.size),
        b.size === undefined ? -1n : BigInt(b.size),
      );
    case 'owner':
      return compareCodePoints(a.owner, b.owner);
    case 'id':
      return compareCodePoints(a.id, b.id);
    default:
      throw new Error(`the test has no comparison for sort field ${field}`);
  }
}

/**
 * Sorts images in the order that a valid order_by names: each field
 * ascending or descending, then id in the direction of the last field
 * unless id is one of the fields.
 */
function sortAsOrderBy(images: readonly Image[], orderBy: string): Image[] {
  const keys = orderBy.split(',').map((part) => {
    const [field, direction] = part.trim().split(/\s+/);
    return { field: field!, descending: direction === 'desc' };
  });
  if (!keys.some((key) => key.field === 'id')) {
    keys.push({ field: 'id', descending: keys[keys.length - 1]!.descending });
  }
  return [...images].sort((a, b) => {
    for (const key of keys) {
      const order = compareOnField(a, b, key.field);
      if (order !== 0) return key.descending ? -order : order;
    }
    return 0;
  });
}

function idsOf(images: readonly Image[]): string[] {
  return images.map((image) => image.id);
}

describe.each(testedBackends())('list filters on %s', (backend) => {
  let registry: RegistryHarness;
  let owner: RegistryClient;
  let admin: RegistryClient;
  /** Fixture image ids by label, and labels by id. */
  const ids = new Map<string, string>();
  const labels = new Map<string, string>();
  /** update_time given to each labelled image, in epoch milliseconds. */
  const updateTimes = new Map<string, number>();

  function id(label: string): string {
    const value = ids.get(label);
    if (value === undefined) throw new Error(`no fixture image is labelled ${label}`);
    return value;
  }

  async function listLabels(client: RegistryClient, request: ListRequest): Promise<string[]> {
    const images = await listAll(client, request, 2);
    expectNoDuplicates(images);
    return images.map((image) => labels.get(image.id) ?? `unknown ${image.id}`).sort();
  }

  beforeAll(async () => {
    registry = await RegistryHarness.start(backend);
    owner = await registry.as('proj-f');
    admin = await registry.as('proj-x', { admin: true });
    const foreign = await registry.as('proj-g');

    const fixtures: [string, RegistryClient, DeepPartial<Image>][] = [
      ['alpha', owner, {
        name: 'alpha', tags: ['red', 'blue'], properties: new Map([['os', 'linux'], ['arch', 'x86_64']]),
        containerFormat: 'bare', diskFormat: 'qcow2',
      }],
      ['Alpha', owner, {
        name: 'Alpha', tags: ['red'], properties: new Map([['os', 'linux']]), containerFormat: 'ovf', diskFormat: 'raw',
      }],
      ['beta', owner, {
        name: 'beta', tags: ['blue'], properties: new Map([['os', 'windows'], ['os_family', 'linux']]),
        containerFormat: 'bare', diskFormat: 'raw',
      }],
      ['alpha with a trailing space', owner, {
        name: 'alpha ', properties: new Map([['os', 'linux ']]), containerFormat: 'docker', diskFormat: 'iso',
      }],
      ['hidden alpha', owner, {
        name: 'alpha', hidden: true, tags: ['red'], properties: new Map([['os', 'linux']]),
        containerFormat: 'bare', diskFormat: 'qcow2',
      }],
      ['active gamma', owner, { name: 'gamma' }],
      ['foreign private alpha', foreign, {
        name: 'alpha', visibility: Visibility.VISIBILITY_PRIVATE, tags: ['red'],
        properties: new Map([['os', 'linux']]), containerFormat: 'bare', diskFormat: 'qcow2',
      }],
    ];
    const knex = registry.service.database.knex;
    const base = Date.now() - 60_000;
    for (const [index, [label, client, image]] of fixtures.entries()) {
      const created = await client.images.createImage({ image });
      ids.set(label, created.id);
      labels.set(created.id, label);
      // Distinct update times one millisecond apart, in fixture order.
      updateTimes.set(label, base + index);
      await knex('images').update({ update_time: base + index }).where('id', created.id);
    }
    await knex('images').update({ status: 'active' }).where('id', id('active gamma'));
  });
  afterAll(async () => registry?.stop());

  it('owner filter keeps only that project', async () => {
    const visibleOwnImages = ['Alpha', 'active gamma', 'alpha', 'alpha with a trailing space', 'beta'];
    expect(await listLabels(owner, {})).toEqual(visibleOwnImages);
    expect(await listLabels(owner, { owner: 'proj-f' })).toEqual(visibleOwnImages);
    expect(await listLabels(owner, { owner: 'proj-g' })).toEqual([]);
    expect(await listLabels(owner, { owner: 'PROJ-F' })).toEqual([]);
    expect(await listLabels(admin, { owner: 'proj-g' })).toEqual(['foreign private alpha']);
  });

  it('name filter is exact and case-sensitive', async () => {
    expect(await listLabels(owner, { name: 'alpha' })).toEqual(['alpha']);
    expect(await listLabels(owner, { name: 'Alpha' })).toEqual(['Alpha']);
    expect(await listLabels(owner, { name: 'ALPHA' })).toEqual([]);
    expect(await listLabels(owner, { name: 'alph' })).toEqual([]);
    expect(await listLabels(owner, { name: 'alpha ' })).toEqual(['alpha with a trailing space']);
    expect(await listLabels(owner, { name: 'alpha', includeHidden: true })).toEqual(['alpha', 'hidden alpha']);
    expect(await listLabels(admin, { name: 'alpha' })).toEqual(['alpha', 'foreign private alpha']);
  });

  it('status filter keeps only that status', async () => {
    expect(await listLabels(owner, { status: ImageStatus.IMAGE_STATUS_ACTIVE })).toEqual(['active gamma']);
    expect(await listLabels(owner, { status: ImageStatus.IMAGE_STATUS_QUEUED })).toEqual([
      'Alpha',
      'alpha',
      'alpha with a trailing space',
      'beta',
    ]);
    expect(await listLabels(owner, { status: ImageStatus.IMAGE_STATUS_DEACTIVATED })).toEqual([]);
  });

  it('tags filter needs every tag', async () => {
    expect(await listLabels(owner, { tags: ['red'] })).toEqual(['Alpha', 'alpha']);
    expect(await listLabels(owner, { tags: ['blue'] })).toEqual(['alpha', 'beta']);
    expect(await listLabels(owner, { tags: ['red', 'blue'] })).toEqual(['alpha']);
    expect(await listLabels(owner, { tags: ['blue', 'red', 'red'] })).toEqual(['alpha']);
    expect(await listLabels(owner, { tags: ['red', 'green'] })).toEqual([]);
    expect(await listLabels(owner, { tags: ['red'], includeHidden: true })).toEqual(['Alpha', 'alpha', 'hidden alpha']);
  });

  it('properties filter needs every pair exactly', async () => {
    const withProperties = (entries: [string, string][]) => listLabels(owner, { properties: new Map(entries) });
    expect(await withProperties([['os', 'linux']])).toEqual(['Alpha', 'alpha']);
    expect(await withProperties([['os', 'linux'], ['arch', 'x86_64']])).toEqual(['alpha']);
    expect(await withProperties([['os', 'windows'], ['arch', 'x86_64']])).toEqual([]);
    expect(await withProperties([['os', 'Linux']])).toEqual([]);
    expect(await withProperties([['os', 'lin']])).toEqual([]);
    expect(await withProperties([['os', 'linux ']])).toEqual(['alpha with a trailing space']);
    expect(await withProperties([['os_family', 'linux']])).toEqual(['beta']);
    expect(await withProperties([['arch', 'linux']])).toEqual([]);
  });

  it('format filters match exactly', async () => {
    expect(await listLabels(owner, { containerFormat: 'bare' })).toEqual(['alpha', 'beta']);
    expect(await listLabels(owner, { diskFormat: 'raw' })).toEqual(['Alpha', 'beta']);
    expect(await listLabels(owner, { containerFormat: 'bare', diskFormat: 'raw' })).toEqual(['beta']);
    expect(await listLabels(owner, { containerFormat: 'ova' })).toEqual([]);
  });

  it('ids filter keeps only listed ids the caller sees', async () => {
    expect(await listLabels(owner, { ids: [id('alpha'), id('beta')] })).toEqual(['alpha', 'beta']);
    expect(await listLabels(owner, { ids: [id('alpha').toUpperCase(), id('beta')] })).toEqual(['alpha', 'beta']);
    expect(await listLabels(owner, { ids: [id('alpha'), id('foreign private alpha')] })).toEqual(['alpha']);
    expect(await listLabels(owner, { ids: [id('hidden alpha')] })).toEqual([]);
    expect(await listLabels(owner, { ids: [id('hidden alpha')], includeHidden: true })).toEqual(['hidden alpha']);
    expect(await listLabels(owner, { ids: [randomUUID()] })).toEqual([]);
  });

  it('ids filter takes at most 100 ids', async () => {
    const hundred = [id('beta'), ...Array.from({ length: 99 }, () => randomUUID())];
    expect(await listLabels(owner, { ids: hundred })).toEqual(['beta']);

    const tooMany = await failure(owner.images.listImages({ ids: [...hundred, randomUUID()] }));
    expect(tooMany.code).toBe('INVALID_ARGUMENT');
    expect(tooMany.message).toContain('ids');
  });

  it('malformed id in the ids filter is INVALID_ARGUMENT', async () => {
    for (const malformed of ['not-a-uuid', '', `${id('alpha')}0`, `{${id('alpha')}}`]) {
      const rejected = await failure(owner.images.listImages({ ids: [id('alpha'), malformed] }));
      expect(rejected.code, JSON.stringify(malformed)).toBe('INVALID_ARGUMENT');
      expect(rejected.message, JSON.stringify(malformed)).toContain('ids');
    }
  });

  it('updated_after keeps images updated strictly later', async () => {
    const visibleLabels = ['alpha', 'Alpha', 'beta', 'alpha with a trailing space', 'active gamma'];
    for (const [label, time] of updateTimes) {
      const expected = visibleLabels.filter((candidate) => updateTimes.get(candidate)! > time).sort();
      expect(await listLabels(owner, { updatedAfter: new Date(time) }), `after ${label}`).toEqual(expected);
    }
    const first = updateTimes.get('alpha')!;
    expect(await listLabels(owner, { updatedAfter: new Date(first - 1) })).toEqual([...visibleLabels].sort());
  });

  it('updated_after sees an image once it changes', async () => {
    const toucher = await registry.as('proj-touch');
    const image = await toucher.images.createImage({ image: { name: 'before' } });
    const since = new Date(image.updateTime!.getTime());
    expect(await listAll(toucher, { updatedAfter: since })).toEqual([]);

    await new Promise((resolve) => setTimeout(resolve, 5));
    await toucher.images.updateImage({ image: { id: image.id, name: 'after' }, updateMask: ['name'] });
    expect(idsOf(await listAll(toucher, { updatedAfter: since }))).toEqual([image.id]);
  });

  it('include_hidden lists hidden images as well', async () => {
    const withHidden = await listLabels(owner, { includeHidden: true });
    expect(withHidden).toEqual([
      'Alpha',
      'active gamma',
      'alpha',
      'alpha with a trailing space',
      'beta',
      'hidden alpha',
    ]);
  });

  it('filters combine with AND', async () => {
    const request: ListRequest = {
      name: 'alpha',
      tags: ['red'],
      containerFormat: 'bare',
      diskFormat: 'qcow2',
      properties: new Map([['os', 'linux']]),
      includeHidden: true,
    };
    expect(await listLabels(owner, request)).toEqual(['alpha', 'hidden alpha']);
    expect(await listLabels(owner, { ...request, properties: new Map([['arch', 'x86_64']]) })).toEqual(['alpha']);
    expect(await listLabels(owner, { ...request, tags: ['red', 'blue'], includeHidden: false })).toEqual(['alpha']);
    expect(await listLabels(owner, { ...request, status: ImageStatus.IMAGE_STATUS_ACTIVE })).toEqual([]);
  });
});

describe.each(testedBackends())('list paging on %s', (backend) => {
  let registry: RegistryHarness;

  beforeAll(async () => {
    registry = await RegistryHarness.start(backend);
  });
  afterAll(async () => registry?.stop());

  /** Creates `count` images of the caller's project, named by number. */
  async function createImages(client: RegistryClient, count: number, prefix = 'image'): Promise<Image[]> {
    const images: Image[] = [];
    for (let index = 0; index < count; index++) {
      const name = `${prefix}-${String(index).padStart(4, '0')}`;
      images.push(await client.images.createImage({ image: { name } }));
    }
    return images;
  }

  it('page size defaults to 25', async () => {
    const client = await registry.as('proj-default-size');
    const created = await createImages(client, 30);

    const first = await client.images.listImages({});
    expect(first.images).toHaveLength(25);
    expect(first.nextPageToken).not.toBe('');
    const second = await client.images.listImages({ pageToken: first.nextPageToken });
    expect(second.images).toHaveLength(5);
    expect(second.nextPageToken).toBe('');
    expect(idsOf([...first.images, ...second.images]).sort()).toEqual(idsOf(created).sort());
  });

  it('page size above 1000 is lowered to 1000', async () => {
    const client = await registry.as('proj-bulk');
    const [template] = await createImages(client, 1);
    // Clones of a row that CreateImage wrote, so that 1001 images exist
    // without 1001 calls.
    const knex = registry.service.database.knex;
    const row = (await knex('images').where('id', template!.id).first()) as Record<string, unknown>;
    const clones = Array.from({ length: 1000 }, (_, index) => ({
      ...row,
      id: randomUUID(),
      name: `clone-${index}`,
      create_time: Number(row.create_time) - 1 - index,
    }));
    for (let start = 0; start < clones.length; start += 50) {
      await knex('images').insert(clones.slice(start, start + 50));
    }

    for (const pageSize of [1000, 1001, 5000, 2_147_483_647]) {
      const first = await client.images.listImages({ pageSize });
      expect(first.images, `page_size ${pageSize}`).toHaveLength(1000);
      expect(first.nextPageToken, `page_size ${pageSize}`).not.toBe('');
      const second = await client.images.listImages({ pageSize, pageToken: first.nextPageToken });
      expect(second.images, `page_size ${pageSize}`).toHaveLength(1);
      expect(second.nextPageToken, `page_size ${pageSize}`).toBe('');
    }
  });

  it('negative page size is INVALID_ARGUMENT', async () => {
    const client = await registry.as('proj-negative-size');
    for (const pageSize of [-1, -2_147_483_648]) {
      const rejected = await failure(client.images.listImages({ pageSize }));
      expect(rejected.code, `page_size ${pageSize}`).toBe('INVALID_ARGUMENT');
      expect(rejected.message, `page_size ${pageSize}`).toContain('page_size');
    }
  });

  it('next page token is empty exactly when nothing follows', async () => {
    const client = await registry.as('proj-exact');
    const created = await createImages(client, 4);
    const expectedPages: [number, number[]][] = [
      [1, [1, 1, 1, 1]],
      [2, [2, 2]],
      [3, [3, 1]],
      [4, [4]],
      [5, [4]],
    ];
    for (const [pageSize, sizes] of expectedPages) {
      const pages = await listPages(client, {}, pageSize);
      expect(pages.map((page) => page.images.length), `page_size ${pageSize}`).toEqual(sizes);
      expect(pages.at(-1)!.nextPageToken, `page_size ${pageSize}`).toBe('');
      expect(idsOf(pages.flatMap((page) => page.images)).sort()).toEqual(idsOf(created).sort());
    }

    const empty = await (await registry.as('proj-exact-empty')).images.listImages({ pageSize: 2 });
    expect(empty.images).toEqual([]);
    expect(empty.nextPageToken).toBe('');
  });

  it('page token of another project is INVALID_ARGUMENT', async () => {
    const first = await registry.as('proj-token-first');
    const second = await registry.as('proj-token-second');
    await createImages(first, 3);
    await createImages(second, 3);
    const page = await first.images.listImages({ pageSize: 1 });
    expect(page.nextPageToken).not.toBe('');

    const rejected = await failure(second.images.listImages({ pageSize: 1, pageToken: page.nextPageToken }));
    expect(rejected.code).toBe('INVALID_ARGUMENT');
    expect(rejected.message).toContain('page_token');
  });

  it('page token with another filter or order is INVALID_ARGUMENT', async () => {
    const client = await registry.as('proj-token-bound');
    const created: Image[] = [];
    for (let index = 0; index < 5; index++) {
      created.push(await client.images.createImage({ image: { name: 'same', tags: ['t'] } }));
    }
    const request: ListRequest = { name: 'same', tags: ['t'] };
    const page = await client.images.listImages({ ...request, pageSize: 2 });
    expect(page.nextPageToken).not.toBe('');

    const changes: [string, ListRequest][] = [
      ['another name', { ...request, name: 'other' }],
      ['no name', { tags: ['t'] }],
      ['no tags', { name: 'same' }],
      ['one more tag', { ...request, tags: ['t', 'u'] }],
      ['visibility ALL', { ...request, visibility: VisibilityFilter.VISIBILITY_FILTER_ALL }],
      ['visibility SHARED', { ...request, visibility: VisibilityFilter.VISIBILITY_FILTER_SHARED }],
      ['member status ALL', { ...request, memberStatus: MemberStatusFilter.MEMBER_STATUS_FILTER_ALL }],
      ['owner', { ...request, owner: 'proj-token-bound' }],
      ['status', { ...request, status: ImageStatus.IMAGE_STATUS_QUEUED }],
      ['properties', { ...request, properties: new Map([['k', 'v']]) }],
      ['container format', { ...request, containerFormat: 'bare' }],
      ['disk format', { ...request, diskFormat: 'raw' }],
      ['ids', { ...request, ids: idsOf(created) }],
      ['updated_after', { ...request, updatedAfter: new Date(0) }],
      ['include_hidden', { ...request, includeHidden: true }],
      ['order_by name', { ...request, orderBy: 'name' }],
      ['order_by create_time asc', { ...request, orderBy: 'create_time asc' }],
      ['order_by id desc', { ...request, orderBy: 'id desc' }],
    ];
    for (const [change, changed] of changes) {
      const call = client.images.listImages({ ...changed, pageSize: 2, pageToken: page.nextPageToken });
      const rejected = await failure(call);
      expect(rejected.code, change).toBe('INVALID_ARGUMENT');
      expect(rejected.message, change).toContain('page_token');
    }
  });

  it('page size may change between pages', async () => {
    const client = await registry.as('proj-resize');
    const created = await createImages(client, 9);
    const expected = idsOf(sortAsOrderBy(created, 'create_time desc'));

    const seen: string[] = [];
    let pageToken = '';
    for (const pageSize of [2, 3, 1, 5]) {
      const page = await client.images.listImages({ pageSize, pageToken });
      seen.push(...idsOf(page.images));
      pageToken = page.nextPageToken;
      if (pageToken === '') break;
    }
    expect(pageToken).toBe('');
    expect(seen).toEqual(expected);
  });

  it('garbage page token is INVALID_ARGUMENT', async () => {
    const client = await registry.as('proj-garbage');
    await createImages(client, 3);
    const real = (await client.images.listImages({ pageSize: 1 })).nextPageToken;
    const base64url = (text: string) => Buffer.from(text, 'utf8').toString('base64url');
    const garbage = [
      'garbage',
      '!!!',
      ' ',
      base64url('{}'),
      base64url('null'),
      base64url('[]'),
      base64url('"token"'),
      real.slice(0, real.length - 4),
      Buffer.from(Array.from({ length: 48 }, (_, index) => (index * 37) % 256)).toString('base64url'),
    ];
    for (const pageToken of garbage) {
      const rejected = await failure(client.images.listImages({ pageSize: 1, pageToken }));
      expect(rejected.code, JSON.stringify(pageToken)).toBe('INVALID_ARGUMENT');
      expect(rejected.message, JSON.stringify(pageToken)).toContain('page_token');
    }
  });

  it('paging by name survives inserts and deletes between pages', async () => {
    const client = await registry.as('proj-churn-name');
    const created = await createImages(client, 10, 'n');
    const byName = new Map(created.map((image) => [image.name, image.id]));

    const first = await client.images.listImages({ orderBy: 'name', pageSize: 3 });
    expect(first.images.map((image) => image.name)).toEqual(['n-0000', 'n-0001', 'n-0002']);
    // Delete the row that the token points at and a row not yet seen. Then
    // insert one row before and one after the position of the token.
    await client.images.deleteImage({ id: byName.get('n-0002')! });
    await client.images.deleteImage({ id: byName.get('n-0005')! });
    await client.images.createImage({ image: { name: 'a-before-everything' } });
    await client.images.createImage({ image: { name: 'n-0004a' } });

    const remaining: Image[] = [];
    let pageToken = first.nextPageToken;
    while (pageToken !== '') {
      const page = await client.images.listImages({ orderBy: 'name', pageSize: 3, pageToken });
      remaining.push(...page.images);
      pageToken = page.nextPageToken;
    }
    const seen = [...first.images, ...remaining];
    expectNoDuplicates(seen);
    expect(remaining.map((image) => image.name)).toEqual([
      'n-0003',
      'n-0004',
      'n-0004a',
      'n-0006',
      'n-0007',
      'n-0008',
      'n-0009',
    ]);
  });

  it('paging by create time survives inserts and deletes between pages', async () => {
    const client = await registry.as('proj-churn-time');
    const created = await createImages(client, 10, 't');
    const expectedOrder = sortAsOrderBy(created, 'create_time desc');

    const first = await client.images.listImages({ pageSize: 4 });
    expect(idsOf(first.images)).toEqual(idsOf(expectedOrder.slice(0, 4)));
    const cursor = first.images[3]!;
    const unseen = expectedOrder[6]!;
    await client.images.deleteImage({ id: cursor.id });
    await client.images.deleteImage({ id: unseen.id });
    // Newer than every row, so it sorts before the token's position.
    const inserted = await client.images.createImage({ image: { name: 'newest' } });

    const remaining: Image[] = [];
    let pageToken = first.nextPageToken;
    while (pageToken !== '') {
      const page = await client.images.listImages({ pageSize: 4, pageToken });
      remaining.push(...page.images);
      pageToken = page.nextPageToken;
    }
    expectNoDuplicates([...first.images, ...remaining]);
    expect(idsOf(remaining)).not.toContain(inserted.id);
    const survivors = expectedOrder.slice(4).filter((image) => image.id !== unseen.id);
    expect(idsOf(remaining)).toEqual(idsOf(survivors));
  });

  it('later pages apply the visibility rules afresh', async () => {
    const owner = await registry.as('proj-afresh-owner');
    const consumer = await registry.as('proj-afresh-consumer');
    const shared: Image[] = [];
    for (let index = 0; index < 6; index++) {
      const image = await owner.images.createImage({ image: { name: `shared-${index}` } });
      await owner.members.createMember({ imageId: image.id, memberId: 'proj-afresh-consumer' });
      await consumer.members.updateMember({
        imageId: image.id,
        memberId: 'proj-afresh-consumer',
        status: MemberStatus.MEMBER_STATUS_ACCEPTED,
      });
      shared.push(image);
    }
    const expectedOrder = sortAsOrderBy(shared, 'create_time desc');

    const first = await consumer.images.listImages({ pageSize: 2 });
    expect(idsOf(first.images)).toEqual(idsOf(expectedOrder.slice(0, 2)));
    const removed = expectedOrder[3]!;
    const madePrivate = expectedOrder[4]!;
    await owner.members.deleteMember({ imageId: removed.id, memberId: 'proj-afresh-consumer' });
    await owner.images.updateImage({
      image: { id: madePrivate.id, visibility: Visibility.VISIBILITY_PRIVATE },
      updateMask: ['visibility'],
    });

    const remaining: Image[] = [];
    let pageToken = first.nextPageToken;
    while (pageToken !== '') {
      const page = await consumer.images.listImages({ pageSize: 2, pageToken });
      remaining.push(...page.images);
      pageToken = page.nextPageToken;
    }
    expect(idsOf(remaining)).toEqual([expectedOrder[2]!.id, expectedOrder[5]!.id]);
  });

  it('pages are full although invisible rows lie between visible ones', async () => {
    const reader = await registry.as('proj-dense');
    const stranger = await registry.as('proj-sparse');
    const knex = registry.service.database.knex;
    const keepImages: Image[] = [];
    const listedImages: Image[] = [];
    // Each image that the name filter keeps is followed by rows that other
    // rules drop. These are private images of another project, a hidden
    // image, a killed image and an image with another name.
    for (let index = 0; index < 7; index++) {
      const keep = await reader.images.createImage({ image: { name: 'keep' } });
      keepImages.push(keep);
      listedImages.push(keep);
      for (let strangerIndex = 0; strangerIndex < 3; strangerIndex++) {
        await stranger.images.createImage({ image: { name: 'keep', visibility: Visibility.VISIBILITY_PRIVATE } });
      }
      await reader.images.createImage({ image: { name: 'keep', hidden: true } });
      const killed = await reader.images.createImage({ image: { name: 'keep' } });
      await knex('images').update({ status: 'killed' }).where('id', killed.id);
      listedImages.push(await reader.images.createImage({ image: { name: 'drop' } }));
    }

    for (const pageSize of [1, 2, 3, 4, 6]) {
      for (const orderBy of ['', 'name', 'name desc', 'size']) {
        const context = `page_size ${pageSize}, order_by ${JSON.stringify(orderBy)}`;
        const named = (await listPages(reader, { name: 'keep', orderBy }, pageSize)).flatMap((page) => page.images);
        expect(idsOf(named), context).toEqual(idsOf(sortAsOrderBy(keepImages, orderBy || 'create_time desc')));
        const everything = (await listPages(reader, { orderBy }, pageSize)).flatMap((page) => page.images);
        expect(idsOf(everything), context).toEqual(idsOf(sortAsOrderBy(listedImages, orderBy || 'create_time desc')));
      }
    }
  });
});

describe.each(testedBackends())('list order on %s', (backend) => {
  let registry: RegistryHarness;
  let reader: RegistryClient;
  let images: Image[];

  /** Name, owner, status, size, create_time offset and update_time offset of each image. */
  const ORDER_FIXTURE: [string, string, string, number | null, number, number][] = [
    ['B', 'proj-b', 'queued', null, 3, 0],
    ['a', 'proj-a', 'active', 0, 1, 4],
    ['é', 'proj-c', 'saving', 5, 2, 4],
    ['a', 'proj-A', 'deactivated', 5, 2, 1],
    ['Z', 'proj-b', 'pending_delete', null, 3, 2],
    ['', 'proj-a', 'uploading', 10_000_000_000, 1, 3],
    ['ｚ', 'proj-c', 'importing', 1, 0, 0],
    ['😀', 'proj-A', 'queued', 5, 0, 2],
    ['a ', 'proj-b', 'active', null, 2, 3],
    ['a\t', 'proj-a', 'active', 2 ** 40, 1, 1],
    ['b', 'proj-c', 'deactivated', 7, 3, 4],
  ];

  beforeAll(async () => {
    registry = await RegistryHarness.start(backend);
    const admin = await registry.as('proj-x', { admin: true });
    reader = await registry.as('proj-reader');
    const knex = registry.service.database.knex;
    const base = Date.now() - 60_000;
    for (const [name, owner, status, size, createOffset, updateOffset] of ORDER_FIXTURE) {
      const image = await admin.images.createImage({
        image: { name, owner, visibility: Visibility.VISIBILITY_PUBLIC },
      });
      await knex('images')
        .update({ status, size, create_time: base + createOffset, update_time: base + 10 + updateOffset })
        .where('id', image.id);
    }
    images = await listAll(reader);
    expect(images).toHaveLength(ORDER_FIXTURE.length);
  });
  afterAll(async () => registry?.stop());

  const SINGLE_FIELD_ORDERS = ['name', 'status', 'create_time', 'update_time', 'size', 'owner', 'id'].flatMap(
    (field) => [field, `${field} asc`, `${field} desc`],
  );
  const MULTI_FIELD_ORDERS = [
    'owner, name desc',
    'status desc, size',
    'size desc, name',
    'create_time, update_time desc',
    'update_time desc, owner',
    'name desc, id asc',
    'id desc, name',
    'owner asc, create_time asc, size desc',
  ];

  it.each([...SINGLE_FIELD_ORDERS, ...MULTI_FIELD_ORDERS])('order_by %s sorts every page', async (orderBy) => {
    const expected = idsOf(sortAsOrderBy(images, orderBy));
    for (const pageSize of [1, 3, 100]) {
      const listed = await listAll(reader, { orderBy }, pageSize);
      expect(idsOf(listed), `page_size ${pageSize}`).toEqual(expected);
    }
  });

  it('empty order_by means create_time desc', async () => {
    const expected = idsOf(sortAsOrderBy(images, 'create_time desc'));
    expect(idsOf(await listAll(reader, { orderBy: '' }, 2))).toEqual(expected);
  });

  it('names sort by code point', async () => {
    const names = (await listAll(reader, { orderBy: 'name' }, 2)).map((image) => image.name);
    expect(names).toEqual(['', 'B', 'Z', 'a', 'a', 'a\t', 'a ', 'b', 'é', 'ｚ', '😀']);
  });

  it('unset sizes come first ascending and last descending', async () => {
    const ascending = (await listAll(reader, { orderBy: 'size' }, 2)).map((image) => image.size ?? null);
    expect(ascending).toEqual([null, null, null, '0', '1', '5', '5', '5', '7', '10000000000', '1099511627776']);
    const descending = (await listAll(reader, { orderBy: 'size desc' }, 2)).map((image) => image.size ?? null);
    expect(descending).toEqual([...ascending].reverse());
  });

  it('id breaks ties in the direction of the last field', async () => {
    const sizeFive = idsOf(images.filter((image) => image.size === '5')).sort(compareCodePoints);
    const sizeFiveIn = (ordered: readonly Image[]) => idsOf(ordered).filter((id) => sizeFive.includes(id));

    expect(sizeFiveIn(await listAll(reader, { orderBy: 'size' }, 2))).toEqual(sizeFive);
    expect(sizeFiveIn(await listAll(reader, { orderBy: 'size desc' }, 2))).toEqual([...sizeFive].reverse());
    expect(sizeFiveIn(await listAll(reader, { orderBy: 'name desc, size' }, 2))).toEqual(
      sizeFiveIn(sortAsOrderBy(images, 'name desc, size asc, id asc')),
    );
  });

  it.each([
    'nosuch',
    'name,name',
    'name, size, name desc',
    'name up',
    'name asc desc',
    'Name',
    'name ASC',
    'name,',
    ',name',
    'name desc,',
    'name;size',
    'tags',
    'create_time descending',
  ])('order_by %j is INVALID_ARGUMENT', async (orderBy) => {
    const rejected = await failure(reader.images.listImages({ orderBy }));
    expect(rejected.code).toBe('INVALID_ARGUMENT');
    expect(rejected.message).toContain('order_by');
  });
});
