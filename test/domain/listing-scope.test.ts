import { describe, expect, it } from 'vitest';
import {
  type ListingScope,
  type MemberStatusFilter,
  type VisibilityFilter,
  listingScope,
} from '../../src/domain/listing-scope.js';
import { type Caller, type Image, type MemberStatus, VISIBILITIES, type Visibility } from '../../src/domain/model.js';
import {
  ADMIN_PROJECT,
  OTHER_PROJECT,
  adminCaller,
  makeImage,
  projectCaller,
} from './fixtures.js';

/**
 * How each visibility filter narrows a listing: a single visibility keeps
 * only that one, the default listing drops other projects' community
 * images, and 'all' drops nothing.
 */
const VISIBILITY_TABLE: Array<{
  filter: VisibilityFilter;
  visibility: Visibility | null;
  dropOthersCommunity: boolean;
}> = [
  { filter: 'default', visibility: null, dropOthersCommunity: true },
  { filter: 'all', visibility: null, dropOthersCommunity: false },
  { filter: 'public', visibility: 'public', dropOthersCommunity: false },
  { filter: 'private', visibility: 'private', dropOthersCommunity: false },
  { filter: 'shared', visibility: 'shared', dropOthersCommunity: false },
  { filter: 'community', visibility: 'community', dropOthersCommunity: false },
];

/** Which member rows make another project's shared image a candidate for a non-admin. */
const MEMBER_STATUS_TABLE: Array<{ filter: MemberStatusFilter; memberStatuses: MemberStatus[] }> = [
  { filter: 'pending', memberStatuses: ['pending'] },
  { filter: 'accepted', memberStatuses: ['accepted'] },
  { filter: 'rejected', memberStatuses: ['rejected'] },
  { filter: 'all', memberStatuses: ['pending', 'accepted', 'rejected'] },
];

const CALLER_PROJECT = 'proj-c';

/** Every pair of visibility filter and member status filter, with the scope fields each decides. */
const SCOPE_CASES = VISIBILITY_TABLE.flatMap((visibilityRow) =>
  MEMBER_STATUS_TABLE.map((memberRow) => ({
    visibilityFilter: visibilityRow.filter,
    memberFilter: memberRow.filter,
    visibility: visibilityRow.visibility,
    dropOthersCommunity: visibilityRow.dropOthersCommunity,
    memberStatuses: memberRow.memberStatuses,
  })),
);

describe.each(SCOPE_CASES)(
  'listingScope with visibility $visibilityFilter and member status $memberFilter',
  ({ visibilityFilter, memberFilter, visibility, dropOthersCommunity, memberStatuses }) => {
    it('project sees its own images, public ones and matching shared ones', () => {
      const scope = listingScope(projectCaller(CALLER_PROJECT), visibilityFilter, memberFilter);
      const expected: ListingScope = {
        allImages: false,
        projectId: CALLER_PROJECT,
        memberStatuses,
        visibility,
        dropOthersCommunity,
      };

      expect(scope).toEqual(expected);
    });

    it('admin sees every image and ignores member rows', () => {
      const scope = listingScope(adminCaller(), visibilityFilter, memberFilter);
      const expected: ListingScope = {
        allImages: true,
        projectId: ADMIN_PROJECT,
        memberStatuses: [],
        visibility,
        dropOthersCommunity,
      };

      expect(scope).toEqual(expected);
    });
  },
);

interface StoredImage {
  image: Image;
  /** Member rows of the image, by project. */
  members: Record<string, MemberStatus>;
}

/**
 * Applies a scope to images in memory, reading each field as its
 * documentation states, as the SQL rendering of the scope must.
 */
function filterImagesInScope(scope: ListingScope, images: readonly StoredImage[]): Image[] {
  return images
    .filter(({ image, members }) => {
      const ownRow = members[scope.projectId];
      const candidate =
        scope.allImages ||
        image.visibility === 'public' ||
        image.visibility === 'community' ||
        image.owner === scope.projectId ||
        (image.visibility === 'shared' && ownRow !== undefined && scope.memberStatuses.includes(ownRow));
      if (!candidate) return false;
      if (scope.visibility !== null && image.visibility !== scope.visibility) return false;
      if (scope.dropOthersCommunity && image.visibility === 'community' && image.owner !== scope.projectId) {
        return false;
      }
      return true;
    })
    .map(({ image }) => image);
}

function countListed(caller: Caller, images: readonly StoredImage[], visibility: VisibilityFilter): number {
  return filterImagesInScope(listingScope(caller, visibility, 'accepted'), images).length;
}

describe('listingScope on the example of three owners', () => {
  // Projects A and B and an admin of project X each own one image of every
  // visibility, and no image has members.
  const images: StoredImage[] = ['proj-a', 'proj-b', 'proj-x'].flatMap((owner) =>
    VISIBILITIES.map((visibility) => ({
      image: makeImage({ id: `${owner}-${visibility}`, owner, visibility }),
      members: {},
    })),
  );
  const projectA = projectCaller('proj-a');
  const projectC = projectCaller('proj-c');
  const adminX = adminCaller('proj-x');

  it.each<{ filter: VisibilityFilter; count: number }>([
    { filter: 'default', count: 3 },
    { filter: 'public', count: 3 },
    { filter: 'private', count: 0 },
    { filter: 'shared', count: 0 },
    { filter: 'community', count: 3 },
    { filter: 'all', count: 6 },
  ])('project owning nothing lists $count with filter $filter', ({ filter, count }) => {
    expect(countListed(projectC, images, filter)).toBe(count);
  });

  it.each<{ filter: VisibilityFilter; count: number }>([
    { filter: 'default', count: 6 },
    { filter: 'public', count: 3 },
    { filter: 'private', count: 1 },
    { filter: 'shared', count: 1 },
    { filter: 'community', count: 3 },
    { filter: 'all', count: 8 },
  ])('owning project lists $count with filter $filter', ({ filter, count }) => {
    expect(countListed(projectA, images, filter)).toBe(count);
  });

  it.each<{ filter: VisibilityFilter; count: number }>([
    { filter: 'default', count: 10 },
    { filter: 'all', count: 12 },
  ])('admin lists $count with filter $filter', ({ filter, count }) => {
    expect(countListed(adminX, images, filter)).toBe(count);
  });
});

describe('listingScope with member rows', () => {
  const shared = (id: string, status: MemberStatus): StoredImage => ({
    image: makeImage({ id, owner: OTHER_PROJECT, visibility: 'shared' }),
    members: { [CALLER_PROJECT]: status },
  });
  const images: StoredImage[] = [
    shared('shared-pending', 'pending'),
    shared('shared-accepted', 'accepted'),
    shared('shared-rejected', 'rejected'),
    { image: makeImage({ id: 'shared-no-row', owner: OTHER_PROJECT, visibility: 'shared' }), members: {} },
    {
      image: makeImage({ id: 'private-with-row', owner: OTHER_PROJECT, visibility: 'private' }),
      members: { [CALLER_PROJECT]: 'accepted' },
    },
    { image: makeImage({ id: 'own-private', owner: CALLER_PROJECT, visibility: 'private' }), members: {} },
    { image: makeImage({ id: 'other-public', owner: OTHER_PROJECT, visibility: 'public' }), members: {} },
  ];
  const caller = projectCaller(CALLER_PROJECT);

  it.each<{ filter: MemberStatusFilter; ids: string[] }>([
    { filter: 'accepted', ids: ['shared-accepted', 'own-private', 'other-public'] },
    { filter: 'pending', ids: ['shared-pending', 'own-private', 'other-public'] },
    { filter: 'rejected', ids: ['shared-rejected', 'own-private', 'other-public'] },
    { filter: 'all', ids: ['shared-pending', 'shared-accepted', 'shared-rejected', 'own-private', 'other-public'] },
  ])('member status $filter narrows only shared images of others', ({ filter, ids }) => {
    const listed = filterImagesInScope(listingScope(caller, 'default', filter), images).map((image) => image.id);

    expect(listed).toEqual(ids);
  });

  it('admin lists every image whatever the member status', () => {
    const listed = filterImagesInScope(listingScope(adminCaller(), 'all', 'pending'), images);

    expect(listed).toHaveLength(images.length);
  });
});
