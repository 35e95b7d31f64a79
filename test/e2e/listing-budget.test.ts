import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { testedBackends } from '../support/databases.js';
import { RegistryHarness } from '../support/registry-harness.js';

const VALUE_BYTES = 65_535;

describe.each(testedBackends())('listing response size on %s', (backend) => {
  let registry: RegistryHarness;

  beforeAll(async () => {
    registry = await RegistryHarness.start(backend);
  });
  afterAll(async () => registry?.stop());

  it('ends a page early when images carry much metadata', { timeout: 60_000 }, async () => {
    const owner = await registry.as('proj-heavy');
    const created: string[] = [];
    for (let index = 0; index < 6; index++) {
      // Ten values of 64 KiB: about 640 KiB of properties an image.
      const properties = new Map(
        Array.from({ length: 10 }, (_, key) => [`key${key}`, String(index).repeat(VALUE_BYTES)] as [string, string]),
      );
      created.push((await owner.images.createImage({ image: { name: `heavy-${index}`, properties } })).id);
    }

    const first = await owner.images.listImages({ pageSize: 25 });
    expect(first.images.length).toBeGreaterThan(0);
    expect(first.images.length).toBeLessThan(6);
    expect(first.nextPageToken).not.toBe('');

    const seen = first.images.map((image) => image.id);
    let token = first.nextPageToken;
    while (token !== '') {
      const page = await owner.images.listImages({ pageSize: 25, pageToken: token });
      seen.push(...page.images.map((image) => image.id));
      token = page.nextPageToken;
    }
    expect([...seen].sort()).toEqual([...created].sort());
  });

  it('returns an image larger than the budget alone on its page', { timeout: 60_000 }, async () => {
    const owner = await registry.as('proj-huge');
    const properties = new Map(
      Array.from({ length: 60 }, (_, key) => [`key${key}`, 'x'.repeat(VALUE_BYTES)] as [string, string]),
    );
    await owner.images.createImage({ image: { name: 'huge-1', properties } });
    await owner.images.createImage({ image: { name: 'huge-2', properties } });

    const first = await owner.images.listImages({ pageSize: 25, owner: 'proj-huge' });
    expect(first.images.map((image) => image.name)).toEqual(['huge-2']);
    const second = await owner.images.listImages({ pageSize: 25, owner: 'proj-huge', pageToken: first.nextPageToken });
    expect(second.images.map((image) => image.name)).toEqual(['huge-1']);
    expect(second.nextPageToken).toBe('');
  });
});
