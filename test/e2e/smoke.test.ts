import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Visibility } from '../../gen/imageregistry/v1/image.js';
import { testedBackends } from '../support/databases.js';
import { RegistryHarness, failure } from '../support/registry-harness.js';

describe.each(testedBackends())('smoke on %s', (backend) => {
  let registry: RegistryHarness;
  beforeAll(async () => {
    registry = await RegistryHarness.start(backend);
  });
  afterAll(async () => registry?.stop());

  it('creates and reads an image', async () => {
    const a = await registry.as('proj-a');
    const image = await a.images.createImage({ image: { name: 'x', properties: new Map([['__proto__', 'v']]) } });
    expect(image.visibility).toBe(Visibility.VISIBILITY_SHARED);
    expect(image.properties.get('__proto__')).toBe('v');
    const read = await a.images.getImage({ id: image.id });
    expect(read.id).toBe(image.id);
    const c = await registry.as('proj-c');
    expect((await failure(c.images.getImage({ id: image.id }))).code).toBe('NOT_FOUND');
  });
});
