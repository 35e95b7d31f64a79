import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { testedBackends } from '../support/databases.js';
import { RegistryHarness, failure } from '../support/registry-harness.js';

describe.each(testedBackends())('owner transfer on %s', (backend) => {
  let registry: RegistryHarness;

  beforeAll(async () => {
    registry = await RegistryHarness.start(backend);
  });
  afterAll(async () => registry?.stop());

  it('removes the new owner from the members', async () => {
    const red = await registry.as('team-red');
    const admin = await registry.as('cloud-ops', { admin: true });
    const image = await red.images.createImage({ image: { name: 'handed-over' } });
    await red.members.createMember({ imageId: image.id, memberId: 'team-blue' });
    await red.members.createMember({ imageId: image.id, memberId: 'team-green' });

    const moved = await admin.images.updateImage({ image: { id: image.id, owner: 'team-blue' }, updateMask: ['owner'] });
    expect(moved.owner).toBe('team-blue');

    const members = await admin.members.listMembers({ imageId: image.id });
    expect(members.members.map((member) => member.memberId)).toEqual(['team-green']);
    const lookup = await failure(admin.members.getMember({ imageId: image.id, memberId: 'team-blue' }));
    expect(lookup.code).toBe('NOT_FOUND');
  });
});
