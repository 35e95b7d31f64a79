/**
 * End-to-end tests of the rules for the members of shared images: who adds,
 * reads, updates and removes them, the member quota under concurrent adds,
 * and paging, through the real server on SQLite and on MySQL.
 */
import { randomUUID } from 'node:crypto';
import { setTimeout as sleep } from 'node:timers/promises';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type Image, Visibility } from '../../gen/imageregistry/v1/image.js';
import { type Member, MemberStatus } from '../../gen/imageregistry/v1/member_service.js';
import { testedBackends } from '../support/databases.js';
import { type RegistryClient, RegistryHarness, failure } from '../support/registry-harness.js';

const NOT_SHARED_MESSAGE = 'only shared images have members';

const MEMBER_STATUSES = [
  MemberStatus.MEMBER_STATUS_PENDING,
  MemberStatus.MEMBER_STATUS_ACCEPTED,
  MemberStatus.MEMBER_STATUS_REJECTED,
];

/** A character outside the Basic Multilingual Plane: one code point, two UTF-16 units. */
const EMOJI = '\u{1F600}';

/** Returns a project id that no other test uses. */
function uniqueProject(label: string): string {
  return `${label}-${randomUUID().slice(0, 8)}`;
}

/** Returns `count` distinct project ids starting with `prefix`. */
function projects(prefix: string, count: number): string[] {
  return Array.from({ length: count }, (_, index) => `${prefix}-${String(index).padStart(3, '0')}`);
}

/** Returns a copy of `members` sorted by create_time, then member_id. */
function sortedByCreateTimeThenMemberId(members: Member[]): Member[] {
  return [...members].sort((a, b) => {
    const byTime = a.createTime!.getTime() - b.createTime!.getTime();
    if (byTime !== 0) return byTime;
    if (a.memberId < b.memberId) return -1;
    if (a.memberId > b.memberId) return 1;
    return 0;
  });
}

/** Splits settled calls into successes and the gRPC codes of the failures. */
async function settle<T>(calls: Promise<T>[]): Promise<{ successes: T[]; codes: string[] }> {
  const results = await Promise.allSettled(calls);
  const successes: T[] = [];
  const codes: string[] = [];
  for (const result of results) {
    if (result.status === 'fulfilled') successes.push(result.value);
    else codes.push((await failure(Promise.reject(result.reason))).code);
  }
  return { successes, codes };
}

/** Builds the helpers that the suites of one backend share. */
function harnessHelpers(getRegistry: () => RegistryHarness) {
  /** Creates clients of a fresh owner project, two fresh consumer projects, an outsider and an admin. */
  async function parties() {
    const registry = getRegistry();
    const ownerProject = uniqueProject('owner');
    const consumerProject = uniqueProject('consumer');
    const secondConsumerProject = uniqueProject('second');
    const outsiderProject = uniqueProject('outsider');
    return {
      ownerProject,
      consumerProject,
      secondConsumerProject,
      outsiderProject,
      owner: await registry.as(ownerProject),
      consumer: await registry.as(consumerProject),
      secondConsumer: await registry.as(secondConsumerProject),
      outsider: await registry.as(outsiderProject),
      admin: await registry.as(uniqueProject('admin'), { admin: true }),
    };
  }

  async function memberRowCount(imageId: string): Promise<number> {
    const knex = getRegistry().service.database.knex;
    const row = await knex('image_members').where('image_id', imageId).count({ count: '*' }).first();
    return Number(row?.count ?? 0);
  }

  /** Reads every member row of an image page by page as `client`. */
  async function listAllMembers(client: RegistryClient, imageId: string, pageSize = 0): Promise<Member[]> {
    const members: Member[] = [];
    let pageToken = '';
    do {
      const page = await client.members.listMembers({ imageId, pageSize, pageToken });
      members.push(...page.members);
      pageToken = page.nextPageToken;
    } while (pageToken !== '');
    return members;
  }

  return { parties, memberRowCount, listAllMembers };
}

describe.each(testedBackends())('member rules on %s', (backend) => {
  let registry: RegistryHarness;
  const { parties, memberRowCount, listAllMembers } = harnessHelpers(() => registry);

  beforeAll(async () => {
    registry = await RegistryHarness.start(backend);
  });
  afterAll(async () => registry?.stop());

  /** Asserts that a call fails exactly as a call on an image id that never existed. */
  async function expectHidden(client: RegistryClient, call: Promise<unknown>, id: string, label?: string): Promise<void> {
    const result = await failure(call);
    const unknownId = randomUUID();
    const unknown = await failure(client.images.getImage({ id: unknownId }));
    expect(result.code, label).toBe('NOT_FOUND');
    expect(result.message, label).toBe(unknown.message.replaceAll(unknownId, id));
  }

  /** Returns every member call on `imageId` as `client`, each with its method name and naming `memberId`. */
  function everyMemberCall(client: RegistryClient, imageId: string, memberId: string): [string, () => Promise<unknown>][] {
    return [
      ['CreateMember', () => client.members.createMember({ imageId, memberId: uniqueProject('new') })],
      ['GetMember', () => client.members.getMember({ imageId, memberId })],
      ['ListMembers', () => client.members.listMembers({ imageId })],
      ['UpdateMember', () => client.members.updateMember({ imageId, memberId, status: MemberStatus.MEMBER_STATUS_ACCEPTED })],
      ['DeleteMember', () => client.members.deleteMember({ imageId, memberId })],
    ];
  }

  describe('image state', () => {
    it('member calls on a non-shared image fail the precondition', async () => {
      const { owner, ownerProject, consumerProject, admin } = await parties();
      const images: Image[] = [
        await owner.images.createImage({ image: { visibility: Visibility.VISIBILITY_PRIVATE } }),
        await owner.images.createImage({ image: { visibility: Visibility.VISIBILITY_COMMUNITY } }),
        await admin.images.createImage({ image: { visibility: Visibility.VISIBILITY_PUBLIC, owner: ownerProject } }),
      ];

      for (const image of images) {
        const label = Visibility[image.visibility];
        for (const [method, call] of everyMemberCall(admin, image.id, consumerProject)) {
          const result = await failure(call());
          if (method === 'GetMember') {
            expect(result.code, `${label} ${method}`).toBe('NOT_FOUND');
          } else {
            expect(result.code, `${label} ${method}`).toBe('FAILED_PRECONDITION');
            expect(result.message, `${label} ${method}`).toContain(NOT_SHARED_MESSAGE);
          }
        }
        const byOwner = await failure(owner.members.createMember({ imageId: image.id, memberId: consumerProject }));
        expect(byOwner.code, label).toBe('FAILED_PRECONDITION');
        expect((await failure(owner.members.listMembers({ imageId: image.id }))).code, label).toBe('FAILED_PRECONDITION');
        expect(await memberRowCount(image.id)).toBe(0);
      }
    });

    it('member rows return when shared again', async () => {
      const { owner, consumer, consumerProject } = await parties();
      const image = await owner.images.createImage({ image: {} });
      await owner.members.createMember({ imageId: image.id, memberId: consumerProject });
      await consumer.members.updateMember({ imageId: image.id, memberId: consumerProject, status: MemberStatus.MEMBER_STATUS_ACCEPTED });

      await owner.images.updateImage({ image: { id: image.id, visibility: Visibility.VISIBILITY_PRIVATE }, updateMask: ['visibility'] });
      await expectHidden(consumer, consumer.images.getImage({ id: image.id }), image.id);
      expect(await memberRowCount(image.id)).toBe(1);

      await owner.images.updateImage({ image: { id: image.id, visibility: Visibility.VISIBILITY_SHARED }, updateMask: ['visibility'] });
      const member = await consumer.members.getMember({ imageId: image.id, memberId: consumerProject });
      expect(member.status).toBe(MemberStatus.MEMBER_STATUS_ACCEPTED);
      expect((await consumer.images.getImage({ id: image.id })).id).toBe(image.id);
    });

    it('every member call on an invisible image is not found', async () => {
      const { owner, consumerProject, outsider, outsiderProject } = await parties();
      const shared = await owner.images.createImage({ image: {} });
      await owner.members.createMember({ imageId: shared.id, memberId: consumerProject });
      const privateImage = await owner.images.createImage({ image: { visibility: Visibility.VISIBILITY_PRIVATE } });

      for (const image of [shared, privateImage]) {
        for (const memberId of [consumerProject, outsiderProject]) {
          for (const [method, call] of everyMemberCall(outsider, image.id, memberId)) {
            await expectHidden(outsider, call(), image.id, `${method} on ${Visibility[image.visibility]} naming ${memberId}`);
          }
        }
      }
      expect(await memberRowCount(shared.id)).toBe(1);
    });

    it('member calls on a deleted image are not found for everyone', async () => {
      const { owner, consumer, consumerProject, admin } = await parties();
      const image = await owner.images.createImage({ image: {} });
      await owner.members.createMember({ imageId: image.id, memberId: consumerProject });
      await owner.images.deleteImage({ id: image.id });

      for (const client of [owner, consumer, admin]) {
        for (const [method, call] of everyMemberCall(client, image.id, consumerProject)) {
          await expectHidden(client, call(), image.id, method);
        }
      }
    });
  });

  describe('adding and removing', () => {
    it('new member row is pending', async () => {
      const { owner, consumerProject } = await parties();
      const image = await owner.images.createImage({ image: {} });

      const member = await owner.members.createMember({ imageId: image.id, memberId: consumerProject });

      expect(member.imageId).toBe(image.id);
      expect(member.memberId).toBe(consumerProject);
      expect(member.status).toBe(MemberStatus.MEMBER_STATUS_PENDING);
      expect(member.createTime).toBeInstanceOf(Date);
      expect(member.updateTime?.getTime()).toBe(member.createTime?.getTime());
      expect(await owner.members.getMember({ imageId: image.id, memberId: consumerProject })).toEqual(member);
    });

    it('admin adds and removes members of another project image', async () => {
      const { owner, consumerProject, admin } = await parties();
      const image = await owner.images.createImage({ image: {} });

      const member = await admin.members.createMember({ imageId: image.id, memberId: consumerProject });
      expect(member.status).toBe(MemberStatus.MEMBER_STATUS_PENDING);

      await admin.members.deleteMember({ imageId: image.id, memberId: consumerProject });
      expect(await memberRowCount(image.id)).toBe(0);
    });

    it('only owner or admin adds members', async () => {
      const { owner, ownerProject, consumer, consumerProject, outsider, admin } = await parties();
      const shared = await owner.images.createImage({ image: {} });
      await owner.members.createMember({ imageId: shared.id, memberId: consumerProject });
      const publicImage = await admin.images.createImage({ image: { visibility: Visibility.VISIBILITY_PUBLIC, owner: ownerProject } });

      const byMember = await failure(consumer.members.createMember({ imageId: shared.id, memberId: uniqueProject('friend') }));
      expect(byMember.code).toBe('PERMISSION_DENIED');
      const byReader = await failure(outsider.members.createMember({ imageId: publicImage.id, memberId: uniqueProject('friend') }));
      expect(byReader.code).toBe('PERMISSION_DENIED');
      expect(await memberRowCount(shared.id)).toBe(1);
      expect(await memberRowCount(publicImage.id)).toBe(0);
    });

    it('only owner or admin removes members', async () => {
      const { owner, ownerProject, consumerProject, secondConsumer, secondConsumerProject, outsider, admin } = await parties();
      const shared = await owner.images.createImage({ image: {} });
      await owner.members.createMember({ imageId: shared.id, memberId: consumerProject });
      await owner.members.createMember({ imageId: shared.id, memberId: secondConsumerProject });
      const publicImage = await admin.images.createImage({ image: { visibility: Visibility.VISIBILITY_PUBLIC, owner: ownerProject } });

      const byMember = await failure(secondConsumer.members.deleteMember({ imageId: shared.id, memberId: consumerProject }));
      expect(byMember.code).toBe('PERMISSION_DENIED');
      const byReader = await failure(outsider.members.deleteMember({ imageId: publicImage.id, memberId: consumerProject }));
      expect(byReader.code).toBe('PERMISSION_DENIED');
      expect(await memberRowCount(shared.id)).toBe(2);

      await owner.members.deleteMember({ imageId: shared.id, memberId: consumerProject });
      expect(await memberRowCount(shared.id)).toBe(1);
    });

    it('consumer cannot remove itself', async () => {
      const { owner, consumer, consumerProject } = await parties();
      const image = await owner.images.createImage({ image: {} });
      await owner.members.createMember({ imageId: image.id, memberId: consumerProject });

      const result = await failure(consumer.members.deleteMember({ imageId: image.id, memberId: consumerProject }));

      expect(result.code).toBe('PERMISSION_DENIED');
      expect((await consumer.members.getMember({ imageId: image.id, memberId: consumerProject })).memberId).toBe(consumerProject);
      const rejected = await consumer.members.updateMember({
        imageId: image.id,
        memberId: consumerProject,
        status: MemberStatus.MEMBER_STATUS_REJECTED,
      });
      expect(rejected.status).toBe(MemberStatus.MEMBER_STATUS_REJECTED);
    });

    it('adding an existing member is ALREADY_EXISTS', async () => {
      const { owner, consumer, consumerProject, admin } = await parties();
      const image = await owner.images.createImage({ image: {} });
      await owner.members.createMember({ imageId: image.id, memberId: consumerProject });
      const accepted = await consumer.members.updateMember({
        imageId: image.id,
        memberId: consumerProject,
        status: MemberStatus.MEMBER_STATUS_ACCEPTED,
      });

      for (const client of [owner, admin]) {
        expect((await failure(client.members.createMember({ imageId: image.id, memberId: consumerProject }))).code).toBe('ALREADY_EXISTS');
      }
      expect(await owner.members.getMember({ imageId: image.id, memberId: consumerProject })).toEqual(accepted);
    });

    it('adding the owner is INVALID_ARGUMENT', async () => {
      const { owner, ownerProject, admin } = await parties();
      const image = await owner.images.createImage({ image: {} });

      for (const client of [owner, admin]) {
        expect((await failure(client.members.createMember({ imageId: image.id, memberId: ownerProject }))).code).toBe('INVALID_ARGUMENT');
      }
      expect(await memberRowCount(image.id)).toBe(0);
    });

    it('adding the owner is checked after access and state', async () => {
      const { owner, ownerProject, consumer, consumerProject, outsider } = await parties();
      const shared = await owner.images.createImage({ image: {} });
      await owner.members.createMember({ imageId: shared.id, memberId: consumerProject });
      const privateImage = await owner.images.createImage({ image: { visibility: Visibility.VISIBILITY_PRIVATE } });

      await expectHidden(outsider, outsider.members.createMember({ imageId: shared.id, memberId: ownerProject }), shared.id);
      const byMember = await failure(consumer.members.createMember({ imageId: shared.id, memberId: ownerProject }));
      expect(byMember.code).toBe('PERMISSION_DENIED');
      const notShared = await failure(owner.members.createMember({ imageId: privateImage.id, memberId: ownerProject }));
      expect(notShared.code).toBe('FAILED_PRECONDITION');
    });

    it('invalid member ids are rejected', async () => {
      const { owner } = await parties();
      const image = await owner.images.createImage({ image: {} });
      const invalidIds = [
        '',
        'a'.repeat(256),
        EMOJI.repeat(256),
        ' leading',
        'trailing ',
        'two words',
        'tab\tinside',
        'line\nbreak',
        'no\u00a0break',
        'line\u2028separator',
        'nul\u0000inside',
        'bell\u0007inside',
        'del\u007finside',
        'c1\u0085inside',
      ];

      for (const memberId of invalidIds) {
        const label = JSON.stringify(memberId);
        expect((await failure(owner.members.createMember({ imageId: image.id, memberId }))).code, label).toBe('INVALID_ARGUMENT');
        expect((await failure(owner.members.getMember({ imageId: image.id, memberId }))).code, label).toBe('INVALID_ARGUMENT');
        const update = await failure(
          owner.members.updateMember({ imageId: image.id, memberId, status: MemberStatus.MEMBER_STATUS_ACCEPTED }),
        );
        expect(update.code, label).toBe('INVALID_ARGUMENT');
        expect((await failure(owner.members.deleteMember({ imageId: image.id, memberId }))).code, label).toBe('INVALID_ARGUMENT');
      }
      expect(await memberRowCount(image.id)).toBe(0);
    });

    it('member id of 255 characters is accepted', async () => {
      const { owner } = await parties();
      const image = await owner.images.createImage({ image: {} });

      for (const memberId of ['a'.repeat(255), EMOJI.repeat(255), 'dotted.name:with-colon_and~tilde']) {
        const member = await owner.members.createMember({ imageId: image.id, memberId });
        expect(member.memberId).toBe(memberId);
        expect((await owner.members.getMember({ imageId: image.id, memberId })).memberId).toBe(memberId);
      }
    });

    it('removing an absent member is NOT_FOUND', async () => {
      const { owner, consumerProject } = await parties();
      const image = await owner.images.createImage({ image: {} });

      const result = await failure(owner.members.deleteMember({ imageId: image.id, memberId: consumerProject }));

      expect(result.code).toBe('NOT_FOUND');
    });

    it('concurrent adds of one member make one row', async () => {
      const { owner, consumerProject } = await parties();

      for (let round = 0; round < 5; round++) {
        const image = await owner.images.createImage({ image: {} });

        const calls = Array.from({ length: 16 }, () => owner.members.createMember({ imageId: image.id, memberId: consumerProject }));
        const { successes, codes } = await settle(calls);

        expect(successes, `round ${round}`).toHaveLength(1);
        expect(codes, `round ${round}`).toEqual(Array(15).fill('ALREADY_EXISTS'));
        expect(await memberRowCount(image.id), `round ${round}`).toBe(1);
      }
    });
  });

  describe('member status', () => {
    it('member changes its own status', async () => {
      const { owner, consumer, consumerProject } = await parties();
      const image = await owner.images.createImage({ image: {} });
      const created = await owner.members.createMember({ imageId: image.id, memberId: consumerProject });
      await sleep(5);

      const accepted = await consumer.members.updateMember({
        imageId: image.id,
        memberId: consumerProject,
        status: MemberStatus.MEMBER_STATUS_ACCEPTED,
      });

      expect(accepted.status).toBe(MemberStatus.MEMBER_STATUS_ACCEPTED);
      expect(accepted.createTime).toEqual(created.createTime);
      expect(accepted.updateTime!.getTime()).toBeGreaterThan(created.updateTime!.getTime());
      expect(await owner.members.getMember({ imageId: image.id, memberId: consumerProject })).toEqual(accepted);
    });

    it('admin changes any member status', async () => {
      const { owner, consumerProject, admin } = await parties();
      const image = await owner.images.createImage({ image: {} });
      await owner.members.createMember({ imageId: image.id, memberId: consumerProject });

      const rejected = await admin.members.updateMember({
        imageId: image.id,
        memberId: consumerProject,
        status: MemberStatus.MEMBER_STATUS_REJECTED,
      });

      expect(rejected.status).toBe(MemberStatus.MEMBER_STATUS_REJECTED);
    });

    it('owner cannot change a member status', async () => {
      const { owner, consumerProject } = await parties();
      const image = await owner.images.createImage({ image: {} });
      const created = await owner.members.createMember({ imageId: image.id, memberId: consumerProject });

      const result = await failure(
        owner.members.updateMember({ imageId: image.id, memberId: consumerProject, status: MemberStatus.MEMBER_STATUS_ACCEPTED }),
      );

      expect(result.code).toBe('PERMISSION_DENIED');
      expect(await owner.members.getMember({ imageId: image.id, memberId: consumerProject })).toEqual(created);
    });

    it('another member cannot see or change a member status', async () => {
      const { owner, consumerProject, secondConsumer, secondConsumerProject } = await parties();
      const image = await owner.images.createImage({ image: {} });
      const created = await owner.members.createMember({ imageId: image.id, memberId: consumerProject });
      await owner.members.createMember({ imageId: image.id, memberId: secondConsumerProject });

      const result = await failure(
        secondConsumer.members.updateMember({
          imageId: image.id,
          memberId: consumerProject,
          status: MemberStatus.MEMBER_STATUS_ACCEPTED,
        }),
      );

      expect(result.code).toBe('NOT_FOUND');
      const unknown = await failure(secondConsumer.members.getMember({ imageId: image.id, memberId: consumerProject }));
      expect(result.message).toBe(unknown.message);
      expect(await owner.members.getMember({ imageId: image.id, memberId: consumerProject })).toEqual(created);
    });

    it('any status changes to any status, the same included', async () => {
      const { owner, consumer, consumerProject } = await parties();
      const image = await owner.images.createImage({ image: {} });
      await owner.members.createMember({ imageId: image.id, memberId: consumerProject });

      for (const from of MEMBER_STATUSES) {
        for (const to of MEMBER_STATUSES) {
          const label = `${MemberStatus[from]} to ${MemberStatus[to]}`;
          await consumer.members.updateMember({ imageId: image.id, memberId: consumerProject, status: from });

          const updated = await consumer.members.updateMember({ imageId: image.id, memberId: consumerProject, status: to });

          expect(updated.status, label).toBe(to);
          expect((await consumer.members.getMember({ imageId: image.id, memberId: consumerProject })).status, label).toBe(to);
        }
      }
    });

    it('unspecified or unknown status is rejected', async () => {
      const { owner, consumer, consumerProject } = await parties();
      const image = await owner.images.createImage({ image: {} });
      const created = await owner.members.createMember({ imageId: image.id, memberId: consumerProject });

      for (const status of [MemberStatus.MEMBER_STATUS_UNSPECIFIED, 4, 99]) {
        const result = await failure(consumer.members.updateMember({ imageId: image.id, memberId: consumerProject, status }));
        expect(result.code, String(status)).toBe('INVALID_ARGUMENT');
      }
      expect(await consumer.members.getMember({ imageId: image.id, memberId: consumerProject })).toEqual(created);
    });

    it('admin changing the status of an absent member is NOT_FOUND', async () => {
      const { owner, admin } = await parties();
      const image = await owner.images.createImage({ image: {} });

      const result = await failure(
        admin.members.updateMember({ imageId: image.id, memberId: uniqueProject('absent'), status: MemberStatus.MEMBER_STATUS_ACCEPTED }),
      );

      expect(result.code).toBe('NOT_FOUND');
      expect(await memberRowCount(image.id)).toBe(0);
    });
  });

  describe('seeing members and access', () => {
    it('owner and admin see every member row', async () => {
      const { owner, admin } = await parties();
      const image = await owner.images.createImage({ image: {} });
      const memberIds = [uniqueProject('m1'), uniqueProject('m2'), uniqueProject('m3')];
      for (const memberId of memberIds) await owner.members.createMember({ imageId: image.id, memberId });

      for (const client of [owner, admin]) {
        const listed = await client.members.listMembers({ imageId: image.id });
        expect(listed.members.map((member) => member.memberId).sort()).toEqual([...memberIds].sort());
        for (const memberId of memberIds) {
          expect((await client.members.getMember({ imageId: image.id, memberId })).memberId).toBe(memberId);
        }
      }
    });

    it('member sees only its own row', async () => {
      const { owner, consumer, consumerProject, secondConsumerProject } = await parties();
      const image = await owner.images.createImage({ image: {} });
      await owner.members.createMember({ imageId: image.id, memberId: secondConsumerProject });
      await owner.members.createMember({ imageId: image.id, memberId: consumerProject });
      await owner.members.createMember({ imageId: image.id, memberId: uniqueProject('third') });

      const listed = await consumer.members.listMembers({ imageId: image.id });
      expect(listed.members.map((member) => member.memberId)).toEqual([consumerProject]);
      expect(listed.nextPageToken).toBe('');
      expect((await consumer.members.getMember({ imageId: image.id, memberId: consumerProject })).memberId).toBe(consumerProject);

      const other = await failure(consumer.members.getMember({ imageId: image.id, memberId: secondConsumerProject }));
      expect(other.code).toBe('NOT_FOUND');
      const absent = await failure(consumer.members.getMember({ imageId: image.id, memberId: uniqueProject('absent') }));
      expect(other.message).toBe(absent.message.replace(/member "[^"]*"/, `member "${secondConsumerProject}"`));
    });

    it('pending or rejected member can still read the image', async () => {
      const { owner, consumer, consumerProject } = await parties();
      const image = await owner.images.createImage({ image: { name: 'shared' } });
      await owner.members.createMember({ imageId: image.id, memberId: consumerProject });

      for (const status of [...MEMBER_STATUSES, MemberStatus.MEMBER_STATUS_PENDING]) {
        await consumer.members.updateMember({ imageId: image.id, memberId: consumerProject, status });
        expect((await consumer.images.getImage({ id: image.id })).name, MemberStatus[status]).toBe('shared');
      }
    });

    it('removing a member takes read access away at once', async () => {
      const { owner, consumer, consumerProject } = await parties();
      const image = await owner.images.createImage({ image: {} });
      await owner.members.createMember({ imageId: image.id, memberId: consumerProject });
      await consumer.members.updateMember({ imageId: image.id, memberId: consumerProject, status: MemberStatus.MEMBER_STATUS_ACCEPTED });
      expect((await consumer.images.getImage({ id: image.id })).id).toBe(image.id);

      await owner.members.deleteMember({ imageId: image.id, memberId: consumerProject });

      await expectHidden(consumer, consumer.images.getImage({ id: image.id }), image.id);
      await expectHidden(consumer, consumer.members.getMember({ imageId: image.id, memberId: consumerProject }), image.id);
      const listed = await consumer.images.listImages({ ids: [image.id] });
      expect(listed.images).toEqual([]);
    });

    it('re-adding a removed member creates a new pending row', async () => {
      const { owner, consumer, consumerProject } = await parties();
      const image = await owner.images.createImage({ image: {} });
      const first = await owner.members.createMember({ imageId: image.id, memberId: consumerProject });
      await consumer.members.updateMember({ imageId: image.id, memberId: consumerProject, status: MemberStatus.MEMBER_STATUS_ACCEPTED });
      await owner.members.deleteMember({ imageId: image.id, memberId: consumerProject });
      await sleep(5);

      const second = await owner.members.createMember({ imageId: image.id, memberId: consumerProject });

      expect(second.status).toBe(MemberStatus.MEMBER_STATUS_PENDING);
      expect(second.createTime!.getTime()).toBeGreaterThan(first.createTime!.getTime());
      expect(second.updateTime).toEqual(second.createTime);
      expect((await consumer.images.getImage({ id: image.id })).id).toBe(image.id);
    });
  });

  describe('paging', () => {
    it('member list pages by page_size and tokens', async () => {
      const { owner } = await parties();
      const image = await owner.images.createImage({ image: {} });
      const memberIds = projects(uniqueProject('page'), 7);
      for (const memberId of memberIds) await owner.members.createMember({ imageId: image.id, memberId });

      const first = await owner.members.listMembers({ imageId: image.id, pageSize: 3 });
      expect(first.members).toHaveLength(3);
      expect(first.nextPageToken).not.toBe('');
      const second = await owner.members.listMembers({ imageId: image.id, pageSize: 3, pageToken: first.nextPageToken });
      expect(second.members).toHaveLength(3);
      expect(second.nextPageToken).not.toBe('');
      const third = await owner.members.listMembers({ imageId: image.id, pageSize: 3, pageToken: second.nextPageToken });
      expect(third.members).toHaveLength(1);
      expect(third.nextPageToken).toBe('');

      const paged = [...first.members, ...second.members, ...third.members];
      const whole = await owner.members.listMembers({ imageId: image.id });
      expect(paged).toEqual(whole.members);
      expect(paged.map((member) => member.memberId).sort()).toEqual([...memberIds].sort());
    });

    it('last full page has an empty token', async () => {
      const { owner } = await parties();
      const image = await owner.images.createImage({ image: {} });
      for (const memberId of projects(uniqueProject('exact'), 4)) await owner.members.createMember({ imageId: image.id, memberId });

      const first = await owner.members.listMembers({ imageId: image.id, pageSize: 2 });
      const second = await owner.members.listMembers({ imageId: image.id, pageSize: 2, pageToken: first.nextPageToken });

      expect(second.members).toHaveLength(2);
      expect(second.nextPageToken).toBe('');
    });

    it('member list is ordered by create_time then member_id', async () => {
      const { owner } = await parties();
      const image = await owner.images.createImage({ image: {} });
      const prefix = uniqueProject('order');
      // Added one by one, later rows get later create times whatever their ids.
      for (const suffix of ['c', 'b', 'a']) {
        await owner.members.createMember({ imageId: image.id, memberId: `${prefix}-${suffix}` });
        await sleep(3);
      }
      // Added at once, rows often share a create time and then sort by id.
      await Promise.all(
        projects(`${prefix}-z`, 12).reverse().map((memberId) => owner.members.createMember({ imageId: image.id, memberId })),
      );

      const members = await listAllMembers(owner, image.id, 5);

      expect(members.slice(0, 3).map((member) => member.memberId)).toEqual([`${prefix}-c`, `${prefix}-b`, `${prefix}-a`]);
      expect(members).toHaveLength(15);
      expect(members).toEqual(sortedByCreateTimeThenMemberId(members));
    });

    it('member list defaults to 100 rows a page', async () => {
      const { owner } = await parties();
      const image = await owner.images.createImage({ image: {} });
      const memberIds = projects(uniqueProject('many'), 101);
      for (let start = 0; start < memberIds.length; start += 20) {
        const batch = memberIds.slice(start, start + 20);
        await Promise.all(batch.map((memberId) => owner.members.createMember({ imageId: image.id, memberId })));
      }

      const first = await owner.members.listMembers({ imageId: image.id });
      expect(first.members).toHaveLength(100);
      expect(first.nextPageToken).not.toBe('');
      const second = await owner.members.listMembers({ imageId: image.id, pageToken: first.nextPageToken });
      expect(second.members).toHaveLength(1);
      expect(second.nextPageToken).toBe('');

      const large = await owner.members.listMembers({ imageId: image.id, pageSize: 5000 });
      expect(large.members).toHaveLength(101);
      expect(large.nextPageToken).toBe('');
      expect([...first.members, ...second.members]).toEqual(large.members);
    });

    it('bad page size or token is rejected', async () => {
      const { owner } = await parties();
      const image = await owner.images.createImage({ image: {} });
      const otherImage = await owner.images.createImage({ image: {} });
      for (const memberId of projects(uniqueProject('token'), 3)) {
        await owner.members.createMember({ imageId: image.id, memberId });
        await owner.members.createMember({ imageId: otherImage.id, memberId });
      }
      const page = await owner.members.listMembers({ imageId: image.id, pageSize: 1 });

      expect((await failure(owner.members.listMembers({ imageId: image.id, pageSize: -1 }))).code).toBe('INVALID_ARGUMENT');
      const garbage = await failure(owner.members.listMembers({ imageId: image.id, pageToken: 'not-a-token' }));
      expect(garbage.code).toBe('INVALID_ARGUMENT');
      const foreign = await failure(owner.members.listMembers({ imageId: otherImage.id, pageToken: page.nextPageToken }));
      expect(foreign.code).toBe('INVALID_ARGUMENT');
    });
  });
});

describe.each(testedBackends())('member quota on %s', (backend) => {
  const QUOTA = 10;
  let registry: RegistryHarness;
  const { parties, memberRowCount, listAllMembers } = harnessHelpers(() => registry);

  beforeAll(async () => {
    registry = await RegistryHarness.start(backend, { IMAGE_MEMBER_QUOTA: String(QUOTA) });
  });
  afterAll(async () => registry?.stop());

  it('concurrent adds stop exactly at the quota', async () => {
    const { owner } = await parties();

    for (let round = 0; round < 8; round++) {
      const image = await owner.images.createImage({ image: {} });
      const memberIds = projects(uniqueProject(`round${round}`), 2 * QUOTA);

      const { successes, codes } = await settle(memberIds.map((memberId) => owner.members.createMember({ imageId: image.id, memberId })));

      expect(successes, `round ${round}`).toHaveLength(QUOTA);
      expect(codes, `round ${round}`).toEqual(Array(QUOTA).fill('RESOURCE_EXHAUSTED'));
      expect(await memberRowCount(image.id), `round ${round}`).toBe(QUOTA);
      expect(await listAllMembers(owner, image.id), `round ${round}`).toHaveLength(QUOTA);
    }
  });

  it('duplicate at the quota is ALREADY_EXISTS', async () => {
    const { owner } = await parties();
    const image = await owner.images.createImage({ image: {} });
    const memberIds = projects(uniqueProject('full'), QUOTA);
    for (const memberId of memberIds) await owner.members.createMember({ imageId: image.id, memberId });

    const duplicate = await failure(owner.members.createMember({ imageId: image.id, memberId: memberIds[0]! }));
    expect(duplicate.code).toBe('ALREADY_EXISTS');
    const oneMore = await failure(owner.members.createMember({ imageId: image.id, memberId: uniqueProject('extra') }));
    expect(oneMore.code).toBe('RESOURCE_EXHAUSTED');
    expect(await memberRowCount(image.id)).toBe(QUOTA);
  });

  it('admin is held to the quota too', async () => {
    const { owner, admin } = await parties();
    const image = await owner.images.createImage({ image: {} });
    for (const memberId of projects(uniqueProject('admin-full'), QUOTA)) await owner.members.createMember({ imageId: image.id, memberId });

    const result = await failure(admin.members.createMember({ imageId: image.id, memberId: uniqueProject('extra') }));

    expect(result.code).toBe('RESOURCE_EXHAUSTED');
  });

  it('removing a member frees a place', async () => {
    const { owner } = await parties();
    const image = await owner.images.createImage({ image: {} });
    const memberIds = projects(uniqueProject('freed'), QUOTA);
    for (const memberId of memberIds) await owner.members.createMember({ imageId: image.id, memberId });

    await owner.members.deleteMember({ imageId: image.id, memberId: memberIds[0]! });
    const added = await owner.members.createMember({ imageId: image.id, memberId: uniqueProject('newcomer') });

    expect(added.status).toBe(MemberStatus.MEMBER_STATUS_PENDING);
    expect(await memberRowCount(image.id)).toBe(QUOTA);
  });

  it('quota counts the members of each image apart', async () => {
    const { owner } = await parties();
    const full = await owner.images.createImage({ image: {} });
    const empty = await owner.images.createImage({ image: {} });
    const memberIds = projects(uniqueProject('apart'), QUOTA);
    for (const memberId of memberIds) await owner.members.createMember({ imageId: full.id, memberId });

    for (const memberId of memberIds) await owner.members.createMember({ imageId: empty.id, memberId });

    expect(await memberRowCount(empty.id)).toBe(QUOTA);
  });
});

describe.each(testedBackends())('unlimited member quota on %s', (backend) => {
  let registry: RegistryHarness;
  const { parties, memberRowCount } = harnessHelpers(() => registry);

  beforeAll(async () => {
    registry = await RegistryHarness.start(backend, { IMAGE_MEMBER_QUOTA: '-1' });
  });
  afterAll(async () => registry?.stop());

  it('negative quota means unlimited', async () => {
    const { owner } = await parties();
    const image = await owner.images.createImage({ image: {} });
    // More than the default quota of 128.
    const memberIds = projects(uniqueProject('unlimited'), 150);

    for (let start = 0; start < memberIds.length; start += 25) {
      const batch = memberIds.slice(start, start + 25);
      await Promise.all(batch.map((memberId) => owner.members.createMember({ imageId: image.id, memberId })));
    }

    expect(await memberRowCount(image.id)).toBe(150);
  });
});
