"""Notification payloads, filtering and the sender's non-blocking queue (common/notifications.py)."""

from __future__ import annotations

import datetime
import subprocess
import sys
import threading
import time

import pytest
from oslo_config import cfg

from glance_service.common import notifications as n

IMAGE = {
    "id": "i1",
    "name": "cirros",
    "status": "active",
    "created_at": "2026-12-07T00:01:02.123456",
    "updated_at": "2026-12-07T00:01:03.000001",
    "min_disk": 0,
    "min_ram": 0,
    "protected": False,
    "checksum": "c" * 32,
    "owner": "p1",
    "disk_format": "raw",
    "container_format": "bare",
    "size": 3,
    "virtual_size": 3,
    "visibility": "public",
    "properties": {
        "color": "blue",
        "os_glance_importing_to_stores": "a,b",
        "os_glance_failed_import": "",
        "os_glance_upload_host": "ours",
        "os_glance_import_worker": "ours",
    },
    "tags": ["t"],
    "locations": [{"url": "rbd://secret@pool/i1", "metadata": {}}],
}


def _conf(**notifications) -> cfg.ConfigOpts:
    conf = cfg.ConfigOpts()
    n.register_opts(conf)
    conf([], project="glance")
    for key, value in notifications.items():
        conf.set_override(key, value, group=n.GROUP)
    return conf


def test_image_payload_has_upstream_keys_and_no_locations() -> None:
    payload = n.image_payload(IMAGE)
    assert set(payload) == {
        "id", "name", "status", "created_at", "updated_at", "min_disk", "min_ram", "protected",
        "checksum", "owner", "disk_format", "container_format", "size", "virtual_size", "is_public",
        "visibility", "properties", "tags", "deleted", "deleted_at",
    }  # fmt: skip
    assert payload["created_at"] == "2026-12-07T00:01:02Z"
    assert payload["is_public"] is True and payload["deleted"] is False and payload["deleted_at"] is None
    # this service's own markers are not upstream properties
    assert payload["properties"] == {
        "color": "blue",
        "os_glance_importing_to_stores": "a,b",
        "os_glance_failed_import": "",
    }
    assert "rbd://" not in repr(payload)


def test_import_properties_are_lists() -> None:
    assert n.import_properties(IMAGE) == {
        "os_glance_importing_to_stores": ["a", "b"],
        "os_glance_failed_import": [],
    }


def test_isotime_of_datetimes_and_strings() -> None:
    aware = datetime.datetime(2026, 1, 2, 4, 4, 5, 6, tzinfo=datetime.timezone(datetime.timedelta(hours=1)))
    assert n.isotime(aware) == "2026-01-02T03:04:05Z"
    assert n.isotime(datetime.datetime(2026, 1, 2, 3, 4, 5, 6)) == "2026-01-02T03:04:05Z"
    assert n.isotime("2026-01-02T03:04:05.000006") == "2026-01-02T03:04:05Z"
    assert n.isotime(None) is None


def test_member_task_and_metadef_payloads() -> None:
    member = n.member_payload({"image_id": "i1", "member": "p2", "status": "pending", "created_at": None})
    assert member["member_id"] == "p2" and set(member) == {
        "image_id", "member_id", "status", "created_at", "updated_at", "deleted", "deleted_at",
    }  # fmt: skip
    record = {"id": "t", "type": "import", "status": "success", "input": {"uri": "secret"}, "message": "m"}
    task = n.task_payload({**record, "result": {"image_id": "i1"}})
    assert task["result"] is None and task["message"] is None and "input" not in task
    prop = n.metadef_item_payload("property", "ns", {"name": "p", "type": "string", "title": "P"})
    assert prop["namespace"] == "ns" and prop["type"] == "string" and prop["name_old"] == "p"
    obj = n.metadef_item_payload("object", "ns", {"name": "o", "properties": {"x": {"type": "integer"}}})
    assert obj["properties"][0]["name"] == "x" and obj["properties"][0]["type"] == "integer"
    assert set(n.metadef_item_payload("tag", "ns", {"name": "t"})) == {
        "namespace", "name", "name_old", "created_at", "updated_at", "deleted", "deleted_at",
    }  # fmt: skip


@pytest.mark.parametrize(
    ("disabled", "event", "enabled"),
    [
        ([], "image.create", True),
        (["image.create"], "image.create", False),
        (["image"], "image.member.create", False),
        (["image.member"], "image.member.create", True),  # upstream: the group is the first part only
        (["task"], "task.success", False),
        (["metadef_tag"], "metadef_tag.create", False),
        (["image.create"], "image.update", True),
    ],
)
def test_disabled_notifications_as_upstream(disabled, event, enabled) -> None:
    assert n.is_enabled(disabled, event) is enabled


def test_no_driver_or_noop_sends_nothing_and_imports_nothing() -> None:
    code = (
        "import sys\n"
        "from oslo_config import cfg\n"
        "from glance_service.common import notifications as n\n"
        "from glance_service.api import app\n"
        "conf = cfg.ConfigOpts(); app.register_opts(conf); conf([], project='glance')\n"
        "for drivers in ([], ['noop']):\n"
        "    conf.set_override('driver', drivers, group='oslo_messaging_notifications')\n"
        "    assert n.build(conf) is n.NOOP\n"
        "    n.of(object()).image('image.create', {'id': 'x'})\n"
        "assert 'oslo_messaging' not in sys.modules, 'oslo_messaging imported'\n"
        "assert 'kombu' not in sys.modules\n"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr


def test_our_copy_of_oslo_messaging_options_is_exact() -> None:
    """Declared here so ``driver`` is read without importing oslo_messaging; oslo.messaging's own
    registration must then be a no-op (a differing copy would raise DuplicateOptError)."""
    n.import_messaging()
    from oslo_messaging.notify import notifier

    conf = _conf()
    conf.register_opts(notifier._notifier_opts, group=n.GROUP)  # raises if they differ
    assert [o.name for o in notifier._notifier_opts] == [o.name for o in n.messaging_notification_opts]


class _Blocking:
    """oslo.messaging's Notifier with the broker down (retry -1): every send waits."""

    def __init__(self) -> None:
        self.release = threading.Event()
        self.sent: list[tuple[str, str]] = []

    def info(self, ctxt, event_type, payload):
        self.release.wait(30)
        self.sent.append(("info", event_type))

    def error(self, ctxt, event_type, payload):
        self.sent.append(("error", event_type))


def test_a_broker_that_hangs_never_blocks_the_caller_and_drops_are_counted() -> None:
    sender = n.Notifier(_conf(driver=["messagingv2"]), queue_size=3)
    blocking = _Blocking()
    sender._notifier = blocking
    started = time.monotonic()
    for i in range(10):
        sender.image("image.update", {**IMAGE, "name": str(i)})
    assert time.monotonic() - started < 1.0
    # one in the thread's hands, three queued, the rest dropped (and counted)
    assert sender.stats["dropped"] >= 6
    blocking.release.set()
    assert sender.flush(10)
    assert len(blocking.sent) == sender.stats["sent"] == 10 - sender.stats["dropped"]


def test_a_failing_send_is_counted_and_the_thread_goes_on() -> None:
    sender = n.Notifier(_conf(driver=["messagingv2"]))

    class Failing:
        calls = 0

        def info(self, ctxt, event_type, payload):
            Failing.calls += 1
            if Failing.calls == 1:
                raise ConnectionError("broker gone")

    sender._notifier = Failing()
    sender.image("image.create", IMAGE)
    sender.image("image.update", IMAGE)
    assert sender.flush(10)
    assert sender.stats == {"queued": 2, "sent": 1, "failed": 1, "dropped": 0}


def test_disabled_events_are_not_queued_and_send_priority() -> None:
    conf = _conf(driver=["messagingv2"])
    conf.set_override("disabled_notifications", ["image.update", "task"])
    sender = n.Notifier(conf)
    sent = []

    class Recorder:
        def info(self, ctxt, event_type, payload):
            sent.append(("info", event_type, payload))

        def error(self, ctxt, event_type, payload):
            sent.append(("error", event_type, payload))

    sender._notifier = Recorder()
    sender.image("image.update", IMAGE)
    sender.task("task.success", {"id": "t"})
    sender.image_send(IMAGE, None, 3, 3, "198.51.100.7")
    sender.image_send(IMAGE, None, 1, 3, "198.51.100.7")
    sender.upload_failed("i1", "disk full")
    assert sender.flush(10)
    assert [(p, e) for p, e, _ in sent] == [
        ("info", "image.send"),
        ("error", "image.send"),
        ("error", "image.upload"),
    ]
    assert sent[1][2]["bytes_sent"] == 1 and sent[1][2]["destination_ip"] == "198.51.100.7"
    assert isinstance(sent[2][2], str)  # upstream: the error's payload is the message


class _Recording(n.Events):
    enabled = True

    def __init__(self) -> None:
        self.sent: list[tuple[str, str, object]] = []

    def emit(self, priority, event_type, payload) -> None:
        self.sent.append((priority, event_type, payload))


def test_a_closed_task_sends_success_or_failure_with_the_closed_record() -> None:
    import types

    from glance_service.images import import_tasks

    class Data:
        def task_update(self, ctx, task_id, values):
            return {"id": task_id, "type": "api_image_import", "status": values["status"], "owner": "p1"}

    events = _Recording()
    svc = types.SimpleNamespace(
        conf=types.SimpleNamespace(task=types.SimpleNamespace(task_time_to_live=48)),
        data=Data(),
        notifier=events,
    )
    import_tasks.finish_task(svc, None, "t1", True)
    import_tasks.finish_task(svc, None, "t2", False, "broken")
    assert [(e, p["id"], p["status"]) for _, e, p in events.sent] == [
        ("task.success", "t1", "success"),
        ("task.failure", "t2", "failure"),
    ]
    assert events.sent[1][2]["message"] is None  # upstream leaves the message out of the payload
