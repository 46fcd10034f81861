"""Upload and download against real glance-registry + glance-api processes."""

from __future__ import annotations

import hashlib
import os
import socket
import time

import pytest

from glance_service.context import RequestContext
from tests.fixtures.glance_procs import start_glance
from tests.functional.data.helpers import OCTET, HashingGen, RawUpload, StreamBody, image_files, wait_for

SIZES = [0, 1, 65535, 65536, 65537]


def new_image(http, **extra):
    return http.create_image(disk_format="raw", container_format="bare", **extra)["id"]


def upload(http, image_id, body, headers=None, **kw):
    return http.put(f"/v2/images/{image_id}/file", data=body, headers={**OCTET, **(headers or {})}, **kw)


def status(http, image_id):
    return http.get(f"/v2/images/{image_id}").json()["status"]


@pytest.mark.parametrize("size", SIZES)
@pytest.mark.parametrize("mode", ["content-length", "chunked"])
def test_round_trip_is_byte_identical(glance, http, size, mode):
    data = os.urandom(size)
    image_id = new_image(http)
    body = data if mode == "content-length" else iter([data[: size // 2], data[size // 2 :]])
    resp = upload(http, image_id, body)
    assert resp.status_code == 204, resp.text

    image = http.get(f"/v2/images/{image_id}").json()
    assert image["status"] == "active"
    assert image["size"] == size
    assert image["checksum"] == hashlib.md5(data).hexdigest()
    assert image["os_hash_algo"] == "sha512"
    assert image["os_hash_value"] == hashlib.sha512(data).hexdigest()

    resp = http.get(f"/v2/images/{image_id}/file")
    assert resp.status_code == 200
    assert resp.headers["Content-Type"] == "application/octet-stream"
    assert resp.headers["Content-Length"] == str(size)
    assert resp.headers["Content-MD5"] == hashlib.md5(data).hexdigest()
    assert resp.content == data
    assert image_files(glance.datadir, image_id) == [image_id]


@pytest.mark.slow
@pytest.mark.parametrize("mode", ["content-length", "chunked"])
def test_one_gib_round_trip(glance, http, mode):
    size = 1024**3
    image_id = new_image(http)
    body = StreamBody(size) if mode == "content-length" else HashingGen(size)
    resp = http.session.put(
        f"{glance.api_url}/v2/images/{image_id}/file",
        data=body,
        headers=http.headers({**OCTET, "x-openstack-image-size": str(size)}),
        timeout=600,
    )
    assert resp.status_code == 204, resp.text
    image = http.get(f"/v2/images/{image_id}").json()
    assert (image["status"], image["size"]) == ("active", size)
    assert image["os_hash_value"] == body.sha512.hexdigest()

    got = hashlib.sha512()
    with http.session.get(
        f"{glance.api_url}/v2/images/{image_id}/file", headers=http.headers(), stream=True, timeout=600
    ) as resp:
        assert resp.status_code == 200
        assert resp.headers["Content-Length"] == str(size)
        for piece in resp.iter_content(1024 * 1024):
            got.update(piece)
    assert got.hexdigest() == body.sha512.hexdigest()
    http.delete(f"/v2/images/{image_id}")


# -- refusals ------------------------------------------------------------------------------------
def test_upload_to_active_image_is_409(glance, http):
    image_id = new_image(http)
    assert upload(http, image_id, b"first").status_code == 204
    resp = upload(http, image_id, b"second")
    assert resp.status_code == 409
    assert http.get(f"/v2/images/{image_id}/file").content == b"first"


@pytest.mark.parametrize("content_type", [None, "application/json", "text/plain"])
def test_wrong_content_type_is_415(glance, http, content_type):
    image_id = new_image(http)
    headers = {"Content-Type": content_type} if content_type else {}
    resp = http.put(f"/v2/images/{image_id}/file", data=b"abc", headers=headers)
    if content_type is None:
        # requests sends no Content-Type for raw bytes
        assert "Content-Type" not in resp.request.headers
    assert resp.status_code == 415
    assert status(http, image_id) == "queued"


def test_missing_formats_is_400(glance, http):
    image_id = http.create_image(name="no-formats")["id"]
    assert upload(http, image_id, b"abc").status_code == 400
    assert status(http, image_id) == "queued"


@pytest.mark.parametrize("declared", ["-1", "abc", "1.5", "", "\u00b2", "+5"])
def test_bad_image_size_header_is_400(glance, http, declared):
    image_id = new_image(http)
    assert upload(http, image_id, b"abc", {"x-openstack-image-size": declared}).status_code == 400


@pytest.mark.parametrize("mode", ["content-length", "chunked"])
def test_size_mismatch_is_400_and_leaves_nothing(glance, http, mode):
    image_id = new_image(http)
    body = b"x" * 1000 if mode == "content-length" else iter([b"x" * 1000])
    resp = upload(http, image_id, body, {"x-openstack-image-size": "999"})
    assert resp.status_code == 400
    image = http.get(f"/v2/images/{image_id}").json()
    assert (image["status"], image["size"]) == ("queued", None)
    assert image_files(glance.datadir, image_id) == []
    # and the image takes a correct upload afterwards
    assert upload(http, image_id, b"x" * 999, {"x-openstack-image-size": "999"}).status_code == 204


def test_other_project_cannot_upload(glance, http):
    image_id = new_image(http)
    assert upload(http.as_other(), image_id, b"abc").status_code == 404
    assert status(http, image_id) == "queued"


# -- size cap ------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def capped(tmp_path_factory):
    procs = start_glance(
        tmp_path_factory.mktemp("capped"), workers=1, extra_api={"DEFAULT": {"image_size_cap": 100000}}
    )
    yield procs
    procs.stop()


@pytest.mark.parametrize("mode", ["content-length", "chunked"])
def test_size_cap_is_413_and_image_stays_queued(capped, mode):
    from tests.functional.conftest import Http

    http = Http(capped.api_url)
    image_id = new_image(http)
    data = os.urandom(100001)
    body = data if mode == "content-length" else iter([data[:50000], data[50000:]])
    assert upload(http, image_id, body).status_code == 413
    image = http.get(f"/v2/images/{image_id}").json()
    assert (image["status"], image["size"]) == ("queued", None)
    assert image_files(capped.datadir, image_id) == []
    assert upload(http, image_id, data[:100000]).status_code == 204


# -- interrupted uploads -------------------------------------------------------------------------
@pytest.mark.parametrize("chunked", [False, True])
def test_cut_upload_leaves_image_queued_and_no_file(glance, http, chunked):
    image_id = new_image(http)
    raw = RawUpload(glance.api_url, image_id, http.headers(), length=10 * 1024 * 1024, chunked=chunked)
    raw.send(os.urandom(3 * 1024 * 1024))
    wait_for(lambda: status(http, image_id) == "saving")
    raw.close()
    wait_for(lambda: status(http, image_id) == "queued")
    wait_for(lambda: image_files(glance.datadir, image_id) == [])
    assert http.get(f"/v2/images/{image_id}").json()["size"] is None


def test_image_deleted_during_upload_is_410_and_data_removed(glance, http):
    image_id = new_image(http)
    raw = RawUpload(glance.api_url, image_id, http.headers(), length=2 * 1024 * 1024)
    raw.send(os.urandom(1024 * 1024))
    wait_for(lambda: status(http, image_id) == "saving")
    assert http.delete(f"/v2/images/{image_id}").status_code == 204
    raw.send(os.urandom(1024 * 1024))
    assert raw.response_status() == 410
    raw.close()
    wait_for(lambda: image_files(glance.datadir, image_id) == [])


def test_crash_mid_upload_is_recovered_at_restart(tmp_path):
    from tests.functional.conftest import Http

    procs = start_glance(tmp_path, workers=1)
    try:
        http = Http(procs.api_url)
        image_id = new_image(http)
        raw = RawUpload(procs.api_url, image_id, http.headers(), length=1024**3)
        for _ in range(64):
            raw.send(os.urandom(1024 * 1024))
        wait_for(lambda: status(http, image_id) == "saving")
        partial = wait_for(lambda: image_files(procs.datadir, image_id))
        assert partial[0].startswith(".") and ".partial-" in partial[0]

        procs.kill_api()
        raw.close()
        assert image_files(procs.datadir, image_id) != []  # the crash left its partial file
        procs.start_api()

        image = http.get(f"/v2/images/{image_id}").json()
        assert (image["status"], image["size"]) == ("queued", None)
        assert image_files(procs.datadir, image_id) == []
        assert upload(http, image_id, b"after the crash").status_code == 204
        assert http.get(f"/v2/images/{image_id}/file").content == b"after the crash"
    finally:
        procs.stop()


def test_worker_killed_mid_upload_is_recovered_without_a_restart(tmp_path):
    """A worker that dies (out of memory, killed) while the master lives: its upload goes back
    to 'queued' and its partial file is removed by the master's recovery after the worker
    exit, while another worker's upload goes on untouched."""
    import signal

    import psutil

    from tests.functional.conftest import Http

    procs = start_glance(tmp_path, workers=2)
    uploads: dict[str, RawUpload] = {}
    try:
        http = Http(procs.api_url)

        def holder(image_id: str) -> int | None:
            """The worker whose open partial file is this image's upload."""
            for child in psutil.Process(procs.api.pid).children():
                if any(
                    os.path.basename(f.path).startswith(f".{image_id}.partial-") for f in child.open_files()
                ):
                    return child.pid
            return None

        # Uploads on new connections until two workers each hold one: the busier worker leaves
        # a new connection to the other (common.accept_balance), once that one has booted,
        # which on a loaded machine can be well after the first worker answered.
        held: dict[int, str] = {}
        deadline = time.monotonic() + 60
        while len(held) < 2 and time.monotonic() < deadline:
            image_id = new_image(http)
            uploads[image_id] = RawUpload(procs.api_url, image_id, http.headers(), length=8 * 1024**2)
            uploads[image_id].send(os.urandom(1024**2))
            held.setdefault(wait_for(lambda image_id=image_id: holder(image_id)), image_id)
            if len(held) < 2:
                time.sleep(1)
        assert len(held) == 2, "every upload went to one worker"
        (victim, cut_id), (_, live_id) = sorted(held.items())

        os.kill(victim, signal.SIGKILL)
        uploads[cut_id].close()
        http = Http(procs.api_url, project=http.project, user=http.user)  # a new connection
        wait_for(lambda: status(http, cut_id) == "queued", timeout=30)
        wait_for(lambda: image_files(procs.datadir, cut_id) == [], timeout=30)

        # The other worker's upload was left alone and completes.
        live = uploads[live_id]
        for _ in range(7):
            live.send(os.urandom(1024**2))
        assert live.response_status() == 204
        assert status(http, live_id) == "active"
        assert upload(http, cut_id, b"after the kill").status_code == 204
    finally:
        for raw in uploads.values():
            raw.close()
        procs.stop()


# -- download --------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def big_image(glance):
    from tests.functional.conftest import Http

    http = Http(glance.api_url)
    data = os.urandom(3 * 1024 * 1024 + 17)
    image_id = new_image(http)
    assert upload(http, image_id, data).status_code == 204
    return http, image_id, data


@pytest.mark.parametrize(
    ("header", "first", "last"),
    [
        ("bytes=0-0", 0, 0),
        ("bytes=10-19", 10, 19),
        ("bytes=1000000-2500000", 1000000, 2500000),
        ("bytes=3000000-", 3000000, 3 * 1024 * 1024 + 16),
        ("bytes=-100", 3 * 1024 * 1024 + 17 - 100, 3 * 1024 * 1024 + 16),
        ("bytes=5-99999999", 5, 3 * 1024 * 1024 + 16),
        ("bytes=-99999999", 0, 3 * 1024 * 1024 + 16),
    ],
)
def test_range_gives_exactly_the_right_bytes(big_image, header, first, last):
    http, image_id, data = big_image
    resp = http.get(f"/v2/images/{image_id}/file", headers={"Range": header})
    assert resp.status_code == 206
    assert resp.headers["Content-Range"] == f"bytes {first}-{last}/{len(data)}"
    assert resp.headers["Content-Length"] == str(last - first + 1)
    assert resp.content == data[first : last + 1]


def test_ranges_on_one_keep_alive_connection(big_image):
    # sendfile works from the file position: consecutive ranged responses must not bleed
    http, image_id, data = big_image
    for first in (0, 2000000, 17, 3000000):
        resp = http.get(f"/v2/images/{image_id}/file", headers={"Range": f"bytes={first}-{first + 999}"})
        assert resp.content == data[first : first + 1000]
    assert http.get(f"/v2/images/{image_id}/file").content == data


@pytest.mark.parametrize("header", ["bytes=99999999-", "bytes=-0", "bytes=20-10", "bytes=abc", "pages=1-2"])
def test_unsatisfiable_range_is_416(big_image, header):
    http, image_id, _ = big_image
    assert http.get(f"/v2/images/{image_id}/file", headers={"Range": header}).status_code == 416


def test_multi_range_is_400(big_image):
    http, image_id, _ = big_image
    assert http.get(f"/v2/images/{image_id}/file", headers={"Range": "bytes=0-1,5-6"}).status_code == 400


def test_download_of_queued_image_is_204(glance, http):
    image_id = new_image(http)
    resp = http.get(f"/v2/images/{image_id}/file")
    assert resp.status_code == 204
    assert resp.content == b""


def test_download_of_invisible_image_is_404(big_image):
    http, image_id, _ = big_image
    assert http.as_other().get(f"/v2/images/{image_id}/file").status_code == 404


def test_deactivated_image_only_for_admins(glance, http, admin):
    image_id = new_image(http)
    assert upload(http, image_id, b"secret data").status_code == 204
    assert http.post(f"/v2/images/{image_id}/actions/deactivate").status_code == 204
    assert http.get(f"/v2/images/{image_id}/file").status_code == 403
    resp = admin.get(f"/v2/images/{image_id}/file")
    assert resp.status_code == 200
    assert resp.content == b"secret data"


def test_unrecorded_leftover_data_is_replaced_by_the_next_upload(glance, http):
    # A process that died between writing the data and recording it leaves a complete file
    # no location points to; the image is queued again, and its next upload must succeed.
    image_id = new_image(http)
    (glance.datadir / image_id).write_bytes(b"leftover of a crashed upload")
    assert upload(http, image_id, b"the real data").status_code == 204
    assert http.get(f"/v2/images/{image_id}/file").content == b"the real data"


def api_services(procs):
    """The API's services, built in this process from the running API's configuration."""
    from oslo_config import cfg

    from glance_service.api import app as app_mod

    conf = cfg.ConfigOpts()
    app_mod.register_opts(conf)
    conf(["--config-file", str(procs.api_conf)], project="glance", default_config_files=[])
    return app_mod.build_services(conf)


def test_recovery_leaves_live_uploads_alone(glance, http):
    from glance_service.api.upload_recovery import recover_interrupted_uploads

    image_id = new_image(http)
    raw = RawUpload(glance.api_url, image_id, http.headers(), length=4 * 1024 * 1024)
    try:
        raw.send(os.urandom(2 * 1024 * 1024))
        wait_for(lambda: status(http, image_id) == "saving")
        wait_for(lambda: image_files(glance.datadir, image_id))
        svc = api_services(glance)
        # Two more images 'saving': one whose uploader on this host is dead, one whose
        # uploader on another host refreshed it just now.
        ctx = RequestContext.admin()
        dead, elsewhere = new_image(http), new_image(http)
        for other, marker in ((dead, f"{socket.gethostname()}:999999999:1"), (elsewhere, "otherhost:1:1")):
            values = {"status": "saving", "properties": {"os_glance_upload_host": marker}}
            svc.data.image_update(ctx, other, values, from_state="queued")
        assert recover_interrupted_uploads(svc) == 1
        assert (status(http, dead), status(http, elsewhere)) == ("queued", "saving")
        # The uploading worker is alive on this host and holds its partial file: left alone.
        assert status(http, image_id) == "saving"
        assert image_files(glance.datadir, image_id) != []
        raw.send(os.urandom(2 * 1024 * 1024))
        assert raw.response_status() == 204
    finally:
        raw.close()
    assert status(http, image_id) == "active"
