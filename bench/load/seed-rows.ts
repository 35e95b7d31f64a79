/**
 * The seeded data set of the load benchmark, generated deterministically
 * from the image count alone: image i is the same on every run, so a seeded
 * database can be reused and its targets found again.
 *
 * The mix: images spread over OWNER_COUNT owner projects; 60 % shared,
 * 20 % private, 10 % public and 10 % community. Half of the community images
 * belong to the first PUBLISHER_COUNT owners. Each shared image has 1 to 3
 * members drawn from CONSUMER_COUNT consumer projects: 60 % accepted, 25 %
 * pending, 15 % rejected. HEAVY_CONSUMER takes the first member slot of one
 * shared image in HEAVY_CONSUMER_SHARE, so that one project's default
 * listing is long enough for a deep page.
 */
import { createHash } from 'node:crypto';
import type { Image, ImageStatus, Member, MemberStatus, Visibility } from '../../src/domain/model.js';

export const OWNER_COUNT = 1_000;
export const CONSUMER_COUNT = 10_000;
export const PUBLISHER_COUNT = 10;
/** Largest image count the id scheme below keeps in strictly increasing order. */
export const MAX_IMAGE_COUNT = 100_000_000;

export const HEAVY_CONSUMER = consumerProject(0);
/** Share of shared images whose first member is HEAVY_CONSUMER. */
export const HEAVY_CONSUMER_SHARE = 1 / 6;

/** Version of the generator: change it whenever the rows it produces change, so that seeded databases are remade. */
export const SEED_FORMAT_VERSION = 1;

const DAY_MS = 86_400_000;
/** Images are created between 2022-01-01 and 2025-01-01 (UTC). */
const FIRST_CREATE_TIME = Date.UTC(2022, 0, 1);
const CREATE_TIME_SPAN_MS = Date.UTC(2025, 0, 1) - FIRST_CREATE_TIME;

const DISTRIBUTIONS: readonly { distro: string; versions: readonly string[] }[] = [
  { distro: 'ubuntu', versions: ['20.04', '22.04', '24.04'] },
  { distro: 'debian', versions: ['11', '12'] },
  { distro: 'centos-stream', versions: ['9'] },
  { distro: 'rocky', versions: ['8', '9'] },
  { distro: 'fedora', versions: ['39', '40'] },
  { distro: 'windows-server', versions: ['2019', '2022'] },
  { distro: 'cirros', versions: ['0.6.2'] },
];
const TAGS = ['golden', 'ci', 'lts', 'gpu', 'nightly', 'hardened', 'base', 'minimal'];
const MIN_DISK_GB = [0, 10, 20, 40, 80];
const MIN_RAM_MB = [0, 512, 1024, 2048, 4096];
const MIN_SIZE_BYTES = 50e6;
const MAX_SIZE_BYTES = 20e9;

export function ownerProject(index: number): string {
  return `owner-${String(index).padStart(4, '0')}`;
}

export function consumerProject(index: number): string {
  return `consumer-${String(index).padStart(5, '0')}`;
}

/** One generated image with its member rows. */
export interface SeedImage {
  image: Image;
  members: Member[];
}

/** mulberry32: a small, fast 32-bit generator, good enough to draw a data set. */
function mulberry32(seed: number): () => number {
  let state = seed >>> 0;
  return () => {
    state = (state + 0x6d2b79f5) >>> 0;
    let t = state;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4_294_967_296;
  };
}

/** Mixes an image index into a 32-bit seed (the finalizer of MurmurHash3). */
function imageSeed(index: number): number {
  let h = (index ^ 0x9e3779b9) >>> 0;
  h = Math.imul(h ^ (h >>> 16), 0x85ebca6b);
  h = Math.imul(h ^ (h >>> 13), 0xc2b2ae35);
  return (h ^ (h >>> 16)) >>> 0;
}

function hex32(value: number): string {
  return (value >>> 0).toString(16).padStart(8, '0');
}

/**
 * Returns a version 4 UUID whose first 32 bits grow with `index`, spread
 * evenly over the whole range. Ids therefore sort in index order, so rows
 * go into the primary key in order, and they look like random ids to every
 * query: the first 8 hex digits of n sorted random UUIDs are spread the
 * same way.
 */
export function imageIdAt(index: number, imageCount: number): string {
  const random = mulberry32(imageSeed(index) ^ 0x5bd1e995);
  const prefix = Math.floor((index / imageCount) * 4_294_967_296);
  const a = hex32(random() * 4_294_967_296);
  const b = hex32(random() * 4_294_967_296);
  const c = hex32(random() * 4_294_967_296);
  const variant = '89ab'[Math.floor(random() * 4)]!;
  return `${hex32(prefix)}-${a.slice(0, 4)}-4${a.slice(5, 8)}-${variant}${b.slice(1, 4)}-${b.slice(4, 8)}${c}`;
}

function pick<T>(random: () => number, items: readonly T[]): T {
  return items[Math.floor(random() * items.length)]!;
}

/**
 * Returns the value of the first entry whose upper bound exceeds `u`, a
 * draw from [0, 1), so each value's share is its bound minus the previous one.
 */
function pickBelow<T>(u: number, entries: readonly (readonly [bound: number, value: T])[]): T {
  for (const [bound, value] of entries) {
    if (u < bound) return value;
  }
  return entries[entries.length - 1]![1];
}

function pickVisibility(u: number): Visibility {
  return pickBelow<Visibility>(u, [
    [0.6, 'shared'],
    [0.8, 'private'],
    [0.9, 'public'],
    [1, 'community'],
  ]);
}

function pickMemberStatus(u: number): MemberStatus {
  return pickBelow<MemberStatus>(u, [
    [0.6, 'accepted'],
    [0.85, 'pending'],
    [1, 'rejected'],
  ]);
}

function utcDay(epochMs: number): string {
  return new Date(epochMs).toISOString().slice(0, 10).replaceAll('-', '');
}

function drawMembers(random: () => number, imageId: string, imageCreateTime: number): Member[] {
  const count = 1 + Math.floor(random() * 3);
  const chosen = new Set<number>();
  const members: Member[] = [];
  for (let slot = 0; slot < count; slot++) {
    let consumer: number;
    if (slot === 0 && random() < HEAVY_CONSUMER_SHARE) {
      consumer = 0;
    } else {
      do consumer = 1 + Math.floor(random() * (CONSUMER_COUNT - 1));
      while (chosen.has(consumer));
    }
    chosen.add(consumer);
    const status = pickMemberStatus(random());
    const createTime = imageCreateTime + Math.floor(random() * 7 * DAY_MS);
    const updateTime = status === 'pending' ? createTime : createTime + Math.floor(random() * 7 * DAY_MS);
    members.push({ imageId, memberId: consumerProject(consumer), status, createTime, updateTime });
  }
  return members;
}

/** Generates image `index` of a data set of `imageCount` images. */
export function seedImageAt(index: number, imageCount: number): SeedImage {
  const random = mulberry32(imageSeed(index));
  const id = imageIdAt(index, imageCount);
  const visibility = pickVisibility(random());
  const owner =
    visibility === 'community' && random() < 0.5
      ? ownerProject(Math.floor(random() * PUBLISHER_COUNT))
      : ownerProject(Math.floor(random() * OWNER_COUNT));

  const status = pickBelow<ImageStatus>(random(), [
    [0.94, 'active'],
    [0.97, 'queued'],
    [0.99, 'deactivated'],
    [1, 'killed'],
  ]);
  const hasData = status === 'active' || status === 'deactivated';
  const size = hasData
    ? Math.round(Math.exp(Math.log(MIN_SIZE_BYTES) + random() * (Math.log(MAX_SIZE_BYTES) - Math.log(MIN_SIZE_BYTES))))
    : null;
  const virtualSize = size !== null && random() < 0.7 ? Math.round(size * (1 + random() * 4)) : null;

  const createTime = FIRST_CREATE_TIME + Math.floor(random() * CREATE_TIME_SPAN_MS);
  const updateTime = createTime + Math.floor(random() * 30 * DAY_MS);
  const { distro, versions } = pick(random, DISTRIBUTIONS);
  const version = pick(random, versions);

  const tagCount = pickBelow(random(), [
    [0.4, 0],
    [0.8, 1],
    [1, 2],
  ]);
  const tags: string[] = [];
  while (tags.length < tagCount) {
    const tag = pick(random, TAGS);
    if (!tags.includes(tag)) tags.push(tag);
  }
  const properties: Record<string, string> = { os_distro: distro, os_version: version };
  if (random() < 0.6) properties.architecture = random() < 0.8 ? 'x86_64' : 'aarch64';
  if (random() < 0.3) properties.hw_disk_bus = random() < 0.8 ? 'virtio' : 'scsi';
  if (random() < 0.2) properties.hw_firmware_type = 'uefi';

  const diskFormat = pickBelow(random(), [
    [0.7, 'qcow2'],
    [0.9, 'raw'],
    [0.95, 'vmdk'],
    [1, 'iso'],
  ]);
  const image: Image = {
    id,
    name: `${distro}-${version}-${utcDay(createTime)}-${index.toString(36)}`,
    status,
    visibility,
    protected: random() < 0.1,
    hidden: random() < 0.02,
    owner,
    containerFormat: random() < 0.9 ? 'bare' : 'ovf',
    diskFormat,
    minDisk: pick(random, MIN_DISK_GB),
    minRam: pick(random, MIN_RAM_MB),
    size,
    virtualSize,
    checksum: hasData ? createHash('md5').update(id).digest('hex') : '',
    hashAlgo: hasData ? 'sha512' : '',
    hashValue: hasData ? createHash('sha512').update(id).digest('hex') : '',
    tags,
    properties,
    createTime,
    updateTime,
  };
  const members = visibility === 'shared' ? drawMembers(random, id, createTime) : [];
  return { image, members };
}
