/**
 * Preparation that needs the running registry: tokens for the calling
 * projects, the page token of a deep page, and the memberships that
 * UpdateMember changes, which are added through CreateMember so that they
 * carry whatever columns the service writes.
 */
import * as grpc from '@grpc/grpc-js';
import { SignJWT } from 'jose';
import { ListImagesRequest, ListImagesResponse, type MessageFns } from '../../gen/imageregistry/v1/image_service.js';
import { CreateMemberRequest, Member } from '../../gen/imageregistry/v1/member_service.js';
import { METHOD_PATHS, type MethodName } from './calls.js';
import { type CallTarget, RUN_MEMBER_PREFIX } from './targets.js';

const CALL_TIMEOUT_MS = 60_000;
const SETUP_CALLS_IN_FLIGHT = 16;
/** The page size that ListImages uses when the request gives none. */
export const DEFAULT_PAGE_SIZE = 25;
const MAX_PAGE_SIZE = 1000;

/** Mints one HS256 token per project with the registry's secret, as an identity provider would. */
export class TokenBook {
  readonly tokens: Record<string, string> = {};
  private readonly key: Uint8Array;

  constructor(
    secret: string,
    private readonly lifetimeS: number,
  ) {
    this.key = new TextEncoder().encode(secret);
  }

  async add(projects: Iterable<string>): Promise<void> {
    const expiresAt = Math.floor(Date.now() / 1000) + this.lifetimeS;
    for (const project of projects) {
      if (this.tokens[project] !== undefined) continue;
      this.tokens[project] = await new SignJWT({ project_id: project, roles: ['member'] })
        .setProtectedHeader({ alg: 'HS256', typ: 'JWT' })
        .setSubject(`load-bench-${project}`)
        .setExpirationTime(expiresAt)
        .sign(this.key);
    }
  }
}

const passBuffer = (buffer: Buffer): Buffer => buffer;

/** Unary calls from the main thread, with ts-proto encoding and decoding. */
export class SetupClient {
  private readonly client: grpc.Client;

  constructor(
    address: string,
    private readonly tokens: TokenBook,
  ) {
    this.client = new grpc.Client(address, grpc.credentials.createInsecure());
  }

  call<Request, Response>(
    method: MethodName,
    requestType: MessageFns<Request>,
    responseType: MessageFns<Response>,
    request: Request,
    project: string,
  ): Promise<Response> {
    const metadata = new grpc.Metadata();
    metadata.set('authorization', `Bearer ${this.tokens.tokens[project]}`);
    const body = Buffer.from(requestType.encode(request).finish());
    return new Promise((resolve, reject) => {
      this.client.makeUnaryRequest(
        METHOD_PATHS[method],
        passBuffer,
        passBuffer,
        body,
        metadata,
        { deadline: Date.now() + CALL_TIMEOUT_MS },
        (error, response) => (error ? reject(error) : resolve(responseType.decode(response!))),
      );
    });
  }

  close(): void {
    this.client.close();
  }
}

export interface DeepPage {
  /** page_token of the page that starts after `depth` rows of the default listing. */
  pageToken: string;
  depth: number;
  /** True when the project lists fewer than the requested depth plus one page, so the page is the last full one. */
  shortened: boolean;
}

/** Follows page tokens of the default listing until exactly `depth` rows are behind, and returns the token there. */
async function walk(client: SetupClient, project: string, depth: number): Promise<{ pageToken: string; passed: number }> {
  let pageToken = '';
  let passed = 0;
  while (passed < depth) {
    const request = ListImagesRequest.fromPartial({ pageSize: Math.min(MAX_PAGE_SIZE, depth - passed), pageToken });
    const page = await client.call('listImages', ListImagesRequest, ListImagesResponse, request, project);
    passed += page.images.length;
    pageToken = page.nextPageToken;
    if (pageToken === '') break;
  }
  return { pageToken, passed };
}

/**
 * Returns the page token after `depth` rows of the project's default
 * listing. A project that lists fewer rows gets the token of its last full
 * page of DEFAULT_PAGE_SIZE, so that the deep page is as deep as the
 * listing allows.
 */
export async function deepPage(client: SetupClient, project: string, depth: number): Promise<DeepPage> {
  const first = await walk(client, project, depth);
  if (first.pageToken !== '') return { pageToken: first.pageToken, depth, shortened: false };
  const reachable = Math.max(0, first.passed - DEFAULT_PAGE_SIZE);
  const second = await walk(client, project, reachable);
  return { pageToken: second.pageToken, depth: reachable, shortened: true };
}

/**
 * Adds one membership to each image, for a project of its own named
 * bench-run-u-<n>, and returns the memberships as UpdateMember targets.
 */
export async function addMembershipsToUpdate(client: SetupClient, tokens: TokenBook, images: CallTarget[]): Promise<CallTarget[]> {
  const members = images.map((image, index) => ({ owner: image.project, imageId: image.imageId, memberId: `${RUN_MEMBER_PREFIX}u-${index}` }));
  await tokens.add(images.map((image) => image.project));
  await tokens.add(members.map((member) => member.memberId));
  let next = 0;
  const addNext = async (): Promise<void> => {
    while (next < members.length) {
      const member = members[next++]!;
      const request = CreateMemberRequest.fromPartial({ imageId: member.imageId, memberId: member.memberId });
      await client.call('createMember', CreateMemberRequest, Member, request, member.owner);
    }
  };
  await Promise.all(Array.from({ length: SETUP_CALLS_IN_FLIGHT }, addNext));
  return members.map((member) => ({ project: member.memberId, imageId: member.imageId }));
}
