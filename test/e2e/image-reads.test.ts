/**
 * GetImage reads tags and properties as JSON aggregates in one statement.
 * These cases check what that could get wrong: MariaDB cuts an aggregate at
 * group_concat_max_len (1 MiB by default), and tags must keep the binary
 * collation's code point order.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { testedBackends } from '../support/databases.js';
import { type RegistryClient, RegistryHarness } from '../support/registry-harness.js';

describe.each(testedBackends())('image reads on %s', (backend) => {
  let harness: RegistryHarness;
  let owner: RegistryClient;

  beforeAll(async () => {
    harness = await RegistryHarness.start(backend);
    owner = await harness.as('owner-project');
  });

  afterAll(async () => {
    await harness?.stop();
  });

  it('get returns metadata over 1 MiB whole', async () => {
    // 40 values of 60,000 bytes: about 2.3 MiB, past MariaDB's default aggregate length.
    const properties = new Map(Array.from({ length: 40 }, (_, index) => [`key-${index}`, `${index}`.padEnd(60_000, "'\\\"")]));
    const tags = Array.from({ length: 128 }, (_, index) => `tag-${String(index).padStart(3, '0')}`.padEnd(255, 'x'));
    const { id } = await owner.images.createImage({ image: { name: 'large metadata', properties, tags } });

    const image = await owner.images.getImage({ id });

    expect(image.properties).toEqual(properties);
    expect(image.tags).toEqual(tags);
  });

  it('get orders tags by code point', async () => {
    const tags = ['\u{1F600}', '\uFFFD', 'b', 'B', 'a', '\u00E9'];
    const { id } = await owner.images.createImage({ image: { name: 'tag order', tags } });

    const image = await owner.images.getImage({ id });

    expect(image.tags).toEqual(['B', 'a', 'b', '\u00E9', '\uFFFD', '\u{1F600}']);
  });

  it('get returns quotes, backslashes and NUL in properties unchanged', async () => {
    const properties = new Map([
      ['quotes', `'"\``],
      ['backslash', '\\\\n'],
      ['nul', 'before\u0000after'],
      ['json', '{"a":[1,2]}'],
    ]);
    const { id } = await owner.images.createImage({ image: { name: 'escapes', properties } });

    const image = await owner.images.getImage({ id });

    expect(image.properties).toEqual(properties);
  });

  it('get of an image without tags or properties returns empty lists', async () => {
    const { id } = await owner.images.createImage({ image: { name: 'bare' } });

    const image = await owner.images.getImage({ id });

    expect(image.tags).toEqual([]);
    expect(image.properties).toEqual(new Map());
  });
});
