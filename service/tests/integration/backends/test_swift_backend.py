"""The swift store on a real Swift behind a real Keystone (tests/fixtures/swift.py), through the
real service processes, single-store and multi-store: data round trip with size and hashes,
what lands in Swift (listed with python-swiftclient as the glance user), large objects in
segments, delete, uploads cut off mid-way (no orphan object, no orphan segment) and errors."""

from __future__ import annotations

import html
import os
import re

import pytest

from tests.functional.data.helpers import RawUpload
from tests.integration.backends.helpers import FIGURES, Client, MiB, wait_for

SIZE = 64 * MiB
# glance_store's "MB" of swift_store_large_object_chunk_size is 1000 x 1024 bytes
SEGMENT = 8 * 1000 * 1024


class Container:
    """One Swift container as the glance user sees it."""

    def __init__(self, swift, name: str):
        self.swift = swift
        self.name = name

    def names(self) -> list[str]:
        return self.swift.objects(self.name)

    def holds(self, image_id: str) -> bool:
        return image_id in self.names()

    def segments(self, image_id: str) -> list[str]:
        return [n for n in self.names() if n.startswith(f"{image_id}-")]

    def leftovers(self, image_id: str) -> list[str]:
        """The image's object and any segment of it."""
        return [n for n in self.names() if n == image_id or n.startswith(f"{image_id}-")]

    def manifest(self, image_id: str) -> dict:
        return self.swift.connection().head_object(self.name, image_id)


class Setup:
    def __init__(self, mode: str, client: Client, container: Container, location: str):
        self.mode, self.client, self.container, self.location = mode, client, container, location


@pytest.fixture(params=["single", "multi"])
def setup(request, swift) -> Setup:
    if request.param == "single":
        procs = request.getfixturevalue("glance_swift")
        # upstream's form with the credentials of swift_store_user/key in the URL
        location = rf"swift\+http://[^@/]+@127\.0\.0\.1:\d+/v3/{swift.container}/{{id}}"
        return Setup("single", Client(procs), Container(swift, swift.container), location)
    procs = request.getfixturevalue("glance_swift_multi")
    # account reference of swift_store_config_file: no credentials in the database
    return Setup(
        "multi", Client(procs), Container(swift, "glance-multi"), r"swift\+config://ref1/glance-multi/{id}"
    )


@pytest.mark.parametrize("chunked", [False, True], ids=["declared-size", "chunked"])
def test_round_trip_lands_in_swift_in_segments_and_delete_removes_all(setup, chunked):
    client, container = setup.client, setup.container
    image_id = client.new_image()
    sent = client.send(image_id, SIZE, chunked=chunked)

    image = client.get(f"/v2/images/{image_id}").json()
    assert (image["status"], image["size"]) == ("active", SIZE)
    assert (image["os_hash_algo"], image["os_hash_value"], image["checksum"]) == (
        "sha512",
        sent.sha512,
        sent.md5,
    )
    if setup.mode == "multi":
        assert image["stores"] == "objects"
    (location,) = client.locations(image_id)
    assert re.fullmatch(setup.location.format(id=image_id), location), location

    # a large object: a manifest over segments (64 MiB > swift_store_large_object_size 32 MB)
    assert container.holds(image_id)
    assert len(container.segments(image_id)) == -(-SIZE // SEGMENT)  # 8 full ones and the rest
    head = container.manifest(image_id)
    assert int(head["content-length"]) == SIZE

    got_sha, count, down = client.download(image_id)
    assert (count, got_sha) == (SIZE, sent.sha512)
    mode = "chunked" if chunked else "declared"
    FIGURES.extend(
        [
            (f"swift-{setup.mode}", f"upload 64 MiB {mode}", sent.mbps),
            (f"swift-{setup.mode}", f"download 64 MiB {mode}", down),
        ]
    )

    assert client.delete(f"/v2/images/{image_id}").status_code == 204
    assert container.leftovers(image_id) == []


def test_small_image_is_one_plain_object(setup):
    client, container = setup.client, setup.container
    image_id = client.new_image()
    sent = client.send(image_id, 3 * MiB + 7, chunked=False)
    assert container.leftovers(image_id) == [image_id]
    head = container.manifest(image_id)
    assert "x-object-manifest" not in head and "x-static-large-object" not in head
    assert head["etag"] == sent.md5
    got_sha, count, _ = client.download(image_id)
    assert (count, got_sha) == (3 * MiB + 7, sent.sha512)
    assert client.delete(f"/v2/images/{image_id}").status_code == 204
    assert container.leftovers(image_id) == []


def test_ranged_download(setup):
    client = setup.client
    image_id = client.new_image()
    client.send(image_id, 20 * MiB, chunked=False)
    whole = client.get(f"/v2/images/{image_id}/file").content
    # across the first segments' boundary, and the tail from inside the third segment
    for start, end in ((SEGMENT - 10, SEGMENT + 10), (2 * SEGMENT + 1, 20 * MiB - 1)):
        part = client.get(f"/v2/images/{image_id}/file", headers={"Range": f"bytes={start}-{end}"})
        assert part.status_code == 206, part.text
        assert part.content == whole[start : end + 1]
    client.delete(f"/v2/images/{image_id}")


@pytest.mark.parametrize("chunked", [False, True], ids=["declared-size", "chunked"])
def test_cut_upload_leaves_no_object_and_no_segment(setup, chunked):
    client, container = setup.client, setup.container
    image_id = client.new_image()
    raw = RawUpload(client.base_url, image_id, client.headers(), length=SIZE, chunked=chunked)
    # past the first two segments: data really reached Swift
    for _ in range(20):
        raw.send(os.urandom(MiB))
    wait_for(lambda: client.status(image_id) == "saving")
    wait_for(lambda: container.segments(image_id), timeout=30)
    raw.close()
    wait_for(lambda: client.status(image_id) == "queued", timeout=30)
    wait_for(lambda: container.leftovers(image_id) == [], timeout=30)
    # the image takes a new upload afterwards
    sent = client.send(image_id, 3 * MiB + 5, chunked=False)
    assert client.get(f"/v2/images/{image_id}").json()["os_hash_value"] == sent.sha512
    client.delete(f"/v2/images/{image_id}")


@pytest.mark.parametrize("declared", [13 * MiB, 40 * MiB], ids=["small", "segmented"])
def test_wrong_declared_size_is_400_and_leaves_nothing(setup, declared):
    client, container = setup.client, setup.container
    image_id = client.new_image()
    resp = client.put(
        f"/v2/images/{image_id}/file",
        data=os.urandom(12 * MiB),
        headers={"Content-Type": "application/octet-stream", "x-openstack-image-size": str(declared)},
    )
    assert resp.status_code == 400, resp.text
    assert client.status(image_id) == "queued"
    assert container.leftovers(image_id) == []


@pytest.mark.parametrize(
    ("backend", "says"),
    [
        ("broken", "refused the image service's credentials"),
        ("nocontainer", "swift_store_create_container_on_put"),
        ("unreachable", "could not be reached"),
    ],
)
def test_a_store_that_cannot_take_data_is_503_with_a_message(glance_swift_multi, backend, says):
    client = Client(glance_swift_multi)
    image_id = client.new_image()
    resp = client.put(
        f"/v2/images/{image_id}/file",
        data=os.urandom(MiB),
        headers={"Content-Type": "application/octet-stream", "X-Image-Meta-Store": backend},
    )
    assert resp.status_code == 503, resp.text
    text = html.unescape(resp.text)
    assert says in text
    assert "not-the-password" not in text and "Traceback" not in text
    assert client.status(image_id) == "queued"


def test_api_killed_mid_upload_leaves_no_segment_after_restart(glance_swift, swift):
    # The process dies with segments written: the restarted API gives the image back (queued)
    # and removes them, so a later manifest could never serve them.
    client, container = Client(glance_swift), Container(swift, swift.container)
    image_id = client.new_image()
    raw = RawUpload(client.base_url, image_id, client.headers(), length=SIZE, chunked=False)
    for _ in range(20):
        raw.send(os.urandom(MiB))
    wait_for(lambda: container.segments(image_id), timeout=30)
    glance_swift.kill_api()
    raw.close()
    assert container.segments(image_id)  # what the crash left
    glance_swift.start_api()
    wait_for(lambda: client.status(image_id) == "queued", timeout=60)
    wait_for(lambda: container.leftovers(image_id) == [], timeout=30)
    sent = client.send(image_id, 3 * MiB, chunked=False)
    assert client.get(f"/v2/images/{image_id}").json()["os_hash_value"] == sent.sha512
    client.delete(f"/v2/images/{image_id}")
