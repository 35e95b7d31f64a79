/** Conversions between protobuf image messages and domain values. */
import { invalidArgument } from '../domain/errors.js';
import type { ImageInput } from '../domain/image-update.js';
import type { Image } from '../domain/model.js';
import type { ListImagesQuery } from '../app/image-queries.js';
import type { Image as ProtoImage } from '../../gen/imageregistry/v1/image.js';
import type { ListImagesRequest } from '../../gen/imageregistry/v1/image_service.js';
import {
  imageStatuses,
  memberStatusFilterFromProto,
  visibilities,
  visibilityFilterFromProto,
} from './proto-enums.js';

export function imageToProto(image: Image): ProtoImage {
  return {
    id: image.id,
    name: image.name,
    status: imageStatuses.toProtoNumber(image.status),
    visibility: visibilities.toProtoNumber(image.visibility),
    protected: image.protected,
    hidden: image.hidden,
    owner: image.owner,
    containerFormat: image.containerFormat,
    diskFormat: image.diskFormat,
    minDisk: image.minDisk,
    minRam: image.minRam,
    size: image.size === null ? undefined : String(image.size),
    virtualSize: image.virtualSize === null ? undefined : String(image.virtualSize),
    checksum: image.checksum,
    hashAlgo: image.hashAlgo,
    hashValue: image.hashValue,
    tags: image.tags,
    properties: new Map(Object.entries(image.properties)),
    createTime: new Date(image.createTime),
    updateTime: new Date(image.updateTime),
  };
}

/** Reads the writable fields of a request's image. A missing image gives all defaults. */
export function imageInputFromProto(image: ProtoImage | undefined): ImageInput {
  return {
    name: image?.name ?? '',
    visibility: visibilities.fromProto('image.visibility', image?.visibility ?? 0),
    protected: image?.protected ?? false,
    hidden: image?.hidden ?? false,
    owner: image?.owner ?? '',
    containerFormat: image?.containerFormat ?? '',
    diskFormat: image?.diskFormat ?? '',
    minDisk: image?.minDisk ?? 0,
    minRam: image?.minRam ?? 0,
    tags: image?.tags ?? [],
    properties: Object.fromEntries(image?.properties ?? []),
  };
}

/** google.protobuf.Timestamp's range: 0001-01-01T00:00:00Z to 9999-12-31T23:59:59.999Z. */
const MIN_TIMESTAMP_MS = -62_135_596_800_000;
const MAX_TIMESTAMP_MS = 253_402_300_799_999;

/** Returns a decoded Timestamp in epoch milliseconds, or throws INVALID_ARGUMENT outside its range. */
function timestampMillis(field: string, value: Date): number {
  const millis = value.getTime();
  if (!(millis >= MIN_TIMESTAMP_MS && millis <= MAX_TIMESTAMP_MS)) {
    throw invalidArgument(field, 'is outside the Timestamp range 0001-01-01 to 9999-12-31');
  }
  return millis;
}

/** Empty strings and unspecified enums mean "not filtered". */
export function listImagesQueryFromProto(request: ListImagesRequest): ListImagesQuery {
  const orNull = (value: string) => (value === '' ? null : value);
  return {
    pageSize: request.pageSize,
    pageToken: request.pageToken,
    orderBy: request.orderBy,
    visibility: visibilityFilterFromProto(request.visibility),
    memberStatus: memberStatusFilterFromProto(request.memberStatus),
    filters: {
      owner: orNull(request.owner),
      name: orNull(request.name),
      status: imageStatuses.fromProto('status', request.status),
      tags: request.tags,
      properties: Object.fromEntries(request.properties),
      containerFormat: orNull(request.containerFormat),
      diskFormat: orNull(request.diskFormat),
      ids: request.ids.length === 0 ? null : request.ids,
      updatedAfter: request.updatedAfter === undefined ? null : timestampMillis('updated_after', request.updatedAfter),
      includeHidden: request.includeHidden,
    },
  };
}
