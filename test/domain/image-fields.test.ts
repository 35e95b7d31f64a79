import { describe, expect, it } from 'vitest';
import {
  CONTAINER_FORMATS,
  DISK_FORMATS,
  assertPropertyCount,
  assertTagCount,
  charLength,
  normalizeTags,
  parseImageId,
  validateContainerFormat,
  validateDiskFormat,
  validateMinimum,
  validateName,
  validatePropertyKey,
  validatePropertyValue,
  validateProperties,
  validateTag,
} from '../../src/domain/image-fields.js';
import { IMAGE_ID, catchRegistryError, makeProperties } from './fixtures.js';

// U+1F600 is one code point, two UTF-16 code units and four UTF-8 bytes.
const EMOJI = '\u{1F600}';

describe('charLength', () => {
  it.each([
    { text: '', length: 0 },
    { text: 'abc', length: 3 },
    { text: 'é', length: 1 },
    { text: EMOJI, length: 1 },
    { text: EMOJI.repeat(3), length: 3 },
  ])('counts $length code points in $text', ({ text, length }) => {
    expect(charLength(text)).toBe(length);
  });
});

describe('parseImageId', () => {
  it('returns a lowercase id unchanged', () => {
    expect(parseImageId('id', IMAGE_ID)).toBe(IMAGE_ID);
  });

  it('lowercases an uppercase id', () => {
    expect(parseImageId('id', IMAGE_ID.toUpperCase())).toBe(IMAGE_ID);
  });

  it('lowercases a mixed-case id', () => {
    expect(parseImageId('id', '6F1C2B7E-3d4a-4E5F-9a8b-0C1D2e3f4A5B')).toBe(IMAGE_ID);
  });

  it('rejects an empty id as missing', () => {
    const error = catchRegistryError(() => parseImageId('image_id', ''));

    expect(error.kind).toBe('INVALID_ARGUMENT');
    expect(error.field).toBe('image_id');
    expect(error.message).toContain('required');
  });

  it.each([
    { name: 'rejects a word', id: 'ubuntu' },
    { name: 'rejects an id without hyphens', id: IMAGE_ID.replaceAll('-', '') },
    { name: 'rejects an id one digit short', id: IMAGE_ID.slice(0, -1) },
    { name: 'rejects an id one digit long', id: `${IMAGE_ID}0` },
    { name: 'rejects a non-hex digit', id: `g${IMAGE_ID.slice(1)}` },
    { name: 'rejects misplaced hyphens', id: '6f1c2b7e3-d4a-4e5f-9a8b-0c1d2e3f4a5b' },
    { name: 'rejects braces', id: `{${IMAGE_ID}}` },
    { name: 'rejects a URN prefix', id: `urn:uuid:${IMAGE_ID}` },
    { name: 'rejects a leading space', id: ` ${IMAGE_ID}` },
    { name: 'rejects a trailing newline', id: `${IMAGE_ID}\n` },
  ])('$name', ({ id }) => {
    const error = catchRegistryError(() => parseImageId('image_id', id));

    expect(error.kind).toBe('INVALID_ARGUMENT');
    expect(error.field).toBe('image_id');
    expect(error.message).toContain(JSON.stringify(id));
    expect(error.message).toContain('not a UUID');
  });
});

/** The three fields limited to 255 code points, with the validator for each. */
const CHARACTER_LIMITED_FIELDS = [
  { field: 'name', validate: (value: string) => validateName('image.name', value), fieldName: 'image.name' },
  { field: 'tag', validate: (value: string) => validateTag('image.tags', value), fieldName: 'image.tags' },
  {
    field: 'property key',
    validate: (value: string) => validatePropertyKey('image.properties', value),
    fieldName: 'image.properties',
  },
];

describe.each(CHARACTER_LIMITED_FIELDS)('$field length', ({ validate, fieldName }) => {
  it.each([
    { name: 'accepts 255 ASCII characters', value: 'a'.repeat(255) },
    { name: 'accepts 255 emoji code points', value: EMOJI.repeat(255) },
    { name: 'accepts 255 accented letters', value: 'é'.repeat(255) },
  ])('$name', ({ value }) => {
    expect(() => validate(value)).not.toThrow();
  });

  it.each([
    { name: 'rejects 256 ASCII characters', value: 'a'.repeat(256) },
    { name: 'rejects 256 emoji code points', value: EMOJI.repeat(256) },
  ])('$name', ({ value }) => {
    const error = catchRegistryError(() => validate(value));

    expect(error.kind).toBe('INVALID_ARGUMENT');
    expect(error.field).toBe(fieldName);
    expect(error.message).toContain('longer than 255 characters');
    // Long values are cut in messages, so only their start is named.
    expect(error.message).toContain(value.slice(0, 20));
  });
});

describe('validateName', () => {
  it('accepts an empty name', () => {
    expect(() => validateName('image.name', '')).not.toThrow();
  });
});

describe('validateTag', () => {
  it('rejects an empty tag', () => {
    const error = catchRegistryError(() => validateTag('image.tags', ''));

    expect(error.kind).toBe('INVALID_ARGUMENT');
    expect(error.field).toBe('image.tags');
    expect(error.message).toContain('empty');
  });
});

describe('validatePropertyKey', () => {
  it.each(['architecture', 'hw:cpu_policy', 'os.distro', 'os_glance', 'my_os_glance_key', 'ID', '__proto__'])(
    'accepts the key %s',
    (key) => {
      expect(() => validatePropertyKey('image.properties', key)).not.toThrow();
    },
  );

  it('rejects an empty key', () => {
    const error = catchRegistryError(() => validatePropertyKey('image.properties', ''));

    expect(error.kind).toBe('INVALID_ARGUMENT');
    expect(error.field).toBe('image.properties');
    expect(error.message).toContain('empty');
  });

  const imageFieldKeys = [
    'id', 'name', 'status', 'visibility', 'protected', 'hidden', 'owner', 'container_format',
    'disk_format', 'min_disk', 'min_ram', 'size', 'virtual_size', 'checksum', 'hash_algo',
    'hash_value', 'tags', 'properties', 'create_time', 'update_time',
  ];
  const glanceBaseKeys = [
    'os_hidden', 'os_hash_algo', 'os_hash_value', 'created_at', 'updated_at', 'self', 'file',
    'schema', 'locations', 'direct_url', 'deleted', 'deleted_at',
  ];
  const glancePrefixedKeys = ['os_glance_', 'os_glance_import_task', 'os_glance_stores'];

  it.each([...imageFieldKeys, ...glanceBaseKeys, ...glancePrefixedKeys])('rejects the reserved key %s', (key) => {
    const error = catchRegistryError(() => validatePropertyKey('image.properties', key));

    expect(error.kind).toBe('INVALID_ARGUMENT');
    expect(error.field).toBe('image.properties');
    expect(error.message).toContain(JSON.stringify(key));
    expect(error.message).toContain('reserved');
  });
});

describe('validatePropertyValue', () => {
  it.each([
    { name: 'accepts an empty value', value: '' },
    { name: 'accepts 65,535 ASCII bytes', value: 'v'.repeat(65_535) },
    { name: 'accepts 65,535 bytes of three-byte characters', value: '€'.repeat(21_845) },
    { name: 'accepts 65,535 bytes of emoji and ASCII', value: EMOJI.repeat(16_383) + 'vvv' },
    { name: 'accepts 65,534 bytes of two-byte characters', value: 'é'.repeat(32_767) },
  ])('$name', ({ value }) => {
    expect(() => validatePropertyValue('image.properties', 'description', value)).not.toThrow();
  });

  it.each([
    { name: 'rejects 65,536 ASCII bytes', value: 'v'.repeat(65_536), bytes: 65_536 },
    { name: 'rejects 32,768 two-byte characters', value: 'é'.repeat(32_768), bytes: 65_536 },
    { name: 'rejects 21,846 three-byte characters', value: '€'.repeat(21_846), bytes: 65_538 },
    { name: 'rejects 16,384 emoji', value: EMOJI.repeat(16_384), bytes: 65_536 },
    { name: 'rejects one byte past the limit after ASCII', value: EMOJI.repeat(16_383) + 'vvvv', bytes: 65_536 },
  ])('$name', ({ value, bytes }) => {
    const error = catchRegistryError(() => validatePropertyValue('image.properties', 'description', value));

    expect(error.kind).toBe('INVALID_ARGUMENT');
    expect(error.field).toBe('image.properties');
    expect(error.message).toContain('"description"');
    expect(error.message).toContain(`${bytes} bytes`);
    expect(error.message).toContain('65535');
  });
});

describe('validateProperties', () => {
  it('accepts ordinary properties', () => {
    const properties = makeProperties([
      ['architecture', 'x86_64'],
      ['hw:cpu_policy', 'dedicated'],
    ]);

    expect(() => validateProperties('image.properties', properties)).not.toThrow();
  });

  it('accepts __proto__ as an ordinary key', () => {
    expect(() => validateProperties('image.properties', makeProperties([['__proto__', 'v']]))).not.toThrow();
  });

  it('rejects a reserved key among others', () => {
    const properties = makeProperties([
      ['architecture', 'x86_64'],
      ['os_glance_stores', 'file'],
    ]);
    const error = catchRegistryError(() => validateProperties('image.properties', properties));

    expect(error.kind).toBe('INVALID_ARGUMENT');
    expect(error.message).toContain('os_glance_stores');
  });

  it('rejects an oversized value among others', () => {
    const properties = makeProperties([
      ['architecture', 'x86_64'],
      ['description', 'v'.repeat(65_536)],
    ]);
    const error = catchRegistryError(() => validateProperties('image.properties', properties));

    expect(error.kind).toBe('INVALID_ARGUMENT');
    expect(error.message).toContain('"description"');
  });
});

describe('container and disk formats', () => {
  it.each(CONTAINER_FORMATS)('accepts the container format %s', (format) => {
    expect(() => validateContainerFormat('image.container_format', format)).not.toThrow();
  });

  it.each(DISK_FORMATS)('accepts the disk format %s', (format) => {
    expect(() => validateDiskFormat('image.disk_format', format)).not.toThrow();
  });

  it('lists exactly the container formats Glance allows', () => {
    expect([...CONTAINER_FORMATS].sort()).toEqual(
      ['ami', 'ari', 'aki', 'bare', 'ovf', 'ova', 'docker', 'compressed'].sort(),
    );
  });

  it('lists exactly the disk formats Glance allows', () => {
    expect([...DISK_FORMATS].sort()).toEqual(
      ['ami', 'ari', 'aki', 'vhd', 'vhdx', 'vmdk', 'raw', 'qcow2', 'vdi', 'iso', 'ploop'].sort(),
    );
  });

  it('accepts an empty container format', () => {
    expect(() => validateContainerFormat('image.container_format', '')).not.toThrow();
  });

  it('accepts an empty disk format', () => {
    expect(() => validateDiskFormat('image.disk_format', '')).not.toThrow();
  });

  it.each(['qcow2', 'BARE', ' bare', 'tar'])('rejects the container format %j', (format) => {
    const error = catchRegistryError(() => validateContainerFormat('image.container_format', format));

    expect(error.kind).toBe('INVALID_ARGUMENT');
    expect(error.field).toBe('image.container_format');
    expect(error.message).toContain(JSON.stringify(format));
    expect(error.message).toContain('bare');
  });

  it.each(['bare', 'QCOW2', 'qcow2 ', 'img'])('rejects the disk format %j', (format) => {
    const error = catchRegistryError(() => validateDiskFormat('image.disk_format', format));

    expect(error.kind).toBe('INVALID_ARGUMENT');
    expect(error.field).toBe('image.disk_format');
    expect(error.message).toContain(JSON.stringify(format));
    expect(error.message).toContain('qcow2');
  });
});

describe('validateMinimum', () => {
  it.each([0, 1, 2_147_483_647])('accepts %i', (value) => {
    expect(() => validateMinimum('image.min_disk', value)).not.toThrow();
  });

  it.each([-1, -2_147_483_648])('rejects %i', (value) => {
    const error = catchRegistryError(() => validateMinimum('image.min_disk', value));

    expect(error.kind).toBe('INVALID_ARGUMENT');
    expect(error.field).toBe('image.min_disk');
    expect(error.message).toContain(String(value));
  });
});

describe('normalizeTags', () => {
  it('keeps distinct tags in order', () => {
    expect(normalizeTags('image.tags', ['b', 'a', 'c'])).toEqual(['b', 'a', 'c']);
  });

  it('merges duplicates keeping the first position', () => {
    expect(normalizeTags('image.tags', ['b', 'a', 'b', 'c', 'a'])).toEqual(['b', 'a', 'c']);
  });

  it('treats tags differing in case as distinct', () => {
    expect(normalizeTags('image.tags', ['Linux', 'linux'])).toEqual(['Linux', 'linux']);
  });

  it('returns no tags for none', () => {
    expect(normalizeTags('image.tags', [])).toEqual([]);
  });

  it('merges 129 copies of one tag into one', () => {
    expect(normalizeTags('image.tags', Array(129).fill('x'))).toEqual(['x']);
  });

  it('rejects an empty tag among others', () => {
    const error = catchRegistryError(() => normalizeTags('image.tags', ['a', '', 'b']));

    expect(error.kind).toBe('INVALID_ARGUMENT');
    expect(error.field).toBe('image.tags');
  });

  it('rejects an overlong tag among others', () => {
    const error = catchRegistryError(() => normalizeTags('image.tags', ['a', EMOJI.repeat(256)]));

    expect(error.kind).toBe('INVALID_ARGUMENT');
    expect(error.field).toBe('image.tags');
  });
});

describe('count limits', () => {
  it.each([0, 127, 128])('%i tags are allowed', (count) => {
    expect(() => assertTagCount(IMAGE_ID, count)).not.toThrow();
  });

  it.each([0, 127, 128])('%i properties are allowed', (count) => {
    expect(() => assertPropertyCount(IMAGE_ID, count)).not.toThrow();
  });

  it('129 tags exhaust the limit', () => {
    const error = catchRegistryError(() => assertTagCount(IMAGE_ID, 129));

    expect(error.kind).toBe('RESOURCE_EXHAUSTED');
    expect(error.reason).toBe('TAG_LIMIT_EXCEEDED');
    expect(error.field).toBe('tags');
    expect(error.message).toContain(IMAGE_ID);
    expect(error.message).toContain('129');
    expect(error.message).toContain('128');
  });

  it('129 properties exhaust the limit', () => {
    const error = catchRegistryError(() => assertPropertyCount(IMAGE_ID, 129));

    expect(error.kind).toBe('RESOURCE_EXHAUSTED');
    expect(error.reason).toBe('PROPERTY_LIMIT_EXCEEDED');
    expect(error.field).toBe('properties');
    expect(error.message).toContain(IMAGE_ID);
    expect(error.message).toContain('129');
    expect(error.message).toContain('128');
  });
});
