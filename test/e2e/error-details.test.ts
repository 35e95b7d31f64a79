/**
 * Every error carries a google.rpc.Status in grpc-status-details-bin, which
 * a client decodes with its generated google.rpc types.
 */
import type * as grpc from '@grpc/grpc-js';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { BadRequest, ErrorInfo } from '../../gen/google/rpc/error_details.js';
import { Status } from '../../gen/google/rpc/status.js';
import { testedBackends } from '../support/databases.js';
import { type RegistryClient, RegistryHarness } from '../support/registry-harness.js';

const UNKNOWN_ID = '00000000-0000-4000-8000-000000000000';

interface DecodedDetails {
  status: Status;
  info: ErrorInfo | undefined;
  badRequest: BadRequest | undefined;
}

/** Returns the decoded details of a call that must fail. */
async function detailsOf(call: Promise<unknown>): Promise<DecodedDetails> {
  const error = await call.then(
    () => {
      throw new Error('expected the call to fail, but it succeeded');
    },
    (caught: unknown) => caught as grpc.ServiceError,
  );
  const [bytes] = error.metadata.get('grpc-status-details-bin');
  expect(Buffer.isBuffer(bytes), 'grpc-status-details-bin is present').toBe(true);
  const status = Status.decode(bytes as Buffer);
  const find = (typeName: string) => status.details.find((any) => any.typeUrl === `type.googleapis.com/${typeName}`);
  const info = find('google.rpc.ErrorInfo');
  const badRequest = find('google.rpc.BadRequest');
  return {
    status,
    info: info === undefined ? undefined : ErrorInfo.decode(info.value),
    badRequest: badRequest === undefined ? undefined : BadRequest.decode(badRequest.value),
  };
}

describe.each(testedBackends())('error details on %s', (backend) => {
  let harness: RegistryHarness;
  let owner: RegistryClient;
  let consumer: RegistryClient;

  beforeAll(async () => {
    harness = await RegistryHarness.start(backend);
    owner = await harness.as('owner-project');
    consumer = await harness.as('consumer-project');
  });

  afterAll(async () => {
    await harness?.stop();
  });

  it('not found carries IMAGE_NOT_FOUND and the id', async () => {
    const { status, info } = await detailsOf(owner.images.getImage({ id: UNKNOWN_ID }));
    expect(status.code).toBe(5);
    expect(status.message).toBe(`image "${UNKNOWN_ID}" not found`);
    expect(info?.reason).toBe('IMAGE_NOT_FOUND');
    expect(info?.domain).toBe('imageregistry.v1');
    expect(info?.metadata.get('image_id')).toBe(UNKNOWN_ID);
  });

  it('invalid field carries a BadRequest', async () => {
    const { status, info, badRequest } = await detailsOf(owner.images.createImage({ image: { name: 'x'.repeat(256) } }));
    expect(status.code).toBe(3);
    expect(info?.reason).toBe('INVALID_FIELD');
    expect(badRequest?.fieldViolations.length).toBe(1);
    expect(badRequest?.fieldViolations[0]!.field).toMatch(/name/);
    expect(badRequest?.fieldViolations[0]!.description).toBe(status.message);
  });

  it('member on a private image carries IMAGE_NOT_SHARED', async () => {
    const { id } = await owner.images.createImage({ image: { name: 'private', visibility: 2 } });
    const { status, info, badRequest } = await detailsOf(owner.members.createMember({ imageId: id, memberId: 'consumer-project' }));
    expect(status.code).toBe(9);
    expect(info?.reason).toBe('IMAGE_NOT_SHARED');
    expect(badRequest).toBeUndefined();
  });

  it('member quota carries MEMBER_QUOTA_EXCEEDED', async () => {
    const limited = await RegistryHarness.start(backend, { IMAGE_MEMBER_QUOTA: '1' });
    try {
      const client = await limited.as('owner-project');
      const { id } = await client.images.createImage({ image: { name: 'shared', visibility: 3 } });
      await client.members.createMember({ imageId: id, memberId: 'first-member' });
      const { info } = await detailsOf(client.members.createMember({ imageId: id, memberId: 'second-member' }));
      expect(info?.reason).toBe('MEMBER_QUOTA_EXCEEDED');
    } finally {
      await limited.stop();
    }
  });

  it('foreign update carries NOT_IMAGE_OWNER', async () => {
    const { id } = await owner.images.createImage({ image: { name: 'public-ish', visibility: 4 } });
    const { info } = await detailsOf(consumer.images.updateImage({ image: { id, name: 'taken' }, updateMask: ['name'] }));
    expect(info?.reason).toBe('NOT_IMAGE_OWNER');
  });

  it('bad token carries INVALID_TOKEN', async () => {
    const { status, info } = await detailsOf(harness.withToken('not-a-token').images.getImage({ id: UNKNOWN_ID }));
    expect(status.code).toBe(16);
    expect(info?.reason).toBe('INVALID_TOKEN');
  });
});
