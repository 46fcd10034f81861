"""SIGHUP to glance-api's master reloads the configuration without a failed request.

Real registry + API (two workers). Clients download (checking the bytes) and list in a loop, on
kept-alive and on fresh connections, and an upload streams slowly across the reload, while
the store configuration changes under them: a second file store is added and made the default
(the backend switch's step), then a broken configuration is sent and must be refused.
"""

from __future__ import annotations

import hashlib
import os
import signal
import threading
import time
import uuid

import psutil
import pytest
import requests

from glance_service.common.after_worker_exit import CHILD_NAME
from tests.fixtures.glance_procs import render, start_glance
from tests.functional.api.import_helpers import OCTET
from tests.functional.conftest import Http


def store_conf(work, backends: str, default: str) -> dict:
    """``backends``: the ``enabled_backends`` value, every one a file store under ``work``."""
    conf = {
        "DEFAULT": {"enabled_backends": backends},
        "glance_store": {"default_backend": default},
        "os_glance_staging_store": {"filesystem_store_datadir": str(work / "staging")},
        "os_glance_tasks_store": {"filesystem_store_datadir": str(work / "tasks")},
    }
    for item in backends.split(","):
        name, _, _kind = item.strip().partition(":")
        conf[name] = {"filesystem_store_datadir": str(work / name)}
    return conf


@pytest.fixture(scope="module")
def procs(tmp_path_factory):
    work = tmp_path_factory.mktemp("reload")
    glance = start_glance(work, extra_api=store_conf(work, "old:file", "old"), workers=2)
    yield glance
    glance.stop()


def write_api_conf(procs, overrides: dict) -> None:
    text = render("glance-api.conf.j2", {**procs.variables, "glance_api_conf_overrides": overrides})
    tmp = procs.api_conf.with_suffix(".new")
    tmp.write_text(text)
    os.replace(tmp, procs.api_conf)


def workers(procs) -> set[int]:
    """The gunicorn workers: the master's children that serve (the scrubber is one too, but
    it never changes; the recovery run after workers exit is not)."""
    pids = set()
    for child in psutil.Process(procs.api.pid).children():
        try:
            if child.name() != CHILD_NAME:
                pids.add(child.pid)
        except psutil.NoSuchProcess:
            pass  # a recovery run that just ended
    return pids


def api_log(procs) -> str:
    return (procs.workdir / "log" / "glance-api.log").read_text(errors="replace")


def stores(admin: Http) -> dict:
    resp = admin.get("/v2/info/stores")
    assert resp.status_code == 200, resp.text
    return {s["id"]: s.get("default") == "true" for s in resp.json()["stores"]}


def wait_for(predicate, timeout: float = 60.0, what: str = "") -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return
        time.sleep(0.2)
    raise AssertionError(f"timed out waiting for {what}")


def upload(http: Http, data: bytes) -> dict:
    image = http.create_image(disk_format="raw", container_format="bare")
    resp = http.put(f"/v2/images/{image['id']}/file", data=data, headers=OCTET)
    assert resp.status_code == 204, resp.text
    return http.get(f"/v2/images/{image['id']}").json()


class ClientLoop:
    """Downloads and listings until stopped; every failure is kept with its reason."""

    def __init__(self, base_url: str, images: dict[str, str], project: str, fresh_connections: bool):
        self.base_url = base_url
        self.images = images  # id -> sha512
        self.project = project
        self.fresh = fresh_connections
        self.ok = 0
        self.failures: list[str] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def start(self) -> ClientLoop:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(60)

    def _run(self) -> None:
        http = Http(self.base_url, project=self.project)
        ids = list(self.images)
        n = 0
        while not self._stop.is_set():
            if self.fresh:
                http.session.close()
                http.session = requests.Session()
            image_id = ids[n % len(ids)]
            n += 1
            try:
                resp = http.get(f"/v2/images/{image_id}/file")
                if resp.status_code != 200:
                    self.failures.append(f"download {image_id}: {resp.status_code} {resp.text[:200]}")
                elif hashlib.sha512(resp.content).hexdigest() != self.images[image_id]:
                    self.failures.append(f"download {image_id}: wrong bytes")
                else:
                    self.ok += 1
                listing = http.get("/v2/images?limit=100")
                if listing.status_code != 200:
                    self.failures.append(f"list: {listing.status_code} {listing.text[:200]}")
                elif not set(ids) <= {i["id"] for i in listing.json()["images"]}:
                    self.failures.append("list: images missing")
                else:
                    self.ok += 1
            except requests.RequestException as exc:
                self.failures.append(f"{type(exc).__name__}: {exc}")


def slow_body(data: bytes, seconds: float, chunks: int = 40):
    """A chunked request body that takes ``seconds`` to send."""
    size = len(data) // chunks
    for i in range(chunks):
        time.sleep(seconds / chunks)
        yield data[i * size : (i + 1) * size if i < chunks - 1 else len(data)]


class SlowUpload:
    """An upload streaming for ``seconds`` in a thread of its own, started at once."""

    def __init__(self, http: Http, data: bytes, seconds: float = 4):
        self.http = http
        self.data = data
        self.image = http.create_image(disk_format="raw", container_format="bare")
        self.status: int | None = None
        self._thread = threading.Thread(target=self._send, args=(seconds,))
        self._thread.start()

    def _send(self, seconds: float) -> None:
        resp = self.http.put(
            f"/v2/images/{self.image['id']}/file", data=slow_body(self.data, seconds), headers=OCTET
        )
        self.status = resp.status_code

    def finished(self) -> dict:
        """The image once the upload ended: accepted, active, with the bytes sent."""
        self._thread.join(60)
        assert self.status == 204, self.status
        image = self.http.get(f"/v2/images/{self.image['id']}").json()
        assert image["status"] == "active"
        assert image["os_hash_value"] == hashlib.sha512(self.data).hexdigest()
        return image


def test_reload_changes_stores_without_a_failed_request(procs):
    project = uuid.uuid4().hex
    owner = Http(procs.api_url, project=project)
    admin = Http(procs.api_url, roles="admin,member,reader")
    blobs = [os.urandom(n) for n in (1 << 20, 3 << 20, 5 << 20)]
    images = {}
    for blob in blobs:
        image = upload(owner, blob)
        assert image["stores"] == "old"
        images[image["id"]] = hashlib.sha512(blob).hexdigest()
    assert stores(admin) == {"old": True}

    loops = [ClientLoop(procs.api_url, images, project, fresh).start() for fresh in (False, True)]
    try:
        time.sleep(1)
        # An upload streaming across the reload: its old worker must finish it.
        slow = SlowUpload(owner, os.urandom(8 << 20))
        time.sleep(1)

        # The backend switch's step: a second store, made the default.
        before = workers(procs)
        write_api_conf(procs, store_conf(procs.workdir, "old:file,new:file", "new"))
        (procs.workdir / "new").mkdir(exist_ok=True)
        os.kill(procs.api.pid, signal.SIGHUP)
        wait_for(lambda: stores(admin) == {"old": False, "new": True}, what="the new default store")
        # (delayed delete is off: the master's only children are its workers)
        wait_for(lambda: not before & workers(procs), what="the old workers to exit")
        # The old worker took the upload under the old configuration: it went to "old".
        assert slow.finished()["stores"] == "old"

        # New uploads go to the new default; images only in the old store are still served.
        fresh = os.urandom(2 << 20)
        new_image = upload(owner, fresh)
        assert new_image["stores"] == "new"
        for image_id, digest in images.items():
            assert owner.get(f"/v2/images/{image_id}").json()["stores"] == "old"
            assert hashlib.sha512(owner.get(f"/v2/images/{image_id}/file").content).hexdigest() == digest

        # A configuration the service cannot run with is refused; the workers stay.
        serving = workers(procs)
        write_api_conf(procs, store_conf(procs.workdir, "old:file,new:file", "gone"))
        os.kill(procs.api.pid, signal.SIGHUP)
        wait_for(lambda: "Reload refused" in api_log(procs), what="the refused reload in the log")
        assert "default_backend must name one of" in api_log(procs)
        assert workers(procs) == serving
        assert stores(admin) == {"old": False, "new": True}
        time.sleep(1)
    finally:
        for loop in loops:
            loop.stop()
        write_api_conf(procs, store_conf(procs.workdir, "old:file,new:file", "new"))

    for loop in loops:
        assert loop.failures == [], loop.failures[:10]
        assert loop.ok > 20


def test_reload_refuses_an_unknown_store_kind(procs):
    admin = Http(procs.api_url, roles="admin,member,reader")
    before = stores(admin)
    serving = workers(procs)
    refused = api_log(procs).count("Reload refused")
    write_api_conf(procs, store_conf(procs.workdir, "old:file,new:nosuchkind", "new"))
    try:
        os.kill(procs.api.pid, signal.SIGHUP)
        time.sleep(5)
        assert api_log(procs).count("Reload refused") == refused + 1
        assert workers(procs) == serving
        assert stores(admin) == before
    finally:
        write_api_conf(procs, store_conf(procs.workdir, "old:file,new:file", "new"))
        os.kill(procs.api.pid, signal.SIGHUP)
        wait_for(lambda: admin.get("/v2/images").status_code == 200, what="the service back")
