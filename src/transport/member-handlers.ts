/** MemberService handlers: decode, call the use case, encode. */
import type { UntypedServiceImplementation } from '@grpc/grpc-js';
import {
  createMember,
  getMember,
  listMembers,
  removeMember,
  updateMember,
} from '../app/member-use-cases.js';
import type { RegistryContext } from '../app/registry-context.js';
import { invalidArgument } from '../domain/errors.js';
import type { Member } from '../domain/model.js';
import type { Empty } from '../../gen/google/protobuf/empty.js';
import {
  CreateMemberRequest,
  DeleteMemberRequest,
  GetMemberRequest,
  ListMembersRequest,
  type Member as ProtoMember,
  MemberServiceService,
  UpdateMemberRequest,
} from '../../gen/imageregistry/v1/member_service.js';
import { memberStatuses } from './proto-enums.js';
import { withStrictDecoding } from './strict-decoding.js';
import { type HandlerDependencies, handlerBuilder } from './call-adapters.js';

export const memberServiceDefinition = withStrictDecoding(MemberServiceService, {
  createMember: CreateMemberRequest,
  getMember: GetMemberRequest,
  listMembers: ListMembersRequest,
  updateMember: UpdateMemberRequest,
  deleteMember: DeleteMemberRequest,
});

const EMPTY: Empty = {};

function memberToProto(member: Member): ProtoMember {
  return {
    imageId: member.imageId,
    memberId: member.memberId,
    status: memberStatuses.toProtoNumber(member.status),
    createTime: new Date(member.createTime),
    updateTime: new Date(member.updateTime),
  };
}

export function memberServiceHandlers(
  context: RegistryContext,
  dependencies: HandlerDependencies,
): UntypedServiceImplementation {
  const handler = handlerBuilder(dependencies, 'MemberService');

  return {
    createMember: handler.unary('CreateMember', 'write', async (caller, request: CreateMemberRequest) =>
      memberToProto(await createMember(context, caller, request.imageId, request.memberId)),
    ),
    getMember: handler.unary('GetMember', 'read', async (caller, request: GetMemberRequest) =>
      memberToProto(await getMember(context, caller, request.imageId, request.memberId)),
    ),
    listMembers: handler.unary('ListMembers', 'read', async (caller, request: ListMembersRequest) => {
      const page = await listMembers(context, caller, request.imageId, request);
      return { members: page.members.map(memberToProto), nextPageToken: page.nextPageToken };
    }),
    updateMember: handler.unary('UpdateMember', 'write', async (caller, request: UpdateMemberRequest) => {
      const status = memberStatuses.fromProto('status', request.status);
      if (status === null) {
        throw invalidArgument('status', 'is unspecified; give PENDING, ACCEPTED or REJECTED');
      }
      return memberToProto(await updateMember(context, caller, request.imageId, request.memberId, status));
    }),
    deleteMember: handler.unary('DeleteMember', 'write', async (caller, request: DeleteMemberRequest) => {
      await removeMember(context, caller, request.imageId, request.memberId);
      return EMPTY;
    }),
  };
}
