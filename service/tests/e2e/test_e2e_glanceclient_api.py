"""python-glanceclient's Python API (``glanceclient.Client('2', session=...)``), as Nova uses it."""

from __future__ import annotations

import io

import pytest
from glanceclient import Client
from glanceclient import exc as glance_exc

from tests.e2e.helpers import unique_name


@pytest.fixture
def member_client(glance):
    return Client("2", session=glance.keystone.session("alpha-member"))


def test_create_upload_download(member_client, raw_file):
    data = raw_file(3 * 1024 * 1024 + 17)
    image = member_client.images.create(
        name=unique_name("gc-api"), disk_format="raw", container_format="bare"
    )
    try:
        assert image["status"] == "queued"
        assert image.get("checksum") is None
        with open(data.path, "rb") as f:
            member_client.images.upload(image["id"], f)
        got = member_client.images.get(image["id"])
        assert got["status"] == "active"
        assert got["size"] == data.size
        assert got["checksum"] == data.md5
        assert got["os_hash_algo"] == "sha512"
        assert got["os_hash_value"] == data.sha512
        # images.data verifies os_hash_value itself while iterating.
        body = member_client.images.data(image["id"])
        assert b"".join(body) == data.data
    finally:
        member_client.images.delete(image["id"])
    with pytest.raises(glance_exc.HTTPNotFound):
        member_client.images.get(image["id"])


def test_upload_of_unknown_size_is_streamed(member_client):
    """A file-like object without a size goes out with chunked transfer encoding."""
    payload = bytes(range(256)) * 4096 + b"tail"
    image = member_client.images.create(
        name=unique_name("gc-chunked"), disk_format="raw", container_format="bare"
    )
    try:
        member_client.images.upload(image["id"], io.BytesIO(payload), image_size=None)
        got = member_client.images.get(image["id"])
        assert got["status"] == "active"
        assert got["size"] == len(payload)
        assert b"".join(member_client.images.data(image["id"])) == payload
    finally:
        member_client.images.delete(image["id"])


def test_second_upload_is_a_conflict(member_client, raw_file):
    data = raw_file(4096)
    image = member_client.images.create(
        name=unique_name("gc-twice"), disk_format="raw", container_format="bare"
    )
    try:
        member_client.images.upload(image["id"], open(data.path, "rb"))  # noqa: SIM115
        with pytest.raises(glance_exc.HTTPConflict):
            member_client.images.upload(image["id"], io.BytesIO(b"other data"))
        assert member_client.images.get(image["id"])["checksum"] == data.md5
    finally:
        member_client.images.delete(image["id"])


def test_update_and_tags(member_client):
    image = member_client.images.create(
        name=unique_name("gc-meta"), disk_format="raw", container_format="bare"
    )
    try:
        member_client.images.update(image["id"], os_distro="debian", min_ram=512)
        member_client.image_tags.update(image["id"], "e2e")
        got = member_client.images.get(image["id"])
        assert got["os_distro"] == "debian"
        assert got["min_ram"] == 512
        assert "e2e" in got["tags"]
        member_client.images.update(image["id"], remove_props=["os_distro"])
        assert "os_distro" not in member_client.images.get(image["id"])
        listed = list(member_client.images.list(filters={"tag": ["e2e"]}))
        assert image["id"] in [i["id"] for i in listed]
    finally:
        member_client.images.delete(image["id"])


def test_zero_byte_upload_activates(member_client):
    """Nova activates an 'empty' snapshot by uploading zero bytes."""
    image = member_client.images.create(
        name=unique_name("gc-empty"), disk_format="raw", container_format="bare"
    )
    try:
        member_client.images.upload(image["id"], io.BytesIO(b""), image_size=0)
        got = member_client.images.get(image["id"])
        assert got["status"] == "active"
        assert got["size"] == 0
        assert got["checksum"] == "d41d8cd98f00b204e9800998ecf8427e"
        assert b"".join(member_client.images.data(image["id"])) == b""
    finally:
        member_client.images.delete(image["id"])
