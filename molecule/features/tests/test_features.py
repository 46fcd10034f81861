"""The deployed service's notifications arrive on the deployed RabbitMQ, and a qcow2 imported
into the rbd default store lands as raw (conversion is on by default with rbd)."""

from __future__ import annotations

import hashlib
import subprocess
import uuid

from conftest import env

IMAGE_KEYS = {
    "id", "name", "status", "created_at", "updated_at", "min_disk", "min_ram", "protected", "checksum",
    "owner", "disk_format", "container_format", "size", "virtual_size", "is_public", "visibility",
    "properties", "tags", "deleted", "deleted_at",
}  # fmt: skip


def test_notifications_arrive_from_the_deployed_service(api, notifications, ctl):
    assert ctl.service("rabbitmq-server").is_running and ctl.service("rabbitmq-server").is_enabled
    data = uuid.uuid4().bytes * 4096
    image = api.request(
        "POST", "/images", 201, json={"name": "notify", "disk_format": "raw", "container_format": "bare"}
    ).json()
    api.request("PUT", f"/images/{image['id']}/file", 204, data=data,
                headers={"Content-Type": "application/octet-stream"})  # fmt: skip
    assert api.request("GET", f"/images/{image['id']}/file", 200).content == data
    api.request("DELETE", f"/images/{image['id']}", 204)

    def of(p):
        return isinstance(p, dict) and p.get("id") == image["id"]

    for event in ("image.create", "image.prepare", "image.upload", "image.activate", "image.delete"):
        priority, publisher, payload = notifications.wait_for(event, of)
        assert priority == "info" and publisher == env("PUBLISHER")
        assert IMAGE_KEYS <= set(payload), event
    _, _, upload = notifications.wait_for("image.upload", of)
    assert upload["size"] == len(data) and upload["checksum"] == hashlib.md5(data).hexdigest()  # noqa: S324
    assert upload["backend"] == "fast"
    _, _, send = notifications.wait_for("image.send", lambda p: p.get("image_id") == image["id"])
    assert send["bytes_sent"] == len(data) and send["receiver_tenant_id"] == image["owner"]


def test_a_qcow2_lands_in_rbd_as_raw(api, ceph, tmp_path):
    source = tmp_path / "disk.qcow2"
    subprocess.run(["qemu-img", "create", "-q", "-f", "qcow2", str(source), "64M"], check=True)
    image = api.request(
        "POST", "/images", 201, json={"name": "convert", "disk_format": "qcow2", "container_format": "bare"}
    ).json()
    api.request("PUT", f"/images/{image['id']}/stage", 204, data=source.read_bytes(),
                headers={"Content-Type": "application/octet-stream"})  # fmt: skip
    api.request("POST", f"/images/{image['id']}/import", 202, json={"method": {"name": "glance-direct"}})
    done = api.wait_status(image["id"], "active")
    try:
        assert done["disk_format"] == "raw", done
        assert done["size"] == 64 * 1024 * 1024 and done["virtual_size"] == 64 * 1024 * 1024
        info = ceph.run(f"rbd info images/{image['id']}")
        assert info.rc == 0 and "64 MiB" in info.stdout, info.stdout + info.stderr
    finally:
        api.request("DELETE", f"/images/{image['id']}", 204)
