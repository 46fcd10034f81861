"""Notifications (issue 18) from real glance-registry + glance-api processes to a real RabbitMQ.

The API sends with ``[oslo_messaging_notifications] driver = messagingv2`` to a private broker
(``tests/fixtures/rabbitmq.py``); an oslo.messaging notification listener in this process
receives what a create / upload / download / PATCH / member / import / metadef / delete sequence
sends, and each event is checked for upstream Glance 33's payload keys (``glance/notifier.py``).
Then the broker is stopped: the same sequence must succeed, each request as fast as with the
broker up (nothing waits for it), and the events queued meanwhile arrive once it is back.
"""

from __future__ import annotations

import hashlib
import threading
import time
import uuid

import pytest
import requests

from tests.fixtures.glance_procs import start_glance
from tests.fixtures.rabbitmq import RabbitMQ, rabbitmq  # noqa: F401 - the session's broker

PUBLISHER = "image.notify-test"

# Upstream's payload keys (glance/notifier.py format_*_notification, image.send of api/common.py).
IMAGE_KEYS = {
    "id", "name", "status", "created_at", "updated_at", "min_disk", "min_ram", "protected", "checksum",
    "owner", "disk_format", "container_format", "size", "virtual_size", "is_public", "visibility",
    "properties", "tags", "deleted", "deleted_at",
}  # fmt: skip
IMPORT_KEYS = {"os_glance_importing_to_stores", "os_glance_failed_import"}
SEND_KEYS = {"bytes_sent", "image_id", "owner_id", "receiver_tenant_id", "receiver_user_id", "destination_ip"}
MEMBER_KEYS = {"image_id", "member_id", "status", "created_at", "updated_at", "deleted", "deleted_at"}
TASK_KEYS = {
    "id", "type", "status", "result", "owner", "message", "expires_at", "created_at", "updated_at",
    "deleted", "deleted_at",
}  # fmt: skip
NAMESPACE_KEYS = {
    "namespace", "namespace_old", "display_name", "protected", "visibility", "owner", "description",
    "created_at", "updated_at", "deleted", "deleted_at",
}  # fmt: skip
TAG_KEYS = {"namespace", "name", "name_old", "created_at", "updated_at", "deleted", "deleted_at"}
OCTET = {"Content-Type": "application/octet-stream"}


class Collected:
    """Every notification the listener received: ``(priority, publisher, event_type, payload)``."""

    def __init__(self):
        self.events: list[tuple[str, str, str, object]] = []
        self.cond = threading.Condition()

    def add(self, priority: str, publisher: str, event_type: str, payload) -> None:
        with self.cond:
            self.events.append((priority, publisher, event_type, payload))
            self.cond.notify_all()

    def wait_for(self, event_type: str, match=lambda payload: True, timeout: float = 30.0, priority="info"):
        deadline = time.monotonic() + timeout
        with self.cond:
            while True:
                for prio, publisher, etype, payload in self.events:
                    if etype == event_type and prio == priority and match(payload):
                        assert publisher == PUBLISHER
                        return payload
                left = deadline - time.monotonic()
                if left <= 0:
                    seen = [(p, e) for p, _, e, _ in self.events]
                    raise AssertionError(f"no {priority} {event_type} within {timeout}s; received: {seen}")
                self.cond.wait(left)


class _Endpoint:
    def __init__(self, collected: Collected):
        self.collected = collected

    def info(self, ctxt, publisher_id, event_type, payload, metadata):
        self.collected.add("info", publisher_id, event_type, payload)

    def error(self, ctxt, publisher_id, event_type, payload, metadata):
        self.collected.add("error", publisher_id, event_type, payload)


@pytest.fixture(scope="module")
def topic() -> str:
    return f"glance_test_{uuid.uuid4().hex[:8]}"


@pytest.fixture(scope="module")
def collected(rabbitmq: RabbitMQ, topic: str):  # noqa: F811
    from oslo_config import cfg

    from glance_service.common.notifications import import_messaging

    oslo_messaging = import_messaging()
    conf = cfg.ConfigOpts()
    conf([], project="notify-test")
    transport = oslo_messaging.get_notification_transport(conf, url=rabbitmq.url)
    found = Collected()
    listener = oslo_messaging.get_notification_listener(
        transport,
        [oslo_messaging.Target(topic=topic, exchange="glance")],
        [_Endpoint(found)],
        executor="threading",
    )
    listener.start()
    try:
        yield found
    finally:
        listener.stop()
        listener.wait()
        transport.cleanup()


@pytest.fixture(scope="module")
def glance(tmp_path_factory, rabbitmq: RabbitMQ, topic: str, collected):  # noqa: F811
    procs = start_glance(
        tmp_path_factory.mktemp("glance-notify"),
        workers=1,
        extra_api={
            "DEFAULT": {"default_publisher_id": PUBLISHER},
            "oslo_messaging_notifications": {
                "driver": "messagingv2",
                "transport_url": rabbitmq.url,
                "topics": topic,
            },
        },
    )
    try:
        yield procs
    finally:
        procs.stop()


class Client:
    def __init__(self, url: str, project: str, user: str, roles: str = "reader,member"):
        self.url, self.project, self.user, self.roles = url, project, user, roles
        self.slowest = 0.0

    def __call__(self, method: str, path: str, *, headers: dict | None = None, **kw) -> requests.Response:
        h = {"X-Project-Id": self.project, "X-User-Id": self.user, "X-Roles": self.roles, **(headers or {})}
        started = time.monotonic()
        resp = requests.request(method, self.url + path, headers=h, timeout=30, **kw)
        self.slowest = max(self.slowest, time.monotonic() - started)
        return resp


def _sequence(api: Client, member: Client, admin: Client, data: bytes) -> dict:
    """Create, upload, download, PATCH, members, glance-direct import, metadefs, delete; every
    request must succeed. Returns the ids used."""
    image = api("POST", "/v2/images", json={"name": "n1", "disk_format": "raw", "container_format": "bare"})
    assert image.status_code == 201, image.text
    image_id = image.json()["id"]
    assert api("PUT", f"/v2/images/{image_id}/file", data=data, headers=OCTET).status_code == 204
    got = api("GET", f"/v2/images/{image_id}/file")
    assert got.status_code == 200 and got.content == data
    patch = [
        {"op": "add", "path": "/color", "value": "blue"},
        {"op": "replace", "path": "/visibility", "value": "shared"},
    ]
    resp = api("PATCH", f"/v2/images/{image_id}", json=patch,
               headers={"Content-Type": "application/openstack-images-v2.1-json-patch"})  # fmt: skip
    assert resp.status_code == 200, resp.text
    assert api("POST", f"/v2/images/{image_id}/members", json={"member": member.project}).status_code == 200
    resp = member("PUT", f"/v2/images/{image_id}/members/{member.project}", json={"status": "accepted"})
    assert resp.status_code == 200, resp.text
    assert api("DELETE", f"/v2/images/{image_id}/members/{member.project}").status_code == 204

    imported = api(
        "POST", "/v2/images", json={"name": "n2", "disk_format": "raw", "container_format": "bare"}
    )
    imported_id = imported.json()["id"]
    assert api("PUT", f"/v2/images/{imported_id}/stage", data=data, headers=OCTET).status_code == 204
    resp = api("POST", f"/v2/images/{imported_id}/import", json={"method": {"name": "glance-direct"}})
    assert resp.status_code == 202, resp.text
    deadline = time.monotonic() + 60
    while api("GET", f"/v2/images/{imported_id}").json()["status"] != "active":
        assert time.monotonic() < deadline, "the import did not finish"
        time.sleep(0.2)

    namespace = f"ns-{uuid.uuid4().hex[:8]}"
    assert admin("POST", "/v2/metadefs/namespaces", json={"namespace": namespace}).status_code == 201
    assert admin("POST", f"/v2/metadefs/namespaces/{namespace}/tags/t1").status_code == 201
    assert admin("DELETE", f"/v2/metadefs/namespaces/{namespace}/tags/t1").status_code == 204
    assert admin("DELETE", f"/v2/metadefs/namespaces/{namespace}").status_code == 204

    assert api("DELETE", f"/v2/images/{image_id}").status_code == 204
    assert api("DELETE", f"/v2/images/{imported_id}").status_code == 204
    return {"image": image_id, "imported": imported_id, "namespace": namespace}


def _clients(glance) -> tuple[Client, Client, Client]:
    project = uuid.uuid4().hex
    return (
        Client(glance.api_url, project, "user-" + project[:6]),
        Client(glance.api_url, uuid.uuid4().hex, "member-user"),
        Client(glance.api_url, project, "admin-user", "admin,reader,member"),
    )


def test_each_event_with_upstream_payload_keys(glance, collected: Collected):
    api, member, admin = _clients(glance)
    data = b"notify me" * 1000
    ids = _sequence(api, member, admin, data)
    image_id, imported_id = ids["image"], ids["imported"]

    def of(image):
        return lambda p: isinstance(p, dict) and p.get("id") == image

    created = collected.wait_for("image.create", of(image_id))
    assert set(created) == IMAGE_KEYS
    assert created["status"] == "queued" and created["owner"] == api.project and created["name"] == "n1"
    assert created["created_at"].endswith("Z") and created["is_public"] is False
    prepare = collected.wait_for("image.prepare", of(image_id))
    assert set(prepare) == IMAGE_KEYS | IMPORT_KEYS and prepare["status"] == "saving"
    upload = collected.wait_for("image.upload", of(image_id))
    assert set(upload) == IMAGE_KEYS | IMPORT_KEYS
    assert upload["size"] == len(data) and upload["checksum"] == hashlib.md5(data).hexdigest()  # noqa: S324
    assert "os_glance_upload_host" not in upload["properties"]
    activate = collected.wait_for("image.activate", of(image_id))
    assert set(activate) == IMAGE_KEYS and activate["status"] == "active"

    send = collected.wait_for("image.send", lambda p: p.get("image_id") == image_id)
    assert set(send) == SEND_KEYS
    assert send == {
        "bytes_sent": len(data),
        "image_id": image_id,
        "owner_id": api.project,
        "receiver_tenant_id": api.project,
        "receiver_user_id": api.user,
        "destination_ip": "127.0.0.1",
    }
    updated = collected.wait_for(
        "image.update", lambda p: of(image_id)(p) and p["properties"].get("color") == "blue"
    )
    assert set(updated) == IMAGE_KEYS and updated["visibility"] == "shared"

    for event, status in (("create", "pending"), ("update", "accepted"), ("delete", "accepted")):
        payload = collected.wait_for(
            f"image.member.{event}", lambda p, s=status: p.get("image_id") == image_id and p["status"] == s
        )
        assert set(payload) == MEMBER_KEYS and payload["member_id"] == member.project
    assert (
        collected.wait_for("image.member.delete", lambda p: p.get("image_id") == image_id)["deleted"] is True
    )

    # The import: the task's life, then the image's prepare/upload/activate with the store lists.
    task = collected.wait_for("task.create", lambda p: p.get("type") == "api_image_import")
    assert set(task) == TASK_KEYS and task["status"] == "pending" and task["owner"] == api.project
    for event in ("task.run", "task.processing", "task.success"):
        assert set(collected.wait_for(event, lambda p: p.get("id") == task["id"])) == TASK_KEYS
    assert collected.wait_for("task.success", lambda p: p.get("id") == task["id"])["status"] == "success"
    assert set(collected.wait_for("image.prepare", of(imported_id))) == IMAGE_KEYS | IMPORT_KEYS
    assert set(collected.wait_for("image.upload", of(imported_id))) == IMAGE_KEYS | IMPORT_KEYS
    assert collected.wait_for("image.activate", of(imported_id))["size"] == len(data)

    ns = collected.wait_for("metadef_namespace.create", lambda p: p.get("namespace") == ids["namespace"])
    assert set(ns) == NAMESPACE_KEYS
    tag = collected.wait_for("metadef_tag.create", lambda p: p.get("namespace") == ids["namespace"])
    assert set(tag) == TAG_KEYS and tag["name"] == "t1"
    assert collected.wait_for("metadef_tag.delete", lambda p: p.get("namespace") == ids["namespace"])[
        "deleted"
    ]
    assert collected.wait_for("metadef_namespace.delete", lambda p: p.get("namespace") == ids["namespace"])[
        "deleted"
    ]

    deleted = collected.wait_for("image.delete", of(image_id))
    assert set(deleted) == IMAGE_KEYS and deleted["deleted"] is True and deleted["deleted_at"].endswith("Z")


def test_broker_down_nothing_waits(
    glance,
    rabbitmq: RabbitMQ,  # noqa: F811
    collected: Collected,
):
    """The same sequence with the broker stopped: every request succeeds, none slower than the
    bound, and what was queued arrives once the broker is back."""
    api, member, admin = _clients(glance)
    rabbitmq.stop()
    try:
        started = time.monotonic()
        ids = _sequence(api, member, admin, b"broker down" * 100)
        took = time.monotonic() - started
    finally:
        rabbitmq.start()
    print(f"sequence with the broker down: {took:.2f}s, slowest request {api.slowest:.2f}s")
    assert api.slowest < 5.0, f"a request took {api.slowest:.2f}s with the broker down"
    assert member.slowest < 5.0 and admin.slowest < 5.0
    # oslo.messaging reconnects (retry -1) and sends what waited in the queue.
    collected.wait_for("image.delete", lambda p: p.get("id") == ids["imported"], timeout=90)
