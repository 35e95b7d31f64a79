/**
 * The listing scope: the images a ListImages call may return, as data that
 * the listing query renders into SQL. The read predicate in image-access.ts states the same
 * rules for a single image.
 */
import type { Caller, MemberStatus, Visibility } from './model.js';

/** 'default' is the default listing; 'all' drops nothing. */
export type VisibilityFilter = Visibility | 'default' | 'all';
export type MemberStatusFilter = MemberStatus | 'all';

export interface ListingScope {
  /** Every image is a candidate: the caller is an admin. */
  allImages: boolean;
  /** The caller's project: its own images are candidates. */
  projectId: string;
  /**
   * Shared images of other projects are candidates when the caller's project
   * has a member row with one of these statuses. Empty for admins.
   */
  memberStatuses: MemberStatus[];
  /** Only images of this visibility, or null for any. */
  visibility: Visibility | null;
  /** Leave out community images that the caller's project does not own. */
  dropOthersCommunity: boolean;
}

/**
 * Builds the candidate set and visibility filter of a listing.
 *
 * For a project P the candidates are every public and community image,
 * every image P owns, and every shared image with a member row for P whose
 * status matches `memberStatus` (accepted by default). The member status
 * never removes public images or P's own images. For an admin every image is
 * a candidate and member rows play no part.
 *
 * Then the visibility filter applies. The default listing drops community
 * images that P does not own, for admins too, so that a flood of community
 * images does not bury the rest. 'all' drops nothing, and a single
 * visibility keeps only images of that visibility.
 */
export function listingScope(
  caller: Caller,
  visibility: VisibilityFilter,
  memberStatus: MemberStatusFilter,
): ListingScope {
  let memberStatuses: MemberStatus[] = [];
  if (!caller.isAdmin) {
    memberStatuses = memberStatus === 'all' ? ['pending', 'accepted', 'rejected'] : [memberStatus];
  }
  return {
    allImages: caller.isAdmin,
    projectId: caller.projectId,
    memberStatuses,
    visibility: visibility === 'default' || visibility === 'all' ? null : visibility,
    dropOthersCommunity: visibility === 'default',
  };
}
