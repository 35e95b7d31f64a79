/** Row types of the image tables, and their conversion to and from domain images. */
import { metadataBytes } from '../domain/image-fields.js';
import type { Image, ImageStatus, Visibility } from '../domain/model.js';

export interface ImageRow {
  id: string;
  name: string;
  status: string;
  visibility: string;
  protected: number | boolean;
  hidden: number | boolean;
  owner: string;
  container_format: string;
  disk_format: string;
  min_disk: number;
  min_ram: number;
  size: number | string | null;
  virtual_size: number | string | null;
  checksum: string;
  hash_algo: string;
  hash_value: string;
  metadata_bytes: number;
  create_time: number | string;
  update_time: number | string;
}

export interface TagRow {
  image_id: string;
  tag: string;
}

export interface PropertyRow {
  image_id: string;
  name: string;
  value: string;
}

export const IMAGE_COLUMNS = [
  'id', 'name', 'status', 'visibility', 'protected', 'hidden', 'owner',
  'container_format', 'disk_format', 'min_disk', 'min_ram', 'size',
  'virtual_size', 'checksum', 'hash_algo', 'hash_value', 'metadata_bytes',
  'create_time', 'update_time',
] as const;

/** BIGINT columns come back as numbers, or as strings beyond 2^53 on MySQL. */
function toNumber(value: number | string): number {
  return typeof value === 'number' ? value : Number(value);
}

function toNullableNumber(value: number | string | null): number | null {
  return value === null ? null : toNumber(value);
}

export function imageFromRows(row: ImageRow, tags: string[], properties: Record<string, string>): Image {
  return {
    id: row.id,
    name: row.name,
    status: row.status as ImageStatus,
    visibility: row.visibility as Visibility,
    protected: Boolean(row.protected),
    hidden: Boolean(row.hidden),
    owner: row.owner,
    containerFormat: row.container_format,
    diskFormat: row.disk_format,
    minDisk: row.min_disk,
    minRam: row.min_ram,
    size: toNullableNumber(row.size),
    virtualSize: toNullableNumber(row.virtual_size),
    checksum: row.checksum,
    hashAlgo: row.hash_algo,
    hashValue: row.hash_value,
    tags,
    properties,
    createTime: toNumber(row.create_time),
    updateTime: toNumber(row.update_time),
  };
}

export function rowFromImage(image: Image): ImageRow {
  return {
    id: image.id,
    name: image.name,
    status: image.status,
    visibility: image.visibility,
    protected: image.protected,
    hidden: image.hidden,
    owner: image.owner,
    container_format: image.containerFormat,
    disk_format: image.diskFormat,
    min_disk: image.minDisk,
    min_ram: image.minRam,
    size: image.size,
    virtual_size: image.virtualSize,
    checksum: image.checksum,
    hash_algo: image.hashAlgo,
    hash_value: image.hashValue,
    metadata_bytes: metadataBytes(image),
    create_time: image.createTime,
    update_time: image.updateTime,
  };
}
