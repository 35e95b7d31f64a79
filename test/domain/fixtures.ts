/** Builders for domain tests: callers, images and the RegistryError an action throws. */
import { RegistryError } from '../../src/domain/errors.js';
import { type Caller, type Image, emptyRecord } from '../../src/domain/model.js';

/** The project that owns every image built by makeImage unless a test names another. */
export const OWNER_PROJECT = 'proj-owner';
export const OTHER_PROJECT = 'proj-other';
export const ADMIN_PROJECT = 'proj-admin';
export const IMAGE_ID = '6f1c2b7e-3d4a-4e5f-9a8b-0c1d2e3f4a5b';

/** Builds a caller with the `member` role, which may read and write. */
export function projectCaller(projectId: string): Caller {
  return { projectId, subject: `user-of-${projectId}`, isAdmin: false, canRead: true, canWrite: true };
}

/** Builds a caller with the `admin` role. */
export function adminCaller(projectId: string = ADMIN_PROJECT): Caller {
  return { projectId, subject: `admin-of-${projectId}`, isAdmin: true, canRead: true, canWrite: true };
}

/** Builds an active shared image of OWNER_PROJECT with no data, tags or properties, then applies `fields`. */
export function makeImage(fields: Partial<Image> = {}): Image {
  return {
    id: IMAGE_ID,
    name: 'ubuntu-24.04',
    status: 'active',
    visibility: 'shared',
    protected: false,
    hidden: false,
    owner: OWNER_PROJECT,
    containerFormat: 'bare',
    diskFormat: 'qcow2',
    minDisk: 0,
    minRam: 0,
    size: null,
    virtualSize: null,
    checksum: '',
    hashAlgo: '',
    hashValue: '',
    tags: [],
    properties: emptyRecord(),
    createTime: 1_700_000_000_000,
    updateTime: 1_700_000_000_000,
    ...fields,
  };
}

/** Builds a prototype-free property record, as the domain code stores properties. */
export function makeProperties(entries: Iterable<readonly [string, string]>): Record<string, string> {
  const properties = emptyRecord();
  for (const [key, value] of entries) properties[key] = value;
  return properties;
}

/**
 * Runs `action` and returns the RegistryError it throws. Fails the test when
 * it throws nothing or throws anything other than a RegistryError.
 */
export function catchRegistryError(action: () => unknown): RegistryError {
  try {
    action();
  } catch (error) {
    if (error instanceof RegistryError) return error;
    throw error;
  }
  throw new Error('expected a RegistryError, but the action returned normally');
}
