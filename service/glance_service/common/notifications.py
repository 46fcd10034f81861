"""Notifications (``image.create``, ``image.send``, ``task.success`` ...) through oslo.messaging.

Upstream Glance 33's options, event types and payloads (its ``glance/notifier.py`` and
``glance/api/common.py``): ``[oslo_messaging_notifications] driver / transport_url / topics /
retry`` (oslo.messaging's own options), ``[DEFAULT] default_publisher_id`` (``image.localhost``)
and ``disabled_notifications`` (an event type, or its group: ``image``, ``image.member``,
``task``, ``metadef_tag`` ...). The exchange is ``glance``, as upstream sets it.

Handlers call one method of :func:`of` (``notifications.of(svc).image("image.update", image)``);
the payload is built in the request's thread from the records the handler already has, and put
on a bounded queue. One daemon thread per process (started on the first event, so after
gunicorn's fork) sends it. A request never waits for the broker: when the broker is down the
thread waits for it (``retry``, oslo.messaging's: -1 retries forever), events queue up to
``QUEUE_SIZE``, later ones are dropped; every drop and every failed send is logged and counted
(``Notifier.stats``). Without a driver (the default: oslo.messaging's ``driver`` is empty) or
with ``noop`` only, nothing is sent and oslo_messaging is never imported (issue 17: an unused
feature costs no memory).
"""

from __future__ import annotations

import atexit
import datetime
import queue
import threading
from typing import Any

from oslo_config import cfg
from oslo_log import log as logging

from glance_service.common.registrar import registrar

LOG = logging.getLogger(__name__)

GROUP = "oslo_messaging_notifications"
QUEUE_SIZE = 1000
# How long a worker's exit waits for queued events (atexit), at most.
FLUSH_SECONDS = 2.0

# [DEFAULT], upstream's glance/notifier.py.
notifier_opts = [
    cfg.StrOpt(
        "default_publisher_id",
        default="image.localhost",
        help="Default publisher_id for outgoing Glance notifications (typically image.<hostname>).",
    ),
    cfg.ListOpt(
        "disabled_notifications",
        default=[],
        help="Notifications not to send: an event type (image.create) or a group (image, "
        "image.member, task, metadef_namespace, metadef_object, metadef_property, "
        "metadef_resource_type, metadef_tag).",
    ),
]

# oslo.messaging's [oslo_messaging_notifications] options, declared exactly as
# oslo_messaging/notify/notifier.py declares them (tests/unit/test_notifications.py checks it),
# so that this process can read ``driver`` without importing oslo_messaging; oslo.messaging's
# own registration of the same options is then a no-op.
messaging_notification_opts = [
    cfg.MultiStrOpt(
        "driver",
        default=[],
        help="The Drivers(s) to handle sending notifications. "
        "Possible values are messaging, messagingv2, "
        "routing, log, test, noop",
    ),
    cfg.StrOpt(
        "transport_url",
        secret=True,
        help="A URL representing the messaging driver to use for "
        "notifications. If not set, we fall back to the same "
        "configuration used for RPC.",
    ),
    cfg.ListOpt(
        "topics",
        default=[
            "notifications",
        ],
        help="AMQP topic used for OpenStack notifications.",
    ),
    cfg.IntOpt(
        "retry",
        default=-1,
        help="The maximum number of attempts to re-send a notification "
        "message which failed to be delivered due to a "
        "recoverable error. 0 - No retry, -1 - indefinite",
    ),
]

_register = registrar((None, notifier_opts), (GROUP, messaging_notification_opts))


def register_opts(conf: cfg.ConfigOpts) -> None:
    _register(conf)


def list_opts() -> list[tuple[str | None, list[cfg.Opt]]]:
    """Ours only: oslo.messaging's options come from its own sample-config namespace."""
    return [(None, notifier_opts)]


# -- payloads (upstream's format_*_notification: the keys, in the same shape) -----------------


def isotime(value: Any) -> str | None:
    """Upstream's ``timeutils.isotime``: ``YYYY-MM-DDThh:mm:ssZ`` (UTC, no fraction)."""
    if value is None or value == "":
        return None
    if isinstance(value, datetime.datetime):
        if value.tzinfo is not None:
            value = value.astimezone(datetime.UTC).replace(tzinfo=None)
        return value.strftime("%Y-%m-%dT%H:%M:%SZ")
    return str(value)[:19] + "Z"


def now() -> str:
    return isotime(datetime.datetime.now(datetime.UTC))


def _split(value: Any) -> list[str]:
    return (
        [part for part in (value or "").split(",") if part] if isinstance(value, str) else list(value or [])
    )


# Properties only this service records (which process uploads or imports): not in payloads.
OWN_PROPERTIES = frozenset({"os_glance_upload_host", "os_glance_import_worker"})


def image_payload(image: dict) -> dict:
    """``format_image_notification``: no locations (they may hold credentials)."""
    visibility = image.get("visibility")
    props = {k: v for k, v in (image.get("properties") or {}).items() if k not in OWN_PROPERTIES}
    return {
        "id": image.get("id"),
        "name": image.get("name"),
        "status": image.get("status"),
        "created_at": isotime(image.get("created_at")),
        "updated_at": isotime(image.get("updated_at")),
        "min_disk": image.get("min_disk"),
        "min_ram": image.get("min_ram"),
        "protected": image.get("protected"),
        "checksum": image.get("checksum"),
        "owner": image.get("owner"),
        "disk_format": image.get("disk_format"),
        "container_format": image.get("container_format"),
        "size": image.get("size"),
        "virtual_size": image.get("virtual_size"),
        "is_public": visibility == "public",
        "visibility": visibility,
        "properties": props,
        "tags": list(image.get("tags") or []),
        "deleted": False,
        "deleted_at": None,
    }


def import_properties(image: dict) -> dict:
    """``_format_import_properties``: the import's store lists, as lists."""
    props = image.get("properties") or {}
    return {
        "os_glance_importing_to_stores": _split(props.get("os_glance_importing_to_stores")),
        "os_glance_failed_import": _split(props.get("os_glance_failed_import")),
    }


def image_send_payload(image: dict, ctx: Any, bytes_sent: int, destination_ip: str | None) -> dict:
    return {
        "bytes_sent": bytes_sent,
        "image_id": image.get("id"),
        "owner_id": image.get("owner"),
        "receiver_tenant_id": getattr(ctx, "project_id", None),
        "receiver_user_id": getattr(ctx, "user_id", None),
        "destination_ip": destination_ip,
    }


def member_payload(member: dict) -> dict:
    """``format_image_member_notification`` (our records name the member ``member``)."""
    return {
        "image_id": member.get("image_id"),
        "member_id": member.get("member", member.get("member_id")),
        "status": member.get("status"),
        **_times(member),
    }


def task_payload(task: dict) -> dict:
    """``format_task_notification``: no input (it may hold credentials), result and message None."""
    return {
        "id": task.get("id"),
        "type": task.get("type"),
        "status": task.get("status"),
        "result": None,
        "owner": task.get("owner"),
        "message": None,
        "expires_at": isotime(task.get("expires_at")),
        **_times(task),
    }


_SCHEMA_KEYS = (
    "type",
    "title",
    "description",
    "default",
    "minimum",
    "maximum",
    "enum",
    "pattern",
    "minLength",
    "maxLength",
    "confidential",
    "items",
    "uniqueItems",
    "minItems",
    "maxItems",
    "additionalItems",
)


def _times(record: dict) -> dict:
    return {
        "created_at": isotime(record.get("created_at")),
        "updated_at": isotime(record.get("updated_at")),
        "deleted": False,
        "deleted_at": None,
    }


def metadef_namespace_payload(ns: dict) -> dict:
    return {
        "namespace": ns.get("namespace"),
        "namespace_old": ns.get("namespace"),
        "display_name": ns.get("display_name"),
        "protected": ns.get("protected"),
        "visibility": ns.get("visibility"),
        "owner": ns.get("owner"),
        "description": ns.get("description"),
        **_times(ns),
    }


def metadef_object_payload(namespace: str, obj: dict) -> dict:
    properties = []
    for name, prop in (obj.get("properties") or {}).items():
        properties.append({"name": name, **{key: (prop or {}).get(key) or None for key in _SCHEMA_KEYS}})
    return {
        "namespace": namespace,
        "name": obj.get("name"),
        "name_old": obj.get("name"),
        "properties": properties,
        "required": obj.get("required"),
        "description": obj.get("description"),
        **_times(obj),
    }


def metadef_property_payload(namespace: str, prop: dict) -> dict:
    schema = prop.get("schema") if isinstance(prop.get("schema"), dict) else prop
    return {
        "namespace": namespace,
        "name": prop.get("name"),
        "name_old": prop.get("name"),
        **{key: schema.get(key) for key in _SCHEMA_KEYS},
        "deleted": False,
        "deleted_at": None,
    }


def metadef_resource_type_payload(namespace: str, rt: dict) -> dict:
    return {
        "namespace": namespace,
        "name": rt.get("name"),
        "name_old": rt.get("name"),
        "prefix": rt.get("prefix"),
        "properties_target": rt.get("properties_target"),
        **_times(rt),
    }


def metadef_tag_payload(namespace: str, tag: dict) -> dict:
    return {
        "namespace": namespace,
        "name": tag.get("name"),
        "name_old": tag.get("name"),
        **_times(tag),
    }


def metadef_item_payload(kind: str, namespace: str, record: dict) -> dict:
    """A namespace's ``property``, ``object`` or ``tag``."""
    build = {"property": metadef_property_payload, "object": metadef_object_payload}.get(
        kind, metadef_tag_payload
    )
    return build(namespace, record)


def deleted() -> dict:
    return {"deleted": True, "deleted_at": now()}


# -- senders --------------------------------------------------------------------------------------


class Events:
    """What handlers call. This base sends nothing (no driver, or ``noop``)."""

    enabled = False

    def emit(self, priority: str, event_type: str, payload: Any) -> None:
        """Queue one event (``priority``: ``info`` or ``error``); never raises, never blocks."""

    # One-line helpers for the hooks (payload building is skipped when nothing is sent).
    def image(self, event_type: str, image: dict, extra: dict | None = None) -> None:
        if self.enabled:
            self.emit("info", event_type, {**image_payload(image), **(extra or {})})

    def image_import(self, event_type: str, image: dict, backend: str | None = None) -> None:
        """``image.prepare`` / ``image.upload`` of an upload or import: with the import's store
        lists, and the store (``backend``) when there are several."""
        if self.enabled:
            extra = import_properties(image)
            if backend:
                extra["backend"] = backend
            self.emit("info", event_type, {**image_payload(image), **extra})

    def image_deleted(self, image: dict) -> None:
        self.image("image.delete", image, deleted())

    def upload_failed(self, image_id: str, error: Any) -> None:
        if self.enabled:
            self.emit("error", "image.upload", f"Failed to upload image data for image {image_id}: {error}")

    def image_send(
        self, image: dict, ctx: Any, bytes_sent: int, expected: int | None, ip: str | None
    ) -> None:
        if self.enabled:
            priority = "info" if expected is None or bytes_sent == expected else "error"
            self.emit(priority, "image.send", image_send_payload(image, ctx, bytes_sent, ip))

    def member(self, event_type: str, member: dict) -> None:
        if self.enabled:
            extra = deleted() if event_type.endswith(".delete") else {}
            self.emit("info", event_type, {**member_payload(member), **extra})

    def task(self, event_type: str, task: dict | None) -> None:
        if self.enabled and task:
            extra = deleted() if event_type.endswith(".delete") else {}
            self.emit("info", event_type, {**task_payload(task), **extra})

    def metadef(self, event_type: str, payload_of, *args, extra: dict | None = None) -> None:
        """``payload_of``: one of the ``metadef_*_payload`` functions, called with ``args``."""
        if self.enabled:
            payload = payload_of(*args)
            if event_type.endswith(".delete"):
                payload.update(deleted())
            self.emit("info", event_type, {**payload, **(extra or {})})

    def metadef_item(
        self, action: str, kind: str, namespace: str, record: dict | None, old: str = ""
    ) -> None:
        """``metadef_<kind>.<action>`` of a namespace's property, object or tag."""
        if self.enabled and record:
            extra = {"name_old": old} if old else None
            self.metadef(
                f"metadef_{kind}.{action}", metadef_item_payload, kind, namespace, record, extra=extra
            )


NOOP = Events()


def of(svc: Any) -> Events:
    """The process's sender from the handler's services (NOOP when it has none)."""
    return getattr(svc, "notifier", None) or NOOP


def is_enabled(disabled: list[str], event_type: str) -> bool:
    """Upstream's ``_is_notification_enabled``: the type itself or its first dotted part."""
    return not ({event_type, event_type.split(".", 1)[0]} & set(disabled))


class Notifier(Events):
    """Queues events; a daemon thread hands them to oslo.messaging's ``Notifier``."""

    enabled = True

    def __init__(self, conf: cfg.ConfigOpts, queue_size: int = QUEUE_SIZE):
        self.conf = conf
        self.disabled = list(conf.disabled_notifications)
        self.stats = {"queued": 0, "sent": 0, "failed": 0, "dropped": 0}
        self._queue: queue.Queue = queue.Queue(maxsize=queue_size)
        self._lock = threading.Lock()
        self._thread: threading.Thread | None = None
        self._notifier = None

    def emit(self, priority: str, event_type: str, payload: Any) -> None:
        try:
            if not is_enabled(self.disabled, event_type):
                return
            self._start()
            self._queue.put_nowait((priority, event_type, payload))
            self.stats["queued"] += 1
        except queue.Full:
            self.stats["dropped"] += 1
            LOG.error(
                "Notification %s dropped: %d events wait for the message broker (%d dropped so far)",
                event_type,
                self._queue.qsize(),
                self.stats["dropped"],
            )
        except Exception:  # noqa: BLE001 - a notification must never fail a request
            self.stats["failed"] += 1
            LOG.exception("Notification %s could not be queued", event_type)

    def _start(self) -> None:
        if self._thread is not None and self._thread.is_alive():
            return
        with self._lock:
            if self._thread is None or not self._thread.is_alive():
                if self._thread is None:
                    # A worker that exits (stop, reload) gives queued events a moment to leave.
                    atexit.register(self.flush)
                self._thread = threading.Thread(target=self._run, name="notifications", daemon=True)
                self._thread.start()

    def _messaging(self):
        if self._notifier is None:
            oslo_messaging = import_messaging()

            oslo_messaging.set_transport_defaults("glance")
            transport = oslo_messaging.get_notification_transport(self.conf)
            self._notifier = oslo_messaging.Notifier(transport, publisher_id=self.conf.default_publisher_id)
        return self._notifier

    def _run(self) -> None:
        while True:
            priority, event_type, payload = self._queue.get()
            try:
                getattr(self._messaging(), priority)({}, event_type, payload)
                self.stats["sent"] += 1
            except Exception as exc:  # noqa: BLE001 - logged and counted, the thread goes on
                self.stats["failed"] += 1
                LOG.error(
                    "Notification %s not sent (%d failed so far): %s", event_type, self.stats["failed"], exc
                )
            finally:
                self._queue.task_done()

    def flush(self, timeout: float = FLUSH_SECONDS) -> bool:
        """Wait up to ``timeout`` for the queue to empty (tests, and a worker's exit)."""
        deadline = threading.Event()
        done = threading.Thread(target=lambda: (self._queue.join(), deadline.set()), daemon=True)
        done.start()
        return deadline.wait(timeout)


def import_messaging():
    """oslo_messaging, on oslo.service's threading backend: this service never loads eventlet
    (glance_service/__init__.py), and oslo.service would pick it by default."""
    from oslo_service import backend

    backend.register_backend_default_hook(lambda: backend.BackendType.THREADING)
    import oslo_messaging

    return oslo_messaging


def build(conf: cfg.ConfigOpts) -> Events:
    """The sender this configuration asks for: NOOP without a driver (or with ``noop`` only)."""
    register_opts(conf)
    drivers = [d for d in conf[GROUP].driver if d and d != "noop"]
    if not drivers:
        return NOOP
    return Notifier(conf)
