"""Uses the generated Python client against a running image registry.

An owner creates a shared image and adds a consumer project as a member; the
consumer accepts it and finds it in its default listing. Run it with
Debian's python3 (python3-grpcio, python3-protobuf) after
scripts/generate-clients.sh:

    /usr/bin/python3 clients/python/walkthrough.py ADDRESS OWNER_TOKEN CONSUMER_TOKEN CONSUMER_PROJECT
"""

import os
import sys

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "gen"))

import grpc  # noqa: E402

from imageregistry.v1 import image_pb2, image_service_pb2, image_service_pb2_grpc  # noqa: E402
from imageregistry.v1 import member_service_pb2, member_service_pb2_grpc  # noqa: E402


def metadata(token):
    return (("authorization", f"Bearer {token}"),)


def main():
    if len(sys.argv) != 5:
        sys.exit(__doc__)
    address, owner_token, consumer_token, consumer_project = sys.argv[1:]
    with grpc.insecure_channel(address) as channel:
        images = image_service_pb2_grpc.ImageServiceStub(channel)
        members = member_service_pb2_grpc.MemberServiceStub(channel)

        image = images.CreateImage(
            image_service_pb2.CreateImageRequest(
                image=image_pb2.Image(
                    name="python-client-image",
                    visibility=image_pb2.VISIBILITY_SHARED,
                    tags=["from-python"],
                ),
            ),
            metadata=metadata(owner_token),
            timeout=10,
        )
        print(f"created image {image.id} ({image_pb2.Visibility.Name(image.visibility)})")

        member = members.CreateMember(
            member_service_pb2.CreateMemberRequest(image_id=image.id, member_id=consumer_project),
            metadata=metadata(owner_token),
            timeout=10,
        )
        print(f"added member {member.member_id}: {member_service_pb2.MemberStatus.Name(member.status)}")

        accepted = members.UpdateMember(
            member_service_pb2.UpdateMemberRequest(
                image_id=image.id,
                member_id=consumer_project,
                status=member_service_pb2.MEMBER_STATUS_ACCEPTED,
            ),
            metadata=metadata(consumer_token),
            timeout=10,
        )
        print(f"member status is now {member_service_pb2.MemberStatus.Name(accepted.status)}")

        listed_ids = []
        page_token = ""
        while True:
            page = images.ListImages(
                image_service_pb2.ListImagesRequest(page_size=100, page_token=page_token),
                metadata=metadata(consumer_token),
                timeout=10,
            )
            listed_ids.extend(listed.id for listed in page.images)
            page_token = page.next_page_token
            if not page_token:
                break
        if image.id not in listed_ids:
            sys.exit(f"the consumer's listing of {len(listed_ids)} images lacks {image.id}")
        print(f"the consumer lists the image among {len(listed_ids)}")

        try:
            images.GetImage(
                image_service_pb2.GetImageRequest(id="00000000-0000-4000-8000-000000000000"),
                metadata=metadata(consumer_token),
                timeout=10,
            )
            sys.exit("GetImage of an unknown id succeeded")
        except grpc.RpcError as error:
            if error.code() != grpc.StatusCode.NOT_FOUND:
                sys.exit(f"GetImage of an unknown id returned {error.code()}, expected NOT_FOUND")
            print(f"an unknown id gives {error.code().name}: {error.details()}")


if __name__ == "__main__":
    main()
