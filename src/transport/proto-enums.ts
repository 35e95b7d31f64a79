/**
 * Conversions between the protobuf enums and domain values. An enum number
 * the proto does not define is INVALID_ARGUMENT naming the field.
 */
import { invalidArgument } from '../domain/errors.js';
import type { MemberStatusFilter, VisibilityFilter } from '../domain/listing-scope.js';
import type { ImageStatus, MemberStatus, Visibility } from '../domain/model.js';
import {
  ImageStatus as ProtoImageStatus,
  Visibility as ProtoVisibility,
} from '../../gen/imageregistry/v1/image.js';
import {
  MemberStatusFilter as ProtoMemberStatusFilter,
  VisibilityFilter as ProtoVisibilityFilter,
} from '../../gen/imageregistry/v1/image_service.js';
import { MemberStatus as ProtoMemberStatus } from '../../gen/imageregistry/v1/member_service.js';

/** A two-way table between proto enum numbers and domain values; 0 maps to null. */
class EnumTable<Domain extends string> {
  private readonly toDomain: Map<number, Domain>;
  private readonly toProto: Map<Domain, number>;

  constructor(pairs: [number, Domain][]) {
    this.toDomain = new Map(pairs);
    this.toProto = new Map(pairs.map(([number, value]) => [value, number]));
  }

  /** Returns the domain value, null for the UNSPECIFIED zero value, or throws. */
  fromProto(field: string, number: number): Domain | null {
    if (number === 0) return null;
    const value = this.toDomain.get(number);
    if (value === undefined) throw invalidArgument(field, `${number} is not a defined enum value`);
    return value;
  }

  toProtoNumber(value: Domain): number {
    return this.toProto.get(value)!;
  }
}

export const visibilities = new EnumTable<Visibility>([
  [ProtoVisibility.VISIBILITY_PUBLIC, 'public'],
  [ProtoVisibility.VISIBILITY_PRIVATE, 'private'],
  [ProtoVisibility.VISIBILITY_SHARED, 'shared'],
  [ProtoVisibility.VISIBILITY_COMMUNITY, 'community'],
]);

export const imageStatuses = new EnumTable<ImageStatus>([
  [ProtoImageStatus.IMAGE_STATUS_QUEUED, 'queued'],
  [ProtoImageStatus.IMAGE_STATUS_SAVING, 'saving'],
  [ProtoImageStatus.IMAGE_STATUS_ACTIVE, 'active'],
  [ProtoImageStatus.IMAGE_STATUS_KILLED, 'killed'],
  [ProtoImageStatus.IMAGE_STATUS_DELETED, 'deleted'],
  [ProtoImageStatus.IMAGE_STATUS_PENDING_DELETE, 'pending_delete'],
  [ProtoImageStatus.IMAGE_STATUS_DEACTIVATED, 'deactivated'],
  [ProtoImageStatus.IMAGE_STATUS_UPLOADING, 'uploading'],
  [ProtoImageStatus.IMAGE_STATUS_IMPORTING, 'importing'],
]);

export const memberStatuses = new EnumTable<MemberStatus>([
  [ProtoMemberStatus.MEMBER_STATUS_PENDING, 'pending'],
  [ProtoMemberStatus.MEMBER_STATUS_ACCEPTED, 'accepted'],
  [ProtoMemberStatus.MEMBER_STATUS_REJECTED, 'rejected'],
]);

const visibilityFilters = new EnumTable<Visibility | 'all'>([
  [ProtoVisibilityFilter.VISIBILITY_FILTER_PUBLIC, 'public'],
  [ProtoVisibilityFilter.VISIBILITY_FILTER_PRIVATE, 'private'],
  [ProtoVisibilityFilter.VISIBILITY_FILTER_SHARED, 'shared'],
  [ProtoVisibilityFilter.VISIBILITY_FILTER_COMMUNITY, 'community'],
  [ProtoVisibilityFilter.VISIBILITY_FILTER_ALL, 'all'],
]);

const memberStatusFilters = new EnumTable<MemberStatusFilter>([
  [ProtoMemberStatusFilter.MEMBER_STATUS_FILTER_PENDING, 'pending'],
  [ProtoMemberStatusFilter.MEMBER_STATUS_FILTER_ACCEPTED, 'accepted'],
  [ProtoMemberStatusFilter.MEMBER_STATUS_FILTER_REJECTED, 'rejected'],
  [ProtoMemberStatusFilter.MEMBER_STATUS_FILTER_ALL, 'all'],
]);

/** Unspecified means the default listing. */
export function visibilityFilterFromProto(number: number): VisibilityFilter {
  return visibilityFilters.fromProto('visibility', number) ?? 'default';
}

/** Unspecified means ACCEPTED. */
export function memberStatusFilterFromProto(number: number): MemberStatusFilter {
  return memberStatusFilters.fromProto('member_status', number) ?? 'accepted';
}
