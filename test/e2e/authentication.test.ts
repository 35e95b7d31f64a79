/**
 * Bearer-token checks through a real server: which tokens are UNAUTHENTICATED,
 * which key configurations verify which algorithms, how roles gate reads and
 * writes, and that health and reflection need no token.
 */
import { generateKeyPairSync, type KeyObject } from 'node:crypto';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import * as grpc from '@grpc/grpc-js';
import * as protoLoader from '@grpc/proto-loader';
import { fromBinary } from '@bufbuild/protobuf';
import { FileDescriptorProtoSchema } from '@bufbuild/protobuf/wkt';
import { type JWTPayload, SignJWT, UnsecuredJWT, exportJWK } from 'jose';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type Image, ImageStatus, Visibility } from '../../gen/imageregistry/v1/image.js';
import {
  DownloadImageDataRequest,
  GetImageRequest,
  ImageServiceClient,
  UploadImageDataRequest,
} from '../../gen/imageregistry/v1/image_service.js';
import {
  ListMembersRequest,
  MemberServiceClient,
  MemberStatus,
} from '../../gen/imageregistry/v1/member_service.js';
import { loadConfig } from '../../src/platform/config.js';
import { RegistryHarness, type RegistryClient, failure } from '../support/registry-harness.js';

/** A well-formed UUID that no test creates. */
const MISSING_IMAGE_ID = '6f1c2a3b-0000-4000-8000-00000000dead';
const TOLERANCE_SECONDS = 30;

function nowSeconds(): number {
  return Math.floor(Date.now() / 1000);
}

/**
 * Builds the claims of a valid member of proj-a that expire in one hour.
 * Each override replaces a claim, and an override of undefined removes it.
 */
function claims(overrides: Record<string, unknown> = {}): JWTPayload {
  const result: Record<string, unknown> = {
    sub: 'user-a',
    project_id: 'proj-a',
    roles: ['member'],
    exp: nowSeconds() + 3600,
    ...overrides,
  };
  for (const [name, value] of Object.entries(result)) {
    if (value === undefined) delete result[name];
  }
  return result as JWTPayload;
}

function signWithSecret(secret: string, payload: JWTPayload, alg = 'HS256'): Promise<string> {
  return new SignJWT(payload).setProtectedHeader({ alg }).sign(new TextEncoder().encode(secret));
}

function signWithKey(privateKey: KeyObject, payload: JWTPayload, alg: string, kid?: string): Promise<string> {
  return new SignJWT(payload).setProtectedHeader({ alg, kid }).sign(privateKey);
}

function rsaKeyPair() {
  return generateKeyPairSync('rsa', { modulusLength: 2048 });
}

function ecKeyPair() {
  return generateKeyPairSync('ec', { namedCurve: 'P-256' });
}

function publicKeyPem(publicKey: KeyObject): string {
  return publicKey.export({ type: 'spki', format: 'pem' }).toString();
}

/** Builds an upload's first message, which names the image and nothing else. */
function uploadStartMessage(imageId: string): UploadImageDataRequest {
  return UploadImageDataRequest.fromPartial({ payload: { $case: 'start', value: { imageId } } });
}

/**
 * Opens UploadImageData with the generated client, sends only the start
 * message and half-closes, so that the status comes from the checks that
 * run before any data.
 */
function uploadStartOnly(client: RegistryClient, imageId: string): Promise<Image> {
  return new Promise((resolve, reject) => {
    const call = client.data.client.uploadImageData(client.data.metadata(), (error, image) =>
      error ? reject(error) : resolve(image!),
    );
    call.write(uploadStartMessage(imageId));
    call.end();
  });
}

interface Outcome {
  code: string;
  message: string;
}

/** Resolves to OK, or to the status code and message of the failed call. */
function outcomeOf(call: (metadata: grpc.Metadata, done: (error: grpc.ServiceError | null) => void) => void, metadata: grpc.Metadata): Promise<Outcome> {
  return new Promise((resolve) => {
    call(metadata, (error) => {
      if (error === null) resolve({ code: 'OK', message: '' });
      else resolve({ code: grpc.status[error.code], message: error.details });
    });
  });
}

/**
 * Generated clients that send `authorization` exactly as given, so that
 * tests can send schemes other than Bearer or no metadata at all.
 */
class RawAuthorizationClients {
  private readonly images: ImageServiceClient;
  private readonly members: MemberServiceClient;

  constructor(address: string) {
    const credentials = grpc.credentials.createInsecure();
    this.images = new ImageServiceClient(address, credentials);
    this.members = new MemberServiceClient(address, credentials);
  }

  private static metadata(authorization: string | null): grpc.Metadata {
    const metadata = new grpc.Metadata();
    if (authorization !== null) metadata.set('authorization', authorization);
    return metadata;
  }

  getImage(authorization: string | null): Promise<Outcome> {
    const request = GetImageRequest.fromPartial({ id: MISSING_IMAGE_ID });
    return outcomeOf((metadata, done) => this.images.getImage(request, metadata, done), RawAuthorizationClients.metadata(authorization));
  }

  listMembers(authorization: string | null): Promise<Outcome> {
    const request = ListMembersRequest.fromPartial({ imageId: MISSING_IMAGE_ID });
    return outcomeOf((metadata, done) => this.members.listMembers(request, metadata, done), RawAuthorizationClients.metadata(authorization));
  }

  /** Sends a start message for the missing image and half-closes the upload stream. */
  uploadImageData(authorization: string | null): Promise<Outcome> {
    return outcomeOf((metadata, done) => {
      const call = this.images.uploadImageData(metadata, done);
      call.write(uploadStartMessage(MISSING_IMAGE_ID));
      call.end();
    }, RawAuthorizationClients.metadata(authorization));
  }

  /** Reads the download stream of the missing image to its end or its error. */
  downloadImageData(authorization: string | null): Promise<Outcome> {
    const request = DownloadImageDataRequest.fromPartial({ id: MISSING_IMAGE_ID });
    return outcomeOf((metadata, done) => {
      const call = this.images.downloadImageData(request, metadata);
      call.on('data', () => {});
      call.on('error', done);
      call.on('end', () => done(null));
    }, RawAuthorizationClients.metadata(authorization));
  }

  close(): void {
    this.images.close();
    this.members.close();
  }
}

/** Checks that the token passes authentication and roles on both services and both streaming RPCs. */
async function expectAccepted(registry: RegistryHarness, token: string): Promise<void> {
  const client = registry.withToken(token);
  await expect(client.images.listImages({})).resolves.toBeDefined();
  expect((await failure(client.members.listMembers({ imageId: MISSING_IMAGE_ID }))).code).toBe('NOT_FOUND');
  expect((await failure(uploadStartOnly(client, MISSING_IMAGE_ID))).code).toBe('NOT_FOUND');
  expect((await failure(client.data.download(MISSING_IMAGE_ID))).code).toBe('NOT_FOUND');
}

async function expectUnauthenticated(registry: RegistryHarness, token: string): Promise<void> {
  const client = registry.withToken(token);
  expect((await failure(client.images.listImages({}))).code).toBe('UNAUTHENTICATED');
  expect((await failure(client.members.listMembers({ imageId: MISSING_IMAGE_ID }))).code).toBe('UNAUTHENTICATED');
  expect((await failure(uploadStartOnly(client, MISSING_IMAGE_ID))).code).toBe('UNAUTHENTICATED');
  expect((await failure(client.data.download(MISSING_IMAGE_ID))).code).toBe('UNAUTHENTICATED');
}

describe('bearer tokens with an HS256 secret', () => {
  let registry: RegistryHarness;
  let raw: RawAuthorizationClients;
  let genericMessage: string;

  beforeAll(async () => {
    registry = await RegistryHarness.start('sqlite');
    raw = new RawAuthorizationClients(registry.address);
    genericMessage = (await raw.getImage(null)).message;
  });
  afterAll(async () => {
    raw?.close();
    await registry?.stop();
  });

  /** Each case returns the full `authorization` value, or null to send none. */
  const rejected: [string, () => Promise<string | null>][] = [
    ['missing authorization metadata', async () => null],
    ['empty authorization metadata', async () => ''],
    ['Basic scheme', async () => 'Basic dXNlcjpwYXNz'],
    ['token without a scheme', async () => signWithSecret(registry.secret, claims())],
    ['Token scheme', async () => `Token ${await signWithSecret(registry.secret, claims())}`],
    ['Bearer without a token', async () => 'Bearer '],
    ['Bearer with trailing words', async () => `Bearer ${await signWithSecret(registry.secret, claims())} extra`],
    ['garbage token', async () => 'Bearer not-a-jwt'],
    ['three garbage segments', async () => 'Bearer abc.def.ghi'],
    ['token with a flipped signature', async () => {
      // The first signature character carries six real bits, unlike the last one.
      const [header, payload, signature] = (await signWithSecret(registry.secret, claims())).split('.');
      const flipped = (signature!.startsWith('A') ? 'B' : 'A') + signature!.slice(1);
      return `Bearer ${header}.${payload}.${flipped}`;
    }],
    ['wrong secret', async () => `Bearer ${await signWithSecret('some-other-secret', claims())}`],
    ['expired beyond the tolerance', async () =>
      `Bearer ${await signWithSecret(registry.secret, claims({ exp: nowSeconds() - TOLERANCE_SECONDS - 60 }))}`],
    ['nbf beyond the tolerance', async () =>
      `Bearer ${await signWithSecret(registry.secret, claims({ nbf: nowSeconds() + TOLERANCE_SECONDS + 60 }))}`],
    ['alg none', async () => `Bearer ${new UnsecuredJWT(claims()).encode()}`],
    ['HS512 with the right secret', async () => `Bearer ${await signWithSecret(registry.secret, claims(), 'HS512')}`],
    ['RS256 when only HS256 is configured', async () => `Bearer ${await signWithKey(rsaKeyPair().privateKey, claims(), 'RS256')}`],
    ['ES256 when only HS256 is configured', async () => `Bearer ${await signWithKey(ecKeyPair().privateKey, claims(), 'ES256')}`],
    ['no exp claim', async () => `Bearer ${await signWithSecret(registry.secret, claims({ exp: undefined }))}`],
    ['exp claim as a string', async () =>
      `Bearer ${await signWithSecret(registry.secret, claims({ exp: String(nowSeconds() + 3600) }))}`],
    ['no project_id claim', async () => `Bearer ${await signWithSecret(registry.secret, claims({ project_id: undefined }))}`],
    ['empty project_id claim', async () => `Bearer ${await signWithSecret(registry.secret, claims({ project_id: '' }))}`],
    ['project_id as a number', async () => `Bearer ${await signWithSecret(registry.secret, claims({ project_id: 42 }))}`],
    ['project_id as an array', async () => `Bearer ${await signWithSecret(registry.secret, claims({ project_id: ['proj-a'] }))}`],
    ['project_id of 256 characters', async () =>
      `Bearer ${await signWithSecret(registry.secret, claims({ project_id: 'p'.repeat(256) }))}`],
    ['project_id with a space', async () => `Bearer ${await signWithSecret(registry.secret, claims({ project_id: 'proj a' }))}`],
    ['roles as a string', async () => `Bearer ${await signWithSecret(registry.secret, claims({ roles: 'member' }))}`],
    ['roles as null', async () => `Bearer ${await signWithSecret(registry.secret, claims({ roles: null }))}`],
    ['roles containing a number', async () => `Bearer ${await signWithSecret(registry.secret, claims({ roles: ['member', 7] }))}`],
    ['sub as a number', async () => `Bearer ${await signWithSecret(registry.secret, claims({ sub: 12 }))}`],
    ['10 KB token', async () =>
      `Bearer ${await signWithSecret(registry.secret, claims({ padding: 'x'.repeat(10 * 1024) }))}`],
  ];

  it.each(rejected)('%s is unauthenticated', async (_name, authorization) => {
    const value = await authorization();

    const image = await raw.getImage(value);
    expect(image.code).toBe('UNAUTHENTICATED');
    expect(image.message).toBe(genericMessage);

    const member = await raw.listMembers(value);
    expect(member.code).toBe('UNAUTHENTICATED');
    expect(member.message).toBe(genericMessage);

    const upload = await raw.uploadImageData(value);
    expect(upload.code).toBe('UNAUTHENTICATED');
    expect(upload.message).toBe(genericMessage);

    const download = await raw.downloadImageData(value);
    expect(download.code).toBe('UNAUTHENTICATED');
    expect(download.message).toBe(genericMessage);
  });

  it('generic message reveals no reason', () => {
    expect(genericMessage).not.toBe('');
    expect(genericMessage).not.toMatch(/expired|signature|project_id|roles|alg/i);
  });

  it('valid token reaches both services', async () => {
    const token = await signWithSecret(registry.secret, claims());
    expect((await raw.getImage(`Bearer ${token}`)).code).toBe('NOT_FOUND');
    expect((await raw.listMembers(`Bearer ${token}`)).code).toBe('NOT_FOUND');
  });

  it('valid token reaches both streaming RPCs', async () => {
    const token = await signWithSecret(registry.secret, claims());
    expect((await raw.uploadImageData(`Bearer ${token}`)).code).toBe('NOT_FOUND');
    expect((await raw.downloadImageData(`Bearer ${token}`)).code).toBe('NOT_FOUND');
  });

  it('project_id of 255 characters is accepted', async () => {
    await expectAccepted(registry, await signWithSecret(registry.secret, claims({ project_id: 'p'.repeat(255) })));
  });

  it('Bearer scheme is case-insensitive', async () => {
    const token = await signWithSecret(registry.secret, claims());
    expect((await raw.getImage(`bearer ${token}`)).code).toBe('NOT_FOUND');
  });

  it('token expired within the tolerance is accepted', async () => {
    const token = await signWithSecret(registry.secret, claims({ exp: nowSeconds() - 10 }));
    await expectAccepted(registry, token);
  });

  it('nbf within the tolerance is accepted', async () => {
    const token = await signWithSecret(registry.secret, claims({ nbf: nowSeconds() + 10 }));
    await expectAccepted(registry, token);
  });

  it('nbf in the past is accepted', async () => {
    const token = await signWithSecret(registry.secret, claims({ nbf: nowSeconds() - 60 }));
    await expectAccepted(registry, token);
  });

  it('write with a bad token is unauthenticated', async () => {
    const token = await signWithSecret('some-other-secret', claims({ roles: ['admin'] }));
    const outcome = await failure(registry.withToken(token).images.createImage({ image: { name: 'x' } }));
    expect(outcome.code).toBe('UNAUTHENTICATED');
    expect(outcome.message).toBe(genericMessage);
  });

  it('upload with a bad admin token is unauthenticated', async () => {
    const owner = await registry.as('proj-a');
    const image = await owner.images.createImage({ image: { name: 'upload-with-a-bad-token' } });
    const token = await signWithSecret('some-other-secret', claims({ roles: ['admin'] }));

    const outcome = await failure(registry.withToken(token).data.upload({ imageId: image.id }, [Buffer.from('data')]));
    expect(outcome.code).toBe('UNAUTHENTICATED');
    expect(outcome.message).toBe(genericMessage);
    expect((await owner.images.getImage({ id: image.id })).status).toBe(ImageStatus.IMAGE_STATUS_QUEUED);
  });

  it('rejected token creates no image', async () => {
    const token = await signWithSecret('some-other-secret', claims({ roles: ['admin'] }));
    await failure(registry.withToken(token).images.createImage({ image: { name: 'made-by-a-bad-token' } }));

    const admin = await registry.as('proj-admin', { admin: true });
    const listed = await admin.images.listImages({ name: 'made-by-a-bad-token', visibility: 5 });
    expect(listed.images).toEqual([]);
  });
});

describe('token expiry with no clock tolerance', () => {
  let registry: RegistryHarness;
  beforeAll(async () => {
    registry = await RegistryHarness.start('sqlite', { AUTH_CLOCK_TOLERANCE_S: '0' });
  });
  afterAll(async () => registry?.stop());

  it('token expired a moment ago is unauthenticated', async () => {
    const token = await signWithSecret(registry.secret, claims({ exp: nowSeconds() - 2 }));
    await expectUnauthenticated(registry, token);
  });

  it('accepted token stops working at exp', async () => {
    const exp = nowSeconds() + 2;
    const token = await signWithSecret(registry.secret, claims({ exp }));
    await expectAccepted(registry, token);

    // Wait until exp has passed by a margin, so the verifier's cache is tested too.
    await new Promise((resolve) => setTimeout(resolve, (exp + 1) * 1000 - Date.now()));
    await expectUnauthenticated(registry, token);
  });
});

describe('issuer and audience checks', () => {
  const issuer = 'https://issuer.example.test';
  const audience = 'image-registry';
  let registry: RegistryHarness;
  beforeAll(async () => {
    registry = await RegistryHarness.start('sqlite', { AUTH_JWT_ISSUER: issuer, AUTH_JWT_AUDIENCE: audience });
  });
  afterAll(async () => registry?.stop());

  it('right iss and aud are accepted', async () => {
    await expectAccepted(registry, await signWithSecret(registry.secret, claims({ iss: issuer, aud: audience })));
  });

  it('aud list containing the audience is accepted', async () => {
    const token = await signWithSecret(registry.secret, claims({ iss: issuer, aud: ['other', audience] }));
    await expectAccepted(registry, token);
  });

  const rejected: [string, Record<string, unknown>][] = [
    ['missing iss', { aud: audience }],
    ['wrong iss', { iss: 'https://elsewhere.example.test', aud: audience }],
    ['missing aud', { iss: issuer }],
    ['wrong aud', { iss: issuer, aud: 'another-service' }],
    ['aud list without the audience', { iss: issuer, aud: ['another-service'] }],
  ];

  it.each(rejected)('%s is unauthenticated', async (_name, overrides) => {
    await expectUnauthenticated(registry, await signWithSecret(registry.secret, claims(overrides)));
  });
});

describe('RS256 public key file', () => {
  const folder = mkdtempSync(join(tmpdir(), 'registry-auth-'));
  const keys = rsaKeyPair();
  const pem = publicKeyPem(keys.publicKey);
  const keyFile = join(folder, 'public.pem');
  writeFileSync(keyFile, pem);

  describe('without a secret', () => {
    let registry: RegistryHarness;
    beforeAll(async () => {
      registry = await RegistryHarness.start('sqlite', { AUTH_JWT_PUBLIC_KEY_FILE: keyFile, AUTH_JWT_SECRET: '' });
    });
    afterAll(async () => registry?.stop());

    it('RS256 token signed by the key is accepted', async () => {
      await expectAccepted(registry, await signWithKey(keys.privateKey, claims(), 'RS256'));
    });

    it('RS256 token signed by another key is unauthenticated', async () => {
      await expectUnauthenticated(registry, await signWithKey(rsaKeyPair().privateKey, claims(), 'RS256'));
    });

    it('HS256 token is unauthenticated', async () => {
      await expectUnauthenticated(registry, await signWithSecret(registry.secret, claims()));
    });

    it('HS256 token keyed with the public PEM is unauthenticated', async () => {
      await expectUnauthenticated(registry, await signWithSecret(pem, claims()));
    });

    it('RS512 token signed by the key is unauthenticated', async () => {
      await expectUnauthenticated(registry, await signWithKey(keys.privateKey, claims(), 'RS512'));
    });

    it('ES256 token is unauthenticated', async () => {
      await expectUnauthenticated(registry, await signWithKey(ecKeyPair().privateKey, claims(), 'ES256'));
    });

    it('alg none is unauthenticated', async () => {
      await expectUnauthenticated(registry, new UnsecuredJWT(claims()).encode());
    });

    it('expired RS256 token is unauthenticated', async () => {
      const token = await signWithKey(keys.privateKey, claims({ exp: nowSeconds() - TOLERANCE_SECONDS - 60 }), 'RS256');
      await expectUnauthenticated(registry, token);
    });

    it('RS256 token without project_id is unauthenticated', async () => {
      await expectUnauthenticated(registry, await signWithKey(keys.privateKey, claims({ project_id: undefined }), 'RS256'));
    });
  });

  describe('with a secret too', () => {
    let registry: RegistryHarness;
    beforeAll(async () => {
      registry = await RegistryHarness.start('sqlite', { AUTH_JWT_PUBLIC_KEY_FILE: keyFile });
    });
    afterAll(async () => {
      await registry?.stop();
      rmSync(folder, { recursive: true, force: true });
    });

    it('RS256 token is accepted', async () => {
      await expectAccepted(registry, await signWithKey(keys.privateKey, claims(), 'RS256'));
    });

    it('HS256 token is accepted', async () => {
      await expectAccepted(registry, await signWithSecret(registry.secret, claims()));
    });

    it('HS256 token keyed with the public PEM is unauthenticated', async () => {
      await expectUnauthenticated(registry, await signWithSecret(pem, claims()));
    });
  });
});

describe('EC public key file', () => {
  const folder = mkdtempSync(join(tmpdir(), 'registry-auth-'));
  const keys = ecKeyPair();
  const keyFile = join(folder, 'public.pem');
  writeFileSync(keyFile, publicKeyPem(keys.publicKey));

  let registry: RegistryHarness;
  beforeAll(async () => {
    registry = await RegistryHarness.start('sqlite', { AUTH_JWT_PUBLIC_KEY_FILE: keyFile, AUTH_JWT_SECRET: '' });
  });
  afterAll(async () => {
    await registry?.stop();
    rmSync(folder, { recursive: true, force: true });
  });

  it('ES256 token signed by the key is accepted', async () => {
    await expectAccepted(registry, await signWithKey(keys.privateKey, claims(), 'ES256'));
  });

  it('RS256 token is unauthenticated', async () => {
    await expectUnauthenticated(registry, await signWithKey(rsaKeyPair().privateKey, claims(), 'RS256'));
  });
});

describe('ES256 JWKS file', () => {
  const folder = mkdtempSync(join(tmpdir(), 'registry-auth-'));
  const ecKeys = ecKeyPair();
  const rsaKeys = rsaKeyPair();
  const jwksFile = join(folder, 'jwks.json');

  beforeAll(async () => {
    const ecJwk = { ...(await exportJWK(ecKeys.publicKey)), kid: 'ec-1', alg: 'ES256', use: 'sig' };
    const rsaJwk = { ...(await exportJWK(rsaKeys.publicKey)), kid: 'rsa-1', alg: 'RS256', use: 'sig' };
    writeFileSync(jwksFile, JSON.stringify({ keys: [ecJwk, rsaJwk] }));
  });
  afterAll(() => rmSync(folder, { recursive: true, force: true }));

  describe('without a secret', () => {
    let registry: RegistryHarness;
    beforeAll(async () => {
      registry = await RegistryHarness.start('sqlite', { AUTH_JWKS_FILE: jwksFile, AUTH_JWT_SECRET: '' });
    });
    afterAll(async () => registry?.stop());

    it('ES256 token signed by a listed key is accepted', async () => {
      await expectAccepted(registry, await signWithKey(ecKeys.privateKey, claims(), 'ES256', 'ec-1'));
    });

    it('RS256 token signed by a listed key is accepted', async () => {
      await expectAccepted(registry, await signWithKey(rsaKeys.privateKey, claims(), 'RS256', 'rsa-1'));
    });

    it('ES256 token signed by an unlisted key is unauthenticated', async () => {
      await expectUnauthenticated(registry, await signWithKey(ecKeyPair().privateKey, claims(), 'ES256', 'ec-1'));
    });

    it('ES256 token naming an unknown kid is unauthenticated', async () => {
      await expectUnauthenticated(registry, await signWithKey(ecKeys.privateKey, claims(), 'ES256', 'no-such-kid'));
    });

    it('HS256 token is unauthenticated', async () => {
      await expectUnauthenticated(registry, await signWithSecret(registry.secret, claims()));
    });

    it('alg none is unauthenticated', async () => {
      await expectUnauthenticated(registry, new UnsecuredJWT(claims()).encode());
    });
  });

  describe('with a secret too', () => {
    let registry: RegistryHarness;
    beforeAll(async () => {
      registry = await RegistryHarness.start('sqlite', { AUTH_JWKS_FILE: jwksFile });
    });
    afterAll(async () => registry?.stop());

    it('ES256 token is accepted', async () => {
      await expectAccepted(registry, await signWithKey(ecKeys.privateKey, claims(), 'ES256', 'ec-1'));
    });

    it('HS256 token is accepted', async () => {
      await expectAccepted(registry, await signWithSecret(registry.secret, claims()));
    });
  });
});

describe('key configuration', () => {
  it('both key files is a configuration error', () => {
    const load = () =>
      loadConfig({ AUTH_JWT_PUBLIC_KEY_FILE: '/keys/public.pem', AUTH_JWKS_FILE: '/keys/jwks.json' });
    expect(load).toThrow(/AUTH_JWT_PUBLIC_KEY_FILE/);
    expect(load).toThrow(/AUTH_JWKS_FILE/);
  });

  it('empty secret counts as unset', () => {
    expect(loadConfig({ AUTH_JWT_SECRET: '' }).AUTH_JWT_SECRET).toBeUndefined();
  });
});

type Call = (client: RegistryClient) => Promise<unknown>;

/** Every read RPC, on an image id that does not exist. */
const READS_OF_MISSING_IMAGE: [string, Call][] = [
  ['GetImage', (c) => c.images.getImage({ id: MISSING_IMAGE_ID })],
  ['ListImages', (c) => c.images.listImages({})],
  ['GetMember', (c) => c.members.getMember({ imageId: MISSING_IMAGE_ID, memberId: 'proj-b' })],
  ['ListMembers', (c) => c.members.listMembers({ imageId: MISSING_IMAGE_ID })],
  ['DownloadImageData', (c) => c.data.download(MISSING_IMAGE_ID)],
];

/** Every write RPC, on an image id that does not exist. */
const WRITES_TO_MISSING_IMAGE: [string, Call][] = [
  ['CreateImage', (c) => c.images.createImage({ image: { name: 'denied' } })],
  ['UpdateImage', (c) => c.images.updateImage({ image: { id: MISSING_IMAGE_ID, name: 'y' }, updateMask: ['name'] })],
  ['AddImageTag', (c) => c.images.addImageTag({ imageId: MISSING_IMAGE_ID, tag: 't' })],
  ['RemoveImageTag', (c) => c.images.removeImageTag({ imageId: MISSING_IMAGE_ID, tag: 't' })],
  ['DeleteImage', (c) => c.images.deleteImage({ id: MISSING_IMAGE_ID })],
  ['DeactivateImage', (c) => c.images.deactivateImage({ id: MISSING_IMAGE_ID })],
  ['ReactivateImage', (c) => c.images.reactivateImage({ id: MISSING_IMAGE_ID })],
  ['CreateMember', (c) => c.members.createMember({ imageId: MISSING_IMAGE_ID, memberId: 'proj-b' })],
  ['UpdateMember', (c) =>
    c.members.updateMember({ imageId: MISSING_IMAGE_ID, memberId: 'proj-a', status: MemberStatus.MEMBER_STATUS_ACCEPTED })],
  ['DeleteMember', (c) => c.members.deleteMember({ imageId: MISSING_IMAGE_ID, memberId: 'proj-b' })],
  ['UploadImageData', (c) => uploadStartOnly(c, MISSING_IMAGE_ID)],
];

describe('roles', () => {
  let registry: RegistryHarness;
  /** A shared image of proj-a with proj-b as a member. */
  let sharedImageId: string;
  /** An ACTIVE image of proj-a whose data is DATA. */
  let dataImageId: string;
  const DATA = Buffer.from('bytes of an image that proj-a uploaded');

  beforeAll(async () => {
    registry = await RegistryHarness.start('sqlite');
    const owner = await registry.as('proj-a');
    const image = await owner.images.createImage({ image: { name: 'shared-by-a', tags: ['keep'] } });
    sharedImageId = image.id;
    await owner.members.createMember({ imageId: sharedImageId, memberId: 'proj-b' });
    const dataImage = await owner.images.createImage({ image: { name: 'with-data' } });
    dataImageId = dataImage.id;
    await owner.data.upload({ imageId: dataImageId, expectedSize: DATA.length }, [DATA]);
  });
  afterAll(async () => registry?.stop());

  const withoutRoles: [string, Record<string, unknown>][] = [
    ['no roles claim', { roles: undefined }],
    ['empty roles', { roles: [] }],
    ['unknown role only', { roles: ['auditor'] }],
  ];

  describe.each(withoutRoles)('%s', (_name, overrides) => {
    let client: RegistryClient;
    beforeAll(async () => {
      client = registry.withToken(await signWithSecret(registry.secret, claims(overrides)));
    });

    it.each(READS_OF_MISSING_IMAGE)('%s is permission denied', async (_rpc, call) => {
      expect((await failure(call(client))).code).toBe('PERMISSION_DENIED');
    });

    it.each(WRITES_TO_MISSING_IMAGE)('%s is permission denied', async (_rpc, call) => {
      expect((await failure(call(client))).code).toBe('PERMISSION_DENIED');
    });

    it('GetImage of an own image is permission denied', async () => {
      expect((await failure(client.images.getImage({ id: sharedImageId }))).code).toBe('PERMISSION_DENIED');
    });

    it('DownloadImageData of an own image is permission denied', async () => {
      expect((await failure(client.data.download(dataImageId))).code).toBe('PERMISSION_DENIED');
    });

    it('UploadImageData to an own image is permission denied', async () => {
      expect((await failure(uploadStartOnly(client, sharedImageId))).code).toBe('PERMISSION_DENIED');
    });
  });

  describe('reader', () => {
    let reader: RegistryClient;
    beforeAll(async () => {
      reader = await registry.as('proj-a', { roles: ['reader'] });
    });

    it('GetImage reads an own image', async () => {
      const image = await reader.images.getImage({ id: sharedImageId });
      expect(image.name).toBe('shared-by-a');
    });

    it('ListImages lists own images', async () => {
      const listed = await reader.images.listImages({});
      expect(listed.images.map((image) => image.id)).toContain(sharedImageId);
    });

    it('GetMember reads a member row', async () => {
      const member = await reader.members.getMember({ imageId: sharedImageId, memberId: 'proj-b' });
      expect(member.memberId).toBe('proj-b');
    });

    it('ListMembers lists member rows', async () => {
      const listed = await reader.members.listMembers({ imageId: sharedImageId });
      expect(listed.members.map((member) => member.memberId)).toEqual(['proj-b']);
    });

    it('GetImage of a missing image is not found', async () => {
      expect((await failure(reader.images.getImage({ id: MISSING_IMAGE_ID }))).code).toBe('NOT_FOUND');
    });

    it('DownloadImageData reads an own image', async () => {
      const downloaded = await reader.data.download(dataImageId);
      expect(downloaded.info?.size).toBe(String(DATA.length));
      expect(downloaded.data.equals(DATA)).toBe(true);
    });

    it('DownloadImageData of a missing image is not found', async () => {
      expect((await failure(reader.data.download(MISSING_IMAGE_ID))).code).toBe('NOT_FOUND');
    });

    it.each(WRITES_TO_MISSING_IMAGE)('%s on a missing image is permission denied', async (_rpc, call) => {
      const outcome = await failure(call(reader));
      expect(outcome.code).toBe('PERMISSION_DENIED');
    });

    it('writes to an own image are denied and change nothing', async () => {
      const before = await reader.images.getImage({ id: sharedImageId });
      const writes: [string, Call][] = [
        ['UpdateImage', (c) => c.images.updateImage({ image: { id: sharedImageId, name: 'renamed' }, updateMask: ['name'] })],
        ['AddImageTag', (c) => c.images.addImageTag({ imageId: sharedImageId, tag: 'new' })],
        ['RemoveImageTag', (c) => c.images.removeImageTag({ imageId: sharedImageId, tag: 'keep' })],
        ['DeactivateImage', (c) => c.images.deactivateImage({ id: sharedImageId })],
        ['ReactivateImage', (c) => c.images.reactivateImage({ id: sharedImageId })],
        ['CreateMember', (c) => c.members.createMember({ imageId: sharedImageId, memberId: 'proj-c' })],
        ['DeleteMember', (c) => c.members.deleteMember({ imageId: sharedImageId, memberId: 'proj-b' })],
        ['DeleteImage', (c) => c.images.deleteImage({ id: sharedImageId })],
        ['UploadImageData', (c) => uploadStartOnly(c, sharedImageId)],
      ];
      for (const [rpc, call] of writes) {
        expect({ rpc, code: (await failure(call(reader))).code }).toEqual({ rpc, code: 'PERMISSION_DENIED' });
      }

      const after = await reader.images.getImage({ id: sharedImageId });
      expect(after).toEqual(before);
      const members = await reader.members.listMembers({ imageId: sharedImageId });
      expect(members.members.map((member) => member.memberId)).toEqual(['proj-b']);
    });

    it('member-project reader cannot answer its membership', async () => {
      const consumer = await registry.as('proj-b', { roles: ['reader'] });
      const outcome = await failure(
        consumer.members.updateMember({ imageId: sharedImageId, memberId: 'proj-b', status: MemberStatus.MEMBER_STATUS_ACCEPTED }),
      );
      expect(outcome.code).toBe('PERMISSION_DENIED');
    });

    it('reader with member role too may write', async () => {
      const client = await registry.as('proj-a', { roles: ['reader', 'member'] });
      const image = await client.images.addImageTag({ imageId: sharedImageId, tag: 'from-reader-member' });
      expect(image.tags).toContain('from-reader-member');
    });
  });

  describe('member', () => {
    it('creates, changes and deletes its own image', async () => {
      const member = await registry.as('proj-m');
      const image = await member.images.createImage({ image: { name: 'by-member' } });
      expect(image.owner).toBe('proj-m');

      const renamed = await member.images.updateImage({ image: { id: image.id, name: 'renamed' }, updateMask: ['name'] });
      expect(renamed.name).toBe('renamed');
      const tagged = await member.images.addImageTag({ imageId: image.id, tag: 'a' });
      expect(tagged.tags).toEqual(['a']);
      const untagged = await member.images.removeImageTag({ imageId: image.id, tag: 'a' });
      expect(untagged.tags).toEqual([]);

      const added = await member.members.createMember({ imageId: image.id, memberId: 'proj-n' });
      expect(added.status).toBe(MemberStatus.MEMBER_STATUS_PENDING);
      await member.members.deleteMember({ imageId: image.id, memberId: 'proj-n' });

      await member.images.deleteImage({ id: image.id });
      expect((await failure(member.images.getImage({ id: image.id }))).code).toBe('NOT_FOUND');
    });

    it('answers its own membership', async () => {
      const consumer = await registry.as('proj-b');
      const member = await consumer.members.updateMember({
        imageId: sharedImageId,
        memberId: 'proj-b',
        status: MemberStatus.MEMBER_STATUS_ACCEPTED,
      });
      expect(member.status).toBe(MemberStatus.MEMBER_STATUS_ACCEPTED);
    });
  });

  describe('admin alone', () => {
    it('reads and writes any image', async () => {
      const admin = await registry.as('proj-admin', { roles: ['admin'] });
      const owner = await registry.as('proj-p');
      const privateImage = await owner.images.createImage({
        image: { name: 'private-of-p', visibility: Visibility.VISIBILITY_PRIVATE },
      });

      const read = await admin.images.getImage({ id: privateImage.id });
      expect(read.owner).toBe('proj-p');
      const listed = await admin.images.listImages({ owner: 'proj-p' });
      expect(listed.images.map((image) => image.id)).toContain(privateImage.id);

      const publicImage = await admin.images.createImage({ image: { name: 'public', visibility: Visibility.VISIBILITY_PUBLIC } });
      expect(publicImage.visibility).toBe(Visibility.VISIBILITY_PUBLIC);
      const renamed = await admin.images.updateImage({ image: { id: privateImage.id, name: 'by-admin' }, updateMask: ['name'] });
      expect(renamed.name).toBe('by-admin');

      const members = await admin.members.listMembers({ imageId: sharedImageId });
      expect(members.members.map((member) => member.memberId)).toContain('proj-b');
      await admin.images.deleteImage({ id: privateImage.id });
    });
  });
});

type ClientConstructor<T> = new (address: string, credentials: grpc.ChannelCredentials) => T;

/** grpc.health.v1.Health as @grpc/proto-loader loads it, with keepCase. */
interface HealthClient extends grpc.Client {
  Check(
    request: { service: string },
    metadata: grpc.Metadata,
    callback: (error: grpc.ServiceError | null, response: { status: string }) => void,
  ): void;
}

interface ReflectionRequest {
  list_services?: string;
  file_containing_symbol?: string;
}

interface ReflectionResponse {
  list_services_response?: { service: { name: string }[] };
  /** Serialized google.protobuf.FileDescriptorProto messages. */
  file_descriptor_response?: { file_descriptor_proto: Buffer[] };
  error_response?: { error_message: string };
}

/** grpc.reflection ServerReflection (v1 or v1alpha) as @grpc/proto-loader loads it, with keepCase. */
interface ReflectionClient extends grpc.Client {
  ServerReflectionInfo(metadata: grpc.Metadata): grpc.ClientDuplexStream<ReflectionRequest, ReflectionResponse>;
}

/** Sends one reflection request without a token and resolves to the first response. */
function reflect(client: ReflectionClient, request: ReflectionRequest): Promise<ReflectionResponse> {
  return new Promise((resolve, reject) => {
    const stream = client.ServerReflectionInfo(new grpc.Metadata());
    stream.on('data', (response: ReflectionResponse) => {
      resolve(response);
      stream.end();
    });
    stream.on('error', reject);
    stream.write(request);
  });
}

describe('calls that need no token', () => {
  let registry: RegistryHarness;
  beforeAll(async () => {
    registry = await RegistryHarness.start('sqlite');
  });
  afterAll(async () => registry?.stop());

  const protoOptions = { keepCase: true, longs: String, enums: String, defaults: true, oneofs: true };

  function healthClient(): HealthClient {
    const definition = protoLoader.loadSync('node_modules/grpc-health-check/proto/health/v1/health.proto', protoOptions);
    const loaded = grpc.loadPackageDefinition(definition) as unknown as {
      grpc: { health: { v1: { Health: ClientConstructor<HealthClient> } } };
    };
    return new loaded.grpc.health.v1.Health(registry.address, grpc.credentials.createInsecure());
  }

  function reflectionClient(version: string): ReflectionClient {
    const file = `node_modules/@grpc/reflection/build/proto/grpc/reflection/${version}/reflection.proto`;
    const loaded = grpc.loadPackageDefinition(protoLoader.loadSync(file, protoOptions)) as unknown as {
      grpc: { reflection: Record<string, { ServerReflection: ClientConstructor<ReflectionClient> }> };
    };
    return new loaded.grpc.reflection[version]!.ServerReflection(registry.address, grpc.credentials.createInsecure());
  }

  it('health check answers without a token', async () => {
    const client = healthClient();
    try {
      for (const service of ['', 'imageregistry.v1.ImageService', 'imageregistry.v1.MemberService']) {
        const response = await new Promise<{ status: string }>((resolve, reject) => {
          client.Check({ service }, new grpc.Metadata(), (error, value) => (error ? reject(error) : resolve(value)));
        });
        expect({ service, status: response.status }).toEqual({ service, status: 'SERVING' });
      }
    } finally {
      client.close();
    }
  });

  it('health check is SERVING during an open upload', async () => {
    const owner = await registry.as('proj-h');
    const image = await owner.images.createImage({ image: { name: 'upload-held-open' } });
    let settle: (error: grpc.ServiceError | null) => void = () => {};
    const ended = new Promise<grpc.ServiceError | null>((resolve) => {
      settle = resolve;
    });
    const upload = owner.data.client.uploadImageData(owner.data.metadata(), (error) => settle(error));
    upload.write(uploadStartMessage(image.id));
    upload.write({ payload: { $case: 'chunk', value: Buffer.alloc(64 * 1024, 1) } });

    const client = healthClient();
    try {
      // The server marks the image SAVING once it has read the start message.
      const deadline = Date.now() + 5_000;
      let status = (await owner.images.getImage({ id: image.id })).status;
      while (status !== ImageStatus.IMAGE_STATUS_SAVING && Date.now() < deadline) {
        await new Promise((resolve) => setTimeout(resolve, 50));
        status = (await owner.images.getImage({ id: image.id })).status;
      }
      expect(status).toBe(ImageStatus.IMAGE_STATUS_SAVING);

      const response = await new Promise<{ status: string }>((resolve, reject) => {
        client.Check({ service: 'imageregistry.v1.ImageService' }, new grpc.Metadata(), (error, value) =>
          error ? reject(error) : resolve(value),
        );
      });
      expect(response.status).toBe('SERVING');
    } finally {
      client.close();
      upload.cancel();
    }
    expect((await ended)?.code).toBe(grpc.status.CANCELLED);
  });

  it.each(['v1', 'v1alpha'])('reflection %s describes the streaming RPCs without a token', async (version) => {
    const client = reflectionClient(version);
    try {
      const response = await reflect(client, { file_containing_symbol: 'imageregistry.v1.ImageService' });
      const files = (response.file_descriptor_response?.file_descriptor_proto ?? []).map((bytes) =>
        fromBinary(FileDescriptorProtoSchema, bytes),
      );
      const service = files.flatMap((file) => file.service).find((candidate) => candidate.name === 'ImageService');
      const upload = service?.method.find((method) => method.name === 'UploadImageData');
      const download = service?.method.find((method) => method.name === 'DownloadImageData');

      expect(upload?.clientStreaming).toBe(true);
      expect(upload?.serverStreaming).toBe(false);
      expect(download?.clientStreaming).toBe(false);
      expect(download?.serverStreaming).toBe(true);
    } finally {
      client.close();
    }
  });

  it.each(['v1', 'v1alpha'])('reflection %s lists the services without a token', async (version) => {
    const client = reflectionClient(version);
    try {
      const services = await new Promise<string[]>((resolve, reject) => {
        const stream = client.ServerReflectionInfo(new grpc.Metadata());
        stream.on('data', (response: ReflectionResponse) => {
          const listed = response.list_services_response;
          if (listed) resolve(listed.service.map((service) => service.name));
          else reject(new Error(`reflection answered ${JSON.stringify(response)}`));
          stream.end();
        });
        stream.on('error', reject);
        stream.write({ list_services: '' });
      });
      expect(services).toContain('imageregistry.v1.ImageService');
      expect(services).toContain('imageregistry.v1.MemberService');
    } finally {
      client.close();
    }
  });
});
