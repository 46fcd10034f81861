"""openstacksdk (cloud layer and image proxy), unmodified, against Keystone."""

from __future__ import annotations

import hashlib

import pytest
from openstack import exceptions as sdk_exc

from tests.e2e.helpers import unique_name


@pytest.fixture
def member(glance):
    return glance.keystone.connection("alpha-member")


def test_image_lifecycle(member, glance, raw_file, tmp_path):
    data = raw_file(2 * 1024 * 1024 + 5)
    image = member.create_image(
        unique_name("sdk"),
        filename=str(data.path),
        disk_format="raw",
        container_format="bare",
        wait=True,
        validate_checksum=True,
    )
    try:
        assert image.status == "active"
        assert image.size == data.size
        assert image.checksum == data.md5
        assert image.hash_algo == "sha512"
        assert image.hash_value == data.sha512
        # With validate_checksum the sdk records its own hashes as properties.
        assert image.properties.get("owner_specified.openstack.md5") == data.md5
        assert (
            image.properties.get("owner_specified.openstack.sha256") == hashlib.sha256(data.data).hexdigest()
        )

        # download_image verifies the hash itself; check the bytes too.
        response = member.image.download_image(image)
        assert response.content == data.data
        out = tmp_path / "out.raw"
        member.image.download_image(image, output=str(out))
        assert hashlib.sha512(out.read_bytes()).hexdigest() == data.sha512

        member.update_image_properties(image=image, e2e_key="value", hw_disk_bus="scsi")
        got = member.image.get_image(image)
        assert got.properties["e2e_key"] == "value"
        assert got.hw_disk_bus == "scsi" or got.properties.get("hw_disk_bus") == "scsi"

        member.image.add_tag(image, "e2e-tag")
        assert "e2e-tag" in member.image.get_image(image).tags
        member.image.remove_tag(image, "e2e-tag")
        assert "e2e-tag" not in member.image.get_image(image).tags

        member.image.deactivate_image(image)
        assert member.image.get_image(image).status == "deactivated"
        # download_image would hash the error body (the sdk's proxy does not raise on 4xx): ask directly.
        denied = member.image.get(f"/images/{image.id}/file")
        assert denied.status_code == 403, denied.text
        # An admin may still read a deactivated image's data.
        assert glance.keystone.connection("admin").image.download_image(image.id).content == data.data

        member.image.reactivate_image(image)
        assert member.image.get_image(image).status == "active"
        assert member.image.download_image(image).content == data.data
    finally:
        member.image.delete_image(image, ignore_missing=True)
    with pytest.raises(sdk_exc.NotFoundException):
        member.image.get_image(image.id)


def test_queued_image_has_no_data(member):
    image = member.image.create_image(
        name=unique_name("sdk-queued"), disk_format="raw", container_format="bare"
    )
    try:
        assert image.status == "queued"
        response = member.image.get(f"/images/{image.id}/file")
        assert response.status_code == 204
    finally:
        member.image.delete_image(image)


def test_list_filters_and_visibility(member, glance, raw_file):
    beta = glance.keystone.connection("beta-member")
    mine = member.image.create_image(
        name=unique_name("sdk-list"), disk_format="raw", container_format="bare", visibility="private"
    )
    try:
        ids = [i.id for i in member.image.images(visibility="private")]
        assert mine.id in ids
        assert mine.id not in [i.id for i in beta.image.images()]
        with pytest.raises(sdk_exc.NotFoundException):
            beta.image.get_image(mine.id)
        assert [i.id for i in member.image.images(name=mine.name)] == [mine.id]
    finally:
        member.image.delete_image(mine)
