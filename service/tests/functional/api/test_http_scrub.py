"""Delayed delete against real processes: DELETE → pending_delete (404, data kept), then
``glance-manage scrub`` or the API's periodic scrubber removes the data and the row ends
``deleted``; ``glance-manage scrub --restore`` brings an image back."""

from __future__ import annotations

import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.fixtures.glance_procs import render, start_glance
from tests.functional.conftest import Http

GLANCE_MANAGE = Path(sys.executable).parent / "glance-manage"
OCTET = {"Content-Type": "application/octet-stream"}


@pytest.fixture(scope="module")
def delayed(tmp_path_factory):
    # wakeup_time is long: the API's scrubber runs once at start, then leaves the work to the tests.
    procs = start_glance(
        tmp_path_factory.mktemp("delayed"),
        extra_api={"DEFAULT": {"delayed_delete": "true", "wakeup_time": "3600"}},
        workers=1,
    )
    # Its start-up pass must be over before a test deletes: on a loaded machine it could start
    # late and scrub a test's image before glance-manage does.
    deadline = time.monotonic() + 120
    api_log = procs.workdir / "log" / "glance-api.log"
    while "Scrubber: first run done" not in (api_log.read_text() if api_log.exists() else ""):
        assert time.monotonic() < deadline, "the API's scrubber never ran its first pass:\n" + procs.logs()
        time.sleep(0.2)
    yield procs
    procs.stop()


@pytest.fixture
def owner(delayed) -> Http:
    return Http(delayed.api_url)


def _active_image(h: Http, data: bytes = b"some image data") -> str:
    image = h.create_image(disk_format="raw", container_format="bare")
    resp = h.put(f"/v2/images/{image['id']}/file", data=data, headers=OCTET)
    assert resp.status_code == 204, resp.text
    return image["id"]


def _row(procs, image_id: str) -> tuple[str, int, list[str]]:
    with sqlite3.connect(procs.workdir / "glance.sqlite") as db:
        status, deleted = db.execute(
            "SELECT status, deleted FROM images WHERE id = ?", (image_id,)
        ).fetchone()
        locs = [
            r[0] for r in db.execute("SELECT status FROM image_locations WHERE image_id = ?", (image_id,))
        ]
    return status, deleted, locs


def _manage(procs, *args) -> subprocess.CompletedProcess:
    return subprocess.run(
        [
            str(GLANCE_MANAGE),
            "--config-file",
            str(procs.api_conf),
            "--config-file",
            str(procs.registry_conf),
            *args,
        ],
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_delete_is_pending_then_glance_manage_scrub_removes_data(delayed, owner):
    image_id = _active_image(owner)
    data = delayed.datadir / image_id
    assert owner.delete(f"/v2/images/{image_id}").status_code == 204
    assert owner.get(f"/v2/images/{image_id}").status_code == 404
    assert owner.delete(f"/v2/images/{image_id}").status_code == 404
    assert data.exists()
    assert _row(delayed, image_id) == ("pending_delete", 1, ["pending_delete"])
    run = _manage(delayed, "scrub")
    assert run.returncode == 0, run.stderr
    assert "1 image(s) deleted" in run.stdout
    assert not data.exists()
    assert _row(delayed, image_id) == ("deleted", 1, ["deleted"])
    # nothing left: a second run is a no-op
    again = _manage(delayed, "scrub")
    assert again.returncode == 0 and "0 image(s) deleted" in again.stdout


def test_restore_brings_the_image_back(delayed, owner):
    image_id = _active_image(owner, b"keep me")
    assert owner.delete(f"/v2/images/{image_id}").status_code == 204
    run = _manage(delayed, "scrub", "--restore", image_id)
    assert run.returncode == 0, run.stderr
    shown = owner.get(f"/v2/images/{image_id}")
    assert shown.status_code == 200 and shown.json()["status"] == "active"
    assert owner.get(f"/v2/images/{image_id}/file").content == b"keep me"
    # not pending_delete any more: a second restore is refused with a message, not a traceback
    second = _manage(delayed, "scrub", "--restore", image_id)
    assert second.returncode == 1 and "Traceback" not in second.stderr


def test_image_without_data_is_deleted_at_once(delayed, owner):
    image = owner.create_image()
    assert owner.delete(f"/v2/images/{image['id']}").status_code == 204
    assert _row(delayed, image["id"])[:2] == ("deleted", 1)


def test_periodic_scrubber_in_the_api(delayed, owner):
    """With a short wakeup_time the API's own scrubber removes the data; a kill of the API
    mid-way leaves work that the restarted API finishes."""
    variables = dict(delayed.variables)
    variables["glance_api_conf_overrides"] = {"DEFAULT": {"delayed_delete": "true", "wakeup_time": "1"}}
    delayed.api_conf.write_text(render("glance-api.conf.j2", variables))
    delayed.restart_api()
    try:
        ids = [_active_image(owner, b"x" * 1024) for _ in range(3)]
        for image_id in ids:
            assert owner.delete(f"/v2/images/{image_id}").status_code == 204
        # Kill the API (and its scrubber) at once, wherever it got to, then start it again.
        delayed.kill_api()
        delayed.start_api()
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline and any((delayed.datadir / i).exists() for i in ids):
            time.sleep(0.2)
        while time.monotonic() < deadline and any(_row(delayed, i)[0] != "deleted" for i in ids):
            time.sleep(0.2)
        assert not any((delayed.datadir / i).exists() for i in ids)
        assert [_row(delayed, i) for i in ids] == [("deleted", 1, ["deleted"])] * 3
    finally:
        delayed.api_conf.write_text(render("glance-api.conf.j2", delayed.variables))
        delayed.restart_api()


def test_scrub_keeps_data_the_store_refuses_and_retries(delayed, owner):
    """The store cannot remove the data (its path made a directory, which unlink refuses even
    to root): the scrubber marks nothing deleted, says so, leaves the image pending_delete
    (still restorable) and finishes it at a later run once the store takes it."""
    image_id = _active_image(owner, b"held by the store")
    data = delayed.datadir / image_id
    assert owner.delete(f"/v2/images/{image_id}").status_code == 204
    aside = data.with_name(image_id + ".aside")
    data.rename(aside)
    data.mkdir()
    try:
        for _ in range(2):
            run = _manage(delayed, "scrub")
            assert run.returncode == 1, run.stderr  # some data is left: the run says so
            assert "0 image(s) deleted" in run.stdout and "1 failed" in run.stdout
            assert _row(delayed, image_id) == ("pending_delete", 1, ["pending_delete"])
    finally:
        data.rmdir()
        aside.rename(data)
    # still restorable, whole
    assert _manage(delayed, "scrub", "--restore", image_id).returncode == 0
    assert owner.get(f"/v2/images/{image_id}/file").content == b"held by the store"
    # deleted again, the store now takes it: the next run finishes
    assert owner.delete(f"/v2/images/{image_id}").status_code == 204
    run = _manage(delayed, "scrub")
    assert run.returncode == 0 and "1 image(s) deleted" in run.stdout
    assert not data.exists()
    assert _row(delayed, image_id) == ("deleted", 1, ["deleted"])
