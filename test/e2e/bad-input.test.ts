/**
 * Malformed requests on every RPC of both services: bad ids, enum numbers
 * the proto does not define, values past their limits, bad field masks,
 * upload streams whose messages come in the wrong order, and request bytes
 * that do not decode. Each is INVALID_ARGUMENT with a message naming the
 * field and the value, and none is INTERNAL or UNKNOWN.
 */
import * as grpc from '@grpc/grpc-js';
import { SignJWT } from 'jose';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Timestamp } from '../../gen/google/protobuf/timestamp.js';
import { type Image, ImageStatus, type Visibility } from '../../gen/imageregistry/v1/image.js';
import {
  GetImageRequest,
  type MemberStatusFilter,
  UploadImageDataRequest,
  type UploadImageDataStart,
  type VisibilityFilter,
} from '../../gen/imageregistry/v1/image_service.js';
import { MemberStatus } from '../../gen/imageregistry/v1/member_service.js';
import { testedBackends } from '../support/databases.js';
import { RegistryHarness, type RegistryClient, failure } from '../support/registry-harness.js';

/** A well-formed UUID that no test creates. */
const MISSING_IMAGE_ID = '6f1c2a3b-0000-4000-8000-00000000dead';
const ACCEPTED = MemberStatus.MEMBER_STATUS_ACCEPTED;
/** A number that no enum of the protos defines. */
const UNDEFINED_ENUM_NUMBER = 99;

/** The callers and images that the cases use, filled in once the server runs. */
interface Fixture {
  member: RegistryClient;
  admin: RegistryClient;
  /** A shared image owned by proj-a, the member's project. */
  imageId: string;
  /** An image of proj-a that a wrongly accepted owner change may give away. */
  spareImageId: string;
  /** A page token of ListImages for proj-a with page_size 1 and no filters. */
  imagePageToken: string;
  /** A page token of ListMembers for imageId with page_size 1. */
  memberPageToken: string;
  /** A QUEUED image of proj-a that upload cases start uploads to. Every such upload must fail. */
  uploadImageId: string;
}

type Call = (fixture: Fixture) => Promise<unknown>;

/** Builds an upload's first message. Its int64 expected_size is a decimal string, as ts-proto encodes it. */
function startMessage(start: Partial<UploadImageDataStart>): UploadImageDataRequest {
  return UploadImageDataRequest.fromPartial({ payload: { $case: 'start', value: start } });
}

function chunkMessage(bytes: Buffer): UploadImageDataRequest {
  return { payload: { $case: 'chunk', value: bytes } };
}

/** An UploadImageDataRequest with neither start nor chunk set. */
const EMPTY_UPLOAD_MESSAGE: UploadImageDataRequest = { payload: undefined };

/** Sends the messages on one UploadImageData stream as the client's caller, then half-closes it. */
function sendUpload(client: RegistryClient, messages: UploadImageDataRequest[]): Promise<Image> {
  return new Promise((resolve, reject) => {
    const call = client.data.client.uploadImageData(client.data.metadata(), (error, image) =>
      error ? reject(error) : resolve(image!),
    );
    for (const message of messages) call.write(message);
    call.end();
  });
}

interface BadInput {
  rpc: string;
  input: string;
  call: Call;
  /** The request field the message must name. */
  field: string;
  /** Text of the offending value that the message must show, when the value is not empty. */
  value?: string;
}

interface Outcome {
  code: string;
  message: string;
}

/** Resolves to OK or to the failed call's status, never rejecting. */
async function outcomeOf(call: Promise<unknown>): Promise<Outcome> {
  try {
    await call;
    return { code: 'OK', message: '' };
  } catch (error) {
    const { code, details } = error as grpc.ServiceError;
    return { code: grpc.status[code] ?? String(code), message: details };
  }
}

function escapeRegExp(text: string): string {
  return text.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
}

/** Returns whether `message` contains `field` as a whole name, so that "id" does not match inside "image_id". */
function namesField(message: string, field: string): boolean {
  return new RegExp(`(^|[^\\w.])${escapeRegExp(field)}($|[^\\w.])`).test(message);
}

const LONG_ID = `${MISSING_IMAGE_ID}a`;
const MALFORMED_IDS: { input: string; id: string; value?: string }[] = [
  { input: 'an empty id', id: '' },
  { input: 'id "abc"', id: 'abc', value: 'abc' },
  { input: 'a UUID with an extra character', id: LONG_ID, value: LONG_ID },
  { input: 'a UUID without dashes', id: MISSING_IMAGE_ID.replaceAll('-', ''), value: MISSING_IMAGE_ID.replaceAll('-', '') },
  { input: 'a 10,000-character id', id: 'f'.repeat(10_000), value: 'f'.repeat(40) },
];

/** Each RPC with a way to send a given image id in its id field. */
const ID_FIELDS: { rpc: string; field: string; send: (id: string) => Call; allowsEmpty?: boolean }[] = [
  { rpc: 'CreateImage', field: 'image_id', send: (id) => (f) => f.member.images.createImage({ imageId: id, image: { name: 'x' } }), allowsEmpty: true },
  { rpc: 'GetImage', field: 'id', send: (id) => (f) => f.member.images.getImage({ id }) },
  { rpc: 'ListImages', field: 'ids', send: (id) => (f) => f.member.images.listImages({ ids: [id] }) },
  { rpc: 'UpdateImage', field: 'image.id', send: (id) => (f) => f.member.images.updateImage({ image: { id, name: 'y' }, updateMask: ['name'] }) },
  { rpc: 'AddImageTag', field: 'image_id', send: (id) => (f) => f.member.images.addImageTag({ imageId: id, tag: 't' }) },
  { rpc: 'RemoveImageTag', field: 'image_id', send: (id) => (f) => f.member.images.removeImageTag({ imageId: id, tag: 't' }) },
  { rpc: 'DeleteImage', field: 'id', send: (id) => (f) => f.member.images.deleteImage({ id }) },
  { rpc: 'DeactivateImage', field: 'id', send: (id) => (f) => f.member.images.deactivateImage({ id }) },
  { rpc: 'ReactivateImage', field: 'id', send: (id) => (f) => f.member.images.reactivateImage({ id }) },
  { rpc: 'CreateMember', field: 'image_id', send: (id) => (f) => f.member.members.createMember({ imageId: id, memberId: 'proj-b' }) },
  { rpc: 'GetMember', field: 'image_id', send: (id) => (f) => f.member.members.getMember({ imageId: id, memberId: 'proj-b' }) },
  { rpc: 'ListMembers', field: 'image_id', send: (id) => (f) => f.member.members.listMembers({ imageId: id }) },
  { rpc: 'UpdateMember', field: 'image_id', send: (id) => (f) => f.member.members.updateMember({ imageId: id, memberId: 'proj-a', status: ACCEPTED }) },
  { rpc: 'DeleteMember', field: 'image_id', send: (id) => (f) => f.member.members.deleteMember({ imageId: id, memberId: 'proj-b' }) },
  { rpc: 'UploadImageData', field: 'start.image_id', send: (id) => (f) => sendUpload(f.member, [startMessage({ imageId: id })]) },
  { rpc: 'DownloadImageData', field: 'id', send: (id) => (f) => f.member.data.download(id) },
];

const MALFORMED_ID_CASES: BadInput[] = ID_FIELDS.flatMap(({ rpc, field, send, allowsEmpty }) =>
  MALFORMED_IDS.filter(({ id }) => !(allowsEmpty && id === '')).map(({ input, id, value }) => ({
    rpc,
    input,
    call: send(id),
    field,
    value,
  })),
);

const LONG_MEMBER_ID = 'p'.repeat(256);
const MALFORMED_MEMBER_IDS: { input: string; memberId: string; value?: string }[] = [
  { input: 'an empty member_id', memberId: '' },
  { input: 'a 256-character member_id', memberId: LONG_MEMBER_ID, value: LONG_MEMBER_ID.slice(0, 40) },
  { input: 'a member_id with a space', memberId: 'proj b', value: 'proj b' },
  { input: 'a member_id with a tab', memberId: 'proj\tb', value: 'proj' },
];

const MEMBER_ID_FIELDS: { rpc: string; send: (memberId: string) => Call }[] = [
  { rpc: 'CreateMember', send: (memberId) => (f) => f.member.members.createMember({ imageId: f.imageId, memberId }) },
  { rpc: 'GetMember', send: (memberId) => (f) => f.member.members.getMember({ imageId: f.imageId, memberId }) },
  { rpc: 'UpdateMember', send: (memberId) => (f) => f.member.members.updateMember({ imageId: f.imageId, memberId, status: ACCEPTED }) },
  { rpc: 'DeleteMember', send: (memberId) => (f) => f.member.members.deleteMember({ imageId: f.imageId, memberId }) },
];

const MALFORMED_MEMBER_ID_CASES: BadInput[] = MEMBER_ID_FIELDS.flatMap(({ rpc, send }) =>
  MALFORMED_MEMBER_IDS.map(({ input, memberId, value }) => ({ rpc, input, call: send(memberId), field: 'member_id', value })),
);

const ENUM_CASES: BadInput[] = [
  { rpc: 'CreateImage', input: 'visibility 99', field: 'image.visibility', value: '99',
    call: (f) => f.member.images.createImage({ image: { name: 'x', visibility: UNDEFINED_ENUM_NUMBER as Visibility } }) },
  { rpc: 'CreateImage', input: 'visibility -1', field: 'image.visibility', value: '-1',
    call: (f) => f.member.images.createImage({ image: { name: 'x', visibility: -1 as Visibility } }) },
  { rpc: 'UpdateImage', input: 'visibility 99', field: 'image.visibility', value: '99',
    call: (f) => f.member.images.updateImage({ image: { id: f.imageId, visibility: UNDEFINED_ENUM_NUMBER as Visibility }, updateMask: ['visibility'] }) },
  { rpc: 'ListImages', input: 'visibility filter 99', field: 'visibility', value: '99',
    call: (f) => f.member.images.listImages({ visibility: UNDEFINED_ENUM_NUMBER as VisibilityFilter }) },
  { rpc: 'ListImages', input: 'member_status filter 99', field: 'member_status', value: '99',
    call: (f) => f.member.images.listImages({ memberStatus: UNDEFINED_ENUM_NUMBER as MemberStatusFilter }) },
  { rpc: 'ListImages', input: 'status filter 99', field: 'status', value: '99',
    call: (f) => f.member.images.listImages({ status: UNDEFINED_ENUM_NUMBER as ImageStatus }) },
  { rpc: 'UpdateMember', input: 'status 99', field: 'status', value: '99',
    call: (f) => f.member.members.updateMember({ imageId: f.imageId, memberId: 'proj-b', status: UNDEFINED_ENUM_NUMBER as MemberStatus }) },
  { rpc: 'UpdateMember', input: 'an unspecified status', field: 'status',
    call: (f) => f.member.members.updateMember({ imageId: f.imageId, memberId: 'proj-b' }) },
];

/** The decoded body of a page token: a version, a digest of the query, and the last row's sort values. */
interface PageTokenBody {
  v: number;
  q: string;
  k: unknown[];
}

/**
 * Decodes a real page token, changes its body and encodes it again, keeping
 * the digest so that the server gets past the check that the token belongs
 * to this query. Both ListImages' default order and ListMembers' order sort
 * by an integer time, then a string id.
 */
function forgePageToken(token: string, change: (body: PageTokenBody) => unknown): string {
  const body = JSON.parse(Buffer.from(token, 'base64url').toString('utf8')) as PageTokenBody;
  return Buffer.from(JSON.stringify(change(body)), 'utf8').toString('base64url');
}

const FORGED_PAGE_TOKENS: { input: string; change: (body: PageTokenBody) => unknown }[] = [
  { input: 'a forged page_token with a number for the id', change: (body) => ({ ...body, k: [body.k[0], 5] }) },
  { input: 'a forged page_token with text for the time', change: (body) => ({ ...body, k: ['yesterday', body.k[1]] }) },
  { input: 'a forged page_token with an unsafe integer', change: (body) => ({ ...body, k: [1e300, body.k[1]] }) },
  { input: 'a forged page_token with a fractional time', change: (body) => ({ ...body, k: [1.5, body.k[1]] }) },
  { input: 'a forged page_token missing a value', change: (body) => ({ ...body, k: [body.k[0]] }) },
  { input: 'a forged page_token with an extra value', change: (body) => ({ ...body, k: [...body.k, 'extra'] }) },
  { input: 'a forged page_token without values', change: (body) => ({ v: body.v, q: body.q }) },
  { input: 'a forged page_token of version 2', change: (body) => ({ ...body, v: 2 }) },
  { input: 'a page_token encoding null', change: () => null },
  { input: 'a page_token encoding an array', change: (body) => [body.v, body.q, body.k] },
];

const LONG_NAME = 'n'.repeat(256);
const LONG_TAG = 't'.repeat(256);
const LONG_KEY = 'k'.repeat(256);
const LONG_OWNER = 'o'.repeat(256);

const LIMIT_CASES: BadInput[] = [
  { rpc: 'CreateImage', input: 'a 256-character name', field: 'image.name', value: LONG_NAME.slice(0, 40),
    call: (f) => f.member.images.createImage({ image: { name: LONG_NAME } }) },
  { rpc: 'CreateImage', input: 'a 256-character tag', field: 'image.tags', value: LONG_TAG.slice(0, 40),
    call: (f) => f.member.images.createImage({ image: { name: 'x', tags: ['ok', LONG_TAG] } }) },
  { rpc: 'CreateImage', input: 'an empty tag', field: 'image.tags',
    call: (f) => f.member.images.createImage({ image: { name: 'x', tags: [''] } }) },
  { rpc: 'CreateImage', input: 'a 256-character property key', field: 'image.properties', value: LONG_KEY.slice(0, 40),
    call: (f) => f.member.images.createImage({ image: { name: 'x', properties: new Map([[LONG_KEY, 'v']]) } }) },
  { rpc: 'CreateImage', input: 'an empty property key', field: 'image.properties',
    call: (f) => f.member.images.createImage({ image: { name: 'x', properties: new Map([['', 'v']]) } }) },
  { rpc: 'CreateImage', input: 'a reserved property key', field: 'image.properties', value: 'os_glance_import',
    call: (f) => f.member.images.createImage({ image: { name: 'x', properties: new Map([['os_glance_import', 'v']]) } }) },
  { rpc: 'CreateImage', input: 'a 65,536-byte property value', field: 'image.properties', value: 'big',
    call: (f) => f.member.images.createImage({ image: { name: 'x', properties: new Map([['big', 'v'.repeat(65_536)]]) } }) },
  { rpc: 'CreateImage', input: 'an unknown container_format', field: 'image.container_format', value: 'tarball',
    call: (f) => f.member.images.createImage({ image: { name: 'x', containerFormat: 'tarball' } }) },
  { rpc: 'CreateImage', input: 'an unknown disk_format', field: 'image.disk_format', value: 'floppy',
    call: (f) => f.member.images.createImage({ image: { name: 'x', diskFormat: 'floppy' } }) },
  { rpc: 'CreateImage', input: 'a negative min_disk', field: 'image.min_disk', value: '-1',
    call: (f) => f.member.images.createImage({ image: { name: 'x', minDisk: -1 } }) },
  { rpc: 'CreateImage', input: 'a negative min_ram', field: 'image.min_ram', value: '-5',
    call: (f) => f.member.images.createImage({ image: { name: 'x', minRam: -5 } }) },
  { rpc: 'CreateImage', input: 'a 256-character owner', field: 'image.owner', value: LONG_OWNER.slice(0, 40),
    call: (f) => f.admin.images.createImage({ image: { name: 'x', owner: LONG_OWNER } }) },
  { rpc: 'UpdateImage', input: 'no image', field: 'image.id',
    call: (f) => f.member.images.updateImage({ updateMask: ['name'] }) },
  { rpc: 'UpdateImage', input: 'a 256-character name', field: 'image.name', value: LONG_NAME.slice(0, 40),
    call: (f) => f.member.images.updateImage({ image: { id: f.imageId, name: LONG_NAME }, updateMask: ['name'] }) },
  { rpc: 'UpdateImage', input: 'a 256-character tag', field: 'image.tags', value: LONG_TAG.slice(0, 40),
    call: (f) => f.member.images.updateImage({ image: { id: f.imageId, tags: [LONG_TAG] }, updateMask: ['tags'] }) },
  { rpc: 'UpdateImage', input: 'a 65,536-byte property value', field: 'image.properties', value: 'big',
    call: (f) => f.member.images.updateImage({
      image: { id: f.imageId, properties: new Map([['big', 'v'.repeat(65_536)]]) },
      updateMask: ['properties.big'],
    }) },
  { rpc: 'UpdateImage', input: 'a negative min_disk', field: 'image.min_disk', value: '-1',
    call: (f) => f.member.images.updateImage({ image: { id: f.imageId, minDisk: -1 }, updateMask: ['min_disk'] }) },
  { rpc: 'UpdateImage', input: 'an unknown disk_format', field: 'image.disk_format', value: 'floppy',
    call: (f) => f.member.images.updateImage({ image: { id: f.imageId, diskFormat: 'floppy' }, updateMask: ['disk_format'] }) },
  { rpc: 'UpdateImage', input: 'an empty owner', field: 'image.owner',
    call: (f) => f.admin.images.updateImage({ image: { id: f.spareImageId, owner: '' }, updateMask: ['owner'] }) },
  { rpc: 'UpdateImage', input: 'a 256-character owner', field: 'image.owner', value: LONG_OWNER.slice(0, 40),
    call: (f) => f.admin.images.updateImage({ image: { id: f.spareImageId, owner: LONG_OWNER }, updateMask: ['owner'] }) },
  { rpc: 'AddImageTag', input: 'a 256-character tag', field: 'tag', value: LONG_TAG.slice(0, 40),
    call: (f) => f.member.images.addImageTag({ imageId: f.imageId, tag: LONG_TAG }) },
  { rpc: 'AddImageTag', input: 'an empty tag', field: 'tag',
    call: (f) => f.member.images.addImageTag({ imageId: f.imageId, tag: '' }) },
  { rpc: 'RemoveImageTag', input: 'a 256-character tag', field: 'tag', value: LONG_TAG.slice(0, 40),
    call: (f) => f.member.images.removeImageTag({ imageId: f.imageId, tag: LONG_TAG }) },
  { rpc: 'RemoveImageTag', input: 'an empty tag', field: 'tag',
    call: (f) => f.member.images.removeImageTag({ imageId: f.imageId, tag: '' }) },
  { rpc: 'ListImages', input: 'a negative page_size', field: 'page_size', value: '-1',
    call: (f) => f.member.images.listImages({ pageSize: -1 }) },
  { rpc: 'ListImages', input: '101 ids', field: 'ids', value: '101',
    call: (f) => f.member.images.listImages({ ids: Array.from({ length: 101 }, () => crypto.randomUUID()) }) },
  { rpc: 'ListImages', input: 'a 256-character tag filter', field: 'tags', value: LONG_TAG.slice(0, 40),
    call: (f) => f.member.images.listImages({ tags: [LONG_TAG] }) },
  { rpc: 'ListImages', input: 'an unknown order_by field', field: 'order_by', value: 'colour',
    call: (f) => f.member.images.listImages({ orderBy: 'colour' }) },
  { rpc: 'ListImages', input: 'an order_by direction in capitals', field: 'order_by', value: 'name DESC',
    call: (f) => f.member.images.listImages({ orderBy: 'name DESC' }) },
  { rpc: 'ListImages', input: 'an order_by field twice', field: 'order_by', value: 'name',
    call: (f) => f.member.images.listImages({ orderBy: 'name,name desc' }) },
  { rpc: 'ListImages', input: 'a 10,000-character order_by', field: 'order_by', value: 'z'.repeat(40),
    call: (f) => f.member.images.listImages({ orderBy: 'z'.repeat(10_000) }) },
  { rpc: 'ListImages', input: 'a garbage page_token', field: 'page_token',
    call: (f) => f.member.images.listImages({ pageToken: 'not-a-token!' }) },
  { rpc: 'ListImages', input: 'a 10,000-character page_token', field: 'page_token',
    call: (f) => f.member.images.listImages({ pageToken: 'A'.repeat(10_000) }) },
  { rpc: 'ListImages', input: 'a page_token of other filters', field: 'page_token',
    call: (f) => f.member.images.listImages({ pageSize: 1, pageToken: f.imagePageToken, name: 'other' }) },
  { rpc: 'ListImages', input: 'a page_token of another order', field: 'page_token',
    call: (f) => f.member.images.listImages({ pageSize: 1, pageToken: f.imagePageToken, orderBy: 'name' }) },
  { rpc: 'ListImages', input: 'a page_token of ListMembers', field: 'page_token',
    call: (f) => f.member.images.listImages({ pageSize: 1, pageToken: f.memberPageToken }) },
  { rpc: 'ListMembers', input: 'a negative page_size', field: 'page_size', value: '-1',
    call: (f) => f.member.members.listMembers({ imageId: f.imageId, pageSize: -1 }) },
  { rpc: 'ListMembers', input: 'a garbage page_token', field: 'page_token',
    call: (f) => f.member.members.listMembers({ imageId: f.imageId, pageToken: 'not-a-token!' }) },
  { rpc: 'ListMembers', input: 'a page_token of ListImages', field: 'page_token',
    call: (f) => f.member.members.listMembers({ imageId: f.imageId, pageToken: f.imagePageToken }) },
  { rpc: 'ListMembers', input: 'a page_token of another image', field: 'page_token',
    call: (f) => f.member.members.listMembers({ imageId: MISSING_IMAGE_ID, pageToken: f.memberPageToken }) },
  ...FORGED_PAGE_TOKENS.map(({ input, change }): BadInput => ({
    rpc: 'ListImages',
    input,
    field: 'page_token',
    call: (f) => f.member.images.listImages({ pageSize: 1, pageToken: forgePageToken(f.imagePageToken, change) }),
  })),
  ...FORGED_PAGE_TOKENS.map(({ input, change }): BadInput => ({
    rpc: 'ListMembers',
    input,
    field: 'page_token',
    call: (f) => f.member.members.listMembers({ imageId: f.imageId, pageSize: 1, pageToken: forgePageToken(f.memberPageToken, change) }),
  })),
];

const INT64_MIN = '-9223372036854775808';
const INT64_MAX = '9223372036854775807';
/** 2^53 + 1, the smallest positive integer that a JavaScript number cannot represent exactly. */
const TWO_POW_53_PLUS_1 = '9007199254740993';
const MD5_OF_EMPTY = 'd41d8cd98f00b204e9800998ecf8427e';
const SHA512_OF_EMPTY =
  'cf83e1357eefb8bdf1542850d66d8007d620e4050b5715dc83f4a921d36ce9ce47d0d13c5d85f2b0ff8318d2877eec2f63b931bd47417a81a538327af927da3e';

/**
 * Start messages whose expected size or hashes are malformed. They name the
 * missing image, so INVALID_ARGUMENT also shows that the form is checked
 * before the image is looked up.
 */
const UPLOAD_START_CASES: BadInput[] = [
  { input: 'expected_size -1', field: 'start.expected_size', value: '-1', start: { expectedSize: '-1' } },
  { input: 'the smallest int64 expected_size', field: 'start.expected_size', value: INT64_MIN, start: { expectedSize: INT64_MIN } },
  { input: 'expected_size 2^53 + 1', field: 'start.expected_size', value: TWO_POW_53_PLUS_1, start: { expectedSize: TWO_POW_53_PLUS_1 } },
  { input: 'the largest int64 expected_size', field: 'start.expected_size', value: INT64_MAX, start: { expectedSize: INT64_MAX } },
  { input: 'a non-hex expected_checksum', field: 'start.expected_checksum', value: 'z'.repeat(32), start: { expectedChecksum: 'z'.repeat(32) } },
  { input: 'a 31-digit expected_checksum', field: 'start.expected_checksum', value: MD5_OF_EMPTY.slice(1),
    start: { expectedChecksum: MD5_OF_EMPTY.slice(1) } },
  { input: 'a 33-digit expected_checksum', field: 'start.expected_checksum', value: `${MD5_OF_EMPTY}0`,
    start: { expectedChecksum: `${MD5_OF_EMPTY}0` } },
  { input: 'an expected_checksum with spaces around it', field: 'start.expected_checksum', value: MD5_OF_EMPTY,
    start: { expectedChecksum: ` ${MD5_OF_EMPTY} ` } },
  { input: 'a SHA-512 as expected_checksum', field: 'start.expected_checksum', value: SHA512_OF_EMPTY.slice(0, 40),
    start: { expectedChecksum: SHA512_OF_EMPTY } },
  { input: 'a non-hex expected_hash_value', field: 'start.expected_hash_value', value: 'g'.repeat(40),
    start: { expectedHashValue: 'g'.repeat(128) } },
  { input: 'a 127-digit expected_hash_value', field: 'start.expected_hash_value', value: SHA512_OF_EMPTY.slice(1, 41),
    start: { expectedHashValue: SHA512_OF_EMPTY.slice(1) } },
  { input: 'an MD5 as expected_hash_value', field: 'start.expected_hash_value', value: MD5_OF_EMPTY,
    start: { expectedHashValue: MD5_OF_EMPTY } },
  { input: 'a 10,000-character expected_hash_value', field: 'start.expected_hash_value', value: 'f'.repeat(40),
    start: { expectedHashValue: 'f'.repeat(10_000) } },
].map(({ input, field, value, start }) => ({
  rpc: 'UploadImageData',
  input,
  field,
  value,
  call: (f: Fixture) => sendUpload(f.member, [startMessage({ imageId: MISSING_IMAGE_ID, ...start })]),
}));

/**
 * Upload streams whose messages come in the wrong order. Those with a valid
 * start name the upload image, so the server starts the upload before it
 * reads the offending message.
 */
const UPLOAD_ORDER_CASES: BadInput[] = [
  { input: 'a chunk as the first message', field: 'start',
    messages: () => [chunkMessage(Buffer.from('data')), startMessage({ imageId: MISSING_IMAGE_ID })] },
  { input: 'an empty first message', field: 'start', messages: () => [EMPTY_UPLOAD_MESSAGE] },
  { input: 'an empty stream', field: 'start', messages: () => [] },
  { input: 'a second start', field: 'chunk',
    messages: (f: Fixture) => [startMessage({ imageId: f.uploadImageId }), startMessage({ imageId: f.uploadImageId })] },
  { input: 'a start after a chunk', field: 'chunk',
    messages: (f: Fixture) => [
      startMessage({ imageId: f.uploadImageId }),
      chunkMessage(Buffer.from('data')),
      startMessage({ imageId: f.uploadImageId }),
    ] },
  { input: 'an empty message after the start', field: 'chunk',
    messages: (f: Fixture) => [startMessage({ imageId: f.uploadImageId }), EMPTY_UPLOAD_MESSAGE] },
].map(({ input, field, messages }) => ({
  rpc: 'UploadImageData',
  input,
  field,
  call: (f: Fixture) => sendUpload(f.member, messages(f)),
}));

/** Paths of UpdateImage's update_mask that are INVALID_ARGUMENT, with what the message must show. */
const MASK_CASES: BadInput[] = [
  { input: 'an empty update_mask', paths: [] as string[] | undefined, field: 'update_mask' },
  { input: 'no update_mask', paths: undefined, field: 'update_mask' },
  { input: 'an unknown path', paths: ['colour'], field: 'update_mask', value: 'colour' },
  { input: 'a path in capitals', paths: ['Name'], field: 'update_mask', value: 'Name' },
  { input: 'a path prefixed with image', paths: ['image.name'], field: 'update_mask', value: 'image.name' },
  { input: 'the read-only path status', paths: ['status'], field: 'update_mask', value: 'status' },
  { input: 'the read-only path id', paths: ['id'], field: 'update_mask', value: 'id' },
  { input: 'the read-only path create_time', paths: ['create_time'], field: 'update_mask', value: 'create_time' },
  { input: 'a valid path and an unknown one', paths: ['name', 'colour'], field: 'update_mask', value: 'colour' },
  { input: 'visibility left unspecified', paths: ['visibility'], field: 'image.visibility' },
  { input: 'a property path with an empty key', paths: ['properties.'], field: 'update_mask' },
  { input: 'a property path with a reserved key', paths: ['properties.os_glance_x'], field: 'update_mask', value: 'os_glance_x' },
  { input: 'a property path with a 256-character key', paths: [`properties.${LONG_KEY}`], field: 'update_mask', value: LONG_KEY.slice(0, 40) },
].map(({ input, paths, field, value }) => ({
  rpc: 'UpdateImage',
  input,
  field,
  value,
  call: (f: Fixture) => f.member.images.updateImage({ image: { id: MISSING_IMAGE_ID, name: 'y' }, updateMask: paths }),
}));

const BAD_INPUTS: BadInput[] = [
  ...MALFORMED_ID_CASES,
  ...MALFORMED_MEMBER_ID_CASES,
  ...ENUM_CASES,
  ...LIMIT_CASES,
  ...MASK_CASES,
  ...UPLOAD_START_CASES,
  ...UPLOAD_ORDER_CASES,
];

// Hand-encoded protobuf, so that requests can carry bytes no generated encoder would write.

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

/** Invalid UTF-8: 0xC3 starts a two-byte sequence, and 0x28 cannot continue it. */
const INVALID_UTF8 = [0xc3, 0x28];

const UNDECODABLE_BYTES: [string, number[]][] = [
  ['bytes ff ff ff', [0xff, 0xff, 0xff]],
  ['a truncated varint', [0x08, 0x80]],
  ['a truncated tag', [0x80]],
  ['a length past the end', [0x0a, 0x10, 0x61]],
  ['wire type 7', [0x0f]],
];

/** Each method, with well-formed messages whose string fields contain invalid UTF-8. */
const METHODS: { rpc: string; path: string; invalidUtf8: [string, number[]][] }[] = [
  { rpc: 'CreateImage', path: '/imageregistry.v1.ImageService/CreateImage', invalidUtf8: [
    ['image_id', field(2, INVALID_UTF8)],
    ['image.name', field(1, field(2, INVALID_UTF8))],
    ['image.tags', field(1, field(17, INVALID_UTF8))],
    ['image.properties key', field(1, field(18, [...field(1, INVALID_UTF8), ...field(2, [0x76])]))],
    ['image.properties value', field(1, field(18, [...field(1, [0x6b]), ...field(2, INVALID_UTF8)]))],
  ] },
  { rpc: 'GetImage', path: '/imageregistry.v1.ImageService/GetImage', invalidUtf8: [['id', field(1, INVALID_UTF8)]] },
  { rpc: 'ListImages', path: '/imageregistry.v1.ImageService/ListImages', invalidUtf8: [
    ['page_token', field(2, INVALID_UTF8)],
    ['order_by', field(3, INVALID_UTF8)],
    ['name', field(7, INVALID_UTF8)],
    ['tags', field(9, INVALID_UTF8)],
    ['properties key', field(10, [...field(1, INVALID_UTF8), ...field(2, [0x76])])],
    ['ids', field(13, INVALID_UTF8)],
  ] },
  { rpc: 'UpdateImage', path: '/imageregistry.v1.ImageService/UpdateImage', invalidUtf8: [
    ['image.id', field(1, field(1, INVALID_UTF8))],
    ['update_mask path', field(2, field(1, INVALID_UTF8))],
  ] },
  { rpc: 'AddImageTag', path: '/imageregistry.v1.ImageService/AddImageTag', invalidUtf8: [['image_id', field(1, INVALID_UTF8)], ['tag', field(2, INVALID_UTF8)]] },
  { rpc: 'RemoveImageTag', path: '/imageregistry.v1.ImageService/RemoveImageTag', invalidUtf8: [['tag', field(2, INVALID_UTF8)]] },
  { rpc: 'DeleteImage', path: '/imageregistry.v1.ImageService/DeleteImage', invalidUtf8: [['id', field(1, INVALID_UTF8)]] },
  { rpc: 'DeactivateImage', path: '/imageregistry.v1.ImageService/DeactivateImage', invalidUtf8: [['id', field(1, INVALID_UTF8)]] },
  { rpc: 'ReactivateImage', path: '/imageregistry.v1.ImageService/ReactivateImage', invalidUtf8: [['id', field(1, INVALID_UTF8)]] },
  { rpc: 'CreateMember', path: '/imageregistry.v1.MemberService/CreateMember', invalidUtf8: [['image_id', field(1, INVALID_UTF8)], ['member_id', field(2, INVALID_UTF8)]] },
  { rpc: 'GetMember', path: '/imageregistry.v1.MemberService/GetMember', invalidUtf8: [['member_id', field(2, INVALID_UTF8)]] },
  { rpc: 'ListMembers', path: '/imageregistry.v1.MemberService/ListMembers', invalidUtf8: [['image_id', field(1, INVALID_UTF8)], ['page_token', field(3, INVALID_UTF8)]] },
  { rpc: 'UpdateMember', path: '/imageregistry.v1.MemberService/UpdateMember', invalidUtf8: [['member_id', field(2, INVALID_UTF8)]] },
  { rpc: 'DeleteMember', path: '/imageregistry.v1.MemberService/DeleteMember', invalidUtf8: [['member_id', field(2, INVALID_UTF8)]] },
];

/** Every method paired with every undecodable payload. */
const RAW_CASES: { rpc: string; path: string; payload: string; bytes: Buffer }[] = METHODS.flatMap(({ rpc, path, invalidUtf8 }) => [
  ...UNDECODABLE_BYTES.map(([payload, bytes]) => ({ rpc, path, payload, bytes: Buffer.from(bytes) })),
  ...invalidUtf8.map(([name, bytes]) => ({ rpc, path, payload: `invalid UTF-8 in ${name}`, bytes: Buffer.from(bytes) })),
]);

/** Encodes a ListImagesRequest with only updated_after set, from raw seconds and nanos that may be out of range. */
function updatedAfterRequest(seconds: string, nanos = 0): Buffer {
  return Buffer.from(field(14, Timestamp.encode({ seconds, nanos }).finish()));
}

function pathOf(rpc: string): string {
  return METHODS.find((method) => method.rpc === rpc)!.path;
}

const identity = (bytes: Buffer) => bytes;

/** Sends request bytes as they are to a method, with `authorization` when not null. */
function sendRaw(client: grpc.Client, path: string, bytes: Buffer, authorization: string | null): Promise<Outcome> {
  const metadata = new grpc.Metadata();
  if (authorization !== null) metadata.set('authorization', authorization);
  return new Promise((resolve) => {
    client.makeUnaryRequest(path, identity, identity, bytes, metadata, (error) => {
      if (error === null || error === undefined) resolve({ code: 'OK', message: '' });
      else resolve({ code: grpc.status[error.code] ?? String(error.code), message: error.details });
    });
  });
}

const UPLOAD_PATH = '/imageregistry.v1.ImageService/UploadImageData';
const DOWNLOAD_PATH = '/imageregistry.v1.ImageService/DownloadImageData';

/** Encodes an UploadImageDataRequest whose start names `imageId`. */
function encodedStart(imageId: string): number[] {
  return field(1, field(1, Buffer.from(imageId, 'utf8')));
}

/** An undecodable request stream of UploadImageData or DownloadImageData. */
interface RawStreamCase {
  rpc: 'UploadImageData' | 'DownloadImageData';
  payload: string;
  /** Returns the raw bytes of each message, given the upload image's id. A download sends exactly one message. */
  messages: (uploadImageId: string) => Buffer[];
}

/** Well-formed UploadImageDataRequest messages whose start has invalid UTF-8 in one string field. */
const UPLOAD_INVALID_UTF8: [string, number[]][] = [
  ['start.image_id', field(1, field(1, INVALID_UTF8))],
  ['start.expected_checksum', field(1, field(3, INVALID_UTF8))],
  ['start.expected_hash_value', field(1, field(4, INVALID_UTF8))],
];

const RAW_STREAM_CASES: RawStreamCase[] = [
  ...UNDECODABLE_BYTES.map(([payload, bytes]) => ({
    rpc: 'UploadImageData' as const,
    payload: `${payload} as the first message`,
    messages: () => [Buffer.from(bytes)],
  })),
  ...UNDECODABLE_BYTES.map(([payload, bytes]) => ({
    rpc: 'UploadImageData' as const,
    payload: `${payload} after a valid start`,
    messages: (uploadImageId: string) => [Buffer.from(encodedStart(uploadImageId)), Buffer.from(bytes)],
  })),
  ...UPLOAD_INVALID_UTF8.map(([name, bytes]) => ({
    rpc: 'UploadImageData' as const,
    payload: `invalid UTF-8 in ${name}`,
    messages: () => [Buffer.from(bytes)],
  })),
  ...UNDECODABLE_BYTES.map(([payload, bytes]) => ({
    rpc: 'DownloadImageData' as const,
    payload,
    messages: () => [Buffer.from(bytes)],
  })),
  { rpc: 'DownloadImageData', payload: 'invalid UTF-8 in id', messages: () => [Buffer.from(field(1, INVALID_UTF8))] },
];

function metadataOf(authorization: string | null): grpc.Metadata {
  const metadata = new grpc.Metadata();
  if (authorization !== null) metadata.set('authorization', authorization);
  return metadata;
}

function outcomeOfError(error: grpc.ServiceError | null | undefined): Outcome {
  if (error === null || error === undefined) return { code: 'OK', message: '' };
  return { code: grpc.status[error.code] ?? String(error.code), message: error.details };
}

/** Sends each buffer as one message of an UploadImageData stream, then half-closes it. */
function sendRawUpload(client: grpc.Client, messages: Buffer[], authorization: string | null): Promise<Outcome> {
  return new Promise((resolve) => {
    const call = client.makeClientStreamRequest(UPLOAD_PATH, identity, identity, metadataOf(authorization), (error) =>
      resolve(outcomeOfError(error)),
    );
    for (const message of messages) call.write(message);
    call.end();
  });
}

/** Sends request bytes to DownloadImageData and reads the stream to its end or its error. */
function sendRawDownload(client: grpc.Client, bytes: Buffer, authorization: string | null): Promise<Outcome> {
  return new Promise((resolve) => {
    const call = client.makeServerStreamRequest(DOWNLOAD_PATH, identity, identity, bytes, metadataOf(authorization));
    call.on('data', () => {});
    call.on('error', (error: grpc.ServiceError) => resolve(outcomeOfError(error)));
    call.on('end', () => resolve(outcomeOfError(null)));
  });
}

function sendRawStream(
  client: grpc.Client,
  rawCase: RawStreamCase,
  uploadImageId: string,
  authorization: string | null,
): Promise<Outcome> {
  const messages = rawCase.messages(uploadImageId);
  if (rawCase.rpc === 'UploadImageData') return sendRawUpload(client, messages, authorization);
  return sendRawDownload(client, messages[0]!, authorization);
}

describe.each(testedBackends())('bad input on %s', (backend) => {
  let registry: RegistryHarness;
  let fixture: Fixture;
  let rawClient: grpc.Client;
  let memberAuthorization: string;
  let rolelessAuthorization: string;

  beforeAll(async () => {
    registry = await RegistryHarness.start(backend);
    const member = await registry.as('proj-a');
    const admin = await registry.as('proj-admin', { admin: true });

    const image = await member.images.createImage({ image: { name: 'target', tags: ['keep'] } });
    const spare = await member.images.createImage({ image: { name: 'spare' } });
    const uploadTarget = await member.images.createImage({ image: { name: 'upload-target' } });
    await member.members.createMember({ imageId: image.id, memberId: 'proj-b' });
    await member.members.createMember({ imageId: image.id, memberId: 'proj-c' });
    const imagePage = await member.images.listImages({ pageSize: 1 });
    const memberPage = await member.members.listMembers({ imageId: image.id, pageSize: 1 });
    fixture = {
      member,
      admin,
      imageId: image.id,
      spareImageId: spare.id,
      imagePageToken: imagePage.nextPageToken,
      memberPageToken: memberPage.nextPageToken,
      uploadImageId: uploadTarget.id,
    };

    rawClient = new grpc.Client(registry.address, grpc.credentials.createInsecure());
    memberAuthorization = `Bearer ${await registry.token('proj-a')}`;
    rolelessAuthorization = `Bearer ${await new SignJWT({ project_id: 'proj-a' })
      .setProtectedHeader({ alg: 'HS256' })
      .setExpirationTime('1h')
      .sign(new TextEncoder().encode(registry.secret))}`;
  });
  afterAll(async () => {
    rawClient?.close();
    await registry?.stop();
  });

  it('fixture has page tokens to misuse', () => {
    expect(fixture.imagePageToken).not.toBe('');
    expect(fixture.memberPageToken).not.toBe('');
  });

  const namedBadInputs = BAD_INPUTS.map((badInput) => [`${badInput.rpc} rejects ${badInput.input}`, badInput] as const);

  it.each(namedBadInputs)('%s', async (_name, { call, field: name, value }) => {
    const outcome = await outcomeOf(call(fixture));

    expect(outcome.code).toBe('INVALID_ARGUMENT');
    expect(outcome.message, `message ${JSON.stringify(outcome.message)} should name ${name}`).toSatisfy(
      (message: string) => namesField(message, name),
    );
    if (value !== undefined) expect(outcome.message).toContain(value);
  });

  it('rejected update changes nothing', async () => {
    const before = await fixture.member.images.getImage({ id: fixture.imageId });
    await outcomeOf(fixture.member.images.updateImage({
      image: { id: fixture.imageId, name: 'changed', visibility: UNDEFINED_ENUM_NUMBER as Visibility },
      updateMask: ['name', 'visibility'],
    }));
    await outcomeOf(fixture.member.images.updateImage({
      image: { id: fixture.imageId, name: 'changed' },
      updateMask: ['name', 'colour'],
    }));

    const after = await fixture.member.images.getImage({ id: fixture.imageId });
    expect(after).toEqual(before);
  });

  it('ListImages rejects updated_after past year 275760', async () => {
    const outcome = await sendRaw(rawClient, '/imageregistry.v1.ImageService/ListImages', updatedAfterRequest('10000000000000'), memberAuthorization);
    expect(outcome.code).toBe('INVALID_ARGUMENT');
    expect(outcome.message).toSatisfy((message: string) => namesField(message, 'updated_after'));
  });

  it('project id over 255 characters never yields INTERNAL', async () => {
    const client = registry.withToken(await registry.token('q'.repeat(300)));
    const outcome = await outcomeOf(client.images.createImage({ image: { name: 'x' } }));
    expect(['INTERNAL', 'UNKNOWN']).not.toContain(outcome.code);
  });

  it('ListImages with 1,000 tag filters never yields INTERNAL', async () => {
    const tags = Array.from({ length: 1000 }, (_, index) => `tag-${index}`);
    const outcome = await outcomeOf(fixture.member.images.listImages({ tags }));
    expect(['INTERNAL', 'UNKNOWN']).not.toContain(outcome.code);
  });

  it('ListImages with 1,000 property filters never yields INTERNAL', async () => {
    const properties = new Map(Array.from({ length: 1000 }, (_, index) => [`key-${index}`, 'v']));
    const outcome = await outcomeOf(fixture.member.images.listImages({ properties }));
    expect(['INTERNAL', 'UNKNOWN']).not.toContain(outcome.code);
  });

  it('chunk past the receive limit leaves the image queued', async () => {
    const image = await fixture.member.images.createImage({ image: { name: 'oversized-chunk' } });
    const oversized = chunkMessage(Buffer.alloc(17 * 1024 * 1024, 0x61));

    const outcome = await outcomeOf(sendUpload(fixture.member, [startMessage({ imageId: image.id }), oversized]));
    expect(outcome.code).toBe('RESOURCE_EXHAUSTED');

    // The status can reach the client before the server has returned the image to QUEUED, so poll for up to 5 s.
    const deadline = Date.now() + 5_000;
    let status = (await fixture.member.images.getImage({ id: image.id })).status;
    while (status !== ImageStatus.IMAGE_STATUS_QUEUED && Date.now() < deadline) {
      await new Promise((resolve) => setTimeout(resolve, 50));
      status = (await fixture.member.images.getImage({ id: image.id })).status;
    }
    expect(status).toBe(ImageStatus.IMAGE_STATUS_QUEUED);
  });

  it('raw client reaches the service', async () => {
    const bytes = Buffer.from(GetImageRequest.encode({ id: MISSING_IMAGE_ID }).finish());
    const outcome = await sendRaw(rawClient, '/imageregistry.v1.ImageService/GetImage', bytes, memberAuthorization);
    expect(outcome.code).toBe('NOT_FOUND');
  });

  describe('undecodable request bytes', () => {
    const namedRawCases = RAW_CASES.map((raw) => [`${raw.rpc} rejects ${raw.payload}`, raw] as const);
    const namedMethods = METHODS.map((method) => [method.rpc, method] as const);

    it.each(namedRawCases)('%s', async (_name, { path, bytes }) => {
      const outcome = await sendRaw(rawClient, path, bytes, memberAuthorization);
      expect(outcome.code).toBe('INVALID_ARGUMENT');
      expect(outcome.message).not.toBe('');
    });

    it.each(namedMethods)('%s checks the token before decoding', async (rpc) => {
      for (const { payload, bytes } of RAW_CASES.filter((raw) => raw.rpc === rpc)) {
        const outcome = await sendRaw(rawClient, pathOf(rpc), bytes, null);
        expect({ payload, code: outcome.code }).toEqual({ payload, code: 'UNAUTHENTICATED' });
      }
    });

    it.each(namedMethods)('%s checks roles before decoding', async (rpc) => {
      for (const { payload, bytes } of RAW_CASES.filter((raw) => raw.rpc === rpc)) {
        const outcome = await sendRaw(rawClient, pathOf(rpc), bytes, rolelessAuthorization);
        expect({ payload, code: outcome.code }).toEqual({ payload, code: 'PERMISSION_DENIED' });
      }
    });
  });

  describe('undecodable stream messages', () => {
    const namedRawStreamCases = RAW_STREAM_CASES.map((raw) => [`${raw.rpc} rejects ${raw.payload}`, raw] as const);
    const streamingRpcs = ['UploadImageData', 'DownloadImageData'];

    it.each(namedRawStreamCases)('%s', async (_name, raw) => {
      const outcome = await sendRawStream(rawClient, raw, fixture.uploadImageId, memberAuthorization);
      expect(outcome.code).toBe('INVALID_ARGUMENT');
      expect(outcome.message).not.toBe('');
    });

    it.each(streamingRpcs)('%s checks the token before decoding', async (rpc) => {
      for (const raw of RAW_STREAM_CASES.filter((candidate) => candidate.rpc === rpc)) {
        const outcome = await sendRawStream(rawClient, raw, fixture.uploadImageId, null);
        expect({ payload: raw.payload, code: outcome.code }).toEqual({ payload: raw.payload, code: 'UNAUTHENTICATED' });
      }
    });

    it.each(streamingRpcs)('%s checks roles before decoding', async (rpc) => {
      for (const raw of RAW_STREAM_CASES.filter((candidate) => candidate.rpc === rpc)) {
        const outcome = await sendRawStream(rawClient, raw, fixture.uploadImageId, rolelessAuthorization);
        expect({ payload: raw.payload, code: outcome.code }).toEqual({ payload: raw.payload, code: 'PERMISSION_DENIED' });
      }
    });

    it('rejected uploads leave the image queued', async () => {
      for (const raw of RAW_STREAM_CASES.filter((candidate) => candidate.rpc === 'UploadImageData')) {
        await sendRawStream(rawClient, raw, fixture.uploadImageId, memberAuthorization);
      }
      for (const { call } of UPLOAD_ORDER_CASES) await outcomeOf(call(fixture));

      const image = await fixture.member.images.getImage({ id: fixture.uploadImageId });
      expect(image.status).toBe(ImageStatus.IMAGE_STATUS_QUEUED);
      expect(image.size).toBeUndefined();
      expect((await outcomeOf(fixture.member.data.download(fixture.uploadImageId))).code).toBe('FAILED_PRECONDITION');
    });
  });

  describe('values at their limits', () => {
    /** 255 characters outside the Basic Multilingual Plane: 510 UTF-16 units, 1,020 UTF-8 bytes. */
    const astral255 = '🐧'.repeat(255);

    it('name of 255 astral characters is accepted', async () => {
      const image = await fixture.member.images.createImage({ image: { name: astral255 } });
      expect(image.name).toBe(astral255);
      expect((await fixture.member.images.getImage({ id: image.id })).name).toBe(astral255);
    });

    it('tag of 255 astral characters is accepted', async () => {
      const image = await fixture.member.images.createImage({ image: { name: 'x', tags: [astral255] } });
      expect((await fixture.member.images.getImage({ id: image.id })).tags).toEqual([astral255]);
    });

    it('property key of 255 astral characters is accepted', async () => {
      const properties = new Map([[astral255, 'v']]);
      const image = await fixture.member.images.createImage({ image: { name: 'x', properties } });
      expect((await fixture.member.images.getImage({ id: image.id })).properties).toEqual(properties);
    });

    it('property value of 65,535 bytes is accepted', async () => {
      // 21,845 three-byte characters are 65,535 bytes.
      const properties = new Map([['big', '€'.repeat(21_845)]]);
      const image = await fixture.member.images.createImage({ image: { name: 'x', properties } });
      expect((await fixture.member.images.getImage({ id: image.id })).properties).toEqual(properties);
    });

    it('member_id of 255 astral characters is accepted', async () => {
      const member = await fixture.member.members.createMember({ imageId: fixture.imageId, memberId: astral255 });
      expect(member.memberId).toBe(astral255);
      await fixture.member.members.deleteMember({ imageId: fixture.imageId, memberId: astral255 });
    });

    it('owner of 255 characters is accepted', async () => {
      const owner = 'o'.repeat(255);
      const image = await fixture.admin.images.createImage({ image: { name: 'x', owner } });
      expect(image.owner).toBe(owner);
    });

    it('largest int32 minimums are accepted', async () => {
      const image = await fixture.member.images.createImage({ image: { name: 'x', minDisk: 2_147_483_647, minRam: 2_147_483_647 } });
      expect((await fixture.member.images.getImage({ id: image.id })).minDisk).toBe(2_147_483_647);
    });

    it('UUID in capitals is accepted and lowercased', async () => {
      const image = await fixture.member.images.getImage({ id: fixture.imageId.toUpperCase() });
      expect(image.id).toBe(fixture.imageId);
    });
  });

  it('no bad input yields INTERNAL or UNKNOWN', async () => {
    const longProjectToken = await registry.token('q'.repeat(300));
    const extraCalls: [string, Call][] = [
      ['ListImages with 2,000 tag filters', (f) =>
        f.member.images.listImages({ tags: Array.from({ length: 2000 }, (_, index) => `tag-${index}`) })],
      ['ListImages with 2,000 property filters', (f) =>
        f.member.images.listImages({ properties: new Map(Array.from({ length: 2000 }, (_, index) => [`key-${index}`, 'v'])) })],
      ['ListImages with a forged page_token holding a 100,000-character id', (f) =>
        f.member.images.listImages({ pageSize: 1, pageToken: forgePageToken(f.imagePageToken, (body) => ({ ...body, k: [body.k[0], 'f'.repeat(100_000)] })) })],
      ['ListImages with a forged page_token holding a lone surrogate', (f) =>
        f.member.images.listImages({ pageSize: 1, pageToken: forgePageToken(f.imagePageToken, (body) => ({ ...body, k: [body.k[0], '\ud800'] })) })],
      ['ListImages with a forged page_token at the largest safe integer', (f) =>
        f.member.images.listImages({ pageSize: 1, pageToken: forgePageToken(f.imagePageToken, (body) => ({ ...body, k: [Number.MAX_SAFE_INTEGER, body.k[1]] })) })],
      ['ListMembers with a forged page_token at a negative time', (f) =>
        f.member.members.listMembers({ imageId: f.imageId, pageSize: 1, pageToken: forgePageToken(f.memberPageToken, (body) => ({ ...body, k: [-1, body.k[1]] })) })],
      ['CreateImage with 129 tags', (f) =>
        f.member.images.createImage({ image: { name: 'x', tags: Array.from({ length: 129 }, (_, index) => `tag-${index}`) } })],
      ['CreateImage with tags that differ by a trailing space', (f) => f.member.images.createImage({ image: { name: 'x', tags: ['a', 'a '] } })],
      ['CreateImage with property keys that differ by a trailing space', (f) =>
        f.member.images.createImage({ image: { name: 'x', properties: new Map([['k', '1'], ['k ', '2']]) } })],
      ['CreateImage with NUL characters', (f) =>
        f.member.images.createImage({ image: { name: 'a\u0000b', tags: ['t\u0000'], properties: new Map([['k\u0000', 'v\u0000']]) } })],
      ['UpdateImage setting the property __proto__', (f) =>
        f.member.images.updateImage({ image: { id: f.spareImageId, properties: new Map([['__proto__', 'v']]) }, updateMask: ['properties.__proto__'] })],
      ['ListImages filtering on the property __proto__', (f) => f.member.images.listImages({ properties: new Map([['__proto__', 'v']]) })],
      ['ListImages with a 10,000-character name filter', (f) => f.member.images.listImages({ name: 'n'.repeat(10_000) })],
      ['ListImages with a 10,000-character owner filter', (f) => f.member.images.listImages({ owner: 'o'.repeat(10_000) })],
      ['ListImages with a 300-character container_format filter', (f) => f.member.images.listImages({ containerFormat: 'c'.repeat(300) })],
      ['ListImages with a 300-character property filter', (f) =>
        f.member.images.listImages({ properties: new Map([['k'.repeat(300), 'v'.repeat(70_000)]]) })],
      ['ListImages with the largest page_size', (f) => f.member.images.listImages({ pageSize: 2_147_483_647 })],
      ['ListImages with updated_after in year 1', (f) => f.member.images.listImages({ updatedAfter: new Date('0001-01-01T00:00:00Z') })],
      ['ListImages with updated_after in year 9999', (f) => f.member.images.listImages({ updatedAfter: new Date('9999-12-31T23:59:59Z') })],
      ['CreateImage as a project with a 300-character id', () =>
        registry.withToken(longProjectToken).images.createImage({ image: { name: 'x' } })],
      ['ListImages as a project with a 300-character id', () => registry.withToken(longProjectToken).images.listImages({})],
      ['CreateMember with a 300-character member_id on a missing image', (f) =>
        f.member.members.createMember({ imageId: MISSING_IMAGE_ID, memberId: 'm'.repeat(300) })],
      ['UploadImageData with expected_size 2^53 - 1', (f) =>
        sendUpload(f.member, [startMessage({ imageId: f.uploadImageId, expectedSize: String(Number.MAX_SAFE_INTEGER) })])],
      ['UploadImageData as a project with a 300-character id', () =>
        sendUpload(registry.withToken(longProjectToken), [startMessage({ imageId: MISSING_IMAGE_ID })])],
      ['UploadImageData of a 17 MiB chunk, past the 16 MiB receive limit', async (f) => {
        const image = await f.member.images.createImage({ image: { name: 'oversized-chunk' } });
        return sendUpload(f.member, [startMessage({ imageId: image.id }), chunkMessage(Buffer.alloc(17 * 1024 * 1024, 0x61))]);
      }],
      ['DownloadImageData of a queued image', (f) => f.member.data.download(f.uploadImageId)],
    ];
    const rawRequests: [string, string, Buffer][] = [
      ...RAW_CASES.map(({ rpc, path, payload, bytes }): [string, string, Buffer] => [`${rpc} with ${payload}`, path, bytes]),
      ['ListImages with updated_after past year 275760', '/imageregistry.v1.ImageService/ListImages', updatedAfterRequest('10000000000000')],
      ['ListImages with updated_after before year 1', '/imageregistry.v1.ImageService/ListImages', updatedAfterRequest('-62135596801')],
      ['ListImages with updated_after after year 9999', '/imageregistry.v1.ImageService/ListImages', updatedAfterRequest('253402300800')],
      ['ListImages with negative nanos', '/imageregistry.v1.ImageService/ListImages', updatedAfterRequest('1', -1)],
      ['ListImages with a billion nanos', '/imageregistry.v1.ImageService/ListImages', updatedAfterRequest('1', 1_000_000_000)],
      ['CreateImage of 17 MiB, past the 16 MiB receive limit', '/imageregistry.v1.ImageService/CreateImage',
        Buffer.from(field(1, field(2, Buffer.alloc(17 * 1024 * 1024, 0x61))))],
    ];

    const offenders: string[] = [];
    const record = (label: string, outcome: Outcome) => {
      if (outcome.code === 'INTERNAL' || outcome.code === 'UNKNOWN') offenders.push(`${label}: ${outcome.code} ${outcome.message}`);
    };
    for (const { rpc, input, call } of BAD_INPUTS) record(`${rpc} with ${input}`, await outcomeOf(call(fixture)));
    for (const [label, call] of extraCalls) record(label, await outcomeOf(call(fixture)));
    for (const [label, path, bytes] of rawRequests) record(label, await sendRaw(rawClient, path, bytes, memberAuthorization));
    for (const raw of RAW_STREAM_CASES) {
      record(`${raw.rpc} with ${raw.payload}`, await sendRawStream(rawClient, raw, fixture.uploadImageId, memberAuthorization));
    }

    expect(offenders).toEqual([]);
  });
});
