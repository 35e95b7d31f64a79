/**
 * The scenarios as operations for the load generator. Every call carries
 * the token of a project that may make it:
 *
 * - get-image: GetImage of a shared image by one of its members, cycling
 *   through about 1,000 sampled member rows of any status.
 * - list-first: ListImages with no filter (the default listing) and the
 *   default page size, for HEAVY_CONSUMER, which lists every public image
 *   and its accepted shared images.
 * - list-deep: the same listing, from the page token reached by following
 *   tokens past `deepRows` rows.
 * - list-community: ListImages with visibility COMMUNITY and owner set to
 *   the first publisher, called by another consumer project.
 * - create-member: CreateMember by the owner of a sampled shared image,
 *   with a new member id on every call.
 * - update-member: UpdateMember by a member project, switching its
 *   membership between ACCEPTED and REJECTED.
 * - mixed: 90 % reads and 10 % writes, by the weights in MIXED_WEIGHTS.
 */
import {
  type DeepPartial,
  GetImageRequest,
  ListImagesRequest,
  VisibilityFilter,
} from '../../gen/imageregistry/v1/image_service.js';
import type { FixedRequest, Operation } from './calls.js';
import type { ScenarioName } from './options.js';
import { DEFAULT_PAGE_SIZE } from './registry-setup.js';
import { HEAVY_CONSUMER, consumerProject, ownerProject } from './seed-rows.js';
import type { CallTarget, Targets } from './targets.js';

export const COMMUNITY_PUBLISHER = ownerProject(0);
/** A consumer project that lists the publisher's community images. */
export const COMMUNITY_READER = consumerProject(1);

/** Shares of the mixed workload, in percent. */
const MIXED_WEIGHTS = {
  getImage: 50,
  listFirstOfMembers: 20,
  listFirstHeavy: 10,
  listCommunity: 10,
  createMember: 5,
  updateMember: 5,
};

export interface ScenarioInputs {
  targets: Targets;
  /** UpdateMember targets: memberships added for this run. */
  updatableMemberships: CallTarget[];
  deepPageToken: string;
}

function encodeList(request: DeepPartial<ListImagesRequest>): Uint8Array {
  return ListImagesRequest.encode(ListImagesRequest.fromPartial(request)).finish();
}

function getImageRequests(targets: Targets): FixedRequest[] {
  return targets.readers.map((reader) => ({
    project: reader.project,
    body: GetImageRequest.encode({ id: reader.imageId }).finish(),
    check: { kind: 'image', id: reader.imageId },
  }));
}

function firstPageOf(project: string, minImages: number): FixedRequest {
  return { project, body: encodeList({}), check: { kind: 'list', minImages } };
}

function communityRequest(): FixedRequest {
  return {
    project: COMMUNITY_READER,
    body: encodeList({ visibility: VisibilityFilter.VISIBILITY_FILTER_COMMUNITY, owner: COMMUNITY_PUBLISHER }),
    check: { kind: 'list', minImages: 1 },
  };
}

/** Returns every project that some scenario calls as, so that each gets a token. */
export function callingProjects(inputs: ScenarioInputs): string[] {
  return [
    HEAVY_CONSUMER,
    COMMUNITY_READER,
    ...inputs.targets.readers.map((reader) => reader.project),
    ...inputs.targets.ownedShared.map((owned) => owned.project),
    ...inputs.updatableMemberships.map((member) => member.project),
  ];
}

export function scenarioOperations(name: ScenarioName, inputs: ScenarioInputs): Operation[] {
  const { targets } = inputs;
  switch (name) {
    case 'get-image':
      return [{ label: name, weight: 1, kind: 'fixed', method: 'getImage', requests: getImageRequests(targets) }];
    case 'list-first':
      return [{ label: name, weight: 1, kind: 'fixed', method: 'listImages', requests: [firstPageOf(HEAVY_CONSUMER, DEFAULT_PAGE_SIZE)] }];
    case 'list-deep':
      return [
        {
          label: name,
          weight: 1,
          kind: 'fixed',
          method: 'listImages',
          requests: [{ project: HEAVY_CONSUMER, body: encodeList({ pageToken: inputs.deepPageToken }), check: { kind: 'list', minImages: 1 } }],
        },
      ];
    case 'list-community':
      return [{ label: name, weight: 1, kind: 'fixed', method: 'listImages', requests: [communityRequest()] }];
    case 'create-member':
      return [{ label: name, weight: 1, kind: 'create-member', targets: targets.ownedShared }];
    case 'update-member':
      return [{ label: name, weight: 1, kind: 'update-member', targets: inputs.updatableMemberships }];
    case 'mixed': {
      const memberProjects = [...new Set(targets.readers.map((reader) => reader.project))];
      return [
        { label: 'get-image', weight: MIXED_WEIGHTS.getImage, kind: 'fixed', method: 'getImage', requests: getImageRequests(targets) },
        {
          label: 'list-first (sampled members)',
          weight: MIXED_WEIGHTS.listFirstOfMembers,
          kind: 'fixed',
          method: 'listImages',
          requests: memberProjects.map((project) => firstPageOf(project, 1)),
        },
        {
          label: 'list-first (heavy consumer)',
          weight: MIXED_WEIGHTS.listFirstHeavy,
          kind: 'fixed',
          method: 'listImages',
          requests: [firstPageOf(HEAVY_CONSUMER, DEFAULT_PAGE_SIZE)],
        },
        { label: 'list-community', weight: MIXED_WEIGHTS.listCommunity, kind: 'fixed', method: 'listImages', requests: [communityRequest()] },
        { label: 'create-member', weight: MIXED_WEIGHTS.createMember, kind: 'create-member', targets: targets.ownedShared },
        { label: 'update-member', weight: MIXED_WEIGHTS.updateMember, kind: 'update-member', targets: inputs.updatableMemberships },
      ];
    }
  }
}
