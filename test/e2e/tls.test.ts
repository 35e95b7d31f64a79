/** TLS and mutual TLS, with certificates that the test makes with openssl. */
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import * as grpc from '@grpc/grpc-js';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ImageServiceClient } from '../../gen/imageregistry/v1/image_service.js';
import { RegistryHarness } from '../support/registry-harness.js';

interface Certificates {
  folder: string;
  ca: Buffer;
  serverCert: string;
  serverKey: string;
  clientCert: Buffer;
  clientKey: Buffer;
}

/** Makes a CA, a server certificate for 127.0.0.1 and a client certificate, all signed by the CA. */
function makeCertificates(): Certificates {
  const folder = mkdtempSync(join(tmpdir(), 'registry-tls-'));
  const path = (name: string) => join(folder, name);
  const openssl = (...args: string[]) => execFileSync('openssl', args, { stdio: 'pipe' });

  openssl('req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-keyout', path('ca.key'), '-out', path('ca.pem'),
    '-days', '1', '-subj', '/CN=registry test CA');
  writeFileSync(path('server.ext'), 'subjectAltName=IP:127.0.0.1\n');
  for (const [name, extension] of [['server', ['-extfile', path('server.ext')]], ['client', []]] as const) {
    openssl('req', '-newkey', 'rsa:2048', '-nodes', '-keyout', path(`${name}.key`), '-out', path(`${name}.csr`),
      '-subj', `/CN=registry test ${name}`);
    openssl('x509', '-req', '-in', path(`${name}.csr`), '-CA', path('ca.pem'), '-CAkey', path('ca.key'),
      '-CAcreateserial', '-out', path(`${name}.pem`), '-days', '1', ...extension);
  }
  return {
    folder,
    ca: readFileSync(path('ca.pem')),
    serverCert: path('server.pem'),
    serverKey: path('server.key'),
    clientCert: readFileSync(path('client.pem')),
    clientKey: readFileSync(path('client.key')),
  };
}

/** Calls GetImage for an unknown id and returns the status code name; NOT_FOUND means the call got through. */
function callCode(address: string, credentials: grpc.ChannelCredentials, token: string): Promise<string> {
  const client = new ImageServiceClient(address, credentials);
  const metadata = new grpc.Metadata();
  metadata.set('authorization', `Bearer ${token}`);
  return new Promise((resolve) => {
    client.getImage(
      { id: '6f1c6a5e-1111-4222-8333-944455556666' },
      metadata,
      { deadline: Date.now() + 5000 },
      (error) => {
        client.close();
        resolve(error ? grpc.status[error.code] : 'OK');
      },
    );
  });
}

describe('TLS', () => {
  let certificates: Certificates;
  beforeAll(() => {
    certificates = makeCertificates();
  });
  afterAll(() => rmSync(certificates.folder, { recursive: true, force: true }));

  it('serves TLS clients and refuses plaintext ones', async () => {
    const registry = await RegistryHarness.start('sqlite', {
      GRPC_TLS_CERT: certificates.serverCert,
      GRPC_TLS_KEY: certificates.serverKey,
    });
    try {
      const token = await registry.token('proj-tls');
      const overTls = await callCode(registry.address, grpc.credentials.createSsl(certificates.ca), token);
      expect(overTls).toBe('NOT_FOUND');
      const plaintext = await callCode(registry.address, grpc.credentials.createInsecure(), token);
      expect(plaintext).toBe('UNAVAILABLE');
    } finally {
      await registry.stop();
    }
  });

  it('requires a client certificate signed by the client CA', async () => {
    const registry = await RegistryHarness.start('sqlite', {
      GRPC_TLS_CERT: certificates.serverCert,
      GRPC_TLS_KEY: certificates.serverKey,
      GRPC_TLS_CLIENT_CA: join(certificates.folder, 'ca.pem'),
    });
    try {
      const token = await registry.token('proj-mtls');
      const withCertificate = await callCode(
        registry.address,
        grpc.credentials.createSsl(certificates.ca, certificates.clientKey, certificates.clientCert),
        token,
      );
      expect(withCertificate).toBe('NOT_FOUND');
      const without = await callCode(registry.address, grpc.credentials.createSsl(certificates.ca), token);
      expect(without).toBe('UNAVAILABLE');
    } finally {
      await registry.stop();
    }
  });

  it('rejects a certificate without its key, and an unreadable file', async () => {
    await expect(RegistryHarness.start('sqlite', { GRPC_TLS_CERT: certificates.serverCert })).rejects.toThrow(
      'GRPC_TLS_CERT and GRPC_TLS_KEY together',
    );
    await expect(
      RegistryHarness.start('sqlite', { GRPC_TLS_CERT: '/nonexistent/server.pem', GRPC_TLS_KEY: certificates.serverKey }),
    ).rejects.toThrow('GRPC_TLS_CERT="/nonexistent/server.pem"');
  });
});
