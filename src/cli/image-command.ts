/** The `image` command: reads and changes image records, and uploads and downloads their data. */
import { Command, Option } from 'commander';
import { type DeepPartial, Image, ImageStatus, Visibility } from '../../gen/imageregistry/v1/image.js';
import {
  ImageDataInfo,
  ListImagesRequest,
  MemberStatusFilter,
  VisibilityFilter,
} from '../../gen/imageregistry/v1/image_service.js';
import { type GlobalOptions, type RegistryClients, UsageError, callUnary, withClients } from './connection.js';
import { type UploadOptions, downloadImageData, uploadFile } from './data-transfer.js';
import {
  collectKeyValues,
  collectValues,
  enumChoices,
  enumValueOf,
  parseNonNegativeInteger,
  parsePositiveInteger,
} from './option-parsers.js';
import { formatImageDetails, formatImageList, formatJson, imageToJson } from './table-output.js';

/** Images requested per ListImages call by default; the server lowers larger values to 1000. */
const DEFAULT_PAGE_SIZE = 1000;

/** The options that set image fields, shared by `image create` and `image update`. */
interface ImageFieldOptions {
  name?: string;
  visibility?: string;
  owner?: string;
  tag?: string[];
  property?: Map<string, string>;
  minDisk?: number;
  minRam?: number;
  containerFormat?: string;
  diskFormat?: string;
  protected?: boolean;
  hidden?: boolean;
}

interface UpdateOptions extends ImageFieldOptions {
  clearTags?: boolean;
  removeProperty?: string[];
}

interface CreateOptions extends ImageFieldOptions {
  id?: string;
  file?: string;
  md5?: string;
  sha512?: string;
}

interface ListOptions {
  visibility?: string;
  memberStatus?: string;
  owner?: string;
  name?: string;
  status?: string;
  tag?: string[];
  property?: Map<string, string>;
  containerFormat?: string;
  diskFormat?: string;
  orderBy?: string;
  includeHidden?: boolean;
  limit?: number;
  pageSize: number;
}

function printImage(image: Image, options: GlobalOptions): void {
  process.stdout.write(options.json ? formatJson(imageToJson(image)) : formatImageDetails(image));
}

/** Adds the options that set image fields; `tagHelp` and `propertyHelp` differ between create and update. */
function addImageFieldOptions(command: Command, tagHelp: string, propertyHelp: string): Command {
  return command
    .option('--name <name>', 'image name, up to 255 characters')
    .addOption(
      new Option('--visibility <visibility>', 'who may read and list the image (public needs the admin role)').choices(
        enumChoices(Visibility, 'VISIBILITY_'),
      ),
    )
    .option('--owner <project>', 'owning project (admin role only, unless it is your own)')
    .option('--tag <tag>', tagHelp, collectValues)
    .option('--property <key=value>', propertyHelp, collectKeyValues)
    .option('--min-disk <GB>', 'minimum disk size in GB', parseNonNegativeInteger)
    .option('--min-ram <MB>', 'minimum memory in MB', parseNonNegativeInteger)
    .option('--container-format <format>', 'ami, ari, aki, bare, ovf, ova, docker or compressed')
    .option('--disk-format <format>', 'ami, ari, aki, vhd, vhdx, vmdk, raw, qcow2, vdi, iso or ploop')
    .option('--protected', 'forbid deleting the image')
    .option('--no-protected', 'allow deleting the image')
    .option('--hidden', 'leave the image out of listings unless they ask for hidden images')
    .option('--no-hidden', 'list the image again');
}

/**
 * Returns the image fields that the options set, and the update_mask path
 * of each. A --property becomes a properties.<key> path, which sets that key
 * only, and a --remove-property one without a value, which removes the key.
 */
function imageFieldsFromOptions(options: UpdateOptions): { fields: DeepPartial<Image>; paths: string[] } {
  const fields: DeepPartial<Image> = {};
  const paths: string[] = [];
  const set = <K extends keyof Image>(path: string, key: K, value: DeepPartial<Image>[K] | undefined): void => {
    if (value === undefined) return;
    fields[key] = value;
    paths.push(path);
  };
  set('name', 'name', options.name);
  if (options.visibility !== undefined) {
    set('visibility', 'visibility', enumValueOf(Visibility, 'VISIBILITY_', options.visibility));
  }
  set('owner', 'owner', options.owner);
  set('tags', 'tags', options.clearTags ? [] : options.tag);
  set('min_disk', 'minDisk', options.minDisk);
  set('min_ram', 'minRam', options.minRam);
  set('container_format', 'containerFormat', options.containerFormat);
  set('disk_format', 'diskFormat', options.diskFormat);
  set('protected', 'protected', options.protected);
  set('hidden', 'hidden', options.hidden);

  const properties = new Map(options.property ?? []);
  for (const key of options.removeProperty ?? []) {
    if (properties.has(key)) throw new UsageError(`property ${JSON.stringify(key)} is both set and removed`);
  }
  if (properties.size > 0) fields.properties = properties;
  for (const key of [...properties.keys(), ...(options.removeProperty ?? [])]) paths.push(`properties.${key}`);
  return { fields, paths };
}

/** Returns the hashes given with --md5 and --sha512, for the server to check the upload against. */
function expectedHashes(options: { md5?: string; sha512?: string }): UploadOptions {
  return { expectedChecksum: options.md5, expectedHashValue: options.sha512 };
}

async function createImage(clients: RegistryClients, options: CreateOptions, globals: GlobalOptions): Promise<void> {
  const { fields } = imageFieldsFromOptions(options);
  const request = { image: Image.fromPartial(fields), imageId: options.id ?? '' };
  let image = await callUnary(clients.images.createImage.bind(clients.images), request, clients.metadata());
  if (options.file !== undefined) {
    try {
      image = await uploadFile(clients, image.id, options.file, expectedHashes(options));
    } catch (error) {
      process.stderr.write(
        `image ${image.id} was created, but its upload failed. Retry with: image-registry image upload ${image.id} FILE\n`,
      );
      throw error;
    }
  }
  printImage(image, globals);
}

async function updateImage(
  clients: RegistryClients,
  id: string,
  options: UpdateOptions,
  globals: GlobalOptions,
): Promise<void> {
  const { fields, paths } = imageFieldsFromOptions(options);
  if (paths.length === 0) {
    throw new UsageError('nothing to update: give at least one option that sets a field (see image update --help)');
  }
  const request = { image: Image.fromPartial({ ...fields, id }), updateMask: paths };
  printImage(await callUnary(clients.images.updateImage.bind(clients.images), request, clients.metadata()), globals);
}

/** Calls ListImages page after page until the last page, or until `limit` images are collected. */
async function listImages(clients: RegistryClients, options: ListOptions, globals: GlobalOptions): Promise<void> {
  const filters: DeepPartial<ListImagesRequest> = {
    visibility:
      options.visibility === undefined ? undefined : enumValueOf(VisibilityFilter, 'VISIBILITY_FILTER_', options.visibility),
    memberStatus:
      options.memberStatus === undefined
        ? undefined
        : enumValueOf(MemberStatusFilter, 'MEMBER_STATUS_FILTER_', options.memberStatus),
    owner: options.owner,
    name: options.name,
    status: options.status === undefined ? undefined : enumValueOf(ImageStatus, 'IMAGE_STATUS_', options.status),
    tags: options.tag,
    properties: options.property,
    containerFormat: options.containerFormat,
    diskFormat: options.diskFormat,
    orderBy: options.orderBy,
    includeHidden: options.includeHidden,
  };
  const images: Image[] = [];
  let pageToken = '';
  do {
    let pageSize = options.pageSize;
    if (options.limit !== undefined) pageSize = Math.min(pageSize, options.limit - images.length);
    const request = ListImagesRequest.fromPartial({ ...filters, pageSize, pageToken });
    const page = await callUnary(clients.images.listImages.bind(clients.images), request, clients.metadata());
    images.push(...page.images);
    pageToken = page.nextPageToken;
  } while (pageToken !== '' && (options.limit === undefined || images.length < options.limit));
  const printed = options.limit === undefined ? images : images.slice(0, options.limit);
  process.stdout.write(globals.json ? formatJson(printed.map(imageToJson)) : formatImageList(printed));
}

/** Defines `image` and its subcommands. */
export function imageCommand(): Command {
  const image = new Command('image').description('create, read, change and delete images, and move their data');

  image
    .command('list')
    .description('list the images you may see, following every page (newest first by default)')
    .addOption(
      new Option('--visibility <visibility>', 'only this visibility; "all" adds community images of other projects').choices(
        enumChoices(VisibilityFilter, 'VISIBILITY_FILTER_'),
      ),
    )
    .addOption(
      new Option(
        '--member-status <status>',
        'list shared images of other projects whose membership has this status',
      ).choices(enumChoices(MemberStatusFilter, 'MEMBER_STATUS_FILTER_')),
    )
    .option('--owner <project>', 'only images of this owning project')
    .option('--name <name>', 'only images with exactly this name')
    .addOption(
      new Option('--status <status>', 'only images in this status').choices(enumChoices(ImageStatus, 'IMAGE_STATUS_')),
    )
    .option('--tag <tag>', 'only images with this tag (repeatable: images must have every tag)', collectValues)
    .option('--property <key=value>', 'only images with this property value (repeatable)', collectKeyValues)
    .option('--container-format <format>', 'only images with this container format')
    .option('--disk-format <format>', 'only images with this disk format')
    .option(
      '--order-by <fields>',
      'comma-separated fields from name, status, create_time, update_time, size, owner and id, ' +
        'each optionally followed by asc or desc, e.g. "name,create_time desc" (default: "create_time desc")',
    )
    .option('--include-hidden', 'list hidden images too')
    .option('--limit <count>', 'stop after this many images', parsePositiveInteger)
    .option(
      '--page-size <count>',
      'images per ListImages call; the server lowers it to 1000',
      parsePositiveInteger,
      DEFAULT_PAGE_SIZE,
    )
    .action(async (options: ListOptions, command: Command) =>
      withClients(command, (clients, globals) => listImages(clients, options, globals)),
    );

  image
    .command('show')
    .description('show every field of one image')
    .argument('<id>', 'image UUID')
    .action(async (id: string, _options: unknown, command: Command) =>
      withClients(command, async (clients, globals) => {
        printImage(await callUnary(clients.images.getImage.bind(clients.images), { id }, clients.metadata()), globals);
      }),
    );

  const create = image
    .command('create')
    .description('create an image in status QUEUED (SHARED unless --visibility is given) and show it')
    .option('--id <uuid>', 'UUID to give the image (default: one the server picks)');
  addImageFieldOptions(create, 'tag to add (repeatable)', 'property to set (repeatable)')
    .option('--file <path>', 'upload this file as the image data right after creating the image')
    .option('--md5 <hex>', 'with --file: MD5 that the server checks the data against')
    .option('--sha512 <hex>', 'with --file: SHA-512 that the server checks the data against')
    .action(async (options: CreateOptions, command: Command) =>
      withClients(command, (clients, globals) => createImage(clients, options, globals)),
    );

  const update = image
    .command('update')
    .description('change the fields given as options, and only those, and show the image')
    .argument('<id>', 'image UUID');
  addImageFieldOptions(
    update,
    'replace all tags with the tags given (repeatable)',
    'set one property and keep the others (repeatable)',
  )
    .addOption(new Option('--clear-tags', 'remove every tag').conflicts('tag'))
    .option('--remove-property <key>', 'remove one property (repeatable)', collectValues)
    .action(async (id: string, options: UpdateOptions, command: Command) =>
      withClients(command, (clients, globals) => updateImage(clients, id, options, globals)),
    );

  image
    .command('delete')
    .description('delete an image and its data (fails for a protected image)')
    .argument('<id>', 'image UUID')
    .action(async (id: string, _options: unknown, command: Command) =>
      withClients(command, async (clients, globals) => {
        await callUnary(clients.images.deleteImage.bind(clients.images), { id }, clients.metadata());
        process.stdout.write(globals.json ? formatJson({}) : `deleted image ${id}\n`);
      }),
    );

  image
    .command('deactivate')
    .description('make an ACTIVE image DEACTIVATED, so that only admins may download it')
    .argument('<id>', 'image UUID')
    .action(async (id: string, _options: unknown, command: Command) =>
      withClients(command, async (clients, globals) => {
        const deactivate = clients.images.deactivateImage.bind(clients.images);
        printImage(await callUnary(deactivate, { id }, clients.metadata()), globals);
      }),
    );

  image
    .command('reactivate')
    .description('make a DEACTIVATED image ACTIVE again')
    .argument('<id>', 'image UUID')
    .action(async (id: string, _options: unknown, command: Command) =>
      withClients(command, async (clients, globals) => {
        const reactivate = clients.images.reactivateImage.bind(clients.images);
        printImage(await callUnary(reactivate, { id }, clients.metadata()), globals);
      }),
    );

  image
    .command('upload')
    .description('upload a file as the data of a QUEUED image, which then becomes ACTIVE, and show the image')
    .argument('<id>', 'image UUID')
    .argument('<file>', 'file to upload')
    .option('--md5 <hex>', 'MD5 that the server checks the data against')
    .option('--sha512 <hex>', 'SHA-512 that the server checks the data against')
    .action(async (id: string, file: string, options: { md5?: string; sha512?: string }, command: Command) =>
      withClients(command, async (clients, globals) => {
        printImage(await uploadFile(clients, id, file, expectedHashes(options)), globals);
      }),
    );

  image
    .command('download')
    .description('download the data of an image to a file, or to stdout, and verify its size and hashes')
    .argument('<id>', 'image UUID')
    .option('--out <file>', 'file to write; it appears only once the data is complete and verified (default: stdout)')
    .action(async (id: string, options: { out?: string }, command: Command) =>
      withClients(command, async (clients, globals) => {
        const info = await downloadImageData(clients, id, options.out);
        if (options.out === undefined) return;
        if (globals.json) {
          process.stdout.write(formatJson(ImageDataInfo.toJSON(info)));
        } else {
          process.stdout.write(`wrote ${info.size} bytes of image ${id} to ${options.out}\n`);
        }
      }),
    );

  return image;
}
