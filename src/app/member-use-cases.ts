/** Use cases of the members of shared images. */
import { RegistryError, quote } from '../domain/errors.js';
import { parseImageId } from '../domain/image-fields.js';
import {
  assertBelowMemberQuota,
  assertCanAnswerMembership,
  assertCanManageMembers,
  assertImageIsShared,
  assertMemberIsNotOwner,
  canSeeMemberRow,
  memberNotFound,
  validateMemberId,
} from '../domain/member-rules.js';
import type { Caller, Member, MemberStatus } from '../domain/model.js';
import { isOwnerOrAdmin } from '../domain/image-access.js';
import { decodePageToken, encodePageToken, queryDigest } from '../domain/page-token.js';
import { isDuplicateKey } from '../persistence/database.js';
import {
  countMembers,
  deleteMember,
  findMember,
  insertMember,
  listMembers as selectMembers,
  updateMemberStatus,
} from '../persistence/member-store.js';
import { effectivePageSize } from './image-queries.js';
import { type RegistryContext, loadReadableImage } from './registry-context.js';

export const DEFAULT_MEMBER_PAGE_SIZE = 100;

/** Checks the form of a request's image id and member id, and returns the image id in lowercase. */
function parseMemberKey(rawImageId: string, memberId: string): string {
  const imageId = parseImageId('image_id', rawImageId);
  validateMemberId('member_id', memberId);
  return imageId;
}

function memberExists(imageId: string, memberId: string): RegistryError {
  return new RegistryError(
    'ALREADY_EXISTS',
    `member_id: project ${quote(memberId)} is already a member of image ${quote(imageId)}`,
    'MEMBER_EXISTS',
    'member_id',
  );
}

/**
 * Adds a project to a shared image as a pending member. The image row is
 * locked while the members are counted, so concurrent adds cannot pass the
 * quota together.
 */
export async function createMember(
  context: RegistryContext,
  caller: Caller,
  rawImageId: string,
  memberId: string,
): Promise<Member> {
  const imageId = parseMemberKey(rawImageId, memberId);
  return context.database.write(async (trx) => {
    const { image } = await loadReadableImage(context, trx, caller, imageId, { lock: true });
    assertCanManageMembers(caller, image);
    assertImageIsShared(image);
    assertMemberIsNotOwner(image, memberId);
    if ((await findMember(trx, imageId, memberId)) !== null) throw memberExists(imageId, memberId);
    assertBelowMemberQuota(image, await countMembers(trx, imageId), context.memberQuota);

    const now = context.now();
    const member: Member = { imageId, memberId, status: 'pending', createTime: now, updateTime: now };
    try {
      await insertMember(trx, member, image.createTime);
    } catch (error) {
      if (isDuplicateKey(error)) throw memberExists(imageId, memberId);
      throw error;
    }
    return member;
  });
}

/** Returns a member row the caller may see; NOT_FOUND for an image that is not shared. */
export async function getMember(
  context: RegistryContext,
  caller: Caller,
  rawImageId: string,
  memberId: string,
): Promise<Member> {
  const imageId = parseMemberKey(rawImageId, memberId);
  return context.database.read(async (db) => {
    const { image } = await loadReadableImage(context, db, caller, imageId);
    if (image.visibility !== 'shared' || !canSeeMemberRow(caller, image, memberId)) {
      throw memberNotFound(imageId, memberId);
    }
    const member = await findMember(db, imageId, memberId);
    if (member === null) throw memberNotFound(imageId, memberId);
    return member;
  });
}

export interface MemberPage {
  members: Member[];
  nextPageToken: string;
}

/**
 * Lists the member rows the caller may see, oldest first: all of them for
 * the owner and admins, only its own row for a member.
 */
export async function listMembers(
  context: RegistryContext,
  caller: Caller,
  rawImageId: string,
  request: { pageSize: number; pageToken: string },
): Promise<MemberPage> {
  const imageId = parseImageId('image_id', rawImageId);
  const pageSize = effectivePageSize(request.pageSize, DEFAULT_MEMBER_PAGE_SIZE);
  const digest = queryDigest({ project: caller.projectId, imageId });
  let after = null;
  if (request.pageToken !== '') {
    const [createTime, memberId] = decodePageToken(request.pageToken, digest, ['integer', 'string']);
    after = { createTime: createTime as number, memberId: memberId as string };
  }

  const rows = await context.database.read(async (db) => {
    const { image } = await loadReadableImage(context, db, caller, imageId);
    assertImageIsShared(image);
    const onlyMemberId = isOwnerOrAdmin(caller, image) ? null : caller.projectId;
    return selectMembers(db, imageId, { onlyMemberId, after, limit: pageSize + 1 });
  });
  if (rows.length <= pageSize) return { members: rows, nextPageToken: '' };
  const members = rows.slice(0, pageSize);
  const last = members[members.length - 1]!;
  return { members, nextPageToken: encodePageToken(digest, [last.createTime, last.memberId]) };
}

/** Sets the status of the caller's own membership, or any membership for an admin. */
export async function updateMember(
  context: RegistryContext,
  caller: Caller,
  rawImageId: string,
  memberId: string,
  status: MemberStatus,
): Promise<Member> {
  const imageId = parseMemberKey(rawImageId, memberId);
  return context.database.write(async (trx) => {
    const { image } = await loadReadableImage(context, trx, caller, imageId, { lock: true });
    assertCanAnswerMembership(caller, image, memberId);
    assertImageIsShared(image);
    const now = context.now();
    if (!(await updateMemberStatus(trx, imageId, memberId, status, now))) {
      throw memberNotFound(imageId, memberId);
    }
    const member = await findMember(trx, imageId, memberId);
    return member!;
  });
}

/** Removes a member row; the project loses read access at once. */
export async function removeMember(
  context: RegistryContext,
  caller: Caller,
  rawImageId: string,
  memberId: string,
): Promise<void> {
  const imageId = parseMemberKey(rawImageId, memberId);
  await context.database.write(async (trx) => {
    const { image } = await loadReadableImage(context, trx, caller, imageId, { lock: true });
    assertCanManageMembers(caller, image);
    assertImageIsShared(image);
    if (!(await deleteMember(trx, imageId, memberId))) throw memberNotFound(imageId, memberId);
  });
}
