/**
 * Who lists and who reads which image, on both databases. One table of
 * callers and filters is checked against a small oracle that restates the
 * listing rules. Rules that need their own images follow: the worked example
 * with its counts, hidden, killed and deleted images, the owner filter, inert
 * member rows and removed members.
 */
import { randomUUID } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ImageStatus, Visibility, type Image } from '../../gen/imageregistry/v1/image.js';
import {
  type DeepPartial,
  type ListImagesRequest,
  MemberStatusFilter,
  VisibilityFilter,
} from '../../gen/imageregistry/v1/image_service.js';
import { MemberStatus } from '../../gen/imageregistry/v1/member_service.js';
import { testedBackends } from '../support/databases.js';
import { RegistryHarness, type RegistryClient, failure } from '../support/registry-harness.js';

type VisibilityName = 'public' | 'private' | 'shared' | 'community';
type MemberStatusName = 'pending' | 'accepted' | 'rejected';
type VisibilityChoice = 'unspecified' | VisibilityName | 'all';
type MemberStatusChoice = 'unspecified' | MemberStatusName | 'all';

const VISIBILITIES: VisibilityName[] = ['public', 'private', 'shared', 'community'];
const VISIBILITY_CHOICES: VisibilityChoice[] = ['unspecified', 'public', 'private', 'shared', 'community', 'all'];
const MEMBER_STATUS_CHOICES: MemberStatusChoice[] = ['unspecified', 'pending', 'accepted', 'rejected', 'all'];

const VISIBILITY_ENUM: Record<VisibilityName, Visibility> = {
  public: Visibility.VISIBILITY_PUBLIC,
  private: Visibility.VISIBILITY_PRIVATE,
  shared: Visibility.VISIBILITY_SHARED,
  community: Visibility.VISIBILITY_COMMUNITY,
};

const VISIBILITY_FILTER_ENUM: Record<VisibilityChoice, VisibilityFilter> = {
  unspecified: VisibilityFilter.VISIBILITY_FILTER_UNSPECIFIED,
  public: VisibilityFilter.VISIBILITY_FILTER_PUBLIC,
  private: VisibilityFilter.VISIBILITY_FILTER_PRIVATE,
  shared: VisibilityFilter.VISIBILITY_FILTER_SHARED,
  community: VisibilityFilter.VISIBILITY_FILTER_COMMUNITY,
  all: VisibilityFilter.VISIBILITY_FILTER_ALL,
};

const MEMBER_STATUS_FILTER_ENUM: Record<MemberStatusChoice, MemberStatusFilter> = {
  unspecified: MemberStatusFilter.MEMBER_STATUS_FILTER_UNSPECIFIED,
  pending: MemberStatusFilter.MEMBER_STATUS_FILTER_PENDING,
  accepted: MemberStatusFilter.MEMBER_STATUS_FILTER_ACCEPTED,
  rejected: MemberStatusFilter.MEMBER_STATUS_FILTER_REJECTED,
  all: MemberStatusFilter.MEMBER_STATUS_FILTER_ALL,
};

const MEMBER_STATUS_ENUM: Record<MemberStatusName, MemberStatus> = {
  pending: MemberStatus.MEMBER_STATUS_PENDING,
  accepted: MemberStatus.MEMBER_STATUS_ACCEPTED,
  rejected: MemberStatus.MEMBER_STATUS_REJECTED,
};

interface Caller {
  label: string;
  project: string;
  admin: boolean;
}

/** What the oracle needs to know of one image. */
interface ImageFacts {
  label: string;
  owner: string;
  visibility: VisibilityName;
  /** Member rows by consumer project, including inert rows of non-shared images. */
  members: Map<string, MemberStatusName>;
}

/**
 * Returns the labels of the images a caller lists with these two filters,
 * sorted, as the listing rules state them.
 *
 * A project's candidates are every public and community image, every image
 * it owns, and every shared image on which it has a member row whose status
 * matches the member status filter (accepted when unspecified). An admin's
 * candidates are all images, whatever the member rows. Then the visibility
 * filter applies. Unspecified drops community images that the caller's
 * project does not own, for admins too. All keeps everything, and a single
 * visibility keeps only images of that visibility.
 */
function expectedListing(
  caller: Caller,
  images: readonly ImageFacts[],
  visibility: VisibilityChoice,
  memberStatus: MemberStatusChoice,
): string[] {
  const matchingStatus = memberStatus === 'unspecified' ? 'accepted' : memberStatus;

  const candidates = images.filter((image) => {
    if (caller.admin) return true;
    if (image.visibility === 'public' || image.visibility === 'community') return true;
    if (image.owner === caller.project) return true;
    if (image.visibility !== 'shared') return false;
    const row = image.members.get(caller.project);
    if (row === undefined) return false;
    return matchingStatus === 'all' || row === matchingStatus;
  });

  const listed = candidates.filter((image) => {
    if (visibility === 'all') return true;
    if (visibility === 'unspecified') return image.visibility !== 'community' || image.owner === caller.project;
    return image.visibility === visibility;
  });

  return listed.map((image) => image.label).sort();
}

/**
 * Whether a caller may read an image by id. Admins read every image, and
 * everyone reads public and community images. A project also reads its own
 * images and the shared images on which it has a member row of any status.
 */
function mayRead(caller: Caller, image: ImageFacts): boolean {
  if (caller.admin) return true;
  if (image.visibility === 'public' || image.visibility === 'community') return true;
  if (image.owner === caller.project) return true;
  return image.visibility === 'shared' && image.members.has(caller.project);
}

/**
 * Fetches every page of a listing and returns the images in order. Checks
 * on the way that each page with a next token is full and that no empty page
 * follows a token.
 */
async function listAllPages(
  client: RegistryClient,
  request: DeepPartial<ListImagesRequest>,
  pageSize: number,
): Promise<Image[]> {
  const images: Image[] = [];
  let pageToken = '';
  for (let pageNumber = 1; pageNumber <= 500; pageNumber++) {
    const page = await client.images.listImages({ ...request, pageSize, pageToken });
    images.push(...page.images);
    if (page.nextPageToken === '') {
      if (pageNumber > 1) expect(page.images.length, 'page after a next_page_token is empty').toBeGreaterThan(0);
      return images;
    }
    expect(page.images, `page ${pageNumber} has a next_page_token but is not full`).toHaveLength(pageSize);
    pageToken = page.nextPageToken;
  }
  throw new Error('the listing did not end within 500 pages');
}

function filterRequest(visibility: VisibilityChoice, memberStatus: MemberStatusChoice): DeepPartial<ListImagesRequest> {
  return {
    visibility: VISIBILITY_FILTER_ENUM[visibility],
    memberStatus: MEMBER_STATUS_FILTER_ENUM[memberStatus],
  };
}

/** Checks that images come in the default order: newest first, then by id descending. */
function expectDefaultOrder(images: readonly Image[]): void {
  for (let index = 1; index < images.length; index++) {
    const previous = images[index - 1]!;
    const current = images[index]!;
    const previousTime = previous.createTime!.getTime();
    const currentTime = current.createTime!.getTime();
    const inOrder = previousTime > currentTime || (previousTime === currentTime && previous.id > current.id);
    expect(inOrder, `${previous.id} then ${current.id} is not create_time desc, id desc`).toBe(true);
  }
}

/** Images created by the fixtures, and the clients that created them. */
class Fixture {
  readonly images: ImageFacts[] = [];
  private readonly idByLabel = new Map<string, string>();
  private readonly labelById = new Map<string, string>();
  private readonly clients = new Map<string, RegistryClient>();

  constructor(private readonly registry: RegistryHarness) {}

  async client(caller: Caller): Promise<RegistryClient> {
    const key = `${caller.project}/${caller.admin}`;
    let client = this.clients.get(key);
    if (client === undefined) {
      client = await this.registry.as(caller.project, { admin: caller.admin });
      this.clients.set(key, client);
    }
    return client;
  }

  /**
   * Creates an image of `owner`. Public images are created by an admin that
   * names the owner, because only admins create public images.
   */
  async createImage(label: string, owner: string, visibility: VisibilityName): Promise<string> {
    const creator =
      visibility === 'public'
        ? await this.client({ label: 'admin', project: 'proj-x', admin: true })
        : await this.client({ label: owner, project: owner, admin: false });
    const image = await creator.images.createImage({
      image: { name: label, visibility: VISIBILITY_ENUM[visibility], owner },
    });
    this.images.push({ label, owner, visibility, members: new Map() });
    this.idByLabel.set(label, image.id);
    this.labelById.set(image.id, label);
    return image.id;
  }

  /** Adds `member` to a shared image through its owner, then has the member set its status to `status`. */
  async addMember(label: string, member: string, status: MemberStatusName): Promise<void> {
    const facts = this.facts(label);
    const imageId = this.id(label);
    const owner = await this.client({ label: facts.owner, project: facts.owner, admin: false });
    await owner.members.createMember({ imageId, memberId: member });
    if (status !== 'pending') {
      const consumer = await this.client({ label: member, project: member, admin: false });
      await consumer.members.updateMember({ imageId, memberId: member, status: MEMBER_STATUS_ENUM[status] });
    }
    facts.members.set(member, status);
  }

  /** Changes the visibility of an image through its owner. */
  async setVisibility(label: string, visibility: VisibilityName): Promise<void> {
    const facts = this.facts(label);
    const owner = await this.client({ label: facts.owner, project: facts.owner, admin: false });
    await owner.images.updateImage({
      image: { id: this.id(label), visibility: VISIBILITY_ENUM[visibility] },
      updateMask: ['visibility'],
    });
    facts.visibility = visibility;
  }

  id(label: string): string {
    const id = this.idByLabel.get(label);
    if (id === undefined) throw new Error(`no fixture image is labelled ${label}`);
    return id;
  }

  /** Labels of listed images, sorted; an image from outside the fixture shows as its id. */
  labels(images: readonly Image[]): string[] {
    return images.map((image) => this.labelById.get(image.id) ?? `unknown ${image.id}`).sort();
  }

  private facts(label: string): ImageFacts {
    const facts = this.images.find((image) => image.label === label);
    if (facts === undefined) throw new Error(`no fixture image is labelled ${label}`);
    return facts;
  }
}

const OWNER_A: Caller = { label: 'owner A', project: 'proj-a', admin: false };
const OWNER_B: Caller = { label: 'owner B', project: 'proj-b', admin: false };
const CONSUMER_C: Caller = { label: 'consumer C', project: 'proj-c', admin: false };
const OUTSIDER_D: Caller = { label: 'outsider D', project: 'proj-d', admin: false };
const ADMIN_X: Caller = { label: 'admin of X', project: 'proj-x', admin: true };
const TABLE_CALLERS: Caller[] = [OWNER_A, OWNER_B, CONSUMER_C, OUTSIDER_D, ADMIN_X];

/**
 * Builds the table's images. A, B and the admin's project X own one image of
 * each visibility. C is pending, accepted or rejected on three shared images
 * of A and accepted on a shared image of B. Two more images of A have a member
 * row for C that is inert because the image is no longer shared.
 */
async function buildTableFixture(fixture: Fixture): Promise<void> {
  for (const [letter, owner] of [['A', 'proj-a'], ['B', 'proj-b'], ['X', 'proj-x']] as const) {
    for (const visibility of VISIBILITIES) {
      await fixture.createImage(`${letter} ${visibility}`, owner, visibility);
    }
  }
  for (const status of ['pending', 'accepted', 'rejected'] as const) {
    const label = `A shared, C ${status}`;
    await fixture.createImage(label, 'proj-a', 'shared');
    await fixture.addMember(label, 'proj-c', status);
  }
  await fixture.createImage('B shared, C accepted', 'proj-b', 'shared');
  await fixture.addMember('B shared, C accepted', 'proj-c', 'accepted');

  await fixture.createImage('A private, inert C accepted', 'proj-a', 'shared');
  await fixture.addMember('A private, inert C accepted', 'proj-c', 'accepted');
  await fixture.setVisibility('A private, inert C accepted', 'private');

  await fixture.createImage('A community, inert C pending', 'proj-a', 'shared');
  await fixture.addMember('A community, inert C pending', 'proj-c', 'pending');
  await fixture.setVisibility('A community, inert C pending', 'community');
}

const FILTER_CASES = TABLE_CALLERS.flatMap((caller) =>
  VISIBILITY_CHOICES.flatMap((visibility) =>
    MEMBER_STATUS_CHOICES.map((memberStatus) => [caller.label, visibility, memberStatus] as const),
  ),
);

function callerLabelled(label: string): Caller {
  const caller = TABLE_CALLERS.find((candidate) => candidate.label === label);
  if (caller === undefined) throw new Error(`no caller is labelled ${label}`);
  return caller;
}

describe.each(testedBackends())('listing and reading table on %s', (backend) => {
  let registry: RegistryHarness;
  let fixture: Fixture;

  beforeAll(async () => {
    registry = await RegistryHarness.start(backend);
    fixture = new Fixture(registry);
    await buildTableFixture(fixture);
  });
  afterAll(async () => registry?.stop());

  it.each(FILTER_CASES)(
    '%s lists visibility %s with member status %s',
    async (label, visibility, memberStatus) => {
      const caller = callerLabelled(label);
      const client = await fixture.client(caller);
      const listed = await listAllPages(client, filterRequest(visibility, memberStatus), 2);

      expect(fixture.labels(listed)).toEqual(expectedListing(caller, fixture.images, visibility, memberStatus));
      expect(new Set(listed.map((image) => image.id)).size, 'an image came back twice').toBe(listed.length);
      expectDefaultOrder(listed);
    },
  );

  const CALLER_LABELS = TABLE_CALLERS.map((caller) => caller.label);

  it.each(CALLER_LABELS)('%s reads exactly the images it lists with ALL', async (label) => {
    const caller = callerLabelled(label);
    const client = await fixture.client(caller);
    const listedAll = fixture.labels(await listAllPages(client, filterRequest('all', 'all'), 2));
    const unknownId = randomUUID();
    const unknown = await failure(client.images.getImage({ id: unknownId }));
    expect(unknown.code).toBe('NOT_FOUND');

    const readable: string[] = [];
    for (const image of fixture.images) {
      const id = fixture.id(image.label);
      const read = await client.images.getImage({ id }).catch(() => null);
      if (read !== null) {
        expect(read.id).toBe(id);
        readable.push(image.label);
        continue;
      }
      const denied = await failure(client.images.getImage({ id }));
      expect(denied.code, `GetImage of ${image.label}`).toBe('NOT_FOUND');
      expect(denied.message, `GetImage of ${image.label}`).toBe(unknown.message.replaceAll(unknownId, id));
    }
    readable.sort();

    const allowed = fixture.images.filter((image) => mayRead(caller, image)).map((image) => image.label);
    expect(readable).toEqual(allowed.sort());
    expect(readable).toEqual(listedAll);
  });

  it.each(CALLER_LABELS)('owner filter narrows what %s lists', async (label) => {
    const caller = callerLabelled(label);
    const client = await fixture.client(caller);
    for (const owner of ['proj-a', 'proj-b', 'proj-x']) {
      for (const visibility of VISIBILITY_CHOICES) {
        for (const memberStatus of MEMBER_STATUS_CHOICES) {
          const listed = await listAllPages(client, { ...filterRequest(visibility, memberStatus), owner }, 100);
          const ownedImages = fixture.images.filter((image) => image.owner === owner);
          const expected = expectedListing(caller, ownedImages, visibility, memberStatus);
          expect(fixture.labels(listed), `owner ${owner}, ${visibility}, ${memberStatus}`).toEqual(expected);
        }
      }
    }
  });
});

/** Caller, visibility filter and the number of images listed, as the worked example states them. */
const WORKED_EXAMPLE_CASES: [string, VisibilityChoice, number][] = [
  [CONSUMER_C.label, 'unspecified', 3],
  [CONSUMER_C.label, 'public', 3],
  [CONSUMER_C.label, 'private', 0],
  [CONSUMER_C.label, 'shared', 0],
  [CONSUMER_C.label, 'community', 3],
  [CONSUMER_C.label, 'all', 6],
  [OWNER_A.label, 'unspecified', 6],
  [OWNER_A.label, 'private', 1],
  [OWNER_A.label, 'shared', 1],
  [OWNER_A.label, 'community', 3],
  [OWNER_A.label, 'all', 8],
  [ADMIN_X.label, 'unspecified', 10],
  [ADMIN_X.label, 'all', 12],
];

describe.each(testedBackends())('worked example of the listing rules on %s', (backend) => {
  let registry: RegistryHarness;
  let fixture: Fixture;

  beforeAll(async () => {
    registry = await RegistryHarness.start(backend);
    fixture = new Fixture(registry);
    for (const [letter, owner] of [['A', 'proj-a'], ['B', 'proj-b'], ['X', 'proj-x']] as const) {
      for (const visibility of VISIBILITIES) {
        await fixture.createImage(`${letter} ${visibility}`, owner, visibility);
      }
    }
  });
  afterAll(async () => registry?.stop());

  it.each(WORKED_EXAMPLE_CASES)(
    'example: %s lists with visibility %s exactly %i images',
    async (label, visibility, count) => {
      const caller = callerLabelled(label);
      const client = await fixture.client(caller);
      const listed = await listAllPages(client, filterRequest(visibility, 'unspecified'), 25);

      expect(listed).toHaveLength(count);
      expect(fixture.labels(listed)).toEqual(expectedListing(caller, fixture.images, visibility, 'unspecified'));
    },
  );
});

describe.each(testedBackends())('listing rules with their own images on %s', (backend) => {
  let registry: RegistryHarness;
  let admin: RegistryClient;

  beforeAll(async () => {
    registry = await RegistryHarness.start(backend);
    admin = await registry.as('proj-x', { admin: true });
  });
  afterAll(async () => registry?.stop());

  async function idsListed(client: RegistryClient, request: DeepPartial<ListImagesRequest>): Promise<string[]> {
    const listed = await listAllPages(client, request, 100);
    return listed.map((image) => image.id).sort();
  }

  it('hidden image is listed only with include_hidden', async () => {
    const owner = await registry.as('proj-hide');
    const outsider = await registry.as('proj-hide-outsider');
    const hiddenPublic = await admin.images.createImage({
      image: { name: 'hidden public', visibility: Visibility.VISIBILITY_PUBLIC, owner: 'proj-hide', hidden: true },
    });
    const visiblePublic = await admin.images.createImage({
      image: { name: 'visible public', visibility: Visibility.VISIBILITY_PUBLIC, owner: 'proj-hide' },
    });
    const hiddenPrivate = await owner.images.createImage({
      image: { name: 'hidden private', visibility: Visibility.VISIBILITY_PRIVATE, hidden: true },
    });
    const ids = [hiddenPublic.id, visiblePublic.id, hiddenPrivate.id];
    const all = { visibility: VisibilityFilter.VISIBILITY_FILTER_ALL, ids };

    expect(await idsListed(owner, { ids })).toEqual([visiblePublic.id]);
    expect(await idsListed(owner, { ids, includeHidden: true })).toEqual(ids.slice().sort());
    expect(await idsListed(outsider, { ids })).toEqual([visiblePublic.id]);
    expect(await idsListed(outsider, { ids, includeHidden: true })).toEqual([hiddenPublic.id, visiblePublic.id].sort());
    expect(await idsListed(admin, all)).toEqual([visiblePublic.id]);
    expect(await idsListed(admin, { ...all, includeHidden: true })).toEqual(ids.slice().sort());
  });

  it('hidden image stays readable by id', async () => {
    const owner = await registry.as('proj-hide-read');
    const outsider = await registry.as('proj-hide-read-outsider');
    const hiddenPublic = await admin.images.createImage({
      image: { name: 'hidden public', visibility: Visibility.VISIBILITY_PUBLIC, owner: 'proj-hide-read', hidden: true },
    });
    const hiddenShared = await owner.images.createImage({ image: { name: 'hidden shared', hidden: true } });

    expect((await owner.images.getImage({ id: hiddenPublic.id })).hidden).toBe(true);
    expect((await outsider.images.getImage({ id: hiddenPublic.id })).hidden).toBe(true);
    expect((await owner.images.getImage({ id: hiddenShared.id })).hidden).toBe(true);
    expect((await admin.images.getImage({ id: hiddenShared.id })).hidden).toBe(true);
  });

  it('killed and deleted images are never listed', async () => {
    const owner = await registry.as('proj-dead');
    const outsider = await registry.as('proj-dead-outsider');
    const createPublic = (name: string) =>
      admin.images.createImage({ image: { name, visibility: Visibility.VISIBILITY_PUBLIC, owner: 'proj-dead' } });
    const killed = await createPublic('killed');
    const deletedThroughApi = await createPublic('deleted through the API');
    const deletedInStore = await createPublic('deleted in the store');
    const alive = await createPublic('alive');
    const knex = registry.service.database.knex;
    await knex('images').update({ status: 'killed' }).where('id', killed.id);
    await knex('images').update({ status: 'deleted' }).where('id', deletedInStore.id);
    await owner.images.deleteImage({ id: deletedThroughApi.id });
    const ids = [killed.id, deletedThroughApi.id, deletedInStore.id, alive.id];

    const requests: DeepPartial<ListImagesRequest>[] = [
      { ids },
      {
        ids,
        visibility: VisibilityFilter.VISIBILITY_FILTER_ALL,
        memberStatus: MemberStatusFilter.MEMBER_STATUS_FILTER_ALL,
      },
      { ids, visibility: VisibilityFilter.VISIBILITY_FILTER_PUBLIC, includeHidden: true },
      { owner: 'proj-dead', visibility: VisibilityFilter.VISIBILITY_FILTER_ALL, includeHidden: true },
    ];
    for (const client of [owner, outsider, admin]) {
      for (const request of requests) {
        expect(await idsListed(client, request)).toEqual([alive.id]);
      }
      for (const status of [ImageStatus.IMAGE_STATUS_KILLED, ImageStatus.IMAGE_STATUS_DELETED]) {
        const request = { ids, status, visibility: VisibilityFilter.VISIBILITY_FILTER_ALL, includeHidden: true };
        expect(await idsListed(client, request)).toEqual([]);
      }
    }
  });

  it('killed image stays readable and deleted image is not found', async () => {
    const owner = await registry.as('proj-dead-read');
    const killed = await owner.images.createImage({ image: { name: 'killed' } });
    const deleted = await owner.images.createImage({ image: { name: 'deleted' } });
    const knex = registry.service.database.knex;
    await knex('images').update({ status: 'killed' }).where('id', killed.id);
    await owner.images.deleteImage({ id: deleted.id });

    expect((await owner.images.getImage({ id: killed.id })).status).toBe(ImageStatus.IMAGE_STATUS_KILLED);
    expect((await admin.images.getImage({ id: killed.id })).status).toBe(ImageStatus.IMAGE_STATUS_KILLED);
    for (const client of [owner, admin]) {
      const unknownId = randomUUID();
      const unknown = await failure(client.images.getImage({ id: unknownId }));
      const deletedRead = await failure(client.images.getImage({ id: deleted.id }));
      expect(deletedRead.code).toBe('NOT_FOUND');
      expect(deletedRead.message).toBe(unknown.message.replaceAll(unknownId, deleted.id));
    }
  });

  it('owner filter applies after the visibility rules', async () => {
    const owner = await registry.as('proj-own');
    const other = await registry.as('proj-own-other');
    const publicImage = await admin.images.createImage({
      image: { name: 'public', visibility: Visibility.VISIBILITY_PUBLIC, owner: 'proj-own' },
    });
    const community = await owner.images.createImage({
      image: { name: 'community', visibility: Visibility.VISIBILITY_COMMUNITY },
    });
    await owner.images.createImage({ image: { name: 'private', visibility: Visibility.VISIBILITY_PRIVATE } });
    const shared = await owner.images.createImage({ image: { name: 'shared' } });
    const pending = await owner.images.createImage({ image: { name: 'shared, other pending' } });
    await owner.members.createMember({ imageId: pending.id, memberId: 'proj-own-other' });

    const byOwner = (
      visibility: VisibilityFilter,
      memberStatus = MemberStatusFilter.MEMBER_STATUS_FILTER_UNSPECIFIED,
    ) => idsListed(other, { owner: 'proj-own', visibility, memberStatus });
    expect(await byOwner(VisibilityFilter.VISIBILITY_FILTER_UNSPECIFIED)).toEqual([publicImage.id]);
    expect(await byOwner(VisibilityFilter.VISIBILITY_FILTER_ALL)).toEqual([publicImage.id, community.id].sort());
    expect(await byOwner(VisibilityFilter.VISIBILITY_FILTER_PRIVATE)).toEqual([]);
    expect(await byOwner(VisibilityFilter.VISIBILITY_FILTER_SHARED)).toEqual([]);
    expect(
      await byOwner(VisibilityFilter.VISIBILITY_FILTER_SHARED, MemberStatusFilter.MEMBER_STATUS_FILTER_PENDING),
    ).toEqual([pending.id]);

    const adminDefault = await idsListed(admin, { owner: 'proj-own' });
    expect(adminDefault).not.toContain(community.id);
    expect(adminDefault).toContain(shared.id);
    const adminAll = await idsListed(admin, { owner: 'proj-own', visibility: VisibilityFilter.VISIBILITY_FILTER_ALL });
    expect(adminAll).toHaveLength(5);
  });

  it('member rows of a non-shared image grant nothing until it is shared again', async () => {
    const owner = await registry.as('proj-inert');
    const accepting = await registry.as('proj-inert-accepting');
    const rejecting = await registry.as('proj-inert-rejecting');
    const image = await owner.images.createImage({ image: { name: 'shared then private' } });
    await owner.members.createMember({ imageId: image.id, memberId: 'proj-inert-accepting' });
    await owner.members.createMember({ imageId: image.id, memberId: 'proj-inert-rejecting' });
    await accepting.members.updateMember({
      imageId: image.id,
      memberId: 'proj-inert-accepting',
      status: MemberStatus.MEMBER_STATUS_ACCEPTED,
    });
    await rejecting.members.updateMember({
      imageId: image.id,
      memberId: 'proj-inert-rejecting',
      status: MemberStatus.MEMBER_STATUS_REJECTED,
    });
    const ids = [image.id];
    const everything = {
      ids,
      visibility: VisibilityFilter.VISIBILITY_FILTER_ALL,
      memberStatus: MemberStatusFilter.MEMBER_STATUS_FILTER_ALL,
    };
    const setVisibility = (visibility: Visibility) =>
      owner.images.updateImage({ image: { id: image.id, visibility }, updateMask: ['visibility'] });

    await setVisibility(Visibility.VISIBILITY_PRIVATE);
    for (const consumer of [accepting, rejecting]) {
      expect(await idsListed(consumer, everything)).toEqual([]);
      expect((await failure(consumer.images.getImage({ id: image.id }))).code).toBe('NOT_FOUND');
      const memberRow = await failure(
        consumer.members.getMember({ imageId: image.id, memberId: 'proj-inert-accepting' }),
      );
      expect(memberRow.code).toBe('NOT_FOUND');
    }

    // A community image is readable by everyone and listed for other
    // projects only with visibility COMMUNITY or ALL, whatever the status
    // of their inert rows.
    await setVisibility(Visibility.VISIBILITY_COMMUNITY);
    expect(await idsListed(accepting, { ids })).toEqual([]);
    expect(await idsListed(accepting, everything)).toEqual(ids);
    const sharedAnyStatus = {
      ids,
      visibility: VisibilityFilter.VISIBILITY_FILTER_SHARED,
      memberStatus: MemberStatusFilter.MEMBER_STATUS_FILTER_ALL,
    };
    expect(await idsListed(accepting, sharedAnyStatus)).toEqual([]);

    await setVisibility(Visibility.VISIBILITY_SHARED);
    expect(await idsListed(accepting, { ids })).toEqual(ids);
    expect(await idsListed(rejecting, { ids })).toEqual([]);
    const rejectedOnly = { ids, memberStatus: MemberStatusFilter.MEMBER_STATUS_FILTER_REJECTED };
    expect(await idsListed(rejecting, rejectedOnly)).toEqual(ids);
    expect((await rejecting.images.getImage({ id: image.id })).id).toBe(image.id);
    const acceptedRow = await accepting.members.getMember({ imageId: image.id, memberId: 'proj-inert-accepting' });
    expect(acceptedRow.status).toBe(MemberStatus.MEMBER_STATUS_ACCEPTED);
    const rejectedRow = await owner.members.getMember({ imageId: image.id, memberId: 'proj-inert-rejecting' });
    expect(rejectedRow.status).toBe(MemberStatus.MEMBER_STATUS_REJECTED);
  });

  it('removing a member takes listing and reading away at once', async () => {
    const owner = await registry.as('proj-remove');
    const accepted = await registry.as('proj-remove-accepted');
    const pending = await registry.as('proj-remove-pending');
    const image = await owner.images.createImage({ image: { name: 'shared' } });
    await owner.members.createMember({ imageId: image.id, memberId: 'proj-remove-accepted' });
    await owner.members.createMember({ imageId: image.id, memberId: 'proj-remove-pending' });
    await accepted.members.updateMember({
      imageId: image.id,
      memberId: 'proj-remove-accepted',
      status: MemberStatus.MEMBER_STATUS_ACCEPTED,
    });
    const ids = [image.id];
    const anyStatus = { ids, memberStatus: MemberStatusFilter.MEMBER_STATUS_FILTER_ALL };
    expect(await idsListed(accepted, { ids })).toEqual(ids);
    expect(await idsListed(pending, anyStatus)).toEqual(ids);
    expect((await pending.images.getImage({ id: image.id })).id).toBe(image.id);

    const unknownId = randomUUID();
    for (const [memberId, consumer] of [
      ['proj-remove-accepted', accepted],
      ['proj-remove-pending', pending],
    ] as const) {
      await owner.members.deleteMember({ imageId: image.id, memberId });

      expect(await idsListed(consumer, anyStatus)).toEqual([]);
      const unknown = await failure(consumer.images.getImage({ id: unknownId }));
      const removed = await failure(consumer.images.getImage({ id: image.id }));
      expect(removed.code).toBe('NOT_FOUND');
      expect(removed.message).toBe(unknown.message.replaceAll(unknownId, image.id));
    }
  });
});
