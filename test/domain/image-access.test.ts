import { describe, expect, it } from 'vitest';
import {
  assertCanModify,
  assertCanSetOwner,
  assertCanSetVisibility,
  assertDeletable,
  assertFormatChangeAllowed,
  assertReadable,
  canReadImage,
  statusAfterDeactivate,
  statusAfterReactivate,
} from '../../src/domain/image-access.js';
import {
  type Caller,
  IMAGE_STATUSES,
  type ImageStatus,
  type MemberStatus,
  VISIBILITIES,
  type Visibility,
} from '../../src/domain/model.js';
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

type CallerKind = 'owner' | 'admin' | 'outsider' | 'consumer';

const callers: Record<CallerKind, Caller> = {
  owner: projectCaller(OWNER_PROJECT),
  admin: adminCaller(),
  // A project other than the owner, with no member row.
  outsider: projectCaller(OTHER_PROJECT),
  // A project other than the owner, with a member row.
  consumer: projectCaller(OTHER_PROJECT),
};

type Readability = Record<Visibility, boolean>;
const EVERY_VISIBILITY: Readability = { public: true, community: true, shared: true, private: true };

/**
 * Readability of an image that is not deleted, by caller and member row.
 * The owner and admins read every image whatever the row. Other projects read
 * public and community images, and shared ones only with a row of any status.
 */
const READ_TABLE: Array<[CallerKind, MemberStatus | null, Readability]> = [
  ['owner', null, EVERY_VISIBILITY],
  ['owner', 'pending', EVERY_VISIBILITY],
  ['owner', 'accepted', EVERY_VISIBILITY],
  ['owner', 'rejected', EVERY_VISIBILITY],
  ['admin', null, EVERY_VISIBILITY],
  ['admin', 'pending', EVERY_VISIBILITY],
  ['admin', 'accepted', EVERY_VISIBILITY],
  ['admin', 'rejected', EVERY_VISIBILITY],
  ['outsider', null, { public: true, community: true, shared: false, private: false }],
  ['consumer', 'pending', { public: true, community: true, shared: true, private: false }],
  ['consumer', 'accepted', { public: true, community: true, shared: true, private: false }],
  ['consumer', 'rejected', { public: true, community: true, shared: true, private: false }],
];

interface ReadCase {
  name: string;
  callerKind: CallerKind;
  row: MemberStatus | null;
  visibility: Visibility;
  readable: boolean;
}

function buildReadCases(status: ImageStatus): ReadCase[] {
  return READ_TABLE.flatMap(([callerKind, row, readability]) =>
    VISIBILITIES.map((visibility) => {
      // No caller reads a deleted image, admins included.
      const readable = status !== 'deleted' && readability[visibility];
      const rowText = row === null ? '' : ` with a ${row} row`;
      const verb = readable ? 'reads' : 'cannot read';
      return { name: `${callerKind}${rowText} ${verb} a ${visibility} image`, callerKind, row, visibility, readable };
    }),
  );
}

describe.each(IMAGE_STATUSES)('canReadImage on a %s image', (status) => {
  it.each(buildReadCases(status))('$name', ({ callerKind, row, visibility, readable }) => {
    const image = makeImage({ status, visibility });
    const membership = row === null ? null : { status: row };

    expect(canReadImage(callers[callerKind], image, membership)).toBe(readable);
  });
});

describe('assertReadable', () => {
  it('passes a readable image', () => {
    expect(() => assertReadable(callers.owner, makeImage(), IMAGE_ID, null)).not.toThrow();
  });

  it('reports a missing image as not found', () => {
    const error = catchRegistryError(() => assertReadable(callers.owner, null, IMAGE_ID, null));

    expect(error.kind).toBe('NOT_FOUND');
    expect(error.message).toContain(IMAGE_ID);
  });

  it('reports an unreadable image exactly like a missing one', () => {
    const missing = catchRegistryError(() => assertReadable(callers.outsider, null, IMAGE_ID, null));
    const hidden = catchRegistryError(() =>
      assertReadable(callers.outsider, makeImage({ visibility: 'private' }), IMAGE_ID, null),
    );

    expect(hidden.kind).toBe(missing.kind);
    expect(hidden.message).toBe(missing.message);
    expect(hidden.reason).toBe(missing.reason);
  });

  it('reports a deleted image to an admin as not found', () => {
    const error = catchRegistryError(() =>
      assertReadable(callers.admin, makeImage({ status: 'deleted' }), IMAGE_ID, null),
    );

    expect(error.kind).toBe('NOT_FOUND');
  });
});

describe('assertCanModify', () => {
  it.each([
    { name: 'owner may modify its image', caller: callers.owner },
    { name: 'admin may modify any image', caller: callers.admin },
  ])('$name', ({ caller }) => {
    expect(() => assertCanModify(caller, makeImage())).not.toThrow();
  });

  it.each(VISIBILITIES)('other project may not modify a %s image', (visibility) => {
    const error = catchRegistryError(() => assertCanModify(callers.outsider, makeImage({ visibility })));

    expect(error.kind).toBe('PERMISSION_DENIED');
    expect(error.reason).toBe('NOT_IMAGE_OWNER');
    expect(error.message).toContain(OTHER_PROJECT);
    expect(error.message).toContain(IMAGE_ID);
  });
});

describe('assertCanSetVisibility', () => {
  // `current` is null on create, where the image has no visibility yet.
  it.each<{ name: string; callerKind: 'owner' | 'admin'; current: Visibility | null; next: Visibility }>([
    { name: 'admin may make a private image public', callerKind: 'admin', current: 'private', next: 'public' },
    { name: 'admin may create a public image', callerKind: 'admin', current: null, next: 'public' },
    { name: 'owner may make a private image community', callerKind: 'owner', current: 'private', next: 'community' },
    { name: 'owner may make a shared image community', callerKind: 'owner', current: 'shared', next: 'community' },
    { name: 'owner may create a community image', callerKind: 'owner', current: null, next: 'community' },
    { name: 'admin may make an image community', callerKind: 'admin', current: 'shared', next: 'community' },
    { name: 'owner may move a public image to private', callerKind: 'owner', current: 'public', next: 'private' },
    { name: 'owner may move a public image to shared', callerKind: 'owner', current: 'public', next: 'shared' },
    { name: 'owner may move a community image to shared', callerKind: 'owner', current: 'community', next: 'shared' },
    { name: 'owner may make a shared image private', callerKind: 'owner', current: 'shared', next: 'private' },
    { name: 'owner may make a private image shared', callerKind: 'owner', current: 'private', next: 'shared' },
    { name: 'owner may create a private image', callerKind: 'owner', current: null, next: 'private' },
    { name: 'owner may create a shared image', callerKind: 'owner', current: null, next: 'shared' },
  ])('$name', ({ callerKind, current, next }) => {
    expect(() => assertCanSetVisibility(callers[callerKind], current, next)).not.toThrow();
  });

  it.each(VISIBILITIES)('owner may keep the visibility %s', (visibility) => {
    expect(() => assertCanSetVisibility(callers.owner, visibility, visibility)).not.toThrow();
  });

  it.each<{ name: string; current: Visibility | null }>([
    { name: 'owner may not make a private image public', current: 'private' },
    { name: 'owner may not make a shared image public', current: 'shared' },
    { name: 'owner may not make a community image public', current: 'community' },
    { name: 'owner may not create a public image', current: null },
  ])('$name', ({ current }) => {
    const error = catchRegistryError(() => assertCanSetVisibility(callers.owner, current, 'public'));

    expect(error.kind).toBe('PERMISSION_DENIED');
    expect(error.reason).toBe('PUBLICIZE_NOT_ALLOWED');
    expect(error.message).toContain('public');
  });
});

describe('assertCanSetOwner', () => {
  // `current` is null on create, where the image has no owner yet.
  it.each<{ name: string; caller: Caller; current: string | null; next: string }>([
    { name: 'project may create an image it owns', caller: callers.owner, current: null, next: OWNER_PROJECT },
    { name: 'owner may name itself as owner', caller: callers.owner, current: OWNER_PROJECT, next: OWNER_PROJECT },
    {
      name: 'admin may create an image for another project',
      caller: callers.admin,
      current: null,
      next: OTHER_PROJECT,
    },
    {
      name: 'admin may give an image to another project',
      caller: callers.admin,
      current: OWNER_PROJECT,
      next: OTHER_PROJECT,
    },
    {
      name: 'admin may take an image for its own project',
      caller: callers.admin,
      current: OWNER_PROJECT,
      next: ADMIN_PROJECT,
    },
    { name: 'admin may keep the current owner', caller: callers.admin, current: OWNER_PROJECT, next: OWNER_PROJECT },
  ])('$name', ({ caller, current, next }) => {
    expect(() => assertCanSetOwner(caller, current, next)).not.toThrow();
  });

  it.each<{ name: string; current: string | null }>([
    { name: 'project may not create an image for another project', current: null },
    { name: 'owner may not give its image to another project', current: OWNER_PROJECT },
  ])('$name', ({ current }) => {
    const error = catchRegistryError(() => assertCanSetOwner(callers.owner, current, OTHER_PROJECT));

    expect(error.kind).toBe('PERMISSION_DENIED');
    expect(error.reason).toBe('OWNER_CHANGE_NOT_ALLOWED');
    expect(error.message).toContain(JSON.stringify(OTHER_PROJECT));
  });
});

describe('assertDeletable', () => {
  it('allows deleting an unprotected image', () => {
    expect(() => assertDeletable(makeImage({ protected: false }))).not.toThrow();
  });

  it('rejects deleting a protected image', () => {
    const error = catchRegistryError(() => assertDeletable(makeImage({ protected: true })));

    expect(error.kind).toBe('FAILED_PRECONDITION');
    expect(error.reason).toBe('IMAGE_PROTECTED');
    expect(error.message).toContain(IMAGE_ID);
    expect(error.message).toContain('unset protected');
  });
});

/**
 * Deactivate works from active and does nothing more to a deactivated image.
 * Reactivate mirrors it. Every other status is a failed precondition.
 */
const ACTIVATION_TABLE: Array<{
  status: ImageStatus;
  deactivate: 'deactivated' | null;
  reactivate: 'active' | null;
}> = [
  { status: 'queued', deactivate: null, reactivate: null },
  { status: 'saving', deactivate: null, reactivate: null },
  { status: 'active', deactivate: 'deactivated', reactivate: 'active' },
  { status: 'killed', deactivate: null, reactivate: null },
  { status: 'deleted', deactivate: null, reactivate: null },
  { status: 'pending_delete', deactivate: null, reactivate: null },
  { status: 'deactivated', deactivate: 'deactivated', reactivate: 'active' },
  { status: 'uploading', deactivate: null, reactivate: null },
  { status: 'importing', deactivate: null, reactivate: null },
];

describe('statusAfterDeactivate', () => {
  it('covers every image status', () => {
    expect(ACTIVATION_TABLE.map((row) => row.status).sort()).toEqual([...IMAGE_STATUSES].sort());
  });

  it.each(ACTIVATION_TABLE.filter((row) => row.deactivate !== null))(
    'deactivating a $status image gives $deactivate',
    ({ status, deactivate }) => {
      expect(statusAfterDeactivate(makeImage({ status }))).toBe(deactivate);
    },
  );

  it.each(ACTIVATION_TABLE.filter((row) => row.deactivate === null))(
    'deactivating a $status image fails',
    ({ status }) => {
      const error = catchRegistryError(() => statusAfterDeactivate(makeImage({ status })));

      expect(error.kind).toBe('FAILED_PRECONDITION');
      expect(error.reason).toBe('INVALID_IMAGE_STATUS');
      expect(error.message).toContain(IMAGE_ID);
      expect(error.message).toContain(status);
    },
  );
});

describe('statusAfterReactivate', () => {
  it.each(ACTIVATION_TABLE.filter((row) => row.reactivate !== null))(
    'reactivating a $status image gives $reactivate',
    ({ status, reactivate }) => {
      expect(statusAfterReactivate(makeImage({ status }))).toBe(reactivate);
    },
  );

  it.each(ACTIVATION_TABLE.filter((row) => row.reactivate === null))(
    'reactivating a $status image fails',
    ({ status }) => {
      const error = catchRegistryError(() => statusAfterReactivate(makeImage({ status })));

      expect(error.kind).toBe('FAILED_PRECONDITION');
      expect(error.reason).toBe('INVALID_IMAGE_STATUS');
      expect(error.message).toContain(IMAGE_ID);
      expect(error.message).toContain(status);
    },
  );
});

describe.each([
  { field: 'container_format' as const, current: 'bare', other: 'ovf' },
  { field: 'disk_format' as const, current: 'qcow2', other: 'raw' },
])('assertFormatChangeAllowed for $field', ({ field, current, other }) => {
  const imageWith = (status: ImageStatus, value: string) =>
    makeImage(field === 'container_format' ? { status, containerFormat: value } : { status, diskFormat: value });

  it('queued image may change the format', () => {
    expect(() => assertFormatChangeAllowed(imageWith('queued', current), field, other)).not.toThrow();
  });

  it('queued image may clear the format', () => {
    expect(() => assertFormatChangeAllowed(imageWith('queued', current), field, '')).not.toThrow();
  });

  const laterStatuses = IMAGE_STATUSES.filter((status) => status !== 'queued');

  it.each(laterStatuses)('%s image keeps accepting the current format', (status) => {
    expect(() => assertFormatChangeAllowed(imageWith(status, current), field, current)).not.toThrow();
  });

  it.each(laterStatuses)('%s image rejects another format', (status) => {
    const error = catchRegistryError(() => assertFormatChangeAllowed(imageWith(status, current), field, other));

    expect(error.kind).toBe('FAILED_PRECONDITION');
    expect(error.reason).toBe('IMAGE_NOT_QUEUED');
    expect(error.message).toContain(field);
    expect(error.message).toContain(JSON.stringify(current));
    expect(error.message).toContain(JSON.stringify(other));
    expect(error.message).toContain(status);
  });

  it('active image rejects setting an unset format', () => {
    const error = catchRegistryError(() => assertFormatChangeAllowed(imageWith('active', ''), field, other));

    expect(error.kind).toBe('FAILED_PRECONDITION');
  });
});
