/** ImageService handlers: decode, call the use case, encode. */
import type { UntypedServiceImplementation } from '@grpc/grpc-js';
import {
  addImageTag,
  createImage,
  deactivateImage,
  deleteImage,
  reactivateImage,
  removeImageTag,
  updateImageFields,
} from '../app/image-commands.js';
import { getImage, listImages } from '../app/image-queries.js';
import type { RegistryContext } from '../app/registry-context.js';
import type { Empty } from '../../gen/google/protobuf/empty.js';
import {
  AddImageTagRequest,
  CreateImageRequest,
  DeactivateImageRequest,
  DeleteImageRequest,
  GetImageRequest,
  ImageServiceService,
  ListImagesRequest,
  ReactivateImageRequest,
  RemoveImageTagRequest,
  UpdateImageRequest,
  UploadImageDataRequest,
  DownloadImageDataRequest,
} from '../../gen/imageregistry/v1/image_service.js';
import { downloadImageData, uploadImageDataFromStream } from './image-data-handlers.js';
import { imageInputFromProto, imageToProto, listImagesQueryFromProto } from './image-mapping.js';
import { withStrictDecoding } from './strict-decoding.js';
import { type HandlerDependencies, handlerBuilder } from './call-adapters.js';

export const imageServiceDefinition = withStrictDecoding(ImageServiceService, {
  createImage: CreateImageRequest,
  getImage: GetImageRequest,
  listImages: ListImagesRequest,
  updateImage: UpdateImageRequest,
  addImageTag: AddImageTagRequest,
  removeImageTag: RemoveImageTagRequest,
  deleteImage: DeleteImageRequest,
  deactivateImage: DeactivateImageRequest,
  reactivateImage: ReactivateImageRequest,
  uploadImageData: UploadImageDataRequest,
  downloadImageData: DownloadImageDataRequest,
});

const EMPTY: Empty = {};

export function imageServiceHandlers(
  context: RegistryContext,
  dependencies: HandlerDependencies,
): UntypedServiceImplementation {
  const handler = handlerBuilder(dependencies, 'ImageService');

  return {
    createImage: handler.unary('CreateImage', 'write', async (caller, request: CreateImageRequest) =>
      imageToProto(await createImage(context, caller, imageInputFromProto(request.image), request.imageId)),
    ),
    getImage: handler.unary('GetImage', 'read', async (caller, request: GetImageRequest) =>
      imageToProto(await getImage(context, caller, request.id)),
    ),
    listImages: handler.unary('ListImages', 'read', async (caller, request: ListImagesRequest) => {
      const page = await listImages(context, caller, listImagesQueryFromProto(request));
      return { images: page.images.map(imageToProto), nextPageToken: page.nextPageToken };
    }),
    updateImage: handler.unary('UpdateImage', 'write', async (caller, request: UpdateImageRequest) => {
      const paths = request.updateMask ?? [];
      const input = imageInputFromProto(request.image);
      return imageToProto(await updateImageFields(context, caller, request.image?.id ?? '', paths, input));
    }),
    addImageTag: handler.unary('AddImageTag', 'write', async (caller, request: AddImageTagRequest) =>
      imageToProto(await addImageTag(context, caller, request.imageId, request.tag)),
    ),
    removeImageTag: handler.unary('RemoveImageTag', 'write', async (caller, request: RemoveImageTagRequest) =>
      imageToProto(await removeImageTag(context, caller, request.imageId, request.tag)),
    ),
    deleteImage: handler.unary('DeleteImage', 'write', async (caller, request: DeleteImageRequest) => {
      await deleteImage(context, caller, request.id);
      return EMPTY;
    }),
    deactivateImage: handler.unary('DeactivateImage', 'write', async (caller, request: DeactivateImageRequest) =>
      imageToProto(await deactivateImage(context, caller, request.id)),
    ),
    reactivateImage: handler.unary('ReactivateImage', 'write', async (caller, request: ReactivateImageRequest) =>
      imageToProto(await reactivateImage(context, caller, request.id)),
    ),
    uploadImageData: handler.clientStream(
      'UploadImageData',
      'write',
      (caller, messages: AsyncIterable<UploadImageDataRequest>, log, cancellation) =>
        uploadImageDataFromStream(context, caller, messages, log, cancellation),
    ),
    downloadImageData: handler.serverStream('DownloadImageData', 'read', (caller, request: DownloadImageDataRequest, call) =>
      downloadImageData(context, caller, request, call),
    ),
  };
}
