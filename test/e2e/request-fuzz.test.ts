/**
 * Property-based requests to every RPC of ImageService and MemberService,
 * on SQLite and on MySQL. Each request goes out as bytes through a
 * grpc.Client with identity serializers. The bytes are generated encodings
 * of random field values: unknown enum numbers, lengths at and past the
 * limits, large tag and property sets, random update masks, page tokens
 * and order_by. Other properties splice invalid UTF-8 into one string
 * field, or send random or mutated bytes.
 *
 * Every call must end within 5 s with OK or a client error that the API
 * documents, with a message. An INVALID_ARGUMENT message must name a
 * request field.
 *
 * FUZZ_SEED sets the seed (printed at the start), FUZZ_RUNS the runs of
 * each property, and FUZZ_SHRINK=1 makes fast-check shrink a failure to a
 * smaller request. Shrinking is off by default because a request that hangs
 * costs the full deadline on every shrink step.
 */
import { createHash, randomUUID } from 'node:crypto';
import * as grpc from '@grpc/grpc-js';
import fc from 'fast-check';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Empty } from '../../gen/google/protobuf/empty.js';
import { Timestamp } from '../../gen/google/protobuf/timestamp.js';
import { Image, Visibility } from '../../gen/imageregistry/v1/image.js';
import {
  AddImageTagRequest,
  CreateImageRequest,
  DeactivateImageRequest,
  type DeepPartial,
  DeleteImageRequest,
  DownloadImageDataRequest,
  DownloadImageDataResponse,
  GetImageRequest,
  ListImagesRequest,
  ListImagesResponse,
  ReactivateImageRequest,
  RemoveImageTagRequest,
  UpdateImageRequest,
  UploadImageDataRequest,
  type UploadImageDataStart,
} from '../../gen/imageregistry/v1/image_service.js';
import {
  CreateMemberRequest,
  DeleteMemberRequest,
  GetMemberRequest,
  ListMembersRequest,
  ListMembersResponse,
  Member,
  UpdateMemberRequest,
} from '../../gen/imageregistry/v1/member_service.js';
import { testedBackends } from '../support/databases.js';
import { type RegistryClient, RegistryHarness } from '../support/registry-harness.js';

function integerFromEnvironment(name: string, fallback: number): number {
  const text = process.env[name];
  if (text === undefined || text === '') return fallback;
  const value = Number(text);
  if (!Number.isSafeInteger(value) || value < 0) {
    throw new Error(`${name}=${JSON.stringify(text)} is invalid: set it to a whole number, 0 or more`);
  }
  return value;
}

const SEED = integerFromEnvironment('FUZZ_SEED', 20_250_611);
/** Runs of each per-RPC property. The raw-bytes and UTF-8 properties run a multiple of it. */
const RUNS = integerFromEnvironment('FUZZ_RUNS', 100);
const SHRINK = process.env.FUZZ_SHRINK === '1';
const CALL_DEADLINE_MS = 5_000;

console.log(
  `request fuzz: seed ${SEED}, ${RUNS} runs per property, shrinking ${SHRINK ? 'on' : 'off'} ` +
    '(set FUZZ_SEED, FUZZ_RUNS, FUZZ_SHRINK=1 to change)',
);

type Rpc =
  | 'CreateImage'
  | 'GetImage'
  | 'ListImages'
  | 'UpdateImage'
  | 'AddImageTag'
  | 'RemoveImageTag'
  | 'DeleteImage'
  | 'DeactivateImage'
  | 'ReactivateImage'
  | 'UploadImageData'
  | 'DownloadImageData'
  | 'CreateMember'
  | 'GetMember'
  | 'ListMembers'
  | 'UpdateMember'
  | 'DeleteMember';

const MEMBER_RPCS: ReadonlySet<Rpc> = new Set(['CreateMember', 'GetMember', 'ListMembers', 'UpdateMember', 'DeleteMember']);

function pathOf(rpc: Rpc): string {
  return `/imageregistry.v1.${MEMBER_RPCS.has(rpc) ? 'MemberService' : 'ImageService'}/${rpc}`;
}

const IMAGE_INPUT_FIELDS = [
  'image.name',
  'image.visibility',
  'image.tags',
  'image.properties',
  'image.container_format',
  'image.disk_format',
  'image.min_disk',
  'image.min_ram',
  'image.owner',
];

/** The request fields each RPC's INVALID_ARGUMENT messages may name, as protobuf field paths. */
const REQUEST_FIELDS: Record<Rpc, string[]> = {
  CreateImage: ['image_id', ...IMAGE_INPUT_FIELDS],
  GetImage: ['id'],
  ListImages: [
    'page_size', 'page_token', 'order_by', 'visibility', 'member_status', 'owner', 'name', 'status',
    'tags', 'properties', 'container_format', 'disk_format', 'ids', 'updated_after',
  ],
  UpdateImage: ['image.id', 'update_mask', ...IMAGE_INPUT_FIELDS],
  AddImageTag: ['image_id', 'tag'],
  RemoveImageTag: ['image_id', 'tag'],
  DeleteImage: ['id'],
  DeactivateImage: ['id'],
  ReactivateImage: ['id'],
  UploadImageData: ['start', 'chunk', 'start.image_id', 'start.expected_size', 'start.expected_checksum', 'start.expected_hash_value'],
  DownloadImageData: ['id'],
  CreateMember: ['image_id', 'member_id'],
  GetMember: ['image_id', 'member_id'],
  ListMembers: ['image_id', 'page_size', 'page_token'],
  UpdateMember: ['image_id', 'member_id', 'status'],
  DeleteMember: ['image_id', 'member_id'],
};

/**
 * The name that INVALID_ARGUMENT messages for undecodable request bytes give
 * in place of a field.
 * NOTE: this includes invalid UTF-8 in a known string field, whose message
 * does not yet name that field.
 */
const UNDECODABLE_FIELD = 'request';

/** OK and the client errors that the API documents for bad or unlucky requests. */
const ALLOWED_CODES = [
  'OK',
  'INVALID_ARGUMENT',
  'NOT_FOUND',
  'PERMISSION_DENIED',
  'ALREADY_EXISTS',
  'FAILED_PRECONDITION',
  'RESOURCE_EXHAUSTED',
];

// Transport: every request is sent as bytes, so that hand-made and random bytes take the same path.

interface Outcome {
  code: string;
  message: string;
  /** Response messages as bytes: one for a unary call, every message of a download. */
  responses: Buffer[];
}

const identity = (bytes: Buffer) => bytes;

function outcomeOf(error: grpc.ServiceError | grpc.StatusObject | null | undefined, responses: Buffer[]): Outcome {
  if (error === null || error === undefined || error.code === grpc.status.OK) return { code: 'OK', message: '', responses };
  return { code: grpc.status[error.code] ?? String(error.code), message: error.details, responses };
}

function metadataOf(authorization: string): grpc.Metadata {
  const metadata = new grpc.Metadata();
  metadata.set('authorization', authorization);
  return metadata;
}

/**
 * One channel to the server. A call past its deadline may leave the HTTP/2
 * connection unusable, so the channel is replaced after one, and the calls
 * that follow are not blamed for the hang.
 */
class Connection {
  private client: grpc.Client;
  /** Outcomes by status code since the last takeCounts, to show what a property reached. */
  private counts = new Map<string, number>();

  constructor(private readonly address: string) {
    this.client = this.open();
  }

  private open(): grpc.Client {
    return new grpc.Client(this.address, grpc.credentials.createInsecure(), {
      // A page or an image may carry 8.4 MB of properties.
      'grpc.max_receive_message_length': -1,
      'grpc.max_send_message_length': -1,
    });
  }

  private settle(outcome: Outcome): Outcome {
    this.counts.set(outcome.code, (this.counts.get(outcome.code) ?? 0) + 1);
    if (outcome.code === 'DEADLINE_EXCEEDED') {
      this.client.close();
      this.client = this.open();
    }
    return outcome;
  }

  unary(rpc: Rpc, bytes: Buffer, authorization: string): Promise<Outcome> {
    return new Promise((resolve) => {
      this.client.makeUnaryRequest(
        pathOf(rpc),
        identity,
        identity,
        bytes,
        metadataOf(authorization),
        { deadline: Date.now() + CALL_DEADLINE_MS },
        (error, response) => resolve(this.settle(outcomeOf(error, response === undefined ? [] : [response]))),
      );
    });
  }

  /** Sends each buffer as one message of an UploadImageData stream, then half-closes it. */
  upload(messages: Buffer[], authorization: string): Promise<Outcome> {
    return new Promise((resolve) => {
      const call = this.client.makeClientStreamRequest(
        pathOf('UploadImageData'),
        identity,
        identity,
        metadataOf(authorization),
        { deadline: Date.now() + CALL_DEADLINE_MS },
        (error, response) => resolve(this.settle(outcomeOf(error, response === undefined ? [] : [response]))),
      );
      for (const message of messages) call.write(message);
      call.end();
    });
  }

  /** Sends request bytes to DownloadImageData and reads the stream until its status. */
  download(bytes: Buffer, authorization: string): Promise<Outcome> {
    return new Promise((resolve) => {
      const responses: Buffer[] = [];
      const call = this.client.makeServerStreamRequest(
        pathOf('DownloadImageData'),
        identity,
        identity,
        bytes,
        metadataOf(authorization),
        { deadline: Date.now() + CALL_DEADLINE_MS },
      );
      call.on('data', (message: Buffer) => responses.push(message));
      // The status event follows every error, and carries the same code.
      call.on('error', () => {});
      call.on('status', (status: grpc.StatusObject) => resolve(this.settle(outcomeOf(status, responses))));
    });
  }

  /** Returns the outcome counts, such as "OK 3, NOT_FOUND 2", and starts counting again. */
  takeCounts(): string {
    const text = [...this.counts].sort(([first], [second]) => first.localeCompare(second)).map(([code, count]) => `${code} ${count}`).join(', ');
    this.counts = new Map();
    return text;
  }

  close(): void {
    this.client.close();
  }
}

interface Decoder {
  decode(input: Uint8Array): unknown;
}

const RESPONSE_TYPES: Record<Rpc, Decoder> = {
  CreateImage: Image,
  GetImage: Image,
  ListImages: ListImagesResponse,
  UpdateImage: Image,
  AddImageTag: Image,
  RemoveImageTag: Image,
  DeleteImage: Empty,
  DeactivateImage: Image,
  ReactivateImage: Image,
  UploadImageData: Image,
  DownloadImageData: DownloadImageDataResponse,
  CreateMember: Member,
  GetMember: Member,
  ListMembers: ListMembersResponse,
  UpdateMember: Member,
  DeleteMember: Empty,
};

function escapeRegExp(text: string): string {
  return text.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
}

/** Returns whether `message` contains `field` as a whole name, so that "id" does not match inside "image_id". */
function namesField(message: string, field: string): boolean {
  return new RegExp(`(^|[^\\w.])${escapeRegExp(field)}($|[^\\w.])`).test(message);
}

/** Cuts long text for assertion messages. */
function shorten(text: string, max = 300): string {
  return text.length <= max ? text : `${text.slice(0, max)}… (${text.length} characters)`;
}

/**
 * Asserts that an outcome is OK or a documented client error with a
 * message, that INVALID_ARGUMENT names a field of the request, and that OK
 * responses decode. `undecodable` allows the generic field name of a
 * request whose bytes may not decode.
 */
function expectAllowedOutcome(rpc: Rpc, outcome: Outcome, { undecodable }: { undecodable: boolean }): void {
  const shown = `${rpc} returned ${outcome.code}: ${shorten(outcome.message)}`;
  expect(ALLOWED_CODES, shown).toContain(outcome.code);
  if (outcome.code === 'OK') {
    for (const response of outcome.responses) {
      expect(() => RESPONSE_TYPES[rpc].decode(response), `${rpc} response does not decode`).not.toThrow();
    }
    return;
  }
  expect(outcome.message, `${rpc} returned ${outcome.code} with an empty message`).not.toBe('');
  if (outcome.code === 'INVALID_ARGUMENT') {
    const fields = undecodable ? [...REQUEST_FIELDS[rpc], UNDECODABLE_FIELD] : REQUEST_FIELDS[rpc];
    expect(
      fields.some((field) => namesField(outcome.message, field)),
      `${shown}\nThe message names none of the fields ${fields.join(', ')}`,
    ).toBe(true);
  }
}

// Hand-encoded protobuf, for bytes that no generated encoder writes.

function varint(value: number): number[] {
  const bytes: number[] = [];
  while (value > 0x7f) {
    bytes.push((value & 0x7f) | 0x80);
    value >>>= 7;
  }
  bytes.push(value);
  return bytes;
}

/** Encodes a length-delimited field: a string, bytes, an embedded message or a map entry. */
function field(number: number, contents: number[] | Uint8Array): number[] {
  return [...varint((number << 3) | 2), ...varint(contents.length), ...contents];
}

/** Nests `contents` in length-delimited fields along `path`, outermost first. */
function nested(path: readonly number[], contents: number[]): number[] {
  return path.reduceRight((inner, number) => field(number, inner), contents);
}

// The fixture: callers and images that requests may name.

type CallerName = 'owner' | 'member' | 'stranger' | 'reader' | 'admin';

interface Fixture {
  registry: RegistryHarness;
  connection: Connection;
  authorization: Record<CallerName, string>;
  /** Generated client of proj-a, which owns every image below except the sentinel. */
  owner: RegistryClient;
  /** Generated client of proj-sentinel, which owns the sentinel. */
  sentinelOwner: RegistryClient;
  /** A shared image of proj-a with members proj-b and proj-c. */
  sharedImageId: string;
  /** An ACTIVE image of proj-a with data. */
  activeImageId: string;
  /** Images of proj-a of each visibility, one protected, and one deleted. */
  imageIds: string[];
  protectedImageId: string;
  deletedImageId: string;
  imagePageToken: string;
  memberPageToken: string;
  /** An image of another project that no request names, read after the fuzzing. */
  sentinel: Image;
}

const SENTINEL_PROPERTIES = new Map([['os_distro', 'cirros']]);

async function startFixture(backend: 'sqlite' | 'mysql'): Promise<Fixture> {
  const registry = await RegistryHarness.start(backend);
  const owner = await registry.as('proj-a');
  const admin = await registry.as('proj-admin', { admin: true });
  const sentinelOwner = await registry.as('proj-sentinel');

  const shared = await owner.images.createImage({ image: { name: 'fuzz-shared', tags: ['keep'], properties: new Map([['os_distro', 'cirros']]) } });
  await owner.members.createMember({ imageId: shared.id, memberId: 'proj-b' });
  await owner.members.createMember({ imageId: shared.id, memberId: 'proj-c' });
  const privateImage = await owner.images.createImage({ image: { name: 'fuzz-private', visibility: Visibility.VISIBILITY_PRIVATE } });
  const community = await owner.images.createImage({ image: { name: 'fuzz-community', visibility: Visibility.VISIBILITY_COMMUNITY } });
  const publicImage = await admin.images.createImage({ image: { name: 'fuzz-public', visibility: Visibility.VISIBILITY_PUBLIC, owner: 'proj-a' } });
  const protectedImage = await owner.images.createImage({ image: { name: 'fuzz-protected', protected: true } });
  const deleted = await owner.images.createImage({ image: { name: 'fuzz-deleted' } });
  await owner.images.deleteImage({ id: deleted.id });
  const active = await owner.images.createImage({ image: { name: 'fuzz-active' } });
  await owner.data.upload({ imageId: active.id }, [Buffer.from('fuzz image data\n')]);
  const sentinel = await sentinelOwner.images.createImage({ image: { name: 'sentinel', tags: ['t'], properties: SENTINEL_PROPERTIES } });

  const imagePage = await owner.images.listImages({ pageSize: 1 });
  const memberPage = await owner.members.listMembers({ imageId: shared.id, pageSize: 1 });
  const bearer = async (project: string, roles: string[]) => `Bearer ${await registry.token(project, { roles })}`;
  return {
    registry,
    connection: new Connection(registry.address),
    authorization: {
      owner: await bearer('proj-a', ['member']),
      member: await bearer('proj-b', ['member']),
      stranger: await bearer('proj-z', ['member']),
      reader: await bearer('proj-b', ['reader']),
      admin: await bearer('proj-admin', ['admin']),
    },
    owner,
    sentinelOwner,
    sharedImageId: shared.id,
    activeImageId: active.id,
    imageIds: [shared.id, privateImage.id, community.id, publicImage.id, protectedImage.id, deleted.id, active.id],
    protectedImageId: protectedImage.id,
    deletedImageId: deleted.id,
    imagePageToken: imagePage.nextPageToken,
    memberPageToken: memberPage.nextPageToken,
    sentinel,
  };
}

// Arbitraries of field values.

/** Characters that parsers and databases treat specially, and ones that take 2 to 4 UTF-8 bytes. */
const SPECIAL_CHARACTERS = [
  "'", '"', '`', '\\', '\u0000', '\t', '\n', '\r', ' ', '\u00a0', '%', '_', '.', ',', ':', '/',
  'é', '€', '🐧', '\u200b', '\ufeff', '\uffff', '\u{10ffff}',
];

const arbShortText = fc.oneof(
  fc.string({ unit: 'binary', maxLength: 30 }),
  fc.string({ unit: fc.constantFrom(...SPECIAL_CHARACTERS), maxLength: 30 }),
  fc.string({ unit: 'grapheme-ascii', maxLength: 30 }),
);

/**
 * Text at and past the limits: 255 and 256 characters, 65,535 and 65,536
 * bytes (21,845 three-byte characters are 65,535 bytes), and longer.
 */
const arbLongText = fc
  .record({
    unit: fc.constantFrom('a', 'é', '€', '🐧', "'", '\\'),
    count: fc.constantFrom(255, 256, 21_845, 21_846, 65_535, 65_536, 100_000, 300_000),
  })
  .map(({ unit, count }) => unit.repeat(count));

const arbText = fc.oneof({ weight: 4, arbitrary: arbShortText }, { weight: 1, arbitrary: arbLongText });

/**
 * Mostly `valid`, sometimes `fuzz`. A request has several fields, and one
 * bad field decides its outcome, so each field is usually valid in order
 * that whole requests often get past the form checks.
 */
function biased<T>(valid: fc.Arbitrary<T>, fuzz: fc.Arbitrary<T>): fc.Arbitrary<T> {
  return fc.oneof({ weight: 5, arbitrary: valid }, { weight: 1, arbitrary: fuzz });
}

/** Text of 1 to 20 code points of any kind: a valid tag and name, and usually a valid property key. */
const arbWord = fc.oneof(
  fc.string({ unit: 'binary', minLength: 1, maxLength: 20 }),
  fc.string({ unit: fc.constantFrom(...SPECIAL_CHARACTERS), minLength: 1, maxLength: 20 }),
);

const INT32_MIN = -(2 ** 31);
const INT32_MAX = 2 ** 31 - 1;

const arbInt32 = fc.oneof(
  fc.integer({ min: -3, max: 3 }),
  fc.constantFrom(INT32_MIN, INT32_MAX, 1000, 1001),
  fc.integer({ min: INT32_MIN, max: INT32_MAX }),
);

/** Enum numbers: the defined ones of every enum here, and any other int32. */
const arbEnumNumber = fc.oneof(
  { weight: 3, arbitrary: fc.integer({ min: -1, max: 10 }) },
  { weight: 1, arbitrary: fc.integer({ min: INT32_MIN, max: INT32_MAX }) },
);

/** int64 values as ts-proto writes them: decimal strings. */
const arbInt64Text = fc.oneof(
  fc.nat(100_000).map(String),
  fc.constantFrom('-1', '9007199254740991', '9007199254740992', '-9223372036854775808', '9223372036854775807'),
  fc.bigInt({ min: -(2n ** 63n), max: 2n ** 63n - 1n }).map(String),
);

const CONTAINER_FORMATS = ['ami', 'ari', 'aki', 'bare', 'ovf', 'ova', 'docker', 'compressed'];
const DISK_FORMATS = ['ami', 'ari', 'aki', 'vhd', 'vhdx', 'vmdk', 'raw', 'qcow2', 'vdi', 'iso', 'ploop'];

const arbContainerFormat = fc.oneof(fc.constantFrom('', ...CONTAINER_FORMATS, 'BARE'), arbShortText);
const arbDiskFormat = fc.oneof(fc.constantFrom('', ...DISK_FORMATS, 'QCOW2'), arbShortText);

const arbProject = fc.oneof(
  { weight: 3, arbitrary: fc.constantFrom('proj-a', 'proj-b', 'proj-c', 'proj-z', 'proj-admin', 'PROJ-B') },
  { weight: 3, arbitrary: arbShortText },
  { weight: 1, arbitrary: arbLongText },
);

const arbTag = fc.oneof(fc.constantFrom('keep', 'x', ''), arbText);

/** Tag lists: a few random tags, or a set of about 128 distinct ones. */
const arbTags = fc.oneof(
  { weight: 5, arbitrary: fc.array(arbTag, { maxLength: 5 }) },
  { weight: 1, arbitrary: fc.integer({ min: 126, max: 131 }).map((count) => Array.from({ length: count }, (_, index) => `tag-${index}`)) },
);

const RESERVED_PROPERTY_KEYS = ['id', 'name', 'os_hidden', 'os_glance_import', 'deleted_at', 'properties'];

const arbPropertyKey = fc.oneof(
  fc.constantFrom('os_distro', 'a.b:c', '', '__proto__', 'constructor', 'hasOwnProperty', ...RESERVED_PROPERTY_KEYS),
  arbText,
);

/** Property maps: a few random entries, about 128 small ones, or values at the 65,535-byte limit. */
const arbProperties = fc.oneof(
  { weight: 5, arbitrary: fc.array(fc.tuple(arbPropertyKey, arbText), { maxLength: 4 }).map((entries) => new Map(entries)) },
  {
    weight: 1,
    arbitrary: fc.integer({ min: 126, max: 131 }).map((count) => new Map(Array.from({ length: count }, (_, index) => [`key-${index}`, 'v']))),
  },
  {
    weight: 1,
    arbitrary: fc
      .tuple(fc.constantFrom(1, 2, 128), fc.constantFrom('v', "'", '\\'), fc.constantFrom(65_535, 65_536))
      .map(([count, unit, bytes]) => new Map(Array.from({ length: count }, (_, index) => [`big-${index}`, unit.repeat(bytes)]))),
  },
);

const UPDATE_PATHS = [
  'name', 'visibility', 'protected', 'hidden', 'min_disk', 'min_ram', 'container_format', 'disk_format',
  'tags', 'properties', 'owner',
];
const READ_ONLY_PATHS = ['id', 'status', 'size', 'virtual_size', 'checksum', 'hash_algo', 'hash_value', 'create_time', 'update_time'];

const arbMaskPath = fc.oneof(
  { weight: 4, arbitrary: fc.constantFrom(...UPDATE_PATHS) },
  { weight: 1, arbitrary: fc.constantFrom(...READ_ONLY_PATHS, 'image.name', 'Name', 'properties.', '', 'tags.0', 'minDisk') },
  // The key is everything after the first dot, so a path can be as long as the request.
  { weight: 2, arbitrary: fc.oneof(arbPropertyKey, arbLongText).map((key) => `properties.${key}`) },
  { weight: 1, arbitrary: arbText },
);

const arbUpdateMask = fc.option(fc.array(arbMaskPath, { maxLength: 4 }), { nil: undefined });

const SORT_FIELDS = ['name', 'status', 'create_time', 'update_time', 'size', 'owner', 'id'];

/** Valid order_by values: distinct sort fields, each with or without a direction. */
const arbValidOrderBy = fc
  .shuffledSubarray(SORT_FIELDS, { minLength: 1, maxLength: 4 })
  .chain((fields) => fc.tuple(...fields.map((name) => fc.constantFrom(name, `${name} asc`, `${name} desc`))))
  .map((parts) => parts.join(','));

const arbOrderBy = fc.oneof(
  fc.constant(''),
  fc
    .tuple(
      fc.array(
        fc.tuple(
          fc.oneof({ weight: 4, arbitrary: fc.constantFrom(...SORT_FIELDS) }, { weight: 1, arbitrary: arbShortText }),
          fc.constantFrom('', ' asc', ' desc', ' ASC', ' Desc', '  desc', '\tdesc', ' asc desc', ' descending'),
        ),
        { minLength: 1, maxLength: 8 },
      ),
      fc.constantFrom(',', ', ', ' , ', ',,'),
    )
    .map(([parts, separator]) => parts.map(([name, direction]) => name + direction).join(separator)),
  arbText,
);

interface PageTokenBody {
  v: number;
  q: string;
  k: unknown[];
}

/** Decodes a real page token and encodes it again with `k` replaced, keeping the digest of its query. */
function forgePageToken(token: string, values: unknown): string {
  const body = JSON.parse(Buffer.from(token, 'base64url').toString('utf8')) as PageTokenBody;
  return Buffer.from(JSON.stringify({ ...body, k: values }), 'utf8').toString('base64url');
}

/** Page tokens: real ones, real ones with other sort values, random JSON, and random text. */
function arbPageToken(realTokens: string[]): fc.Arbitrary<string> {
  return fc.oneof(
    fc.constant(''),
    fc.constantFrom(...realTokens),
    fc
      .tuple(fc.constantFrom(...realTokens), fc.array(fc.oneof(fc.integer(), fc.double(), fc.string(), fc.jsonValue()), { maxLength: 3 }))
      .map(([token, values]) => forgePageToken(token, values)),
    fc.jsonValue().map((value) => Buffer.from(JSON.stringify(value) ?? 'null', 'utf8').toString('base64url')),
    fc.base64String({ maxLength: 60 }),
    arbText,
  );
}

/** Stands for an image the property creates just before the call, so that destructive calls keep finding one. */
const FRESH = 'fresh image';

function arbImageId(fixture: Fixture, { fresh = false } = {}): fc.Arbitrary<string> {
  return fc.oneof(
    { weight: 3, arbitrary: fc.constantFrom(...fixture.imageIds) },
    { weight: fresh ? 3 : 0, arbitrary: fc.constant(FRESH) },
    { weight: 1, arbitrary: fc.constantFrom(...fixture.imageIds).map((id) => id.toUpperCase()) },
    { weight: 1, arbitrary: fc.uuid() },
    { weight: 1, arbitrary: fc.constantFrom('', ' ', '00000000-0000-0000-0000-000000000000', `${randomUUID()} `) },
    { weight: 1, arbitrary: arbText },
  );
}

/** Creates the image that FRESH stands for: shared, owned by proj-a, with proj-b as a member. */
async function resolveImageId(fixture: Fixture, id: string): Promise<string> {
  if (id !== FRESH) return id;
  const image = await fixture.owner.images.createImage({ image: { name: 'fresh', tags: ['keep'] } });
  await fixture.owner.members.createMember({ imageId: image.id, memberId: 'proj-b' });
  return image.id;
}

const arbCaller = fc.constantFrom<CallerName>('owner', 'owner', 'owner', 'member', 'stranger', 'reader', 'admin');

/** Image messages with any subset of fields, output-only ones included, each field usually valid. */
function arbImage(fixture: Fixture): fc.Arbitrary<DeepPartial<Image>> {
  return fc.record(
    {
      id: arbImageId(fixture),
      name: biased(arbShortText, arbLongText),
      status: arbEnumNumber,
      visibility: biased(fc.integer({ min: 0, max: 4 }), arbEnumNumber),
      protected: fc.boolean(),
      hidden: fc.boolean(),
      owner: biased(fc.constantFrom('', 'proj-a'), arbProject),
      containerFormat: biased(fc.constantFrom('', ...CONTAINER_FORMATS), arbContainerFormat),
      diskFormat: biased(fc.constantFrom('', ...DISK_FORMATS), arbDiskFormat),
      minDisk: biased(fc.nat(), arbInt32),
      minRam: biased(fc.nat(), arbInt32),
      size: arbInt64Text,
      checksum: arbShortText,
      hashValue: arbShortText,
      tags: biased(fc.array(arbWord, { maxLength: 4 }), arbTags),
      properties: biased(fc.array(fc.tuple(arbWord, arbShortText), { maxLength: 3 }).map((entries) => new Map(entries)), arbProperties),
      createTime: fc.date({ noInvalidDate: true }),
    },
    { requiredKeys: [] },
  ) as fc.Arbitrary<DeepPartial<Image>>;
}

// Properties: each builds requests from the fixture and checks every outcome.

/** The name that a failure report shows, and the number of runs. */
interface RunSettings {
  name: string;
  numRuns: number;
}

interface FuzzCase {
  name: string;
  /** Multiplies RUNS for properties that cover many RPCs at once. */
  runsFactor?: number;
  /** Builds the property from the fixture and asserts it. */
  run(fixture: Fixture, settings: RunSettings): Promise<void>;
}

/** Asserts a property with the suite's seed, reporting a failure with a shortened counterexample. */
function check<Ts extends [unknown, ...unknown[]]>(property: fc.IAsyncProperty<Ts>, settings: RunSettings): Promise<void> {
  return fc.assert(property, {
    seed: SEED,
    numRuns: settings.numRuns,
    endOnFailure: !SHRINK,
    reporter: (details) => reportFailure(settings.name, details),
  });
}

interface Message<T> {
  encode(message: T): { finish(): Uint8Array };
  fromPartial(object: DeepPartial<T>): T;
}

function encode<T>(type: Message<T>, object: DeepPartial<T>): Buffer {
  return Buffer.from(type.encode(type.fromPartial(object)).finish());
}

/** Builds a case whose property sends one generated request per run to a unary RPC. */
function unaryCase<T>(
  rpc: Rpc,
  type: Message<T>,
  requests: (fixture: Fixture) => fc.Arbitrary<DeepPartial<T>>,
  prepare: (fixture: Fixture, request: DeepPartial<T>) => Promise<DeepPartial<T>> = async (_fixture, request) => request,
): FuzzCase {
  return {
    name: rpc,
    run: (fixture, settings) =>
      check(
        fc.asyncProperty(requests(fixture), arbCaller, async (request, caller) => {
          const prepared = await prepare(fixture, request);
          const outcome = await fixture.connection.unary(rpc, encode(type, prepared), fixture.authorization[caller]);
          expectAllowedOutcome(rpc, outcome, { undecodable: false });
        }),
        settings,
      ),
  };
}

/** Replaces FRESH in the named id fields of a request with a newly created image. */
function withFreshIds<T>(...keys: (keyof T)[]) {
  return async (fixture: Fixture, request: DeepPartial<T>): Promise<DeepPartial<T>> => {
    const copy = Object.assign({}, request) as Record<keyof T, unknown>;
    for (const key of keys) {
      if (copy[key] === FRESH) copy[key] = await resolveImageId(fixture, FRESH);
    }
    return copy as DeepPartial<T>;
  };
}

const listImagesCase: FuzzCase = {
  name: 'ListImages',
  run: (fixture, settings) =>
    check(fc.asyncProperty(
      fc.record(
        {
          pageSize: biased(fc.integer({ min: 0, max: 1000 }), arbInt32),
          pageToken: biased(fc.constant(''), arbPageToken([fixture.imagePageToken, fixture.memberPageToken])),
          orderBy: biased(arbValidOrderBy, arbOrderBy),
          visibility: biased(fc.integer({ min: 0, max: 5 }), arbEnumNumber),
          memberStatus: biased(fc.integer({ min: 0, max: 4 }), arbEnumNumber),
          owner: biased(fc.constantFrom('proj-a', 'proj-b'), arbProject),
          name: biased(fc.constantFrom('fuzz-shared', 'fresh', 'fuzz-public'), arbText),
          status: biased(fc.integer({ min: 0, max: 9 }), arbEnumNumber),
          tags: biased(fc.subarray(['keep', 'x']), arbTags),
          properties: biased(fc.constant(new Map([['os_distro', 'cirros']])), arbProperties),
          containerFormat: biased(fc.constantFrom(...CONTAINER_FORMATS), arbContainerFormat),
          diskFormat: biased(fc.constantFrom(...DISK_FORMATS), arbDiskFormat),
          ids: biased(
            fc.subarray(fixture.imageIds, { minLength: 1 }),
            fc.oneof(
              fc.array(arbImageId(fixture), { maxLength: 4 }),
              fc.integer({ min: 99, max: 102 }).map((count) => Array.from({ length: count }, () => randomUUID())),
            ),
          ),
          updatedAfter: biased(fc.date({ min: new Date(0), max: new Date('2100-01-01T00:00:00Z'), noInvalidDate: true }), fc.date({ noInvalidDate: true })),
          includeHidden: fc.boolean(),
        },
        { requiredKeys: [] },
      ),
      // An updated_after with raw seconds and nanos, which a Date cannot hold.
      fc.option(fc.record({ seconds: arbInt64Text, nanos: arbInt32 }), { nil: undefined }),
      arbCaller,
      async (request, rawTimestamp, caller) => {
        let bytes = encode(ListImagesRequest, request as DeepPartial<ListImagesRequest>);
        if (rawTimestamp !== undefined) {
          // A later occurrence of an embedded message field merges into the earlier one.
          bytes = Buffer.concat([bytes, Buffer.from(field(14, Timestamp.encode(rawTimestamp).finish()))]);
        }
        const outcome = await fixture.connection.unary('ListImages', bytes, fixture.authorization[caller]);
        // Seconds past 2^53 do not decode, and that INVALID_ARGUMENT names no field.
        expectAllowedOutcome('ListImages', outcome, { undecodable: rawTimestamp !== undefined });
      },
    ), settings),
};

const UPLOAD_ORDERS = ['start then chunks', 'start then chunks', 'start then chunks', 'no start', 'start twice', 'empty message', 'start last'] as const;

function md5Hex(chunks: Uint8Array[]): string {
  const hash = createHash('md5');
  for (const chunk of chunks) hash.update(chunk);
  return hash.digest('hex');
}

function sha512Hex(chunks: Uint8Array[]): string {
  const hash = createHash('sha512');
  for (const chunk of chunks) hash.update(chunk);
  return hash.digest('hex');
}

const arbHex = (length: number) => fc.string({ unit: fc.constantFrom(...'0123456789abcdefABCDEF'), minLength: length, maxLength: length });

const uploadCase: FuzzCase = {
  name: 'UploadImageData',
  run: (fixture, settings) =>
    check(fc.asyncProperty(
      fc.record({
        imageId: fc.oneof({ weight: 3, arbitrary: fc.constant(FRESH) }, { weight: 2, arbitrary: arbImageId(fixture) }),
        chunks: fc.array(fc.uint8Array({ maxLength: 4096 }), { maxLength: 4 }),
        /** How the expected size and hashes relate to the chunks: left out, matching, or random. */
        expectations: fc.constantFrom('none', 'matching', 'random'),
        expectedSize: fc.option(arbInt64Text, { nil: undefined }),
        expectedChecksum: fc.oneof(fc.constant(''), arbHex(32), arbHex(31), arbShortText),
        expectedHashValue: fc.oneof(fc.constant(''), arbHex(128), arbHex(32), arbText),
        order: fc.constantFrom(...UPLOAD_ORDERS),
      }),
      arbCaller,
      async (upload, caller) => {
        const imageId = await resolveImageId(fixture, upload.imageId);
        let start: DeepPartial<UploadImageDataStart> = { imageId };
        if (upload.expectations === 'matching') {
          const size = upload.chunks.reduce((total, chunk) => total + chunk.length, 0);
          start = { imageId, expectedSize: String(size), expectedChecksum: md5Hex(upload.chunks), expectedHashValue: sha512Hex(upload.chunks) };
        } else if (upload.expectations === 'random') {
          start = { imageId, expectedSize: upload.expectedSize, expectedChecksum: upload.expectedChecksum, expectedHashValue: upload.expectedHashValue };
        }
        const startMessage = encode(UploadImageDataRequest, { payload: { $case: 'start', value: start } });
        const chunkMessages = upload.chunks.map((chunk) => encode(UploadImageDataRequest, { payload: { $case: 'chunk', value: Buffer.from(chunk) } }));
        const messages: Record<(typeof UPLOAD_ORDERS)[number], Buffer[]> = {
          'start then chunks': [startMessage, ...chunkMessages],
          'no start': chunkMessages,
          'start twice': [startMessage, ...chunkMessages, startMessage],
          'empty message': [startMessage, Buffer.alloc(0), ...chunkMessages],
          'start last': [...chunkMessages, startMessage],
        };
        const outcome = await fixture.connection.upload(messages[upload.order], fixture.authorization[caller]);
        expectAllowedOutcome('UploadImageData', outcome, { undecodable: false });
      },
    ), settings),
};

const downloadCase: FuzzCase = {
  name: 'DownloadImageData',
  run: (fixture, settings) =>
    check(fc.asyncProperty(
      fc.oneof({ weight: 2, arbitrary: fc.constant(fixture.activeImageId) }, { weight: 3, arbitrary: arbImageId(fixture) }),
      arbCaller,
      async (id, caller) => {
        const outcome = await fixture.connection.download(encode(DownloadImageDataRequest, { id }), fixture.authorization[caller]);
        expectAllowedOutcome('DownloadImageData', outcome, { undecodable: false });
      },
    ), settings),
};

function arbMemberImageId(fixture: Fixture): fc.Arbitrary<string> {
  return fc.oneof(
    { weight: 3, arbitrary: fc.constant(fixture.sharedImageId) },
    { weight: 2, arbitrary: fc.constant(FRESH) },
    { weight: 2, arbitrary: arbImageId(fixture) },
  );
}

/** Sample requests that decode, which the raw-bytes property mutates. */
function sampleRequests(fixture: Fixture): Record<Rpc, Buffer[]> {
  const id = fixture.sharedImageId;
  return {
    CreateImage: [encode(CreateImageRequest, { image: { name: 'n', tags: ['t'], properties: new Map([['k', 'v']]), visibility: 2 } })],
    GetImage: [encode(GetImageRequest, { id })],
    ListImages: [encode(ListImagesRequest, { pageSize: 2, orderBy: 'name desc', tags: ['keep'], properties: new Map([['os_distro', 'cirros']]), updatedAfter: new Date(0) })],
    UpdateImage: [encode(UpdateImageRequest, { image: { id, name: 'renamed', minDisk: 1 }, updateMask: ['name', 'min_disk', 'properties.x'] })],
    AddImageTag: [encode(AddImageTagRequest, { imageId: id, tag: 'added' })],
    RemoveImageTag: [encode(RemoveImageTagRequest, { imageId: id, tag: 'added' })],
    DeleteImage: [encode(DeleteImageRequest, { id: randomUUID() })],
    DeactivateImage: [encode(DeactivateImageRequest, { id: fixture.activeImageId })],
    ReactivateImage: [encode(ReactivateImageRequest, { id: fixture.activeImageId })],
    UploadImageData: [
      encode(UploadImageDataRequest, { payload: { $case: 'start', value: { imageId: randomUUID(), expectedSize: '3' } } }),
      encode(UploadImageDataRequest, { payload: { $case: 'chunk', value: Buffer.from('abc') } }),
    ],
    DownloadImageData: [encode(DownloadImageDataRequest, { id: fixture.activeImageId })],
    CreateMember: [encode(CreateMemberRequest, { imageId: id, memberId: 'proj-d' })],
    GetMember: [encode(GetMemberRequest, { imageId: id, memberId: 'proj-b' })],
    ListMembers: [encode(ListMembersRequest, { imageId: id, pageSize: 1, pageToken: fixture.memberPageToken })],
    UpdateMember: [encode(UpdateMemberRequest, { imageId: id, memberId: 'proj-b', status: 2 })],
    DeleteMember: [encode(DeleteMemberRequest, { imageId: id, memberId: 'proj-d' })],
  };
}

const ALL_RPCS = Object.keys(REQUEST_FIELDS) as Rpc[];

/** A byte edit: overwrite, insert before, or delete the byte at a position taken modulo the length. */
type Mutation = [position: number, byte: number, kind: 'set' | 'insert' | 'delete'];

function mutate(bytes: Buffer, mutations: Mutation[]): Buffer {
  const result = [...bytes];
  for (const [position, byte, kind] of mutations) {
    const index = result.length === 0 ? 0 : position % result.length;
    if (kind === 'set' && result.length > 0) result[index] = byte;
    if (kind === 'insert') result.splice(index, 0, byte);
    if (kind === 'delete') result.splice(index, 1);
  }
  return Buffer.from(result);
}

const arbMutations = fc.array(
  fc.tuple(fc.nat(), fc.integer({ min: 0, max: 255 }), fc.constantFrom('set', 'insert', 'delete')) as fc.Arbitrary<Mutation>,
  { minLength: 1, maxLength: 4 },
);

/** Sends one message, or a stream of them, to any RPC. */
function sendAny(fixture: Fixture, rpc: Rpc, messages: Buffer[], caller: CallerName): Promise<Outcome> {
  const authorization = fixture.authorization[caller];
  if (rpc === 'UploadImageData') return fixture.connection.upload(messages, authorization);
  if (rpc === 'DownloadImageData') return fixture.connection.download(messages[0] ?? Buffer.alloc(0), authorization);
  return fixture.connection.unary(rpc, messages[0] ?? Buffer.alloc(0), authorization);
}

const rawBytesCase: FuzzCase = {
  name: 'raw bytes to every RPC',
  runsFactor: 4,
  run: (fixture, settings) => {
    const samples = sampleRequests(fixture);
    return check(fc.asyncProperty(
      fc.constantFrom(...ALL_RPCS),
      fc.oneof(
        fc.array(fc.uint8Array({ maxLength: 64 }), { minLength: 1, maxLength: 3 }).map((messages) => ({ kind: 'random' as const, messages })),
        fc.tuple(fc.nat(), arbMutations).map(([sample, mutations]) => ({ kind: 'mutated' as const, sample, mutations })),
      ),
      arbCaller,
      async (rpc, input, caller) => {
        let messages: Buffer[];
        if (input.kind === 'random') {
          messages = input.messages.map((message) => Buffer.from(message));
        } else {
          const sample = samples[rpc];
          // Mutate one message of the sample and keep the others, so that a stream gets past its start.
          const target = input.sample % sample.length;
          messages = sample.map((message, index) => (index === target ? mutate(message, input.mutations) : message));
        }
        const outcome = await sendAny(fixture, rpc, messages, caller);
        expectAllowedOutcome(rpc, outcome, { undecodable: true });
      },
    ), settings);
  },
};

/** Byte sequences that are not UTF-8: bad continuations, overlong forms, surrogates, values past U+10FFFF, truncations. */
const INVALID_UTF8: number[][] = [
  [0xc3, 0x28],
  [0xff],
  [0xfe],
  [0x80],
  [0xc0, 0xaf],
  [0xe0, 0x80, 0xaf],
  [0xed, 0xa0, 0x80],
  [0xed, 0xbf, 0xbf],
  [0xf4, 0x90, 0x80, 0x80],
  [0xf8, 0x88, 0x80, 0x80, 0x80],
  [0xe2, 0x82],
  [0xf0, 0x9f, 0x90],
];

/** Each string field of each RPC's request, as a path of field numbers, outermost first. */
const STRING_FIELDS: [Rpc, string, number[]][] = [
  ...([
    ['id', 1], ['name', 2], ['owner', 7], ['container_format', 8], ['disk_format', 9], ['checksum', 14],
    ['hash_algo', 15], ['hash_value', 16], ['tags', 17],
  ] as const).flatMap(([name, number]): [Rpc, string, number[]][] => [
    ['CreateImage', `image.${name}`, [1, number]],
    ['UpdateImage', `image.${name}`, [1, number]],
  ]),
  ['CreateImage', 'image_id', [2]],
  ['CreateImage', 'image.properties key', [1, 18, 1]],
  ['CreateImage', 'image.properties value', [1, 18, 2]],
  ['UpdateImage', 'image.properties key', [1, 18, 1]],
  ['UpdateImage', 'image.properties value', [1, 18, 2]],
  ['UpdateImage', 'update_mask path', [2, 1]],
  ['GetImage', 'id', [1]],
  ['ListImages', 'page_token', [2]],
  ['ListImages', 'order_by', [3]],
  ['ListImages', 'owner', [6]],
  ['ListImages', 'name', [7]],
  ['ListImages', 'tags', [9]],
  ['ListImages', 'properties key', [10, 1]],
  ['ListImages', 'properties value', [10, 2]],
  ['ListImages', 'container_format', [11]],
  ['ListImages', 'disk_format', [12]],
  ['ListImages', 'ids', [13]],
  ['AddImageTag', 'image_id', [1]],
  ['AddImageTag', 'tag', [2]],
  ['RemoveImageTag', 'image_id', [1]],
  ['RemoveImageTag', 'tag', [2]],
  ['DeleteImage', 'id', [1]],
  ['DeactivateImage', 'id', [1]],
  ['ReactivateImage', 'id', [1]],
  ['UploadImageData', 'start.image_id', [1, 1]],
  ['UploadImageData', 'start.expected_checksum', [1, 3]],
  ['UploadImageData', 'start.expected_hash_value', [1, 4]],
  ['DownloadImageData', 'id', [1]],
  ['CreateMember', 'image_id', [1]],
  ['CreateMember', 'member_id', [2]],
  ['GetMember', 'image_id', [1]],
  ['GetMember', 'member_id', [2]],
  ['ListMembers', 'image_id', [1]],
  ['ListMembers', 'page_token', [3]],
  ['UpdateMember', 'image_id', [1]],
  ['UpdateMember', 'member_id', [2]],
  ['DeleteMember', 'image_id', [1]],
  ['DeleteMember', 'member_id', [2]],
];

const invalidUtf8Case: FuzzCase = {
  name: 'invalid UTF-8 in every string field',
  runsFactor: 2,
  run: (fixture, settings) => {
    const samples = sampleRequests(fixture);
    return check(fc.asyncProperty(
      fc.constantFrom(...STRING_FIELDS),
      fc.constantFrom(...INVALID_UTF8),
      fc.string({ unit: 'binary', maxLength: 8 }),
      fc.string({ unit: 'binary', maxLength: 8 }),
      // Callers whose roles allow every RPC, so that the request form is what gets checked.
      fc.constantFrom<CallerName>('owner', 'member', 'stranger', 'admin'),
      async ([rpc, _name, path], invalid, before, after, caller) => {
        const text = [...Buffer.from(before, 'utf8'), ...invalid, ...Buffer.from(after, 'utf8')];
        // The field follows a sample request that decodes, so that the bad field is the only fault.
        const [first, ...rest] = samples[rpc];
        const message = Buffer.concat([first!, Buffer.from(nested(path, text))]);
        const outcome = await sendAny(fixture, rpc, [message, ...rest], caller);
        expect(outcome.code, `${rpc}: ${shorten(outcome.message)}`).toBe('INVALID_ARGUMENT');
        expect(outcome.message).not.toBe('');
      },
    ), settings);
  },
};

const FUZZ_CASES: FuzzCase[] = [
  unaryCase('CreateImage', CreateImageRequest, (fixture) =>
    fc.record(
      {
        image: arbImage(fixture),
        imageId: fc.oneof(fc.constant(''), fc.uuid(), fc.uuid().map((id) => id.toUpperCase()), arbImageId(fixture)),
      },
      { requiredKeys: [] },
    ),
  ),
  unaryCase('GetImage', GetImageRequest, (fixture) => fc.record({ id: arbImageId(fixture) })),
  listImagesCase,
  unaryCase(
    'UpdateImage',
    UpdateImageRequest,
    (fixture) =>
      fc.record(
        {
          image: fc.tuple(arbImage(fixture), arbImageId(fixture, { fresh: true })).map(([image, id]) => ({ ...image, id })),
          // The mask decides most outcomes, so it is random half of the time.
          updateMask: fc.oneof(fc.subarray(UPDATE_PATHS.filter((path) => path !== 'owner'), { minLength: 1, maxLength: 3 }), arbUpdateMask),
        },
        { requiredKeys: [] },
      ),
    async (fixture, request) => {
      if (request.image?.id !== FRESH) return request;
      return { ...request, image: { ...request.image, id: await resolveImageId(fixture, FRESH) } };
    },
  ),
  {
    ...unaryCase(
      'UpdateImage',
      UpdateImageRequest,
      (fixture) =>
        fc.record({
          image: fc
            .tuple(fc.constantFrom(FRESH, ...fixture.imageIds), fc.array(fc.tuple(arbPropertyKey, arbShortText), { maxLength: 3 }))
            .map(([id, entries]) => ({ id, name: 'renamed', properties: new Map(entries) })),
          updateMask: arbUpdateMask,
        }),
      async (fixture, request) => ({ ...request, image: { ...request.image, id: await resolveImageId(fixture, request.image?.id ?? '') } }),
    ),
    name: 'UpdateImage with random masks',
  },
  unaryCase('AddImageTag', AddImageTagRequest, (fixture) => fc.record({ imageId: arbImageId(fixture, { fresh: true }), tag: arbTag }), withFreshIds('imageId')),
  unaryCase('RemoveImageTag', RemoveImageTagRequest, (fixture) => fc.record({ imageId: arbImageId(fixture, { fresh: true }), tag: arbTag }), withFreshIds('imageId')),
  // DeleteImage names no image of the fixture that can be deleted, so that later properties still find them.
  unaryCase(
    'DeleteImage',
    DeleteImageRequest,
    (fixture) =>
      fc.record({
        id: fc.oneof(
          { weight: 3, arbitrary: fc.constant(FRESH) },
          { weight: 1, arbitrary: fc.constantFrom(fixture.protectedImageId, fixture.deletedImageId) },
          { weight: 2, arbitrary: arbImageId(fixture).filter((id) => !fixture.imageIds.includes(id.toLowerCase())) },
        ),
      }),
    withFreshIds('id'),
  ),
  unaryCase('DeactivateImage', DeactivateImageRequest, (fixture) => fc.record({ id: arbImageId(fixture, { fresh: true }) }), withFreshIds('id')),
  unaryCase('ReactivateImage', ReactivateImageRequest, (fixture) => fc.record({ id: arbImageId(fixture, { fresh: true }) }), withFreshIds('id')),
  uploadCase,
  downloadCase,
  unaryCase('CreateMember', CreateMemberRequest, (fixture) => fc.record({ imageId: arbMemberImageId(fixture), memberId: arbProject }), withFreshIds('imageId')),
  unaryCase('GetMember', GetMemberRequest, (fixture) => fc.record({ imageId: arbMemberImageId(fixture), memberId: arbProject }), withFreshIds('imageId')),
  unaryCase(
    'ListMembers',
    ListMembersRequest,
    (fixture) =>
      fc.record({
        imageId: arbMemberImageId(fixture),
        pageSize: arbInt32,
        pageToken: arbPageToken([fixture.memberPageToken, fixture.imagePageToken]),
      }),
    withFreshIds('imageId'),
  ),
  unaryCase(
    'UpdateMember',
    UpdateMemberRequest,
    (fixture) => fc.record({ imageId: arbMemberImageId(fixture), memberId: arbProject, status: arbEnumNumber }),
    withFreshIds('imageId'),
  ),
  unaryCase('DeleteMember', DeleteMemberRequest, (fixture) => fc.record({ imageId: arbMemberImageId(fixture), memberId: arbProject }), withFreshIds('imageId')),
  rawBytesCase,
  invalidUtf8Case,
];

/** Formats a value for a failure report, with long strings, arrays and byte arrays cut. */
function summarize(value: unknown): string {
  return JSON.stringify(value, (_key, item: unknown) => {
    if (typeof item === 'string' && item.length > 120) return `${[...item].slice(0, 40).join('')}… (${item.length} UTF-16 units)`;
    if (typeof item === 'bigint') return String(item);
    if (item instanceof Map) return [...item];
    if (item instanceof Uint8Array) return `hex ${shorten(Buffer.from(item).toString('hex'), 200)}`;
    const buffer = item as { type?: unknown; data?: unknown };
    if (buffer !== null && typeof buffer === 'object' && buffer.type === 'Buffer' && Array.isArray(buffer.data)) {
      return `hex ${shorten(Buffer.from(buffer.data as number[]).toString('hex'), 200)}`;
    }
    if (Array.isArray(item) && item.length > 20) return [...item.slice(0, 5), `… ${item.length} items`];
    return item;
  });
}

function reportFailure<Ts>(name: string, details: fc.RunDetails<Ts>): void {
  if (!details.failed) return;
  const cause = details.errorInstance instanceof Error ? details.errorInstance.message : String(details.errorInstance);
  throw new Error(
    `${name} failed on run ${details.numRuns} (seed ${details.seed}, path ${details.counterexamplePath})\n` +
      `${cause}\ncounterexample: ${summarize(details.counterexample)}`,
  );
}

describe.each(testedBackends())('request fuzz on %s', (backend) => {
  let fixture: Fixture;

  beforeAll(async () => {
    fixture = await startFixture(backend);
  });
  afterAll(async () => {
    fixture?.connection.close();
    await fixture?.registry.stop();
  });

  it('fixture has page tokens to fuzz', () => {
    expect(fixture.imagePageToken).not.toBe('');
    expect(fixture.memberPageToken).not.toBe('');
  });

  const namedCases = FUZZ_CASES.map((fuzzCase) => [fuzzCase.name, fuzzCase] as const);

  // A property stops at its first failure, so its time limit is about 200 ms a run plus one call deadline.
  it.each(namedCases)('%s', { timeout: 60_000 + RUNS * 4 * 200 + CALL_DEADLINE_MS }, async (name, fuzzCase) => {
    const numRuns = RUNS * (fuzzCase.runsFactor ?? 1);
    fixture.connection.takeCounts();
    const started = performance.now();
    try {
      await fuzzCase.run(fixture, { name: `${name} on ${backend}`, numRuns });
    } finally {
      const duration = Math.round(performance.now() - started);
      console.log(`request fuzz on ${backend}: ${name}: up to ${numRuns} runs in ${duration} ms (${fixture.connection.takeCounts()})`);
    }
  });

  it('server serves after fuzzing', async () => {
    const image = await fixture.sentinelOwner.images.getImage({ id: fixture.sentinel.id });
    expect(image).toEqual(fixture.sentinel);

    const outcome = await fixture.connection.unary('GetImage', encode(GetImageRequest, { id: fixture.sentinel.id }), fixture.authorization.admin);
    expect(outcome.code).toBe('OK');
    expect(Image.decode(outcome.responses[0]!)).toEqual(fixture.sentinel);
  });
});
