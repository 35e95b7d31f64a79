import { describe, expect, it } from 'vitest';
import {
  assertBelowMemberQuota,
  assertCanAnswerMembership,
  assertCanManageMembers,
  assertImageIsShared,
  assertMemberIsNotOwner,
  canSeeMemberRow,
  memberNotFound,
  validateMemberId,
} from '../../src/domain/member-rules.js';
import { type Caller, VISIBILITIES } from '../../src/domain/model.js';
import {
  ADMIN_PROJECT,
  IMAGE_ID,
  OTHER_PROJECT,
  OWNER_PROJECT,
  adminCaller,
  catchRegistryError,
  makeImage,
  projectCaller,
} from './fixtures.js';

/** A member of the image whose row the tests look at. */
const MEMBER_PROJECT = 'proj-member';
/** Another member of the same image. */
const SECOND_MEMBER_PROJECT = 'proj-second-member';

const owner = projectCaller(OWNER_PROJECT);
const member = projectCaller(MEMBER_PROJECT);
const secondMember = projectCaller(SECOND_MEMBER_PROJECT);
const outsider = projectCaller(OTHER_PROJECT);
const admin = adminCaller();

// U+1F600 is one code point but two UTF-16 code units.
const EMOJI = '\u{1F600}';

describe('validateMemberId', () => {
  it.each([
    { name: 'accepts a plain project id', memberId: 'proj-a' },
    { name: 'accepts a hexadecimal Keystone id', memberId: '0a1b2c3d4e5f60718293a4b5c6d7e8f9' },
    { name: 'accepts one character', memberId: 'p' },
    { name: 'accepts 255 ASCII characters', memberId: 'p'.repeat(255) },
    { name: 'accepts 255 emoji code points', memberId: EMOJI.repeat(255) },
    { name: 'accepts punctuation', memberId: 'team:a/b.c_d-e@f' },
  ])('$name', ({ memberId }) => {
    expect(() => validateMemberId('member_id', memberId)).not.toThrow();
  });

  it('rejects an empty id as missing', () => {
    const error = catchRegistryError(() => validateMemberId('member_id', ''));

    expect(error.kind).toBe('INVALID_ARGUMENT');
    expect(error.field).toBe('member_id');
    expect(error.message).toContain('member_id');
    expect(error.message).toContain('required');
  });

  it.each([
    { name: 'rejects 256 ASCII characters', memberId: 'p'.repeat(256) },
    { name: 'rejects 256 emoji code points', memberId: EMOJI.repeat(256) },
  ])('$name', ({ memberId }) => {
    const error = catchRegistryError(() => validateMemberId('member_id', memberId));

    expect(error.kind).toBe('INVALID_ARGUMENT');
    expect(error.field).toBe('member_id');
    expect(error.message).toContain('longer than 255 characters');
    // Long values are cut in messages, so only their start is named.
    expect(error.message).toContain(memberId.slice(0, 20));
  });

  it.each([
    { name: 'rejects a space', memberId: 'proj a' },
    { name: 'rejects a leading space', memberId: ' proj-a' },
    { name: 'rejects a trailing space', memberId: 'proj-a ' },
    { name: 'rejects a tab', memberId: 'proj\ta' },
    { name: 'rejects a newline', memberId: 'proj-a\n' },
    { name: 'rejects a carriage return', memberId: 'proj\ra' },
    { name: 'rejects a no-break space', memberId: 'proj\u00a0a' },
    { name: 'rejects a line separator', memberId: 'proj\u2028a' },
    { name: 'rejects NUL', memberId: 'proj\u0000a' },
    { name: 'rejects an escape character', memberId: 'proj\u001ba' },
    { name: 'rejects DEL', memberId: 'proj\u007fa' },
    { name: 'rejects a C1 control character', memberId: 'proj\u0085a' },
  ])('$name', ({ memberId }) => {
    const error = catchRegistryError(() => validateMemberId('member_id', memberId));

    expect(error.kind).toBe('INVALID_ARGUMENT');
    expect(error.field).toBe('member_id');
    expect(error.message).toContain('whitespace or control characters');
    expect(error.message).toContain(JSON.stringify(memberId));
  });
});

describe('memberNotFound', () => {
  it('names the member and the image', () => {
    const error = memberNotFound(IMAGE_ID, MEMBER_PROJECT);

    expect(error.kind).toBe('NOT_FOUND');
    expect(error.reason).toBe('MEMBER_NOT_FOUND');
    expect(error.message).toContain(MEMBER_PROJECT);
    expect(error.message).toContain(IMAGE_ID);
  });
});

describe('assertImageIsShared', () => {
  it('passes a shared image', () => {
    expect(() => assertImageIsShared(makeImage({ visibility: 'shared' }))).not.toThrow();
  });

  it.each(VISIBILITIES.filter((visibility) => visibility !== 'shared'))(
    '%s image has no members',
    (visibility) => {
      const error = catchRegistryError(() => assertImageIsShared(makeImage({ visibility })));

      expect(error.kind).toBe('FAILED_PRECONDITION');
      expect(error.reason).toBe('IMAGE_NOT_SHARED');
      expect(error.message).toContain('only shared images have members');
      expect(error.message).toContain(IMAGE_ID);
      expect(error.message).toContain(visibility);
    },
  );
});

describe('assertCanManageMembers', () => {
  it.each([
    { name: 'owner manages members', caller: owner },
    { name: 'admin manages members', caller: admin },
  ])('$name', ({ caller }) => {
    expect(() => assertCanManageMembers(caller, makeImage())).not.toThrow();
  });

  it.each([
    { name: 'member may not manage members', caller: member, project: MEMBER_PROJECT },
    { name: 'other project may not manage members', caller: outsider, project: OTHER_PROJECT },
  ])('$name', ({ caller, project }) => {
    const error = catchRegistryError(() => assertCanManageMembers(caller, makeImage()));

    expect(error.kind).toBe('PERMISSION_DENIED');
    expect(error.reason).toBe('NOT_IMAGE_OWNER');
    expect(error.message).toContain(project);
    expect(error.message).toContain(IMAGE_ID);
  });
});

describe('assertMemberIsNotOwner', () => {
  it('accepts another project as member', () => {
    expect(() => assertMemberIsNotOwner(makeImage(), MEMBER_PROJECT)).not.toThrow();
  });

  it('rejects the owner as its own member', () => {
    const error = catchRegistryError(() => assertMemberIsNotOwner(makeImage(), OWNER_PROJECT));

    expect(error.kind).toBe('INVALID_ARGUMENT');
    expect(error.field).toBe('member_id');
    expect(error.message).toContain(OWNER_PROJECT);
    expect(error.message).toContain(IMAGE_ID);
  });
});

describe('assertBelowMemberQuota', () => {
  it.each([
    { name: 'negative quota means unlimited', count: 1_000_000, quota: -1 },
    { name: 'any negative quota means unlimited', count: 5, quota: -128 },
    { name: 'first member fits a quota of one', count: 0, quota: 1 },
    { name: 'last member fits the default quota', count: 127, quota: 128 },
  ])('$name', ({ count, quota }) => {
    expect(() => assertBelowMemberQuota(makeImage(), count, quota)).not.toThrow();
  });

  it.each([
    { name: 'zero quota admits no member', count: 0, quota: 0 },
    { name: 'full default quota admits no more', count: 128, quota: 128 },
    { name: 'quota of one admits no second member', count: 1, quota: 1 },
    { name: 'count above the quota admits no more', count: 130, quota: 128 },
  ])('$name', ({ count, quota }) => {
    const error = catchRegistryError(() => assertBelowMemberQuota(makeImage(), count, quota));

    expect(error.kind).toBe('RESOURCE_EXHAUSTED');
    expect(error.reason).toBe('MEMBER_QUOTA_EXCEEDED');
    expect(error.message).toContain(IMAGE_ID);
    expect(error.message).toContain(`maximum is ${quota}`);
  });
});

describe('canSeeMemberRow', () => {
  it.each<{ name: string; caller: Caller; row: string; visible: boolean }>([
    { name: 'owner sees a member row', caller: owner, row: MEMBER_PROJECT, visible: true },
    { name: 'admin sees a member row', caller: admin, row: MEMBER_PROJECT, visible: true },
    { name: 'member sees its own row', caller: member, row: MEMBER_PROJECT, visible: true },
    { name: 'member does not see another member row', caller: secondMember, row: MEMBER_PROJECT, visible: false },
    { name: 'other project does not see a member row', caller: outsider, row: MEMBER_PROJECT, visible: false },
  ])('$name', ({ caller, row, visible }) => {
    expect(canSeeMemberRow(caller, makeImage(), row)).toBe(visible);
  });
});

describe('assertCanAnswerMembership', () => {
  it.each([
    { name: 'member answers its own membership', caller: member },
    { name: 'admin answers any membership', caller: admin },
    { name: 'admin of the member project answers it', caller: adminCaller(MEMBER_PROJECT) },
  ])('$name', ({ caller }) => {
    expect(() => assertCanAnswerMembership(caller, makeImage(), MEMBER_PROJECT)).not.toThrow();
  });

  it('owner may not answer for a member', () => {
    const error = catchRegistryError(() => assertCanAnswerMembership(owner, makeImage(), MEMBER_PROJECT));

    expect(error.kind).toBe('PERMISSION_DENIED');
    expect(error.reason).toBe('NOT_IMAGE_MEMBER');
    expect(error.message).toContain(MEMBER_PROJECT);
  });

  it.each([
    { name: 'another member gets not found', caller: secondMember },
    { name: 'other project gets not found', caller: outsider },
  ])('$name', ({ caller }) => {
    const error = catchRegistryError(() => assertCanAnswerMembership(caller, makeImage(), MEMBER_PROJECT));

    expect(error.kind).toBe('NOT_FOUND');
    expect(error.reason).toBe('MEMBER_NOT_FOUND');
    expect(error.message).toBe(memberNotFound(IMAGE_ID, MEMBER_PROJECT).message);
  });

  it('admin in the owner project still answers', () => {
    const image = makeImage({ owner: ADMIN_PROJECT });

    expect(() => assertCanAnswerMembership(admin, image, MEMBER_PROJECT)).not.toThrow();
  });
});
