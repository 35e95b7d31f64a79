/**
 * End-to-end races: calls that change one image or its members, started
 * together through generated clients against the real server, on SQLite and
 * on MySQL. Each race runs for many rounds, and the calls start in a
 * different order each round, so that different interleavings occur. After
 * each round the test reads the database rows directly and checks the status
 * code of every failed call: a code the RPC documents for that case, and never
 * INTERNAL or UNKNOWN.
 *
 * Concurrent adds over the member quota and concurrent adds of one member are
 * raced in member-rules.test.ts.
 */
import { randomUUID } from 'node:crypto';
import * as grpc from '@grpc/grpc-js';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type Image, Visibility } from '../../gen/imageregistry/v1/image.js';
import { type Member, MemberStatus } from '../../gen/imageregistry/v1/member_service.js';
import { testedBackends } from '../support/databases.js';
import { type RegistryClient, RegistryHarness, failure } from '../support/registry-harness.js';

/** Rounds of each race on each backend. */
const ROUNDS = 25;

/** Rounds that run at the same time, each on its own image. */
const ROUNDS_AT_ONCE = 5;

const NOT_SHARED_MESSAGE = 'only shared images have members';

/** Status codes that mean a bug in the server, whatever the call. */
const SERVER_FAULT_CODES = ['INTERNAL', 'UNKNOWN'];

type Outcome<T> = { ok: true; value: T } | { ok: false; code: string; message: string };

/** Waits for a call and returns its response or its gRPC status. Rethrows any error that is not a gRPC status. */
async function outcomeOf<T>(call: Promise<T>): Promise<Outcome<T>> {
  try {
    return { ok: true, value: await call };
  } catch (error) {
    if (typeof (error as grpc.ServiceError).code !== 'number') throw error;
    const { code, message } = await failure(Promise.reject(error));
    return { ok: false, code, message };
  }
}

/**
 * Starts `single` and each of `others` in the same tick, with `single` at
 * index `position` of the start order, and waits for all of them.
 */
async function startTogether<A, B>(
  single: () => Promise<A>,
  others: (() => Promise<B>)[],
  position: number,
): Promise<{ single: Outcome<A>; others: Outcome<B>[] }> {
  let singleOutcome: Promise<Outcome<A>> | undefined;
  const otherOutcomes: Promise<Outcome<B>>[] = [];
  for (let index = 0; index <= others.length; index++) {
    if (index === position) singleOutcome = outcomeOf(single());
    if (index < others.length) otherOutcomes.push(outcomeOf(others[index]!()));
  }
  return { single: await singleOutcome!, others: await Promise.all(otherOutcomes) };
}

/** Asserts that a call succeeded, and returns its response. */
function expectSuccess<T>(outcome: Outcome<T>, label: string): T {
  if (!outcome.ok) expect.fail(`${label}: expected success, got ${outcome.code}: ${outcome.message}`);
  return outcome.value;
}

/** Asserts that a failed call got no server-fault code and one of `allowed`. */
function expectFailureCode(outcome: Outcome<unknown>, allowed: string[], label: string): void {
  if (outcome.ok) return;
  expect(SERVER_FAULT_CODES, `${label}: ${outcome.message}`).not.toContain(outcome.code);
  expect(allowed, `${label}: ${outcome.code}: ${outcome.message}`).toContain(outcome.code);
}

/**
 * Runs `body` for each round, ROUNDS_AT_ONCE rounds at a time. Each round
 * races calls on its own image, so the rounds of a batch add load on the
 * database's locks and connections without changing what a round checks.
 */
async function forEachRound(body: (round: number) => Promise<void>): Promise<void> {
  for (let start = 0; start < ROUNDS; start += ROUNDS_AT_ONCE) {
    const batch = Array.from({ length: Math.min(ROUNDS_AT_ONCE, ROUNDS - start) }, (_, offset) => start + offset);
    await Promise.all(batch.map((round) => body(round)));
  }
}

/** Returns a project id that no other test uses. */
function uniqueProject(label: string): string {
  return `${label}-${randomUUID().slice(0, 8)}`;
}

/** Orders strings by UTF-16 code unit, as Array.prototype.sort does without a comparator. */
function compareStrings(a: string, b: string): number {
  if (a < b) return -1;
  if (a > b) return 1;
  return 0;
}

/** Returns a map's entries sorted by key, so that maps compare whatever their insertion order. */
function sortedEntries(map: Map<string, string>): [string, string][] {
  return [...map.entries()].sort(([a], [b]) => compareStrings(a, b));
}

interface MemberRow {
  memberId: string;
  status: string;
  createTime: number;
}

describe.each(testedBackends())('races on %s', (backend) => {
  let registry: RegistryHarness;

  beforeAll(async () => {
    registry = await RegistryHarness.start(backend);
  });
  afterAll(async () => registry?.stop());

  /** Reads the member rows of an image from the database, sorted by member id. */
  async function memberRows(imageId: string): Promise<MemberRow[]> {
    const rows = (await registry.service.database
      .knex('image_members')
      .select('member_id', 'status', 'create_time')
      .where('image_id', imageId)
      .orderBy('member_id')) as { member_id: string; status: string; create_time: number | string }[];
    return rows.map((row) => ({ memberId: row.member_id, status: row.status, createTime: Number(row.create_time) }));
  }

  async function rowCount(table: string, imageId: string): Promise<number> {
    const row = await registry.service.database.knex(table).where('image_id', imageId).count({ count: '*' }).first();
    return Number(row?.count ?? 0);
  }

  async function imageStatusRow(imageId: string): Promise<string | undefined> {
    const row = (await registry.service.database.knex('images').select('status').where('id', imageId).first()) as
      | { status: string }
      | undefined;
    return row?.status;
  }

  /** Reads every member row of an image through ListMembers, sorted by member id. */
  async function listedMembers(client: RegistryClient, imageId: string): Promise<Member[]> {
    const members: Member[] = [];
    let pageToken = '';
    do {
      const page = await client.members.listMembers({ imageId, pageToken });
      members.push(...page.members);
      pageToken = page.nextPageToken;
    } while (pageToken !== '');
    return members.sort((a, b) => compareStrings(a.memberId, b.memberId));
  }

  describe('visibility change and member add', () => {
    const TARGETS = [Visibility.VISIBILITY_PRIVATE, Visibility.VISIBILITY_COMMUNITY, Visibility.VISIBILITY_PUBLIC];
    const ADDS_PER_ROUND = 3;

    it('member add racing unsharing lands before it', async () => {
      const ownerProject = uniqueProject('owner');
      const owner = await registry.as(ownerProject);
      const flipper = await registry.as(ownerProject);
      const admin = await registry.as(uniqueProject('admin'), { admin: true });

      await forEachRound(async (round) => {
        const target = TARGETS[round % TARGETS.length]!;
        const label = `round ${round} to ${Visibility[target]}`;
        const image = await owner.images.createImage({ image: { visibility: Visibility.VISIBILITY_SHARED } });
        const memberIds = Array.from({ length: ADDS_PER_ROUND }, (_, index) => uniqueProject(`m${index}`));
        // Only an admin may make an image public.
        const changer = target === Visibility.VISIBILITY_PUBLIC ? admin : flipper;

        const { single: flip, others: adds } = await startTogether(
          () => changer.images.updateImage({ image: { id: image.id, visibility: target }, updateMask: ['visibility'] }),
          memberIds.map((memberId) => () => owner.members.createMember({ imageId: image.id, memberId })),
          round % (ADDS_PER_ROUND + 1),
        );

        const flipped = expectSuccess(flip, `${label} UpdateImage`);
        expect(flipped.visibility, label).toBe(target);
        const added: string[] = [];
        adds.forEach((add, index) => {
          expectFailureCode(add, ['FAILED_PRECONDITION'], `${label} CreateMember`);
          if (add.ok) {
            added.push(memberIds[index]!);
          } else {
            expect(add.message, label).toContain(NOT_SHARED_MESSAGE);
          }
        });
        added.sort();

        // Rows exist exactly for the adds that succeeded, and none was made after the switch.
        // NOTE: the time checks assume that the server's wall clock does not step back during a round.
        const rows = await memberRows(image.id);
        expect(rows.map((row) => row.memberId), label).toEqual(added);
        for (const row of rows) {
          expect(row.status, label).toBe('pending');
          expect(row.createTime, `${label}: create_time of ${row.memberId} after the switch`).toBeLessThanOrEqual(
            flipped.updateTime!.getTime(),
          );
        }

        // The rows stay inert while the image is not shared, and take effect when it is shared again.
        const listWhileNotShared = await outcomeOf(owner.members.listMembers({ imageId: image.id }));
        expect(listWhileNotShared.ok, label).toBe(false);
        expectFailureCode(listWhileNotShared, ['FAILED_PRECONDITION'], `${label} ListMembers`);
        await owner.images.updateImage({ image: { id: image.id, visibility: Visibility.VISIBILITY_SHARED }, updateMask: ['visibility'] });
        const listed = await listedMembers(owner, image.id);
        expect(listed.map((member) => member.memberId), label).toEqual(added);
        for (const memberId of added) {
          const member = await owner.members.getMember({ imageId: image.id, memberId });
          expect(member.status, `${label} ${memberId}`).toBe(MemberStatus.MEMBER_STATUS_PENDING);
        }
      });
    });

    it('member add racing sharing lands after it', async () => {
      const ownerProject = uniqueProject('owner');
      const owner = await registry.as(ownerProject);
      const flipper = await registry.as(ownerProject);
      const sources = [Visibility.VISIBILITY_PRIVATE, Visibility.VISIBILITY_COMMUNITY];

      await forEachRound(async (round) => {
        const source = sources[round % sources.length]!;
        const label = `round ${round} from ${Visibility[source]}`;
        const image = await owner.images.createImage({ image: { visibility: source } });
        const memberIds = Array.from({ length: ADDS_PER_ROUND }, (_, index) => uniqueProject(`m${index}`));

        const { single: flip, others: adds } = await startTogether(
          () =>
            flipper.images.updateImage({ image: { id: image.id, visibility: Visibility.VISIBILITY_SHARED }, updateMask: ['visibility'] }),
          memberIds.map((memberId) => () => owner.members.createMember({ imageId: image.id, memberId })),
          round % (ADDS_PER_ROUND + 1),
        );

        const flipped = expectSuccess(flip, `${label} UpdateImage`);
        expect(flipped.visibility, label).toBe(Visibility.VISIBILITY_SHARED);
        const added: string[] = [];
        adds.forEach((add, index) => {
          expectFailureCode(add, ['FAILED_PRECONDITION'], `${label} CreateMember`);
          if (add.ok) {
            added.push(memberIds[index]!);
          } else {
            expect(add.message, label).toContain(NOT_SHARED_MESSAGE);
          }
        });
        added.sort();

        // Rows exist exactly for the adds that succeeded, and none was made before the switch.
        const rows = await memberRows(image.id);
        expect(rows.map((row) => row.memberId), label).toEqual(added);
        for (const row of rows) {
          expect(row.createTime, `${label}: create_time of ${row.memberId} before the switch`).toBeGreaterThanOrEqual(
            flipped.updateTime!.getTime(),
          );
        }
        const listed = await listedMembers(owner, image.id);
        expect(listed.map((member) => member.memberId), label).toEqual(added);
      });
    });
  });

  describe('member status update and member removal', () => {
    const STATUSES = [
      MemberStatus.MEMBER_STATUS_ACCEPTED,
      MemberStatus.MEMBER_STATUS_REJECTED,
      MemberStatus.MEMBER_STATUS_PENDING,
    ];

    it('status update racing removal leaves no row', async () => {
      const ownerProject = uniqueProject('owner');
      const owner = await registry.as(ownerProject);
      const admin = await registry.as(uniqueProject('admin'), { admin: true });

      await forEachRound(async (round) => {
        const label = `round ${round}`;
        const consumerProject = uniqueProject('consumer');
        const consumer = await registry.as(consumerProject);
        const image = await owner.images.createImage({ image: {} });
        await owner.members.createMember({ imageId: image.id, memberId: consumerProject });
        // A first call connects the new client, so that its racing calls do not start late.
        await consumer.members.getMember({ imageId: image.id, memberId: consumerProject });
        // Two status updates by the member itself, and in odd rounds one by an admin as well.
        const updaters = round % 2 === 0 ? [consumer, consumer] : [consumer, consumer, admin];
        const statuses = updaters.map((_, index) => STATUSES[(round + index) % STATUSES.length]!);

        const { single: removal, others: updates } = await startTogether(
          () => owner.members.deleteMember({ imageId: image.id, memberId: consumerProject }),
          updaters.map((updater, index) => () =>
            updater.members.updateMember({ imageId: image.id, memberId: consumerProject, status: statuses[index]! }),
          ),
          round % (updaters.length + 1),
        );

        expectSuccess(removal, `${label} DeleteMember`);
        updates.forEach((update, index) => {
          expectFailureCode(update, ['NOT_FOUND'], `${label} UpdateMember ${index}`);
          if (update.ok) {
            expect(update.value.memberId, label).toBe(consumerProject);
            expect(update.value.status, label).toBe(statuses[index]);
          }
        });

        expect(await memberRows(image.id), label).toEqual([]);
        expect((await failure(owner.members.getMember({ imageId: image.id, memberId: consumerProject }))).code, label).toBe(
          'NOT_FOUND',
        );
        expect((await failure(consumer.images.getImage({ id: image.id }))).code, label).toBe('NOT_FOUND');
      });
    });
  });

  describe('image deletion and member changes', () => {
    const MEMBERS_PER_IMAGE = 4;

    it('deleting an image leaves no member rows', async () => {
      const ownerProject = uniqueProject('owner');
      const owner = await registry.as(ownerProject);
      const deleter = await registry.as(ownerProject);

      await forEachRound(async (round) => {
        const label = `round ${round}`;
        const image = await owner.images.createImage({
          image: { tags: ['one', 'two'], properties: new Map([['kept', 'no']]) },
        });
        const memberProjects = Array.from({ length: MEMBERS_PER_IMAGE }, (_, index) => uniqueProject(`m${index}`));
        const members = await Promise.all(memberProjects.map((project) => registry.as(project)));
        for (const memberId of memberProjects) await owner.members.createMember({ imageId: image.id, memberId });
        // A first call connects each new client, so that its racing calls do not start late.
        await Promise.all(
          members.map((member, index) => member.members.getMember({ imageId: image.id, memberId: memberProjects[index]! })),
        );
        const latecomer = uniqueProject('late');

        // Every member accepts, and the owner adds one more, while the image is deleted.
        const { single: deletion, others: changes } = await startTogether<unknown, Member>(
          () => deleter.images.deleteImage({ id: image.id }),
          [
            ...members.map((member, index) => () =>
              member.members.updateMember({
                imageId: image.id,
                memberId: memberProjects[index]!,
                status: MemberStatus.MEMBER_STATUS_ACCEPTED,
              }),
            ),
            () => owner.members.createMember({ imageId: image.id, memberId: latecomer }),
          ],
          round % (MEMBERS_PER_IMAGE + 2),
        );

        expectSuccess(deletion, `${label} DeleteImage`);
        changes.forEach((change, index) => {
          const method = index < MEMBERS_PER_IMAGE ? 'UpdateMember' : 'CreateMember';
          expectFailureCode(change, ['NOT_FOUND'], `${label} ${method} ${index}`);
          if (change.ok && index < MEMBERS_PER_IMAGE) {
            expect(change.value.status, label).toBe(MemberStatus.MEMBER_STATUS_ACCEPTED);
          }
        });

        expect(await memberRows(image.id), label).toEqual([]);
        expect(await rowCount('image_tags', image.id), label).toBe(0);
        expect(await rowCount('image_properties', image.id), label).toBe(0);
        expect(await imageStatusRow(image.id), label).toBe('deleted');
        for (const client of [owner, ...members]) {
          expect((await failure(client.images.getImage({ id: image.id }))).code, label).toBe('NOT_FOUND');
        }
      });
    });
  });

  describe('overlapping image updates', () => {
    /** The fields the two updates change, as a test can compare them. */
    interface ChangedFields {
      name: string;
      minDisk: number;
      minRam: number;
      tags: string[];
      properties: [string, string][];
    }

    function changedFields(image: Image): ChangedFields {
      return {
        name: image.name,
        minDisk: image.minDisk,
        minRam: image.minRam,
        tags: [...image.tags].sort(),
        properties: sortedEntries(image.properties),
      };
    }

    /** Applies what update A changes: name, min_disk, tags and one shared property key. */
    function applyA(fields: ChangedFields, round: number): ChangedFields {
      const properties = new Map(fields.properties);
      properties.set('shared', 'from-a');
      return { ...fields, name: `a-${round}`, minDisk: 10 + round, tags: ['a'], properties: sortedEntries(properties) };
    }

    /** Applies what update B changes: name, min_ram, tags, the shared property key and one of its own. */
    function applyB(fields: ChangedFields, round: number): ChangedFields {
      const properties = new Map(fields.properties);
      properties.set('shared', 'from-b');
      properties.set('only_b', 'b');
      return { ...fields, name: `b-${round}`, minRam: 100 + round, tags: ['b'], properties: sortedEntries(properties) };
    }

    it('overlapping updates apply whole in one order', async () => {
      const ownerProject = uniqueProject('owner');
      const owner = await registry.as(ownerProject);
      const writerA = await registry.as(ownerProject);
      const writerB = await registry.as(ownerProject);

      await forEachRound(async (round) => {
        const label = `round ${round}`;
        const image = await owner.images.createImage({
          image: { name: 'start', tags: ['base'], properties: new Map([['base', 'kept']]) },
        });
        const start = changedFields(image);

        const { single: outcomeA, others: outcomesB } = await startTogether(
          () =>
            writerA.images.updateImage({
              image: { id: image.id, name: `a-${round}`, minDisk: 10 + round, tags: ['a'], properties: new Map([['shared', 'from-a']]) },
              updateMask: ['name', 'min_disk', 'tags', 'properties.shared'],
            }),
          [
            () =>
              writerB.images.updateImage({
                image: {
                  id: image.id,
                  name: `b-${round}`,
                  minRam: 100 + round,
                  tags: ['b'],
                  properties: new Map([
                    ['shared', 'from-b'],
                    ['only_b', 'b'],
                  ]),
                },
                updateMask: ['name', 'min_ram', 'tags', 'properties.shared', 'properties.only_b'],
              }),
          ],
          round % 2,
        );

        const afterA = expectSuccess(outcomeA, `${label} UpdateImage A`);
        const afterB = expectSuccess(outcomesB[0]!, `${label} UpdateImage B`);
        const stored = await owner.images.getImage({ id: image.id });
        const aThenB = applyB(applyA(start, round), round);
        const bThenA = applyA(applyB(start, round), round);
        const final = changedFields(stored);
        expect([aThenB, bThenA], label).toContainEqual(final);

        // The later update returns the stored image, and the earlier one the state between the two.
        const aWasFirst = final.name === `b-${round}`;
        const [first, second] = aWasFirst ? [afterA, afterB] : [afterB, afterA];
        const between = aWasFirst ? applyA(start, round) : applyB(start, round);
        expect(changedFields(first), `${label} first response`).toEqual(between);
        expect({ ...second, tags: [...second.tags].sort() }, `${label} second response`).toEqual({
          ...stored,
          tags: [...stored.tags].sort(),
        });
      });
    });
  });
});
