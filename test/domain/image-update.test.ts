import { describe, expect, it } from 'vitest';
import {
  type ImageInput,
  type ImageUpdate,
  applyImageUpdate,
  parseImageUpdate,
} from '../../src/domain/image-update.js';
import { type Image, emptyRecord } from '../../src/domain/model.js';
import {
  ADMIN_PROJECT,
  IMAGE_ID,
  OTHER_PROJECT,
  OWNER_PROJECT,
  adminCaller,
  catchRegistryError,
  makeImage,
  makeProperties,
  projectCaller,
} from './fixtures.js';

const owner = projectCaller(OWNER_PROJECT);
const outsider = projectCaller(OTHER_PROJECT);
const admin = adminCaller();

const NOW = 1_800_000_000_000;

/** Builds a request image with every field at its proto default, then applies `fields`. */
function makeInput(fields: Partial<ImageInput> = {}): ImageInput {
  return {
    name: '',
    visibility: null,
    protected: false,
    hidden: false,
    owner: '',
    containerFormat: '',
    diskFormat: '',
    minDisk: 0,
    minRam: 0,
    tags: [],
    properties: emptyRecord(),
    ...fields,
  };
}

/** Builds an update that changes only what `fields` sets. */
function makeUpdate(fields: Partial<ImageUpdate> = {}): ImageUpdate {
  return { setProperties: emptyRecord(), removeProperties: [], ...fields };
}

function makeNumberedTags(count: number): string[] {
  return Array.from({ length: count }, (_, index) => `tag-${index}`);
}

function makeNumberedProperties(count: number): Record<string, string> {
  return makeProperties(Array.from({ length: count }, (_, index) => [`key-${index}`, `value-${index}`] as const));
}

describe('parseImageUpdate', () => {
  it('rejects an empty mask', () => {
    const error = catchRegistryError(() => parseImageUpdate([], makeInput({ name: 'x' })));

    expect(error.kind).toBe('INVALID_ARGUMENT');
    expect(error.field).toBe('update_mask');
    expect(error.message).toContain('empty');
  });

  it.each(['colour', 'Name', 'display_name', 'image.name', 'tags.0', '', 'property.arch', 'propertiesarch'])(
    'rejects the unknown path %j',
    (path) => {
      const error = catchRegistryError(() => parseImageUpdate([path], makeInput()));

      expect(error.kind).toBe('INVALID_ARGUMENT');
      expect(error.field).toBe('update_mask');
      expect(error.message).toContain(JSON.stringify(path));
    },
  );

  it.each([
    'id', 'status', 'size', 'virtual_size', 'checksum', 'hash_algo', 'hash_value', 'create_time', 'update_time',
  ])('rejects the read-only path %s', (path) => {
    const error = catchRegistryError(() => parseImageUpdate([path], makeInput()));

    expect(error.kind).toBe('INVALID_ARGUMENT');
    expect(error.field).toBe('update_mask');
    expect(error.message).toContain(JSON.stringify(path));
    expect(error.message).toContain('read-only');
  });

  it('rejects an unknown path after valid ones', () => {
    const error = catchRegistryError(() => parseImageUpdate(['name', 'colour'], makeInput({ name: 'x' })));

    expect(error.kind).toBe('INVALID_ARGUMENT');
    expect(error.message).toContain('"colour"');
  });

  it('rejects an unspecified visibility', () => {
    const error = catchRegistryError(() => parseImageUpdate(['visibility'], makeInput({ visibility: null })));

    expect(error.kind).toBe('INVALID_ARGUMENT');
    expect(error.field).toBe('image.visibility');
    expect(error.message).toContain('unspecified');
  });

  it('rejects an empty owner', () => {
    const error = catchRegistryError(() => parseImageUpdate(['owner'], makeInput({ owner: '' })));

    expect(error.kind).toBe('INVALID_ARGUMENT');
    expect(error.field).toBe('image.owner');
  });

  it('takes only the fields named in the mask', () => {
    const input = makeInput({ name: 'new-name', minDisk: 20, hidden: true, tags: ['a'] });
    const update = parseImageUpdate(['name'], input);

    expect(update.name).toBe('new-name');
    expect(update.minDisk).toBeUndefined();
    expect(update.hidden).toBeUndefined();
    expect(update.tags).toBeUndefined();
    expect(update.replaceProperties).toBeUndefined();
    expect(Object.keys(update.setProperties)).toEqual([]);
    expect(update.removeProperties).toEqual([]);
  });

  it.each<{ path: string; input: Partial<ImageInput>; expected: Partial<ImageUpdate> }>([
    { path: 'name', input: { name: 'debian' }, expected: { name: 'debian' } },
    { path: 'name', input: { name: '' }, expected: { name: '' } },
    { path: 'visibility', input: { visibility: 'private' }, expected: { visibility: 'private' } },
    { path: 'protected', input: { protected: true }, expected: { protected: true } },
    { path: 'protected', input: { protected: false }, expected: { protected: false } },
    { path: 'hidden', input: { hidden: true }, expected: { hidden: true } },
    { path: 'owner', input: { owner: OTHER_PROJECT }, expected: { owner: OTHER_PROJECT } },
    { path: 'container_format', input: { containerFormat: 'ova' }, expected: { containerFormat: 'ova' } },
    { path: 'container_format', input: { containerFormat: '' }, expected: { containerFormat: '' } },
    { path: 'disk_format', input: { diskFormat: 'raw' }, expected: { diskFormat: 'raw' } },
    { path: 'min_disk', input: { minDisk: 40 }, expected: { minDisk: 40 } },
    { path: 'min_ram', input: { minRam: 2048 }, expected: { minRam: 2048 } },
    { path: 'tags', input: { tags: ['b', 'a', 'b'] }, expected: { tags: ['b', 'a'] } },
    { path: 'tags', input: { tags: [] }, expected: { tags: [] } },
  ])('path $path takes $input', ({ path, input, expected }) => {
    const update = parseImageUpdate([path], makeInput(input));

    expect(update).toMatchObject(expected);
  });

  it.each<{ path: string; input: Partial<ImageInput>; field: string }>([
    { path: 'name', input: { name: 'n'.repeat(256) }, field: 'image.name' },
    { path: 'container_format', input: { containerFormat: 'qcow2' }, field: 'image.container_format' },
    { path: 'disk_format', input: { diskFormat: 'bare' }, field: 'image.disk_format' },
    { path: 'min_disk', input: { minDisk: -1 }, field: 'image.min_disk' },
    { path: 'min_ram', input: { minRam: -1 }, field: 'image.min_ram' },
    { path: 'tags', input: { tags: ['ok', ''] }, field: 'image.tags' },
  ])('path $path rejects an invalid value', ({ path, input, field }) => {
    const error = catchRegistryError(() => parseImageUpdate([path], makeInput(input)));

    expect(error.kind).toBe('INVALID_ARGUMENT');
    expect(error.field).toBe(field);
  });

  it('does not check values of fields outside the mask', () => {
    const input = makeInput({ name: 'n'.repeat(256), diskFormat: 'bogus', minRam: -1, hidden: true });

    expect(parseImageUpdate(['hidden'], input).hidden).toBe(true);
  });

  describe('properties path', () => {
    it('replaces the whole map', () => {
      const input = makeInput({ properties: makeProperties([['arch', 'x86_64'], ['os_distro', 'ubuntu']]) });
      const update = parseImageUpdate(['properties'], input);

      expect(update.replaceProperties).toEqual({ arch: 'x86_64', os_distro: 'ubuntu' });
    });

    it('replaces with an empty map to clear properties', () => {
      const update = parseImageUpdate(['properties'], makeInput());

      expect(update.replaceProperties).toEqual({});
    });

    it('copies the map instead of keeping the request object', () => {
      const input = makeInput({ properties: makeProperties([['arch', 'x86_64']]) });
      const update = parseImageUpdate(['properties'], input);
      input.properties['arch'] = 'changed';

      expect(update.replaceProperties?.['arch']).toBe('x86_64');
    });

    it('rejects a reserved key in the new map', () => {
      const input = makeInput({ properties: makeProperties([['arch', 'x86_64'], ['os_hidden', 'true']]) });
      const error = catchRegistryError(() => parseImageUpdate(['properties'], input));

      expect(error.kind).toBe('INVALID_ARGUMENT');
      expect(error.field).toBe('image.properties');
      expect(error.message).toContain('"os_hidden"');
    });

    it('rejects an oversized value in the new map', () => {
      const input = makeInput({ properties: makeProperties([['description', 'v'.repeat(65_536)]]) });
      const error = catchRegistryError(() => parseImageUpdate(['properties'], input));

      expect(error.kind).toBe('INVALID_ARGUMENT');
      expect(error.field).toBe('image.properties');
    });
  });

  describe('properties.<key> path', () => {
    it.each([
      { path: 'properties.arch', key: 'arch' },
      { path: 'properties.hw:cpu_policy', key: 'hw:cpu_policy' },
      { path: 'properties.os.distro.version', key: 'os.distro.version' },
      { path: 'properties.a:b.c:d', key: 'a:b.c:d' },
      { path: 'properties.properties.x', key: 'properties.x' },
      { path: 'properties.trailing.', key: 'trailing.' },
      { path: 'properties. spaced key', key: ' spaced key' },
    ])('$path sets the key $key when the request has it', ({ path, key }) => {
      const input = makeInput({ properties: makeProperties([[key, 'value']]) });
      const update = parseImageUpdate([path], input);

      expect(update.setProperties).toEqual(makeProperties([[key, 'value']]));
      expect(update.removeProperties).toEqual([]);
      expect(update.replaceProperties).toBeUndefined();
    });

    it.each([
      { path: 'properties.arch', key: 'arch' },
      { path: 'properties.hw:cpu_policy', key: 'hw:cpu_policy' },
      { path: 'properties.os.distro.version', key: 'os.distro.version' },
    ])('$path removes the key $key when the request lacks it', ({ path, key }) => {
      const update = parseImageUpdate([path], makeInput());

      expect(update.removeProperties).toEqual([key]);
      expect(Object.keys(update.setProperties)).toEqual([]);
    });

    it('sets an empty value instead of removing the key', () => {
      const input = makeInput({ properties: makeProperties([['arch', '']]) });
      const update = parseImageUpdate(['properties.arch'], input);

      expect(update.setProperties['arch']).toBe('');
      expect(update.removeProperties).toEqual([]);
    });

    it('ignores request properties outside the mask', () => {
      const input = makeInput({ properties: makeProperties([['arch', 'x86_64'], ['os_distro', 'ubuntu']]) });
      const update = parseImageUpdate(['properties.arch'], input);

      expect(Object.keys(update.setProperties)).toEqual(['arch']);
    });

    it('sets and removes keys in one mask', () => {
      const input = makeInput({ properties: makeProperties([['arch', 'aarch64']]) });
      const update = parseImageUpdate(['properties.arch', 'properties.os_distro'], input);

      expect(update.setProperties).toEqual(makeProperties([['arch', 'aarch64']]));
      expect(update.removeProperties).toEqual(['os_distro']);
    });

    it('treats an inherited name such as constructor as absent', () => {
      const input = makeInput({ properties: {} });
      const update = parseImageUpdate(['properties.constructor'], input);

      expect(update.removeProperties).toEqual(['constructor']);
      expect(Object.keys(update.setProperties)).toEqual([]);
    });

    it('stores the key __proto__ as an ordinary key', () => {
      const input = makeInput({ properties: makeProperties([['__proto__', 'polluted']]) });
      const update = parseImageUpdate(['properties.__proto__'], input);

      expect(Object.keys(update.setProperties)).toEqual(['__proto__']);
      expect(update.setProperties['__proto__']).toBe('polluted');
      expect(Object.getPrototypeOf(update.setProperties)).toBeNull();
    });

    it('reads __proto__ from a plain object built by JSON.parse', () => {
      const properties = JSON.parse('{"__proto__":"polluted"}') as Record<string, string>;
      const update = parseImageUpdate(['properties.__proto__'], makeInput({ properties }));

      expect(Object.keys(update.setProperties)).toEqual(['__proto__']);
      expect(update.setProperties['__proto__']).toBe('polluted');
    });

    it('removes __proto__ when the request lacks it', () => {
      const update = parseImageUpdate(['properties.__proto__'], makeInput());

      expect(update.removeProperties).toEqual(['__proto__']);
    });

    it('rejects an empty key', () => {
      const error = catchRegistryError(() => parseImageUpdate(['properties.'], makeInput()));

      expect(error.kind).toBe('INVALID_ARGUMENT');
      expect(error.message).toContain('empty');
    });

    it.each(['properties.os_glance_import_task', 'properties.owner', 'properties.os_hash_value'])(
      'rejects the reserved key in %s',
      (path) => {
        const error = catchRegistryError(() => parseImageUpdate([path], makeInput()));

        expect(error.kind).toBe('INVALID_ARGUMENT');
        expect(error.message).toContain(JSON.stringify(path.slice('properties.'.length)));
        expect(error.message).toContain('reserved');
      },
    );

    it('rejects a key of 256 characters', () => {
      const error = catchRegistryError(() => parseImageUpdate([`properties.${'k'.repeat(256)}`], makeInput()));

      expect(error.kind).toBe('INVALID_ARGUMENT');
      expect(error.message).toContain('longer than 255 characters');
    });

    it('rejects an oversized value', () => {
      const input = makeInput({ properties: makeProperties([['description', '€'.repeat(21_846)]]) });
      const error = catchRegistryError(() => parseImageUpdate(['properties.description'], input));

      expect(error.kind).toBe('INVALID_ARGUMENT');
      expect(error.field).toBe('image.properties');
      expect(error.message).toContain('"description"');
    });
  });
});

describe('applyImageUpdate', () => {
  const image = makeImage({
    status: 'active',
    name: 'ubuntu',
    tags: ['lts', 'server'],
    properties: makeProperties([['arch', 'x86_64'], ['os_distro', 'ubuntu']]),
    size: 1024,
    checksum: 'abc',
  });

  it('sets updateTime to now', () => {
    const updated = applyImageUpdate(owner, image, makeUpdate({ name: 'renamed' }), NOW);

    expect(updated.updateTime).toBe(NOW);
  });

  it('sets updateTime when the value is the current one', () => {
    const updated = applyImageUpdate(owner, image, makeUpdate({ name: image.name }), NOW);

    expect(updated.name).toBe(image.name);
    expect(updated.updateTime).toBe(NOW);
  });

  it('keeps fields outside the update unchanged', () => {
    const updated = applyImageUpdate(owner, image, makeUpdate({ name: 'renamed' }), NOW);
    const expected: Image = { ...image, name: 'renamed', updateTime: NOW };

    expect(updated).toEqual(expected);
  });

  it.each<Partial<ImageUpdate>>([
    { name: 'renamed' },
    { visibility: 'private' },
    { protected: true },
    { hidden: true },
    { containerFormat: 'bare' },
    { diskFormat: 'qcow2' },
    { minDisk: 10 },
    { minRam: 512 },
    { tags: ['new'] },
  ])('applies %j', (fields) => {
    const updated = applyImageUpdate(owner, image, makeUpdate(fields), NOW);

    expect(updated).toEqual({ ...image, ...fields, updateTime: NOW });
  });

  it('leaves the input image untouched', () => {
    const before = structuredClone({ ...image, properties: { ...image.properties } });
    applyImageUpdate(owner, image, makeUpdate({ tags: ['x'], setProperties: makeProperties([['k', 'v']]) }), NOW);

    expect({ ...image, properties: { ...image.properties } }).toEqual(before);
  });

  it('lets an admin change the owner', () => {
    const updated = applyImageUpdate(admin, image, makeUpdate({ owner: OTHER_PROJECT }), NOW);

    expect(updated.owner).toBe(OTHER_PROJECT);
  });

  it('lets an admin make an image public', () => {
    const updated = applyImageUpdate(admin, image, makeUpdate({ visibility: 'public' }), NOW);

    expect(updated.visibility).toBe('public');
  });

  it('lets the owner make an image community', () => {
    const updated = applyImageUpdate(owner, image, makeUpdate({ visibility: 'community' }), NOW);

    expect(updated.visibility).toBe('community');
  });

  it('lets the owner name itself as owner', () => {
    const updated = applyImageUpdate(owner, image, makeUpdate({ owner: OWNER_PROJECT }), NOW);

    expect(updated.owner).toBe(OWNER_PROJECT);
  });

  it('lets the owner keep a public image public', () => {
    const publicImage = { ...image, visibility: 'public' as const };
    const updated = applyImageUpdate(owner, publicImage, makeUpdate({ visibility: 'public' }), NOW);

    expect(updated.visibility).toBe('public');
  });

  it('lets a queued image change its formats', () => {
    const queued = { ...image, status: 'queued' as const };
    const updated = applyImageUpdate(owner, queued, makeUpdate({ containerFormat: 'ova', diskFormat: 'vmdk' }), NOW);

    expect(updated.containerFormat).toBe('ova');
    expect(updated.diskFormat).toBe('vmdk');
  });

  describe('properties', () => {
    it('replaces the whole map', () => {
      const update = makeUpdate({ replaceProperties: makeProperties([['kernel', 'vmlinuz']]) });
      const updated = applyImageUpdate(owner, image, update, NOW);

      expect(updated.properties).toEqual({ kernel: 'vmlinuz' });
    });

    it('sets one key and keeps the others', () => {
      const update = makeUpdate({ setProperties: makeProperties([['arch', 'aarch64']]) });
      const updated = applyImageUpdate(owner, image, update, NOW);

      expect(updated.properties).toEqual({ arch: 'aarch64', os_distro: 'ubuntu' });
    });

    it('removes one key and keeps the others', () => {
      const updated = applyImageUpdate(owner, image, makeUpdate({ removeProperties: ['arch'] }), NOW);

      expect(updated.properties).toEqual({ os_distro: 'ubuntu' });
    });

    it('ignores removing an absent key', () => {
      const updated = applyImageUpdate(owner, image, makeUpdate({ removeProperties: ['kernel'] }), NOW);

      expect(updated.properties).toEqual({ arch: 'x86_64', os_distro: 'ubuntu' });
    });

    it('applies a replacement before setting and removing keys', () => {
      const update = makeUpdate({
        replaceProperties: makeProperties([['kernel', 'vmlinuz'], ['ramdisk', 'initrd']]),
        setProperties: makeProperties([['arch', 'aarch64']]),
        removeProperties: ['ramdisk'],
      });
      const updated = applyImageUpdate(owner, image, update, NOW);

      expect(updated.properties).toEqual({ kernel: 'vmlinuz', arch: 'aarch64' });
    });

    it('stores __proto__ as an ordinary key', () => {
      const update = makeUpdate({ setProperties: makeProperties([['__proto__', 'polluted']]) });
      const updated = applyImageUpdate(owner, image, update, NOW);

      expect(Object.keys(updated.properties).sort()).toEqual(['__proto__', 'arch', 'os_distro']);
      expect(Object.hasOwn(updated.properties, '__proto__')).toBe(true);
      expect(updated.properties['__proto__']).toBe('polluted');
    });

    it('stores __proto__ from a replacement map', () => {
      const update = makeUpdate({ replaceProperties: makeProperties([['__proto__', 'polluted']]) });
      const updated = applyImageUpdate(owner, image, update, NOW);

      expect(Object.keys(updated.properties)).toEqual(['__proto__']);
      expect(updated.properties['__proto__']).toBe('polluted');
    });

    it('removes a stored __proto__ key', () => {
      const withProto = { ...image, properties: makeProperties([['__proto__', 'v'], ['arch', 'x86_64']]) };
      const updated = applyImageUpdate(owner, withProto, makeUpdate({ removeProperties: ['__proto__'] }), NOW);

      expect(Object.keys(updated.properties)).toEqual(['arch']);
    });

    it('goes through parseImageUpdate for a dotted key', () => {
      const input = makeInput({ properties: makeProperties([['hw:cpu.policy', 'dedicated']]) });
      const update = parseImageUpdate(['properties.hw:cpu.policy', 'properties.arch'], input);
      const updated = applyImageUpdate(owner, image, update, NOW);

      expect(updated.properties).toEqual({ 'hw:cpu.policy': 'dedicated', os_distro: 'ubuntu' });
    });
  });

  describe('permission checks', () => {
    it('rejects a caller who may not modify the image', () => {
      const error = catchRegistryError(() => applyImageUpdate(outsider, image, makeUpdate({ name: 'x' }), NOW));

      expect(error.kind).toBe('PERMISSION_DENIED');
      expect(error.reason).toBe('NOT_IMAGE_OWNER');
    });

    it('rejects a non-owner making an image community', () => {
      const update = makeUpdate({ visibility: 'community' });
      const error = catchRegistryError(() => applyImageUpdate(outsider, image, update, NOW));

      expect(error.kind).toBe('PERMISSION_DENIED');
    });

    it('rejects the owner making an image public', () => {
      const error = catchRegistryError(() => applyImageUpdate(owner, image, makeUpdate({ visibility: 'public' }), NOW));

      expect(error.kind).toBe('PERMISSION_DENIED');
      expect(error.reason).toBe('PUBLICIZE_NOT_ALLOWED');
    });

    it('rejects the owner giving the image away', () => {
      const error = catchRegistryError(() => applyImageUpdate(owner, image, makeUpdate({ owner: OTHER_PROJECT }), NOW));

      expect(error.kind).toBe('PERMISSION_DENIED');
      expect(error.reason).toBe('OWNER_CHANGE_NOT_ALLOWED');
    });

    it('rejects an active image changing its disk format', () => {
      const error = catchRegistryError(() => applyImageUpdate(owner, image, makeUpdate({ diskFormat: 'raw' }), NOW));

      expect(error.kind).toBe('FAILED_PRECONDITION');
      expect(error.reason).toBe('IMAGE_NOT_QUEUED');
    });

    it('rejects an active image changing its container format', () => {
      const update = makeUpdate({ containerFormat: 'ova' });
      const error = catchRegistryError(() => applyImageUpdate(owner, image, update, NOW));

      expect(error.kind).toBe('FAILED_PRECONDITION');
      expect(error.reason).toBe('IMAGE_NOT_QUEUED');
    });
  });

  describe('count limits', () => {
    it('accepts 128 tags', () => {
      const updated = applyImageUpdate(owner, image, makeUpdate({ tags: makeNumberedTags(128) }), NOW);

      expect(updated.tags).toHaveLength(128);
    });

    it('rejects 129 tags', () => {
      const update = makeUpdate({ tags: makeNumberedTags(129) });
      const error = catchRegistryError(() => applyImageUpdate(owner, image, update, NOW));

      expect(error.kind).toBe('RESOURCE_EXHAUSTED');
      expect(error.reason).toBe('TAG_LIMIT_EXCEEDED');
    });

    it('accepts a replacement of 128 properties', () => {
      const update = makeUpdate({ replaceProperties: makeNumberedProperties(128) });
      const updated = applyImageUpdate(owner, image, update, NOW);

      expect(Object.keys(updated.properties)).toHaveLength(128);
    });

    it('rejects a replacement of 129 properties', () => {
      const update = makeUpdate({ replaceProperties: makeNumberedProperties(129) });
      const error = catchRegistryError(() => applyImageUpdate(owner, image, update, NOW));

      expect(error.kind).toBe('RESOURCE_EXHAUSTED');
      expect(error.reason).toBe('PROPERTY_LIMIT_EXCEEDED');
    });

    it('rejects setting a 129th property', () => {
      const full = { ...image, properties: makeNumberedProperties(128) };
      const update = makeUpdate({ setProperties: makeProperties([['one-more', 'v']]) });
      const error = catchRegistryError(() => applyImageUpdate(owner, full, update, NOW));

      expect(error.kind).toBe('RESOURCE_EXHAUSTED');
      expect(error.reason).toBe('PROPERTY_LIMIT_EXCEEDED');
    });

    it('counts properties after removals', () => {
      const full = { ...image, properties: makeNumberedProperties(128) };
      const update = makeUpdate({ setProperties: makeProperties([['one-more', 'v']]), removeProperties: ['key-0'] });
      const updated = applyImageUpdate(owner, full, update, NOW);

      expect(Object.keys(updated.properties)).toHaveLength(128);
      expect(updated.properties['one-more']).toBe('v');
    });

    it('accepts overwriting a key of a full map', () => {
      const full = { ...image, properties: makeNumberedProperties(128) };
      const update = makeUpdate({ setProperties: makeProperties([['key-0', 'changed']]) });
      const updated = applyImageUpdate(owner, full, update, NOW);

      expect(updated.properties['key-0']).toBe('changed');
    });
  });

  describe('check order', () => {
    // Each update breaks several rules, and the error must come from the first rule in order.
    const publicOwnerChange = { visibility: 'public' as const, owner: ADMIN_PROJECT };

    it('checks the right to modify before visibility', () => {
      const error = catchRegistryError(() =>
        applyImageUpdate(outsider, image, makeUpdate({ visibility: 'public' }), NOW),
      );

      expect(error.reason).toBe('NOT_IMAGE_OWNER');
    });

    it('checks the right to modify before owner', () => {
      const error = catchRegistryError(() =>
        applyImageUpdate(outsider, image, makeUpdate({ owner: ADMIN_PROJECT }), NOW),
      );

      expect(error.reason).toBe('NOT_IMAGE_OWNER');
    });

    it('checks the right to modify before formats and counts', () => {
      const update = makeUpdate({ diskFormat: 'raw', tags: makeNumberedTags(129) });
      const error = catchRegistryError(() => applyImageUpdate(outsider, image, update, NOW));

      expect(error.reason).toBe('NOT_IMAGE_OWNER');
    });

    it('checks visibility and owner before formats', () => {
      const update = makeUpdate({ ...publicOwnerChange, diskFormat: 'raw' });
      const error = catchRegistryError(() => applyImageUpdate(owner, image, update, NOW));

      expect(error.kind).toBe('PERMISSION_DENIED');
    });

    it('checks the owner before formats', () => {
      const update = makeUpdate({ owner: OTHER_PROJECT, containerFormat: 'ova' });
      const error = catchRegistryError(() => applyImageUpdate(owner, image, update, NOW));

      expect(error.reason).toBe('OWNER_CHANGE_NOT_ALLOWED');
    });

    it('checks visibility before counts', () => {
      const update = makeUpdate({ visibility: 'public', tags: makeNumberedTags(129) });
      const error = catchRegistryError(() => applyImageUpdate(owner, image, update, NOW));

      expect(error.reason).toBe('PUBLICIZE_NOT_ALLOWED');
    });

    it('checks formats before counts', () => {
      const update = makeUpdate({ diskFormat: 'raw', replaceProperties: makeNumberedProperties(129) });
      const error = catchRegistryError(() => applyImageUpdate(owner, image, update, NOW));

      expect(error.reason).toBe('IMAGE_NOT_QUEUED');
    });

    it('lets an admin pass every permission check and meet the format rule', () => {
      const update = makeUpdate({ ...publicOwnerChange, diskFormat: 'raw' });
      const error = catchRegistryError(() => applyImageUpdate(admin, image, update, NOW));

      expect(error.reason).toBe('IMAGE_NOT_QUEUED');
    });

    it('reports counts only when everything else passes', () => {
      const update = makeUpdate({ ...publicOwnerChange, diskFormat: image.diskFormat, tags: makeNumberedTags(129) });
      const error = catchRegistryError(() => applyImageUpdate(admin, image, update, NOW));

      expect(error.kind).toBe('RESOURCE_EXHAUSTED');
      expect(error.message).toContain(IMAGE_ID);
    });
  });
});
