/** Assembles the gRPC server: both services, health and reflection. */
import * as grpc from '@grpc/grpc-js';
import type { RegistryContext } from '../app/registry-context.js';
import type { HealthMonitor } from '../platform/health.js';
import { imageServiceDefinition, imageServiceHandlers } from './image-handlers.js';
import { memberServiceDefinition, memberServiceHandlers } from './member-handlers.js';
import { addReflection } from './reflection.js';
import type { HandlerDependencies } from './call-adapters.js';

/**
 * Largest request accepted. An image may carry 128 properties of up to
 * 64 KiB each, about 8.4 MB, so the grpc-js default of 4 MiB is too small.
 */
export const MAX_RECEIVE_MESSAGE_BYTES = 16 * 1024 * 1024;

export function createGrpcServer(
  context: RegistryContext,
  dependencies: HandlerDependencies,
  health: HealthMonitor,
): grpc.Server {
  const server = new grpc.Server({ 'grpc.max_receive_message_length': MAX_RECEIVE_MESSAGE_BYTES });
  server.addService(imageServiceDefinition, imageServiceHandlers(context, dependencies));
  server.addService(memberServiceDefinition, memberServiceHandlers(context, dependencies));
  health.implementation.addToServer(server);
  addReflection(server);
  return server;
}

/** PEM files of the server's TLS identity; with a client CA, clients must present a certificate it signed. */
export interface TlsFiles {
  certificate: Buffer;
  privateKey: Buffer;
  clientCa: Buffer | null;
}

/** Binds `address` (host:port; port 0 picks a free one) and returns the bound port. */
export function bindServer(server: grpc.Server, address: string, tls: TlsFiles | null): Promise<number> {
  const credentials =
    tls === null
      ? grpc.ServerCredentials.createInsecure()
      : grpc.ServerCredentials.createSsl(
          tls.clientCa,
          [{ cert_chain: tls.certificate, private_key: tls.privateKey }],
          tls.clientCa !== null,
        );
  return new Promise((resolve, reject) => {
    server.bindAsync(address, credentials, (error, port) => {
      if (error) reject(error);
      else resolve(port);
    });
  });
}

/** Time given to statuses sent at the end of the grace period to reach the clients. */
const STATUS_FLUSH_MS = 100;

/**
 * Stops taking calls and waits for running ones. After `graceMs` it ends
 * those still running with `endRunningCalls`, then closes every connection.
 */
export function shutdownServer(
  server: grpc.Server,
  graceMs: number,
  endRunningCalls: () => void = () => {},
): Promise<void> {
  return new Promise((resolve) => {
    const timer = setTimeout(() => {
      // Calls still running get UNAVAILABLE, which clients retry, and not
      // the CANCELLED that a forced shutdown alone would give them.
      endRunningCalls();
      setTimeout(() => {
        server.forceShutdown();
        resolve();
      }, STATUS_FLUSH_MS);
    }, graceMs);
    server.tryShutdown(() => {
      clearTimeout(timer);
      resolve();
    });
  });
}
