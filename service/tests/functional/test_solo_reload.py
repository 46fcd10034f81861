"""``workers = 0``: one process serves, no gunicorn master (``common.solo_server``).

Real glance-api and glance-registry, each a single process. A SIGHUP reloads in place: the
API's store configuration changes under clients downloading and listing (kept-alive and fresh
connections) and an upload streaming across the reload, without a failed request and with the
same PID; a configuration that cannot build is refused; replaced applications are let go
(their connections close), so reloads do not pile them up; SIGTERM stops the process cleanly.
"""

from __future__ import annotations

import hashlib
import os
import signal
import subprocess
import sys
import threading
import time
import uuid

import psutil
import pytest

from tests.fixtures.glance_procs import start_glance
from tests.functional.conftest import Http
from tests.functional.test_graceful_reload import (
    ClientLoop,
    SlowUpload,
    api_log,
    store_conf,
    stores,
    upload,
    wait_for,
    write_api_conf,
)

GRACE = 2  # graceful_shutdown_timeout: how long a replaced application is kept


def with_grace(conf: dict) -> dict:
    return {**conf, "DEFAULT": {**conf.get("DEFAULT", {}), "graceful_shutdown_timeout": GRACE}}


@pytest.fixture(scope="module")
def procs(tmp_path_factory):
    work = tmp_path_factory.mktemp("solo")
    glance = start_glance(
        work,
        extra_api=with_grace(store_conf(work, "old:file", "old")),
        extra_registry={"DEFAULT": {"graceful_shutdown_timeout": GRACE}},
        workers=0,
        registry_workers=0,
    )
    yield glance
    glance.stop()


def write_conf(procs, stores_conf: dict) -> None:
    write_api_conf(procs, with_grace(stores_conf))


def registry_connections(procs) -> set[int]:
    """The API process's TCP connections to the registry, by their local port."""
    return {
        c.laddr.port
        for c in psutil.Process(procs.api.pid).net_connections("tcp")
        if c.raddr and c.raddr.port == procs.registry_port and c.status == psutil.CONN_ESTABLISHED
    }


def test_one_process_each(procs):
    for proc in (procs.api, procs.registry):
        assert psutil.Process(proc.pid).children() == []
    resp = Http(procs.api_url).get("/v2/images")
    assert resp.status_code == 200, resp.text


def test_reload_in_place_without_a_failed_request(procs):
    project = uuid.uuid4().hex
    owner = Http(procs.api_url, project=project)
    admin = Http(procs.api_url, roles="admin,member,reader")
    images = {}
    for size in (1 << 20, 3 << 20):
        blob = os.urandom(size)
        image = upload(owner, blob)
        assert image["stores"] == "old"
        images[image["id"]] = hashlib.sha512(blob).hexdigest()
    api_pid, registry_pid = procs.api.pid, procs.registry.pid

    loops = [ClientLoop(procs.api_url, images, project, fresh).start() for fresh in (False, True)]
    try:
        time.sleep(1)
        slow = SlowUpload(owner, os.urandom(8 << 20))
        time.sleep(1)

        write_conf(procs, store_conf(procs.workdir, "old:file,new:file", "new"))
        (procs.workdir / "new").mkdir(exist_ok=True)
        os.kill(api_pid, signal.SIGHUP)
        wait_for(lambda: stores(admin) == {"old": False, "new": True}, what="the new default store")
        # The registry reloads too (same files): its callers never notice.
        os.kill(registry_pid, signal.SIGHUP)
        wait_for(lambda: "Reloaded" in registry_log(procs), what="the registry's reload")
        # Started before the reload: served to its end by the old application, into "old".
        assert slow.finished()["stores"] == "old"
        assert upload(owner, os.urandom(1 << 20))["stores"] == "new"

        # A configuration the service cannot run with is refused; the running one stays.
        write_conf(procs, store_conf(procs.workdir, "old:file,new:file", "gone"))
        os.kill(api_pid, signal.SIGHUP)
        wait_for(lambda: "Reload refused" in api_log(procs), what="the refused reload in the log")
        assert "default_backend must name one of" in api_log(procs)
        assert stores(admin) == {"old": False, "new": True}
        time.sleep(1)
    finally:
        for loop in loops:
            loop.stop()
        write_conf(procs, store_conf(procs.workdir, "old:file,new:file", "new"))

    assert (procs.api.pid, procs.registry.pid) == (api_pid, registry_pid)
    assert procs.api.poll() is None and procs.registry.poll() is None
    for loop in loops:
        assert loop.failures == [], loop.failures[:10]
        assert loop.ok > 20


def registry_log(procs) -> str:
    return (procs.workdir / "log" / "glance-registry.log").read_text(errors="replace")


def test_replaced_applications_are_let_go(procs):
    """Each application holds its own registry connections: a reload that kept the old ones
    alive would leave them open for the life of the process."""
    http = Http(procs.api_url)

    def traffic():
        # Concurrent requests open several connections in the application's pool.
        threads = [threading.Thread(target=lambda: http.get("/v2/images?limit=5")) for _ in range(4)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        for _ in range(5):
            assert Http(procs.api_url).get("/v2/images?limit=5").status_code == 200

    traffic()
    first = registry_connections(procs)  # the first application's, kept alive in its pool
    assert first
    for _ in range(4):
        reloaded = api_log(procs).count("Reloaded")
        os.kill(procs.api.pid, signal.SIGHUP)
        wait_for(lambda n=reloaded: api_log(procs).count("Reloaded") > n, what="the reload")
        traffic()
    # Every replaced application has had its grace: the first one's connections are closed
    # (kept alive, they would stay open as long as the registry keeps them: 75 s).
    time.sleep(GRACE + 2)
    assert not first & registry_connections(procs), (first, registry_connections(procs))


def test_sigterm_stops_cleanly(tmp_path):
    glance = start_glance(tmp_path, workers=0, registry_workers=0)
    try:
        assert Http(glance.api_url).get("/v2/images").status_code == 200
        for proc in (glance.api, glance.registry):
            proc.send_signal(signal.SIGTERM)
            assert proc.wait(30) == 0
    finally:
        glance.stop()


def check(kind: str, conf_file) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "glance_service.cmd.reload_check", kind, "--config-file", str(conf_file)],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def test_reload_check_builds_each_service_in_a_fresh_interpreter(procs):
    for kind, conf_file in (("glance-api", procs.api_conf), ("glance-registry", procs.registry_conf)):
        done = check(kind, conf_file)
        assert (done.returncode, done.stdout.splitlines()[-1:]) == (0, ["ok"]), done.stderr[-2000:]
    bad = procs.workdir / "bad-api.conf"
    text = procs.api_conf.read_text()
    bad.write_text(text + "\n[glance_store]\ndefault_backend = gone\n")
    done = check("glance-api", bad)
    assert done.returncode == 1
    assert "default_backend must name one of" in done.stdout.splitlines()[-1]
    # The check writes no log file of its own next to the services' (log_dir).
    assert sorted(p.name for p in (procs.workdir / "log").iterdir()) == [
        "glance-api.log",
        "glance-registry.log",
    ]
