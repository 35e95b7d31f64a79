/** The `member` command: shares SHARED images with other projects, and accepts or rejects shares. */
import { Command } from 'commander';
import { decodeJwt } from 'jose';
import { type Member, MemberStatus } from '../../gen/imageregistry/v1/member_service.js';
import { type GlobalOptions, type RegistryClients, UsageError, callUnary, withClients } from './connection.js';
import { parsePositiveInteger } from './option-parsers.js';
import { formatJson, formatMemberList, memberToJson } from './table-output.js';

/** Rows requested per ListMembers call by default; the server lowers larger values to 1000. */
const DEFAULT_PAGE_SIZE = 1000;

function printMember(member: Member, options: GlobalOptions): void {
  process.stdout.write(options.json ? formatJson(memberToJson(member)) : formatMemberList([member]));
}

/**
 * Returns the project_id claim of the token. The signature is not checked,
 * because only the server has the key, and the server still decides whether
 * the call is allowed.
 */
function tokenProjectId(token: string): string {
  let projectId: unknown;
  try {
    projectId = decodeJwt(token).project_id;
  } catch (error) {
    const reason = (error as Error).message;
    throw new UsageError(`cannot read project_id from the token (${reason}): give the member project id as an argument`);
  }
  if (typeof projectId !== 'string' || projectId === '') {
    throw new UsageError('the token has no project_id claim: give the member project id as an argument');
  }
  return projectId;
}

/** Sets the caller's own membership, or another project's with the admin role, to `status`. */
async function setMemberStatus(
  clients: RegistryClients,
  imageId: string,
  memberId: string | undefined,
  status: MemberStatus,
  globals: GlobalOptions,
): Promise<void> {
  const request = { imageId, memberId: memberId ?? tokenProjectId(clients.token), status };
  printMember(await callUnary(clients.members.updateMember.bind(clients.members), request, clients.metadata()), globals);
}

async function listMembers(
  clients: RegistryClients,
  imageId: string,
  pageSize: number,
  globals: GlobalOptions,
): Promise<void> {
  const members: Member[] = [];
  let pageToken = '';
  do {
    const request = { imageId, pageSize, pageToken };
    const page = await callUnary(clients.members.listMembers.bind(clients.members), request, clients.metadata());
    members.push(...page.members);
    pageToken = page.nextPageToken;
  } while (pageToken !== '');
  process.stdout.write(globals.json ? formatJson(members.map(memberToJson)) : formatMemberList(members));
}

/** Defines `member` and its subcommands. */
export function memberCommand(): Command {
  const member = new Command('member').description('share SHARED images with other projects, and accept or reject shares');

  member
    .command('list')
    .description("list an image's members, oldest first (a member sees only its own row)")
    .argument('<image-id>', 'image UUID')
    .option(
      '--page-size <count>',
      'rows per ListMembers call; the server lowers it to 1000',
      parsePositiveInteger,
      DEFAULT_PAGE_SIZE,
    )
    .action(async (imageId: string, options: { pageSize: number }, command: Command) =>
      withClients(command, (clients, globals) => listMembers(clients, imageId, options.pageSize, globals)),
    );

  member
    .command('add')
    .description('share an image with a project, whose membership starts PENDING')
    .argument('<image-id>', 'image UUID')
    .argument('<member-id>', 'project id to share with')
    .action(async (imageId: string, memberId: string, _options: unknown, command: Command) =>
      withClients(command, async (clients, globals) => {
        const request = { imageId, memberId };
        const createMember = clients.members.createMember.bind(clients.members);
        printMember(await callUnary(createMember, request, clients.metadata()), globals);
      }),
    );

  member
    .command('remove')
    .description('stop sharing an image with a project, which loses read access at once')
    .argument('<image-id>', 'image UUID')
    .argument('<member-id>', 'project id to remove')
    .action(async (imageId: string, memberId: string, _options: unknown, command: Command) =>
      withClients(command, async (clients, globals) => {
        await callUnary(clients.members.deleteMember.bind(clients.members), { imageId, memberId }, clients.metadata());
        process.stdout.write(globals.json ? formatJson({}) : `removed member ${memberId} from image ${imageId}\n`);
      }),
    );

  for (const [name, status, effect] of [
    ['accept', MemberStatus.MEMBER_STATUS_ACCEPTED, 'so that it appears in default listings'],
    ['reject', MemberStatus.MEMBER_STATUS_REJECTED, 'so that it stays out of default listings (it remains readable)'],
  ] as const) {
    member
      .command(name)
      .description(`${name} an image shared with your project, ${effect}`)
      .argument('<image-id>', 'image UUID')
      .argument('[member-id]', "member project id (default: the token's project_id; another project needs the admin role)")
      .action(async (imageId: string, memberId: string | undefined, _options: unknown, command: Command) =>
        withClients(command, (clients, globals) => setMemberStatus(clients, imageId, memberId, status, globals)),
      );
  }

  return member;
}
