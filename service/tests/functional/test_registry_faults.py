"""glance-api when its glance-registry dies, hangs or restarts (real processes, no API restart).

- A registry killed during an upload: the client gets 503, and once the registry is back the
  image ends ``queued`` with no data left in the store, without restarting glance-api.
- A registry that accepts connections but never answers (SIGSTOP): 503 with a message after
  ``registry_client_timeout``, not after the keep-alive timeout or the old 600 s.
- A registry restart: kept-alive connections to the old workers are replaced without an error.
"""

from __future__ import annotations

import os
import signal
import time

import pytest

from tests.fixtures.glance_procs import start_glance
from tests.functional.conftest import Http
from tests.functional.data.helpers import OCTET, RawUpload, image_files, wait_for

TIMEOUT = 2  # registry_client_timeout for these processes


@pytest.fixture(scope="module")
def procs(tmp_path_factory):
    work = tmp_path_factory.mktemp("registry-faults")
    glance = start_glance(work, workers=1, extra_api={"DEFAULT": {"registry_client_timeout": TIMEOUT}})
    yield glance
    glance.stop()


@pytest.fixture
def http(procs) -> Http:
    return Http(procs.api_url)


def new_image(http: Http) -> str:
    return http.create_image(disk_format="raw", container_format="bare")["id"]


def test_registry_killed_mid_upload_leaves_image_queued_and_no_data(procs, http):
    size, block = 256 * 1024 * 1024, os.urandom(1024 * 1024)
    image_id = new_image(http)
    raw = RawUpload(procs.api_url, image_id, http.headers(), length=size)
    try:
        for _ in range(64):
            raw.send(block)
        wait_for(lambda: http.get(f"/v2/images/{image_id}").json()["status"] == "saving")
        procs.kill_registry()
        for _ in range(size // len(block) - 64):
            raw.send(block)
        assert raw.response_status() == 503
    finally:
        raw.close()

    procs.start_registry()
    started = time.monotonic()
    # Without restarting glance-api: the upload's own process finishes what it could not.
    wait_for(lambda: http.get(f"/v2/images/{image_id}").json()["status"] == "queued", timeout=15)
    assert time.monotonic() - started < 15
    image = http.get(f"/v2/images/{image_id}").json()
    assert (image["size"], image["checksum"]) == (None, None)
    wait_for(lambda: image_files(procs.datadir, image_id) == [], timeout=5)
    # Usable again.
    assert http.put(f"/v2/images/{image_id}/file", data=b"again", headers=OCTET).status_code == 204
    assert http.get(f"/v2/images/{image_id}/file").content == b"again"


def _stopped_registry(procs):
    os.killpg(procs.registry.pid, signal.SIGSTOP)


def test_registry_hung_at_the_activation_never_leaves_an_active_image_without_data(procs, http):
    """The activation goes to a registry that does not answer: 503 after the timeout, and
    the outcome is unknown to the API (the stopped registry still holds the request and
    may run it once it continues). Either way, the image must end 'active' with its data
    or 'queued' with none."""
    size, block = 64 * 1024 * 1024, os.urandom(1024 * 1024)
    image_id = new_image(http)
    raw = RawUpload(procs.api_url, image_id, http.headers(), length=size)
    try:
        for _ in range(32):
            raw.send(block)
        wait_for(lambda: http.get(f"/v2/images/{image_id}").json()["status"] == "saving")
        _stopped_registry(procs)
        try:
            for _ in range(32):
                raw.send(block)
            assert raw.response_status() == 503
        finally:
            os.killpg(procs.registry.pid, signal.SIGCONT)
    finally:
        raw.close()

    def settled():
        resp = http.get(f"/v2/images/{image_id}")
        return resp.status_code == 200 and resp.json()["status"] != "saving" and resp.json()

    image = wait_for(settled, timeout=15)
    if image["status"] == "active":  # the registry ran the activation after all
        assert image["size"] == size
        resp = http.get(f"/v2/images/{image_id}/file")
        assert resp.status_code == 200, (resp.status_code, image_files(procs.datadir, image_id))
        assert resp.content == block * (size // len(block)), "the data differs"
        assert image_files(procs.datadir, image_id) == [image_id]
    else:
        assert image["status"] == "queued"
        wait_for(lambda: image_files(procs.datadir, image_id) == [], timeout=5)


def test_hung_registry_is_503_with_message_within_the_timeout(procs, http):
    image_id = new_image(http)
    assert http.get(f"/v2/images/{image_id}").status_code == 200  # a kept-alive connection
    _stopped_registry(procs)
    try:
        for method, path, kwargs in (
            ("GET", f"/v2/images/{image_id}", {}),
            ("POST", "/v2/images", {"json": {"name": "while-hung"}}),
        ):
            started = time.monotonic()
            resp = http.session.request(
                method, http.base_url + path, headers=http.headers(), timeout=20, **kwargs
            )
            elapsed = time.monotonic() - started
            assert resp.status_code == 503, resp.text
            assert f"did not answer within {TIMEOUT} s" in resp.text
            # The timeout ended it (not a quick refusal), and only once (a read is not resent
            # after a timeout).
            assert TIMEOUT - 0.5 < elapsed < TIMEOUT + 1.5, elapsed
    finally:
        os.killpg(procs.registry.pid, signal.SIGCONT)
    wait_for(lambda: http.get(f"/v2/images/{image_id}").status_code == 200, timeout=10)


def test_registry_restart_is_transparent(procs, http):
    image_id = new_image(http)
    assert http.get(f"/v2/images/{image_id}").status_code == 200
    procs.restart_registry()
    # Every API thread's kept-alive connection went to the old workers.
    for _ in range(5):
        assert http.get(f"/v2/images/{image_id}").status_code == 200
    assert http.post("/v2/images", json={"name": "after-restart"}).status_code == 201
