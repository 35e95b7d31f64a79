/**
 * The bare grpc-js server that bench/load.ts compares the registry with: one
 * unary method whose handler returns an empty message at once, with no
 * protobuf, authentication, logging or database.
 *
 * Listens on BARE_LISTEN (default 127.0.0.1:0), writes one JSON line
 * {"msg":"bare unary server listening","address":"host:port"} to stdout,
 * and stops on SIGTERM or SIGINT.
 */
import * as grpc from '@grpc/grpc-js';
import { BARE_EMPTY_PATH } from './load/calls.js';

const SHUTDOWN_GRACE_MS = 2000;
const EMPTY = Buffer.alloc(0);
const passBuffer = (buffer: Buffer): Buffer => buffer;

const definition = {
  empty: {
    path: BARE_EMPTY_PATH,
    requestStream: false,
    responseStream: false,
    requestSerialize: passBuffer,
    requestDeserialize: passBuffer,
    responseSerialize: passBuffer,
    responseDeserialize: passBuffer,
  },
} satisfies grpc.ServiceDefinition;

function empty(_call: grpc.ServerUnaryCall<Buffer, Buffer>, callback: grpc.sendUnaryData<Buffer>): void {
  callback(null, EMPTY);
}

function bind(server: grpc.Server, address: string): Promise<number> {
  return new Promise((resolve, reject) => {
    server.bindAsync(address, grpc.ServerCredentials.createInsecure(), (error, port) => (error ? reject(error) : resolve(port)));
  });
}

const server = new grpc.Server();
server.addService(definition, { empty });
const listen = process.env.BARE_LISTEN || '127.0.0.1:0';
const port = await bind(server, listen);
const host = listen.slice(0, listen.lastIndexOf(':'));
console.log(JSON.stringify({ msg: 'bare unary server listening', address: `${host}:${port}` }));

const shutdown = () => {
  const timer = setTimeout(() => {
    server.forceShutdown();
    process.exit(0);
  }, SHUTDOWN_GRACE_MS);
  server.tryShutdown(() => {
    clearTimeout(timer);
    process.exit(0);
  });
};
process.once('SIGTERM', shutdown);
process.once('SIGINT', shutdown);
