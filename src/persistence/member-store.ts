/** Named operations on image member rows. */
import type { Knex } from 'knex';
import type { Member, MemberStatus } from '../domain/model.js';
import type { Queryable } from './database.js';

interface MemberRow {
  image_id: string;
  member_id: string;
  status: string;
  create_time: number | string;
  update_time: number | string;
}

const MEMBER_COLUMNS = ['image_id', 'member_id', 'status', 'create_time', 'update_time'] as const;

function memberFromRow(row: MemberRow): Member {
  return {
    imageId: row.image_id,
    memberId: row.member_id,
    status: row.status as MemberStatus,
    createTime: Number(row.create_time),
    updateTime: Number(row.update_time),
  };
}

export async function findMember(db: Queryable, imageId: string, memberId: string): Promise<Member | null> {
  const row = (await db<MemberRow>('image_members')
    .select(MEMBER_COLUMNS)
    .where({ image_id: imageId, member_id: memberId })
    .first()) as MemberRow | undefined;
  return row === undefined ? null : memberFromRow(row);
}

export async function countMembers(db: Queryable, imageId: string): Promise<number> {
  const row = (await db('image_members').where('image_id', imageId).count({ count: '*' }).first()) as
    | { count: number | string }
    | undefined;
  return Number(row?.count ?? 0);
}

/** Inserts a member row, which carries its image's create_time as the listing's sort key. */
export async function insertMember(trx: Knex.Transaction, member: Member, imageCreateTime: number): Promise<void> {
  await trx('image_members').insert({
    image_id: member.imageId,
    image_create_time: imageCreateTime,
    member_id: member.memberId,
    status: member.status,
    create_time: member.createTime,
    update_time: member.updateTime,
  });
}

/** Sets a row's status; returns whether the row existed. */
export async function updateMemberStatus(
  trx: Knex.Transaction,
  imageId: string,
  memberId: string,
  status: MemberStatus,
  now: number,
): Promise<boolean> {
  const updated = await trx('image_members')
    .update({ status, update_time: now })
    .where({ image_id: imageId, member_id: memberId });
  return updated > 0;
}

/** Deletes a row; returns whether it existed. */
export async function deleteMember(trx: Knex.Transaction, imageId: string, memberId: string): Promise<boolean> {
  const deleted = await trx('image_members').where({ image_id: imageId, member_id: memberId }).delete();
  return deleted > 0;
}

/** Position after which a member page starts: the last row's create time and member id. */
export interface MemberCursor {
  createTime: number;
  memberId: string;
}

/**
 * Lists rows of one image ordered by create time, then member id, reading
 * `limit` rows after `cursor`. With `onlyMemberId` only that project's row.
 */
export async function listMembers(
  db: Queryable,
  imageId: string,
  options: { onlyMemberId: string | null; after: MemberCursor | null; limit: number },
): Promise<Member[]> {
  const query = db<MemberRow>('image_members').select(MEMBER_COLUMNS).where('image_id', imageId);
  if (options.onlyMemberId !== null) query.where('member_id', options.onlyMemberId);
  const after = options.after;
  if (after !== null) {
    query.where((where) => {
      where
        .where('create_time', '>', after.createTime)
        .orWhere((tie) => tie.where('create_time', after.createTime).where('member_id', '>', after.memberId));
    });
  }
  const rows = (await query.orderBy([
    { column: 'create_time', order: 'asc' },
    { column: 'member_id', order: 'asc' },
  ]).limit(options.limit)) as unknown as MemberRow[];
  return rows.map(memberFromRow);
}
