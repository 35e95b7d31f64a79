/**
 * End-to-end tests of the rules for creating, changing, deleting,
 * deactivating and reactivating images, through the real server and
 * generated clients, on SQLite and on MySQL.
 */
import { randomUUID } from 'node:crypto';
import { setTimeout as sleep } from 'node:timers/promises';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type Image, ImageStatus, Visibility } from '../../gen/imageregistry/v1/image.js';
import { VisibilityFilter } from '../../gen/imageregistry/v1/image_service.js';
import { testedBackends } from '../support/databases.js';
import { type RegistryClient, RegistryHarness, failure } from '../support/registry-harness.js';

const UUID_LOWERCASE = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/;

/** A character outside the Basic Multilingual Plane: one code point, two UTF-16 units, four UTF-8 bytes. */
const EMOJI = '\u{1F600}';

const CONTAINER_FORMATS = ['ami', 'ari', 'aki', 'bare', 'ovf', 'ova', 'docker', 'compressed'];
const DISK_FORMATS = ['ami', 'ari', 'aki', 'vhd', 'vhdx', 'vmdk', 'raw', 'qcow2', 'vdi', 'iso', 'ploop'];

/** Every field name of Image, which a property key may not take. */
const IMAGE_FIELD_NAMES = [
  'id', 'name', 'status', 'visibility', 'protected', 'hidden', 'owner',
  'container_format', 'disk_format', 'min_disk', 'min_ram', 'size',
  'virtual_size', 'checksum', 'hash_algo', 'hash_value', 'tags', 'properties',
  'create_time', 'update_time',
];

/** Glance's base image fields, which a property key may not take either. */
const GLANCE_BASE_NAMES = [
  'os_hidden', 'os_hash_algo', 'os_hash_value', 'created_at', 'updated_at',
  'self', 'file', 'schema', 'locations', 'direct_url', 'deleted', 'deleted_at',
];

/** Keys under Glance's reserved `os_glance_` prefix. */
const GLANCE_PREFIXED_KEYS = ['os_glance_', 'os_glance_import_task', 'os_glance_stores'];

/** Image statuses other than ACTIVE and DEACTIVATED, as the store spells them. */
const STATUSES_WITHOUT_ACTIVATION = ['queued', 'saving', 'killed', 'pending_delete', 'uploading', 'importing'];

/** Returns a project id that no other test uses. */
function uniqueProject(label: string): string {
  return `${label}-${randomUUID().slice(0, 8)}`;
}

/** Returns `count` distinct strings starting with `prefix`. */
function numbered(prefix: string, count: number): string[] {
  return Array.from({ length: count }, (_, index) => `${prefix}-${String(index).padStart(3, '0')}`);
}

/** Returns the fields of an image that a no-op change must leave as they were, with tags sorted. */
function withoutUpdateTime(image: Image): Omit<Image, 'updateTime'> {
  const { updateTime: _updateTime, ...rest } = image;
  return { ...rest, tags: [...rest.tags].sort() };
}

describe.each(testedBackends())('image rules on %s', (backend) => {
  let registry: RegistryHarness;

  beforeAll(async () => {
    registry = await RegistryHarness.start(backend);
  });
  afterAll(async () => registry?.stop());

  /** Puts an image in a status through the store, which spells statuses in lower case. */
  async function setStoredStatus(id: string, status: string): Promise<void> {
    await registry.service.database.knex('images').update({ status }).where('id', id);
  }

  /** Creates clients of a fresh owner project, a fresh other project and an admin. */
  async function parties() {
    const ownerProject = uniqueProject('owner');
    const otherProject = uniqueProject('other');
    return {
      ownerProject,
      otherProject,
      owner: await registry.as(ownerProject),
      other: await registry.as(otherProject),
      admin: await registry.as(uniqueProject('admin'), { admin: true }),
    };
  }

  /** Creates a public image of `ownerProject` as an admin, because only admins make public images. */
  async function createPublicImage(admin: RegistryClient, ownerProject: string): Promise<Image> {
    return admin.images.createImage({ image: { name: 'public', visibility: Visibility.VISIBILITY_PUBLIC, owner: ownerProject } });
  }

  /** Returns the NOT_FOUND message for `id` as if it never existed, built from a random unknown id. */
  async function unknownImageMessage(client: RegistryClient, id: string): Promise<string> {
    const unknownId = randomUUID();
    const { message } = await failure(client.images.getImage({ id: unknownId }));
    return message.replaceAll(unknownId, id);
  }

  /** Asserts that a call fails exactly as a call on an id that never existed. */
  async function expectHidden(client: RegistryClient, call: Promise<unknown>, id: string): Promise<void> {
    const result = await failure(call);
    expect(result.code).toBe('NOT_FOUND');
    expect(result.message).toBe(await unknownImageMessage(client, id));
  }

  async function rowCount(table: string, imageId: string): Promise<number> {
    const row = await registry.service.database.knex(table).where('image_id', imageId).count({ count: '*' }).first();
    return Number(row?.count ?? 0);
  }

  describe('creating', () => {
    it('new image gets the default fields', async () => {
      const { owner, ownerProject } = await parties();

      const image = await owner.images.createImage({ image: { name: 'defaults' } });

      expect(image.id).toMatch(UUID_LOWERCASE);
      expect(image.status).toBe(ImageStatus.IMAGE_STATUS_QUEUED);
      expect(image.visibility).toBe(Visibility.VISIBILITY_SHARED);
      expect(image.owner).toBe(ownerProject);
      expect(image.protected).toBe(false);
      expect(image.hidden).toBe(false);
      expect(image.tags).toEqual([]);
      expect(image.properties.size).toBe(0);
      expect(image.size).toBeUndefined();
      expect(image.createTime).toBeInstanceOf(Date);
      expect(image.updateTime?.getTime()).toBe(image.createTime?.getTime());
      const stored = await owner.images.getImage({ id: image.id });
      expect(stored).toEqual(image);
    });

    it('image id in upper case is stored in lower case', async () => {
      const { owner } = await parties();
      const id = randomUUID();

      const image = await owner.images.createImage({ image: {}, imageId: id.toUpperCase() });

      expect(image.id).toBe(id);
      expect((await owner.images.getImage({ id })).id).toBe(id);
      expect((await owner.images.getImage({ id: id.toUpperCase() })).id).toBe(id);
    });

    it('malformed image id is rejected', async () => {
      const { owner } = await parties();

      for (const imageId of ['not-a-uuid', `${randomUUID()}0`, ` ${randomUUID()}`]) {
        expect((await failure(owner.images.createImage({ image: {}, imageId }))).code).toBe('INVALID_ARGUMENT');
      }
    });

    it('output-only fields are ignored on create', async () => {
      const { owner } = await parties();
      const past = new Date('2001-01-01T00:00:00Z');

      const image = await owner.images.createImage({
        image: {
          id: randomUUID(),
          status: ImageStatus.IMAGE_STATUS_ACTIVE,
          size: '1024',
          checksum: 'd41d8cd98f00b204e9800998ecf8427e',
          createTime: past,
          updateTime: past,
        },
      });

      expect(image.status).toBe(ImageStatus.IMAGE_STATUS_QUEUED);
      expect(image.size).toBeUndefined();
      expect(image.checksum).toBe('');
      expect(image.createTime?.getTime()).not.toBe(past.getTime());
    });
  });

  describe('visibility', () => {
    it('only an admin creates a public image', async () => {
      const { owner, ownerProject, admin } = await parties();

      const denied = await failure(owner.images.createImage({ image: { name: 'p', visibility: Visibility.VISIBILITY_PUBLIC } }));
      expect(denied.code).toBe('PERMISSION_DENIED');
      const listed = await owner.images.listImages({ owner: ownerProject, visibility: VisibilityFilter.VISIBILITY_FILTER_ALL });
      expect(listed.images).toEqual([]);

      const image = await admin.images.createImage({ image: { visibility: Visibility.VISIBILITY_PUBLIC } });
      expect(image.visibility).toBe(Visibility.VISIBILITY_PUBLIC);
    });

    it('only an admin makes an image public', async () => {
      const { owner, admin } = await parties();
      const image = await owner.images.createImage({ image: { name: 'to-publish' } });

      const denied = await failure(
        owner.images.updateImage({ image: { id: image.id, visibility: Visibility.VISIBILITY_PUBLIC }, updateMask: ['visibility'] }),
      );
      expect(denied.code).toBe('PERMISSION_DENIED');
      expect((await owner.images.getImage({ id: image.id })).visibility).toBe(Visibility.VISIBILITY_SHARED);

      const published = await admin.images.updateImage({
        image: { id: image.id, visibility: Visibility.VISIBILITY_PUBLIC },
        updateMask: ['visibility'],
      });
      expect(published.visibility).toBe(Visibility.VISIBILITY_PUBLIC);
    });

    it('owner makes its image community', async () => {
      const { owner } = await parties();

      const created = await owner.images.createImage({ image: { visibility: Visibility.VISIBILITY_COMMUNITY } });
      expect(created.visibility).toBe(Visibility.VISIBILITY_COMMUNITY);

      const shared = await owner.images.createImage({ image: {} });
      const updated = await owner.images.updateImage({
        image: { id: shared.id, visibility: Visibility.VISIBILITY_COMMUNITY },
        updateMask: ['visibility'],
      });
      expect(updated.visibility).toBe(Visibility.VISIBILITY_COMMUNITY);
    });

    it('admin makes another project image community', async () => {
      const { owner, admin } = await parties();
      const image = await owner.images.createImage({ image: { visibility: Visibility.VISIBILITY_PRIVATE } });

      const updated = await admin.images.updateImage({
        image: { id: image.id, visibility: Visibility.VISIBILITY_COMMUNITY },
        updateMask: ['visibility'],
      });

      expect(updated.visibility).toBe(Visibility.VISIBILITY_COMMUNITY);
    });

    it('reader who is not owner cannot make an image community', async () => {
      const { ownerProject, other, admin } = await parties();
      const image = await createPublicImage(admin, ownerProject);

      const denied = await failure(
        other.images.updateImage({ image: { id: image.id, visibility: Visibility.VISIBILITY_COMMUNITY }, updateMask: ['visibility'] }),
      );

      expect(denied.code).toBe('PERMISSION_DENIED');
      expect((await other.images.getImage({ id: image.id })).visibility).toBe(Visibility.VISIBILITY_PUBLIC);
    });

    it('owner moves an image away from public or community', async () => {
      const { owner, ownerProject, admin } = await parties();
      const image = await createPublicImage(admin, ownerProject);

      const community = await owner.images.updateImage({
        image: { id: image.id, visibility: Visibility.VISIBILITY_COMMUNITY },
        updateMask: ['visibility'],
      });
      expect(community.visibility).toBe(Visibility.VISIBILITY_COMMUNITY);

      const shared = await owner.images.updateImage({
        image: { id: image.id, visibility: Visibility.VISIBILITY_SHARED },
        updateMask: ['visibility'],
      });
      expect(shared.visibility).toBe(Visibility.VISIBILITY_SHARED);

      const publicAgain = await createPublicImage(admin, ownerProject);
      const toPrivate = await owner.images.updateImage({
        image: { id: publicAgain.id, visibility: Visibility.VISIBILITY_PRIVATE },
        updateMask: ['visibility'],
      });
      expect(toPrivate.visibility).toBe(Visibility.VISIBILITY_PRIVATE);
    });

    it('owner sets the visibility an image already has', async () => {
      const { owner, ownerProject, admin } = await parties();
      const publicImage = await createPublicImage(admin, ownerProject);
      const others = await Promise.all(
        [Visibility.VISIBILITY_COMMUNITY, Visibility.VISIBILITY_PRIVATE, Visibility.VISIBILITY_SHARED].map((visibility) =>
          owner.images.createImage({ image: { visibility } }),
        ),
      );

      for (const image of [publicImage, ...others]) {
        const updated = await owner.images.updateImage({
          image: { id: image.id, visibility: image.visibility },
          updateMask: ['visibility'],
        });
        expect(updated.visibility).toBe(image.visibility);
      }
    });
  });

  describe('owner', () => {
    it('only an admin names another owner on create', async () => {
      const { owner, ownerProject, otherProject, admin } = await parties();

      const denied = await failure(owner.images.createImage({ image: { name: 'gift', owner: otherProject } }));
      expect(denied.code).toBe('PERMISSION_DENIED');
      const listed = await admin.images.listImages({ owner: otherProject, visibility: VisibilityFilter.VISIBILITY_FILTER_ALL });
      expect(listed.images).toEqual([]);

      const image = await admin.images.createImage({ image: { owner: ownerProject } });
      expect(image.owner).toBe(ownerProject);
      expect((await owner.images.getImage({ id: image.id })).owner).toBe(ownerProject);
    });

    it('naming its own project as owner on create changes nothing', async () => {
      const { owner, ownerProject } = await parties();

      const image = await owner.images.createImage({ image: { owner: ownerProject } });

      expect(image.owner).toBe(ownerProject);
    });

    it('only an admin changes the owner on update', async () => {
      const { owner, ownerProject, otherProject, other, admin } = await parties();
      const image = await owner.images.createImage({ image: {} });

      const denied = await failure(owner.images.updateImage({ image: { id: image.id, owner: otherProject }, updateMask: ['owner'] }));
      expect(denied.code).toBe('PERMISSION_DENIED');
      expect((await owner.images.getImage({ id: image.id })).owner).toBe(ownerProject);

      const moved = await admin.images.updateImage({ image: { id: image.id, owner: otherProject }, updateMask: ['owner'] });
      expect(moved.owner).toBe(otherProject);
      expect((await other.images.getImage({ id: image.id })).owner).toBe(otherProject);
      await expectHidden(owner, owner.images.getImage({ id: image.id }), image.id);
    });

    it('owner longer than 255 characters is rejected', async () => {
      const { owner, admin } = await parties();
      const image = await owner.images.createImage({ image: {} });

      for (const longOwner of ['a'.repeat(256), EMOJI.repeat(256)]) {
        const created = await failure(admin.images.createImage({ image: { owner: longOwner } }));
        expect(created.code).toBe('INVALID_ARGUMENT');
        const updated = await failure(admin.images.updateImage({ image: { id: image.id, owner: longOwner }, updateMask: ['owner'] }));
        expect(updated.code).toBe('INVALID_ARGUMENT');
      }
      expect((await owner.images.getImage({ id: image.id })).owner).toBe(image.owner);
    });

    it('owner with whitespace or control characters is rejected', async () => {
      const { owner, admin } = await parties();
      const image = await owner.images.createImage({ image: {} });

      for (const badOwner of ['two words', ' leading', 'tab\tinside', 'nul\u0000inside', 'del\u007finside']) {
        const created = await failure(admin.images.createImage({ image: { owner: badOwner } }));
        expect(created.code, JSON.stringify(badOwner)).toBe('INVALID_ARGUMENT');
        const updated = await failure(admin.images.updateImage({ image: { id: image.id, owner: badOwner }, updateMask: ['owner'] }));
        expect(updated.code, JSON.stringify(badOwner)).toBe('INVALID_ARGUMENT');
      }
      expect((await owner.images.getImage({ id: image.id })).owner).toBe(image.owner);
    });

    it('admin owner of 255 characters is accepted', async () => {
      const { admin } = await parties();
      const longest = EMOJI.repeat(255);

      const image = await admin.images.createImage({ image: { owner: longest } });

      expect(image.owner).toBe(longest);
      expect((await admin.images.getImage({ id: image.id })).owner).toBe(longest);
    });

    it('naming its own project as owner on update changes nothing', async () => {
      const { owner, ownerProject } = await parties();
      const image = await owner.images.createImage({ image: { name: 'mine' } });

      const updated = await owner.images.updateImage({ image: { id: image.id, owner: ownerProject }, updateMask: ['owner'] });

      expect(updated.owner).toBe(ownerProject);
      expect(withoutUpdateTime(updated)).toEqual(withoutUpdateTime(image));
    });
  });

  describe('modifying and deleting', () => {
    it('reader who is not owner cannot modify or delete', async () => {
      const { ownerProject, other, admin } = await parties();
      const image = await createPublicImage(admin, ownerProject);
      await admin.images.addImageTag({ imageId: image.id, tag: 'kept' });
      const before = await other.images.getImage({ id: image.id });
      const calls: [string, () => Promise<unknown>][] = [
        ['update', () => other.images.updateImage({ image: { id: image.id, name: 'taken' }, updateMask: ['name'] })],
        ['add tag', () => other.images.addImageTag({ imageId: image.id, tag: 'new' })],
        ['remove tag', () => other.images.removeImageTag({ imageId: image.id, tag: 'kept' })],
        ['delete', () => other.images.deleteImage({ id: image.id })],
      ];

      for (const [label, call] of calls) {
        expect((await failure(call())).code, label).toBe('PERMISSION_DENIED');
      }
      expect(await other.images.getImage({ id: image.id })).toEqual(before);
    });

    it('member of a shared image cannot modify or delete', async () => {
      const { owner, other, otherProject } = await parties();
      const image = await owner.images.createImage({ image: { name: 'shared' } });
      await owner.members.createMember({ imageId: image.id, memberId: otherProject });

      const update = await failure(other.images.updateImage({ image: { id: image.id, name: 'taken' }, updateMask: ['name'] }));
      expect(update.code).toBe('PERMISSION_DENIED');
      expect((await failure(other.images.deleteImage({ id: image.id }))).code).toBe('PERMISSION_DENIED');
      expect((await owner.images.getImage({ id: image.id })).name).toBe('shared');
    });

    it('caller who cannot read gets NOT_FOUND on every change', async () => {
      const { owner, other } = await parties();
      const image = await owner.images.createImage({ image: { tags: ['kept'] } });
      await setStoredStatus(image.id, 'active');
      const id = image.id;

      await expectHidden(other, other.images.updateImage({ image: { id, name: 'x' }, updateMask: ['name'] }), id);
      await expectHidden(other, other.images.addImageTag({ imageId: id, tag: 'new' }), id);
      await expectHidden(other, other.images.removeImageTag({ imageId: id, tag: 'kept' }), id);
      await expectHidden(other, other.images.deleteImage({ id }), id);
      await expectHidden(other, other.images.deactivateImage({ id }), id);
      await expectHidden(other, other.images.reactivateImage({ id }), id);
      expect((await owner.images.getImage({ id })).status).toBe(ImageStatus.IMAGE_STATUS_ACTIVE);
    });

    it('admin modifies and deletes another project image', async () => {
      const { owner, admin } = await parties();
      const image = await owner.images.createImage({ image: { name: 'before' } });

      const renamed = await admin.images.updateImage({ image: { id: image.id, name: 'after' }, updateMask: ['name'] });
      expect(renamed.name).toBe('after');
      await admin.images.deleteImage({ id: image.id });

      await expectHidden(owner, owner.images.getImage({ id: image.id }), image.id);
    });

    it('protected image cannot be deleted until unset', async () => {
      const { owner, admin } = await parties();
      const image = await owner.images.createImage({ image: { protected: true } });

      expect((await failure(owner.images.deleteImage({ id: image.id }))).code).toBe('FAILED_PRECONDITION');
      expect((await failure(admin.images.deleteImage({ id: image.id }))).code).toBe('FAILED_PRECONDITION');
      expect((await owner.images.getImage({ id: image.id })).protected).toBe(true);

      await owner.images.updateImage({ image: { id: image.id, protected: false }, updateMask: ['protected'] });
      await owner.images.deleteImage({ id: image.id });
      await expectHidden(owner, owner.images.getImage({ id: image.id }), image.id);
    });
  });

  describe('deleted images', () => {
    it('deleted image is not found for everyone, admins included', async () => {
      const { owner, ownerProject, other, otherProject, admin } = await parties();
      const image = await owner.images.createImage({ image: { tags: ['t'] } });
      await owner.members.createMember({ imageId: image.id, memberId: otherProject });
      await owner.images.deleteImage({ id: image.id });
      const id = image.id;

      for (const client of [owner, other, admin]) {
        await expectHidden(client, client.images.getImage({ id }), id);
        await expectHidden(client, client.images.updateImage({ image: { id, name: 'x' }, updateMask: ['name'] }), id);
        await expectHidden(client, client.images.addImageTag({ imageId: id, tag: 'u' }), id);
        await expectHidden(client, client.images.removeImageTag({ imageId: id, tag: 't' }), id);
        await expectHidden(client, client.images.deleteImage({ id }), id);
        await expectHidden(client, client.images.deactivateImage({ id }), id);
        await expectHidden(client, client.images.reactivateImage({ id }), id);
        await expectHidden(client, client.members.listMembers({ imageId: id }), id);
        await expectHidden(client, client.members.getMember({ imageId: id, memberId: otherProject }), id);
      }
      const listed = await admin.images.listImages({ ids: [id], visibility: VisibilityFilter.VISIBILITY_FILTER_ALL, includeHidden: true });
      expect(listed.images).toEqual([]);
      const ownList = await owner.images.listImages({ owner: ownerProject });
      expect(ownList.images).toEqual([]);
    });

    it('deleted image id cannot be reused', async () => {
      const { owner, other, admin } = await parties();
      const image = await owner.images.createImage({ image: {} });
      await owner.images.deleteImage({ id: image.id });

      const messages = new Set<string>();
      for (const client of [owner, other, admin]) {
        for (const imageId of [image.id, image.id.toUpperCase()]) {
          const result = await failure(client.images.createImage({ image: { name: 'again' }, imageId }));
          expect(result.code).toBe('ALREADY_EXISTS');
          messages.add(result.message);
        }
      }

      expect(messages.size).toBe(1);
      await expectHidden(admin, admin.images.getImage({ id: image.id }), image.id);
    });

    it('taken id gets one message whether visible or not', async () => {
      const { owner, other, admin } = await parties();
      const image = await owner.images.createImage({ image: { visibility: Visibility.VISIBILITY_PRIVATE } });
      const deleted = await owner.images.createImage({ image: {} });
      await owner.images.deleteImage({ id: deleted.id });

      const live = await failure(owner.images.createImage({ image: {}, imageId: image.id }));
      const invisible = await failure(other.images.createImage({ image: {}, imageId: image.id }));
      const byAdmin = await failure(admin.images.createImage({ image: {}, imageId: image.id }));
      const deletedIdResult = await failure(other.images.createImage({ image: {}, imageId: deleted.id }));

      for (const result of [live, invisible, byAdmin, deletedIdResult]) expect(result.code).toBe('ALREADY_EXISTS');
      expect(invisible.message).toBe(live.message);
      expect(byAdmin.message).toBe(live.message);
      expect(deletedIdResult.message).toBe(live.message.replaceAll(image.id, deleted.id));
      expect((await owner.images.getImage({ id: image.id })).owner).toBe(image.owner);
    });

    it('concurrent creates with one id make one image', async () => {
      const { owner, other } = await parties();

      for (let round = 0; round < 5; round++) {
        const imageId = randomUUID();
        const clients = [owner, other, owner, other, owner, other, owner, other];
        const results = await Promise.allSettled(clients.map((client) => client.images.createImage({ image: {}, imageId })));

        expect(results.filter((result) => result.status === 'fulfilled'), `round ${round}`).toHaveLength(1);
        const failures = await Promise.all(
          results.filter((result) => result.status === 'rejected').map((result) => failure(Promise.reject(result.reason))),
        );
        const codes = new Set(failures.map((result) => result.code));
        expect([...codes], `round ${round}`).toEqual(['ALREADY_EXISTS']);
        expect(new Set(failures.map((result) => result.message)).size, `round ${round}`).toBe(1);
      }
    });

    it('deleting removes member rows, tags and properties', async () => {
      const { owner, otherProject } = await parties();
      const image = await owner.images.createImage({
        image: { tags: ['a', 'b'], properties: new Map([['os_distro', 'ubuntu'], ['hw_disk_bus', 'virtio']]) },
      });
      await owner.members.createMember({ imageId: image.id, memberId: otherProject });
      await owner.members.createMember({ imageId: image.id, memberId: uniqueProject('third') });
      expect(await rowCount('image_members', image.id)).toBe(2);
      expect(await rowCount('image_tags', image.id)).toBe(2);
      expect(await rowCount('image_properties', image.id)).toBe(2);

      await owner.images.deleteImage({ id: image.id });

      expect(await rowCount('image_members', image.id)).toBe(0);
      expect(await rowCount('image_tags', image.id)).toBe(0);
      expect(await rowCount('image_properties', image.id)).toBe(0);
    });
  });

  describe('formats', () => {
    it('formats change while the image is queued', async () => {
      const { owner } = await parties();
      const image = await owner.images.createImage({ image: { containerFormat: 'bare', diskFormat: 'raw' } });

      const updated = await owner.images.updateImage({
        image: { id: image.id, containerFormat: 'ovf', diskFormat: 'qcow2' },
        updateMask: ['container_format', 'disk_format'],
      });

      expect(updated.containerFormat).toBe('ovf');
      expect(updated.diskFormat).toBe('qcow2');
    });

    it('formats are fixed once the image leaves queued', async () => {
      const { owner, admin } = await parties();

      for (const status of ['active', 'deactivated', 'saving', 'killed']) {
        const image = await owner.images.createImage({ image: { containerFormat: 'bare', diskFormat: 'raw' } });
        await setStoredStatus(image.id, status);

        for (const client of [owner, admin]) {
          const container = await failure(
            client.images.updateImage({ image: { id: image.id, containerFormat: 'ovf' }, updateMask: ['container_format'] }),
          );
          expect(container.code, status).toBe('FAILED_PRECONDITION');
          const disk = await failure(client.images.updateImage({ image: { id: image.id, diskFormat: 'qcow2' }, updateMask: ['disk_format'] }));
          expect(disk.code, status).toBe('FAILED_PRECONDITION');
          const cleared = await failure(client.images.updateImage({ image: { id: image.id, diskFormat: '' }, updateMask: ['disk_format'] }));
          expect(cleared.code, status).toBe('FAILED_PRECONDITION');
        }

        const same = await owner.images.updateImage({
          image: { id: image.id, containerFormat: 'bare', diskFormat: 'raw' },
          updateMask: ['container_format', 'disk_format'],
        });
        expect(same.containerFormat).toBe('bare');
        expect(same.diskFormat).toBe('raw');
      }
    });

    it('each allowed format is accepted', async () => {
      const { owner } = await parties();

      for (const containerFormat of CONTAINER_FORMATS) {
        const image = await owner.images.createImage({ image: { containerFormat } });
        expect(image.containerFormat).toBe(containerFormat);
      }
      for (const diskFormat of DISK_FORMATS) {
        const image = await owner.images.createImage({ image: { diskFormat } });
        expect(image.diskFormat).toBe(diskFormat);
      }
    });

    it('format outside the allowed values is rejected', async () => {
      const { owner } = await parties();
      const image = await owner.images.createImage({ image: {} });

      for (const containerFormat of ['qcow2', 'BARE', 'tar', ' bare']) {
        const created = await failure(owner.images.createImage({ image: { containerFormat } }));
        expect(created.code, containerFormat).toBe('INVALID_ARGUMENT');
        const updated = await failure(
          owner.images.updateImage({ image: { id: image.id, containerFormat }, updateMask: ['container_format'] }),
        );
        expect(updated.code, containerFormat).toBe('INVALID_ARGUMENT');
      }
      for (const diskFormat of ['bare', 'RAW', 'img', 'qcow3']) {
        const created = await failure(owner.images.createImage({ image: { diskFormat } }));
        expect(created.code, diskFormat).toBe('INVALID_ARGUMENT');
        const updated = await failure(owner.images.updateImage({ image: { id: image.id, diskFormat }, updateMask: ['disk_format'] }));
        expect(updated.code, diskFormat).toBe('INVALID_ARGUMENT');
      }
      expect((await owner.images.getImage({ id: image.id })).containerFormat).toBe('');
    });
  });

  describe('lengths', () => {
    it('name of 255 characters is accepted and 256 rejected', async () => {
      const { owner } = await parties();
      const longest = EMOJI.repeat(255);

      const created = await owner.images.createImage({ image: { name: longest } });
      expect(created.name).toBe(longest);
      expect((await owner.images.getImage({ id: created.id })).name).toBe(longest);
      const updated = await owner.images.updateImage({ image: { id: created.id, name: 'a'.repeat(255) }, updateMask: ['name'] });
      expect(updated.name).toBe('a'.repeat(255));

      for (const name of [EMOJI.repeat(256), 'a'.repeat(256)]) {
        expect((await failure(owner.images.createImage({ image: { name } }))).code).toBe('INVALID_ARGUMENT');
        const update = await failure(owner.images.updateImage({ image: { id: created.id, name }, updateMask: ['name'] }));
        expect(update.code).toBe('INVALID_ARGUMENT');
      }
    });

    it('tag of 255 characters is accepted and 256 rejected', async () => {
      const { owner } = await parties();
      const longest = EMOJI.repeat(255);
      const tooLong = EMOJI.repeat(256);

      const created = await owner.images.createImage({ image: { tags: [longest] } });
      expect(created.tags).toEqual([longest]);
      const added = await owner.images.addImageTag({ imageId: created.id, tag: 'b'.repeat(255) });
      expect([...added.tags].sort()).toEqual(['b'.repeat(255), longest].sort());
      expect((await owner.images.getImage({ id: created.id })).tags).toContain(longest);

      expect((await failure(owner.images.createImage({ image: { tags: [tooLong] } }))).code).toBe('INVALID_ARGUMENT');
      expect((await failure(owner.images.addImageTag({ imageId: created.id, tag: tooLong }))).code).toBe('INVALID_ARGUMENT');
      const update = await failure(owner.images.updateImage({ image: { id: created.id, tags: [tooLong] }, updateMask: ['tags'] }));
      expect(update.code).toBe('INVALID_ARGUMENT');
      expect((await owner.images.getImage({ id: created.id })).tags).toHaveLength(2);
    });

    it('property key of 255 characters is accepted and 256 rejected', async () => {
      const { owner } = await parties();
      const longest = EMOJI.repeat(255);
      const tooLong = EMOJI.repeat(256);

      const created = await owner.images.createImage({ image: { properties: new Map([[longest, 'v']]) } });
      expect(created.properties.get(longest)).toBe('v');
      expect((await owner.images.getImage({ id: created.id })).properties.get(longest)).toBe('v');

      const created256 = await failure(owner.images.createImage({ image: { properties: new Map([[tooLong, 'v']]) } }));
      expect(created256.code).toBe('INVALID_ARGUMENT');
      const replaced = await failure(
        owner.images.updateImage({ image: { id: created.id, properties: new Map([[tooLong, 'v']]) }, updateMask: ['properties'] }),
      );
      expect(replaced.code).toBe('INVALID_ARGUMENT');
      const single = await failure(
        owner.images.updateImage({
          image: { id: created.id, properties: new Map([[tooLong, 'v']]) },
          updateMask: [`properties.${tooLong}`],
        }),
      );
      expect(single.code).toBe('INVALID_ARGUMENT');
      expect([...(await owner.images.getImage({ id: created.id })).properties.keys()]).toEqual([longest]);
    });

    it('property value of 65,535 bytes is accepted and 65,536 rejected', async () => {
      const { owner } = await parties();
      const asciiLongest = 'a'.repeat(65_535);
      // 21,845 three-byte characters make 65,535 bytes.
      const euroLongest = '\u20AC'.repeat(21_845);
      expect(Buffer.byteLength(euroLongest, 'utf8')).toBe(65_535);

      const created = await owner.images.createImage({
        image: { properties: new Map([['ascii', asciiLongest], ['euro', euroLongest]]) },
      });
      const stored = await owner.images.getImage({ id: created.id });
      expect(stored.properties.get('ascii')).toBe(asciiLongest);
      expect(stored.properties.get('euro')).toBe(euroLongest);

      for (const value of ['a'.repeat(65_536), `${euroLongest}a`, EMOJI.repeat(16_384)]) {
        expect(Buffer.byteLength(value, 'utf8')).toBe(65_536);
        const create = await failure(owner.images.createImage({ image: { properties: new Map([['big', value]]) } }));
        expect(create.code).toBe('INVALID_ARGUMENT');
        const single = await failure(
          owner.images.updateImage({ image: { id: created.id, properties: new Map([['big', value]]) }, updateMask: ['properties.big'] }),
        );
        expect(single.code).toBe('INVALID_ARGUMENT');
        const replace = await failure(
          owner.images.updateImage({ image: { id: created.id, properties: new Map([['big', value]]) }, updateMask: ['properties'] }),
        );
        expect(replace.code).toBe('INVALID_ARGUMENT');
      }
      expect((await owner.images.getImage({ id: created.id })).properties.has('big')).toBe(false);
    });

    it('empty tag and empty property key are rejected', async () => {
      const { owner } = await parties();
      const image = await owner.images.createImage({ image: {} });
      const calls: [string, () => Promise<unknown>][] = [
        ['create with tag', () => owner.images.createImage({ image: { tags: ['a', ''] } })],
        ['add tag', () => owner.images.addImageTag({ imageId: image.id, tag: '' })],
        ['remove tag', () => owner.images.removeImageTag({ imageId: image.id, tag: '' })],
        ['update tags', () => owner.images.updateImage({ image: { id: image.id, tags: [''] }, updateMask: ['tags'] })],
        ['create with key', () => owner.images.createImage({ image: { properties: new Map([['', 'v']]) } })],
        [
          'replace properties',
          () => owner.images.updateImage({ image: { id: image.id, properties: new Map([['', 'v']]) }, updateMask: ['properties'] }),
        ],
        [
          'property path',
          () => owner.images.updateImage({ image: { id: image.id, properties: new Map([['', 'v']]) }, updateMask: ['properties.'] }),
        ],
      ];

      for (const [label, call] of calls) {
        expect((await failure(call())).code, label).toBe('INVALID_ARGUMENT');
      }
    });

    it('negative min_disk and min_ram are rejected', async () => {
      const { owner } = await parties();
      const image = await owner.images.createImage({ image: { minDisk: 0, minRam: 0 } });

      expect((await failure(owner.images.createImage({ image: { minDisk: -1 } }))).code).toBe('INVALID_ARGUMENT');
      expect((await failure(owner.images.createImage({ image: { minRam: -1 } }))).code).toBe('INVALID_ARGUMENT');
      const disk = await failure(owner.images.updateImage({ image: { id: image.id, minDisk: -5 }, updateMask: ['min_disk'] }));
      expect(disk.code).toBe('INVALID_ARGUMENT');
      const ram = await failure(owner.images.updateImage({ image: { id: image.id, minRam: -2147483648 }, updateMask: ['min_ram'] }));
      expect(ram.code).toBe('INVALID_ARGUMENT');

      const updated = await owner.images.updateImage({
        image: { id: image.id, minDisk: 2147483647, minRam: 512 },
        updateMask: ['min_disk', 'min_ram'],
      });
      expect(updated.minDisk).toBe(2147483647);
      expect(updated.minRam).toBe(512);
    });
  });

  describe('counts', () => {
    it('128 tags pass and 129 are rejected with nothing changed', async () => {
      const { owner, ownerProject } = await parties();
      const tags128 = numbered('tag', 128);
      const tags129 = numbered('tag', 129);

      const rejected = await failure(owner.images.createImage({ image: { name: 'too-many-tags', tags: tags129 } }));
      expect(rejected.code).toBe('RESOURCE_EXHAUSTED');
      const listed = await owner.images.listImages({ owner: ownerProject, name: 'too-many-tags' });
      expect(listed.images).toEqual([]);

      const image = await owner.images.createImage({ image: { tags: tags128 } });
      expect(image.tags).toHaveLength(128);

      const added = await failure(owner.images.addImageTag({ imageId: image.id, tag: 'one-more' }));
      expect(added.code).toBe('RESOURCE_EXHAUSTED');
      const replaced = await failure(owner.images.updateImage({ image: { id: image.id, tags: tags129, name: 'x' }, updateMask: ['tags', 'name'] }));
      expect(replaced.code).toBe('RESOURCE_EXHAUSTED');
      expect(await owner.images.getImage({ id: image.id })).toEqual(image);

      const small = await owner.images.createImage({ image: { tags: ['a'] } });
      const updated = await owner.images.updateImage({ image: { id: small.id, tags: tags128 }, updateMask: ['tags'] });
      expect(updated.tags).toHaveLength(128);
    });

    it('duplicate tags count once toward the limit', async () => {
      const { owner } = await parties();
      const tags = [...numbered('tag', 128), 'tag-000'];

      const image = await owner.images.createImage({ image: { tags } });

      expect(image.tags).toHaveLength(128);
    });

    it('128 properties pass and 129 are rejected with nothing changed', async () => {
      const { owner, ownerProject } = await parties();
      const properties128 = new Map(numbered('key', 128).map((key) => [key, 'v']));
      const properties129 = new Map(numbered('key', 129).map((key) => [key, 'v']));

      const rejected = await failure(owner.images.createImage({ image: { name: 'too-many-properties', properties: properties129 } }));
      expect(rejected.code).toBe('RESOURCE_EXHAUSTED');
      const listed = await owner.images.listImages({ owner: ownerProject, name: 'too-many-properties' });
      expect(listed.images).toEqual([]);

      const image = await owner.images.createImage({ image: { properties: properties128 } });
      expect(image.properties.size).toBe(128);

      const single = await failure(
        owner.images.updateImage({ image: { id: image.id, properties: new Map([['one-more', 'v']]) }, updateMask: ['properties.one-more'] }),
      );
      expect(single.code).toBe('RESOURCE_EXHAUSTED');
      const replaced = await failure(
        owner.images.updateImage({ image: { id: image.id, properties: properties129, name: 'x' }, updateMask: ['properties', 'name'] }),
      );
      expect(replaced.code).toBe('RESOURCE_EXHAUSTED');
      expect(await owner.images.getImage({ id: image.id })).toEqual(image);

      const swapped = await owner.images.updateImage({
        image: { id: image.id, properties: new Map([['one-more', 'v']]) },
        updateMask: ['properties.key-000', 'properties.one-more'],
      });
      expect(swapped.properties.size).toBe(128);
      expect(swapped.properties.has('key-000')).toBe(false);
      expect(swapped.properties.get('one-more')).toBe('v');
    });
  });

  describe('property keys', () => {
    it('reserved property keys are rejected', async () => {
      const { owner } = await parties();
      const image = await owner.images.createImage({ image: {} });

      for (const key of [...IMAGE_FIELD_NAMES, ...GLANCE_BASE_NAMES, ...GLANCE_PREFIXED_KEYS]) {
        const properties = new Map([[key, 'v']]);
        const create = await failure(owner.images.createImage({ image: { properties } }));
        expect(create.code, key).toBe('INVALID_ARGUMENT');
        const replace = await failure(owner.images.updateImage({ image: { id: image.id, properties }, updateMask: ['properties'] }));
        expect(replace.code, key).toBe('INVALID_ARGUMENT');
        const single = await failure(owner.images.updateImage({ image: { id: image.id, properties }, updateMask: [`properties.${key}`] }));
        expect(single.code, key).toBe('INVALID_ARGUMENT');
      }
      expect((await owner.images.getImage({ id: image.id })).properties.size).toBe(0);
    });

    it('keys that only resemble reserved ones are accepted', async () => {
      const { owner } = await parties();
      const keys = ['os_distro', 'os_glance', 'hw_disk_bus', 'name_suffix', 'x_os_glance_y'];

      const image = await owner.images.createImage({ image: { properties: new Map(keys.map((key) => [key, 'v'])) } });

      expect([...image.properties.keys()].sort()).toEqual([...keys].sort());
    });
  });

  describe('tags', () => {
    it('duplicate tags are merged', async () => {
      const { owner } = await parties();

      const image = await owner.images.createImage({ image: { tags: ['a', 'b', 'a', 'b', 'c'] } });
      expect([...image.tags].sort()).toEqual(['a', 'b', 'c']);

      const updated = await owner.images.updateImage({ image: { id: image.id, tags: ['x', 'x', 'y'] }, updateMask: ['tags'] });
      expect([...updated.tags].sort()).toEqual(['x', 'y']);
      expect([...(await owner.images.getImage({ id: image.id })).tags].sort()).toEqual(['x', 'y']);
    });

    it('tags that differ in case or trailing space are distinct', async () => {
      const { owner } = await parties();
      const tags = ['linux', 'Linux', 'linux ', 'caf\u00e9', 'cafe\u0301'];

      const image = await owner.images.createImage({ image: { tags } });
      expect([...image.tags].sort()).toEqual([...tags].sort());
      expect([...(await owner.images.getImage({ id: image.id })).tags].sort()).toEqual([...tags].sort());

      const removed = await owner.images.removeImageTag({ imageId: image.id, tag: 'linux ' });
      expect([...removed.tags].sort()).toEqual(tags.filter((tag) => tag !== 'linux ').sort());
    });

    it('property keys that differ in case or trailing space are distinct', async () => {
      const { owner } = await parties();
      const properties = new Map([['distro', '1'], ['Distro', '2'], ['distro ', '3']]);

      const image = await owner.images.createImage({ image: { properties } });

      expect((await owner.images.getImage({ id: image.id })).properties).toEqual(properties);
      expect(image.properties).toEqual(properties);
    });

    it('adding a present tag changes nothing', async () => {
      const { owner } = await parties();
      const image = await owner.images.createImage({ image: { tags: ['present'] } });
      await sleep(5);

      const again = await owner.images.addImageTag({ imageId: image.id, tag: 'present' });

      expect(again).toEqual(image);
      expect(await owner.images.getImage({ id: image.id })).toEqual(image);
    });

    it('adding and removing a tag advance update_time', async () => {
      const { owner } = await parties();
      const image = await owner.images.createImage({ image: {} });
      await sleep(5);

      const added = await owner.images.addImageTag({ imageId: image.id, tag: 'new' });
      expect(added.tags).toEqual(['new']);
      expect(added.updateTime!.getTime()).toBeGreaterThan(image.updateTime!.getTime());
      await sleep(5);

      const removed = await owner.images.removeImageTag({ imageId: image.id, tag: 'new' });
      expect(removed.tags).toEqual([]);
      expect(removed.updateTime!.getTime()).toBeGreaterThan(added.updateTime!.getTime());
    });

    it('removing an absent tag is NOT_FOUND', async () => {
      const { owner } = await parties();
      const image = await owner.images.createImage({ image: { tags: ['present'] } });

      const result = await failure(owner.images.removeImageTag({ imageId: image.id, tag: 'absent' }));

      expect(result.code).toBe('NOT_FOUND');
      expect(await owner.images.getImage({ id: image.id })).toEqual(image);
    });
  });

  describe('update masks', () => {
    it('empty update mask is rejected', async () => {
      const { owner } = await parties();
      const image = await owner.images.createImage({ image: { name: 'kept' } });

      for (const updateMask of [undefined, []]) {
        const result = await failure(owner.images.updateImage({ image: { id: image.id, name: 'changed' }, updateMask }));
        expect(result.code).toBe('INVALID_ARGUMENT');
      }
      expect((await owner.images.getImage({ id: image.id })).name).toBe('kept');
    });

    it('unknown mask path is rejected', async () => {
      const { owner } = await parties();
      const image = await owner.images.createImage({ image: { name: 'kept' } });

      for (const path of ['nonsense', 'Name', 'image.name', 'tags.x', 'minDisk', '']) {
        const result = await failure(owner.images.updateImage({ image: { id: image.id, name: 'changed' }, updateMask: ['name', path] }));
        expect(result.code, path).toBe('INVALID_ARGUMENT');
      }
      expect((await owner.images.getImage({ id: image.id })).name).toBe('kept');
    });

    it('read-only mask paths are rejected', async () => {
      const { owner } = await parties();
      const image = await owner.images.createImage({ image: {} });
      const paths = ['id', 'status', 'size', 'virtual_size', 'checksum', 'hash_algo', 'hash_value', 'create_time', 'update_time'];

      for (const path of paths) {
        const result = await failure(
          owner.images.updateImage({
            image: { id: image.id, status: ImageStatus.IMAGE_STATUS_ACTIVE, size: '1', checksum: 'x', createTime: new Date(0) },
            updateMask: [path],
          }),
        );
        expect(result.code, path).toBe('INVALID_ARGUMENT');
      }
      expect(await owner.images.getImage({ id: image.id })).toEqual(image);
    });

    it('unspecified visibility in the mask is rejected', async () => {
      const { owner } = await parties();
      const image = await owner.images.createImage({ image: { visibility: Visibility.VISIBILITY_PRIVATE } });

      const result = await failure(
        owner.images.updateImage({ image: { id: image.id, visibility: Visibility.VISIBILITY_UNSPECIFIED }, updateMask: ['visibility'] }),
      );

      expect(result.code).toBe('INVALID_ARGUMENT');
      expect((await owner.images.getImage({ id: image.id })).visibility).toBe(Visibility.VISIBILITY_PRIVATE);
    });

    it('fields outside the mask are left unchanged', async () => {
      const { owner } = await parties();
      const image = await owner.images.createImage({ image: { name: 'old', minDisk: 1, tags: ['t'], properties: new Map([['k', 'v']]) } });

      const updated = await owner.images.updateImage({
        image: { id: image.id, name: 'new', minDisk: 9, protected: true, tags: [], properties: new Map() },
        updateMask: ['name'],
      });

      expect(updated.name).toBe('new');
      expect(updated.minDisk).toBe(1);
      expect(updated.protected).toBe(false);
      expect(updated.tags).toEqual(['t']);
      expect(updated.properties).toEqual(new Map([['k', 'v']]));
    });

    it('properties path replaces the whole map', async () => {
      const { owner } = await parties();
      const image = await owner.images.createImage({ image: { properties: new Map([['a', '1'], ['b', '2']]) } });

      const updated = await owner.images.updateImage({
        image: { id: image.id, properties: new Map([['b', '20'], ['c', '3']]) },
        updateMask: ['properties'],
      });
      expect(updated.properties).toEqual(new Map([['b', '20'], ['c', '3']]));

      const cleared = await owner.images.updateImage({ image: { id: image.id }, updateMask: ['properties'] });
      expect(cleared.properties.size).toBe(0);
      expect((await owner.images.getImage({ id: image.id })).properties.size).toBe(0);
    });

    it('property path sets or removes one key', async () => {
      const { owner } = await parties();
      const dotted = 'com.example:os.version';
      const image = await owner.images.createImage({ image: { properties: new Map([['keep', 'k'], ['drop', 'd']]) } });

      const set = await owner.images.updateImage({
        image: { id: image.id, properties: new Map([[dotted, '24.04'], ['keep', 'ignored']]) },
        updateMask: [`properties.${dotted}`],
      });
      expect(set.properties).toEqual(new Map([['keep', 'k'], ['drop', 'd'], [dotted, '24.04']]));

      const changed = await owner.images.updateImage({
        image: { id: image.id, properties: new Map([[dotted, '26.04']]) },
        updateMask: [`properties.${dotted}`, 'properties.drop'],
      });
      expect(changed.properties).toEqual(new Map([['keep', 'k'], [dotted, '26.04']]));

      const removed = await owner.images.updateImage({ image: { id: image.id }, updateMask: [`properties.${dotted}`] });
      expect(removed.properties).toEqual(new Map([['keep', 'k']]));
      expect((await owner.images.getImage({ id: image.id })).properties).toEqual(new Map([['keep', 'k']]));
    });

    it('removing an absent property key is allowed', async () => {
      const { owner } = await parties();
      const image = await owner.images.createImage({ image: { properties: new Map([['keep', 'k']]) } });

      const updated = await owner.images.updateImage({ image: { id: image.id }, updateMask: ['properties.absent'] });

      expect(updated.properties).toEqual(new Map([['keep', 'k']]));
    });

    it('setting fields to their current values changes only update_time', async () => {
      const { owner, ownerProject } = await parties();
      const image = await owner.images.createImage({
        image: {
          name: 'same',
          visibility: Visibility.VISIBILITY_PRIVATE,
          containerFormat: 'bare',
          diskFormat: 'raw',
          minDisk: 3,
          minRam: 256,
          tags: ['a', 'b'],
          properties: new Map([['k', 'v']]),
        },
      });
      await setStoredStatus(image.id, 'active');
      const before = await owner.images.getImage({ id: image.id });
      await sleep(5);

      const updated = await owner.images.updateImage({
        image: { ...before, owner: ownerProject, tags: ['b', 'a'] },
        updateMask: [
          'name', 'visibility', 'protected', 'hidden', 'owner', 'container_format', 'disk_format',
          'min_disk', 'min_ram', 'tags', 'properties', 'properties.k',
        ],
      });

      expect(withoutUpdateTime(updated)).toEqual(withoutUpdateTime(before));
      expect(updated.updateTime!.getTime()).toBeGreaterThan(before.updateTime!.getTime());
      const stored = await owner.images.getImage({ id: image.id });
      expect(withoutUpdateTime(stored)).toEqual(withoutUpdateTime(before));
      expect(stored.updateTime).toEqual(updated.updateTime);
    });
  });

  describe('deactivating and reactivating', () => {
    it('owner deactivates and reactivates an active image', async () => {
      const { owner } = await parties();
      const image = await owner.images.createImage({ image: {} });
      await setStoredStatus(image.id, 'active');

      const deactivated = await owner.images.deactivateImage({ id: image.id });
      expect(deactivated.status).toBe(ImageStatus.IMAGE_STATUS_DEACTIVATED);
      expect((await owner.images.getImage({ id: image.id })).status).toBe(ImageStatus.IMAGE_STATUS_DEACTIVATED);

      const reactivated = await owner.images.reactivateImage({ id: image.id });
      expect(reactivated.status).toBe(ImageStatus.IMAGE_STATUS_ACTIVE);
      expect((await owner.images.getImage({ id: image.id })).status).toBe(ImageStatus.IMAGE_STATUS_ACTIVE);
    });

    it('admin deactivates and reactivates another project image', async () => {
      const { owner, admin } = await parties();
      const image = await owner.images.createImage({ image: {} });
      await setStoredStatus(image.id, 'active');

      expect((await admin.images.deactivateImage({ id: image.id })).status).toBe(ImageStatus.IMAGE_STATUS_DEACTIVATED);
      expect((await admin.images.reactivateImage({ id: image.id })).status).toBe(ImageStatus.IMAGE_STATUS_ACTIVE);
    });

    it('deactivate and reactivate are no-ops on their target status', async () => {
      const { owner } = await parties();
      const image = await owner.images.createImage({ image: {} });
      await setStoredStatus(image.id, 'deactivated');
      const deactivated = await owner.images.getImage({ id: image.id });
      await sleep(5);

      expect(await owner.images.deactivateImage({ id: image.id })).toEqual(deactivated);
      expect(await owner.images.getImage({ id: image.id })).toEqual(deactivated);

      await setStoredStatus(image.id, 'active');
      const active = await owner.images.getImage({ id: image.id });
      await sleep(5);
      expect(await owner.images.reactivateImage({ id: image.id })).toEqual(active);
      expect(await owner.images.getImage({ id: image.id })).toEqual(active);
    });

    it('deactivate and reactivate fail in any other status', async () => {
      const { owner } = await parties();

      for (const status of STATUSES_WITHOUT_ACTIVATION) {
        const image = await owner.images.createImage({ image: {} });
        await setStoredStatus(image.id, status);

        expect((await failure(owner.images.deactivateImage({ id: image.id }))).code, status).toBe('FAILED_PRECONDITION');
        expect((await failure(owner.images.reactivateImage({ id: image.id }))).code, status).toBe('FAILED_PRECONDITION');
        const [stored] = await registry.service.database.knex('images').select('status').where('id', image.id);
        expect(stored.status).toBe(status);
      }
    });

    it('reader who is not owner cannot deactivate or reactivate', async () => {
      const { ownerProject, other, otherProject, owner, admin } = await parties();
      const publicImage = await createPublicImage(admin, ownerProject);
      const sharedImage = await owner.images.createImage({ image: {} });
      await owner.members.createMember({ imageId: sharedImage.id, memberId: otherProject });

      for (const image of [publicImage, sharedImage]) {
        await setStoredStatus(image.id, 'active');
        expect((await failure(other.images.deactivateImage({ id: image.id }))).code).toBe('PERMISSION_DENIED');
        await setStoredStatus(image.id, 'deactivated');
        expect((await failure(other.images.reactivateImage({ id: image.id }))).code).toBe('PERMISSION_DENIED');
        expect((await other.images.getImage({ id: image.id })).status).toBe(ImageStatus.IMAGE_STATUS_DEACTIVATED);
      }
    });

    it('deactivated image stays listed and readable', async () => {
      const { owner, ownerProject, other, admin } = await parties();
      const image = await createPublicImage(admin, ownerProject);
      await setStoredStatus(image.id, 'active');
      await owner.images.deactivateImage({ id: image.id });

      for (const client of [owner, other, admin]) {
        expect((await client.images.getImage({ id: image.id })).status).toBe(ImageStatus.IMAGE_STATUS_DEACTIVATED);
        const listed = await client.images.listImages({ ids: [image.id] });
        expect(listed.images.map((listedImage) => listedImage.id)).toEqual([image.id]);
      }
    });
  });

  describe('concurrency', () => {
    it('two concurrent updates of different fields both survive', async () => {
      const { owner } = await parties();

      for (let round = 0; round < 10; round++) {
        const image = await owner.images.createImage({ image: { name: 'start' } });

        await Promise.all([
          owner.images.updateImage({ image: { id: image.id, name: `renamed-${round}` }, updateMask: ['name'] }),
          owner.images.updateImage({ image: { id: image.id, minDisk: round + 10 }, updateMask: ['min_disk'] }),
        ]);

        const stored = await owner.images.getImage({ id: image.id });
        expect(stored.name, `round ${round}`).toBe(`renamed-${round}`);
        expect(stored.minDisk, `round ${round}`).toBe(round + 10);
      }
    });

    it('many concurrent changes of one image all survive', async () => {
      const { owner } = await parties();

      for (let round = 0; round < 5; round++) {
        const image = await owner.images.createImage({ image: { name: 'start', properties: new Map([['base', 'b']]) } });

        await Promise.all([
          owner.images.updateImage({ image: { id: image.id, name: `renamed-${round}` }, updateMask: ['name'] }),
          owner.images.updateImage({ image: { id: image.id, minDisk: round + 10 }, updateMask: ['min_disk'] }),
          owner.images.updateImage({ image: { id: image.id, properties: new Map([['one', '1']]) }, updateMask: ['properties.one'] }),
          owner.images.updateImage({ image: { id: image.id, properties: new Map([['two', '2']]) }, updateMask: ['properties.two'] }),
          owner.images.addImageTag({ imageId: image.id, tag: 'w' }),
          owner.images.addImageTag({ imageId: image.id, tag: 'z' }),
        ]);

        const stored = await owner.images.getImage({ id: image.id });
        expect(stored.name, `round ${round}`).toBe(`renamed-${round}`);
        expect(stored.minDisk, `round ${round}`).toBe(round + 10);
        expect(stored.properties, `round ${round}`).toEqual(new Map([['base', 'b'], ['one', '1'], ['two', '2']]));
        expect([...stored.tags].sort(), `round ${round}`).toEqual(['w', 'z']);
      }
    });
  });
});
