/**
 * Server reflection for grpcurl and `buf curl`, fed the exact descriptors
 * that `buf build` wrote. Descriptors that pass through proto-loader lose
 * their file names and dependency lists, and those clients then fail to
 * resolve the services.
 */
import type { Server } from '@grpc/grpc-js';
import type { PackageDefinition } from '@grpc/proto-loader';
import { ReflectionService } from '@grpc/reflection';
import { fileDescriptorProtos } from '../../gen/descriptor-set.js';

export function addReflection(server: Server): void {
  const files = Object.values(fileDescriptorProtos).map((base64) => Buffer.from(base64, 'base64'));
  // ReflectionService reads only the fileDescriptorProtos of each entry.
  const definition = { descriptors: { fileDescriptorProtos: files } } as unknown as PackageDefinition;
  new ReflectionService(definition).addToServer(server);
}
