"""``image.send``: the bytes that left, counted when the server closes the body (api/image_send.py)."""

from __future__ import annotations

import types

import webob
from gunicorn.http.wsgi import FileWrapper

from glance_service.api import image_send
from glance_service.common import notifications


class _Events(notifications.Events):
    enabled = True

    def __init__(self) -> None:
        self.sent: list[tuple[str, str, object]] = []

    def emit(self, priority, event_type, payload) -> None:
        self.sent.append((priority, event_type, payload))


def _setup(environ: dict | None = None):
    events = _Events()
    svc = types.SimpleNamespace(notifier=events)
    ctx = types.SimpleNamespace(project_id="p2", user_id="u2")
    req = webob.Request.blank("/", environ={"REMOTE_ADDR": "198.51.100.9", **(environ or {})})
    return events, svc, ctx, req


IMAGE = {"id": "i1", "owner": "p1"}


def test_iterated_body_counts_what_was_taken() -> None:
    events, svc, ctx, req = _setup()
    body = image_send.counted(svc, ctx, IMAGE, req, iter([b"abc", b"de"]), 5)
    assert b"".join(body) == b"abcde"
    body.close()
    ((priority, event, payload),) = events.sent
    assert (priority, event) == ("info", "image.send")
    assert payload == {
        "bytes_sent": 5, "image_id": "i1", "owner_id": "p1", "receiver_tenant_id": "p2",
        "receiver_user_id": "u2", "destination_ip": "198.51.100.9",
    }  # fmt: skip


def test_client_gone_midway_is_an_error_with_the_bytes_sent() -> None:
    events, svc, ctx, req = _setup()
    body = image_send.counted(svc, ctx, IMAGE, req, iter([b"abc", b"de"]), 5)
    next(body)
    body.close()
    assert [(p, e, pl["bytes_sent"]) for p, e, pl in events.sent] == [("error", "image.send", 3)]


def test_sendfile_body_stays_the_servers_wrapper(tmp_path) -> None:
    path = tmp_path / "data"
    path.write_bytes(b"x" * 100)
    events, svc, ctx, req = _setup({"wsgi.file_wrapper": FileWrapper})
    # complete: gunicorn puts the offset back where it started
    f = open(path, "rb")  # noqa: SIM115 - closed by the wrapper
    body = image_send.counted(svc, ctx, IMAGE, req, FileWrapper(f, 8192), 100)
    assert isinstance(body, FileWrapper)  # so the server still uses sendfile
    body.close()
    assert f.closed
    # cut short: Python's sendfile leaves the offset after the bytes sent
    f = open(path, "rb")  # noqa: SIM115
    body = image_send.counted(svc, ctx, IMAGE, req, FileWrapper(f, 8192), 100)
    f.seek(40)
    body.close()
    assert [(p, pl["bytes_sent"]) for p, _, pl in events.sent] == [("info", 100), ("error", 40)]


def test_nothing_wrapped_when_notifications_are_off() -> None:
    _, _, ctx, req = _setup()
    body = iter([b"a"])
    assert image_send.counted(types.SimpleNamespace(), ctx, IMAGE, req, body, 1) is body
