/** Domain types: images, members and the caller, free of wire and row formats. */

export const VISIBILITIES = ['public', 'private', 'shared', 'community'] as const;
export type Visibility = (typeof VISIBILITIES)[number];

/** Glance's image statuses, as Glance spells them. */
export const IMAGE_STATUSES = [
  'queued',
  'saving',
  'active',
  'killed',
  'deleted',
  'pending_delete',
  'deactivated',
  'uploading',
  'importing',
] as const;
export type ImageStatus = (typeof IMAGE_STATUSES)[number];

export const MEMBER_STATUSES = ['pending', 'accepted', 'rejected'] as const;
export type MemberStatus = (typeof MEMBER_STATUSES)[number];

export interface Image {
  id: string;
  name: string;
  status: ImageStatus;
  visibility: Visibility;
  protected: boolean;
  hidden: boolean;
  owner: string;
  containerFormat: string;
  diskFormat: string;
  minDisk: number;
  minRam: number;
  /** Bytes of stored data, or null before data is stored. */
  size: number | null;
  virtualSize: number | null;
  checksum: string;
  hashAlgo: string;
  hashValue: string;
  tags: string[];
  properties: Record<string, string>;
  /** Milliseconds since the Unix epoch. */
  createTime: number;
  /** Milliseconds since the Unix epoch. */
  updateTime: number;
}

export interface Member {
  imageId: string;
  memberId: string;
  status: MemberStatus;
  /** Milliseconds since the Unix epoch. */
  createTime: number;
  /** Milliseconds since the Unix epoch. */
  updateTime: number;
}

/** The project a call acts for, and what its token's roles allow. */
export interface Caller {
  projectId: string;
  subject: string;
  isAdmin: boolean;
  /** Roles `reader`, `member` or `admin`. */
  canRead: boolean;
  /** Roles `member` or `admin`. */
  canWrite: boolean;
}

/**
 * Creates a record with no prototype, so that any string, "__proto__"
 * included, is stored as an ordinary key when assigned with brackets.
 */
export function emptyRecord(): Record<string, string> {
  return Object.create(null) as Record<string, string>;
}
