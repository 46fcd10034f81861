"""The image cache on an API node and its admin API (/v2/cache) against real processes."""

from __future__ import annotations

import hashlib
import http.server
import os
import threading
import uuid

import pytest
import requests

from tests.fixtures.glance_procs import start_glance
from tests.functional.api.import_helpers import wait_image
from tests.functional.conftest import Http
from tests.functional.data.helpers import OCTET, wait_for

MiB = 1024 * 1024
MAX_SIZE = 3 * MiB


class GatedServer:
    """Serves ``files`` over HTTP; while ``gate`` is clear, a response stalls half-way."""

    def __init__(self):
        self.files: dict[str, bytes] = {}
        self.cut: set[str] = set()  # names whose responses stop half-way (a dropped connection)
        self.gate = threading.Event()
        self.gate.set()
        server = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def log_message(self, *args):
                pass

            def do_GET(self):
                data = server.files.get(self.path.lstrip("/"))
                if data is None:
                    self.send_error(404)
                    return
                self.send_response(200)
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data[: len(data) // 2])
                self.wfile.flush()
                if self.path.lstrip("/") in server.cut:
                    self.close_connection = True
                    return
                server.gate.wait(60)
                try:
                    self.wfile.write(data[len(data) // 2 :])
                except OSError:
                    pass

        self.httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.httpd.daemon_threads = True
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()

    def url(self, name: str) -> str:
        return f"http://127.0.0.1:{self.httpd.server_address[1]}/{name}"

    def stop(self) -> None:
        self.gate.set()
        self.httpd.shutdown()
        self.httpd.server_close()


@pytest.fixture(scope="module")
def node(tmp_path_factory):
    work = tmp_path_factory.mktemp("glance-cache")
    procs = start_glance(
        work,
        extra_api={
            "DEFAULT": {"image_cache_dir": str(work / "cache"), "image_cache_max_size": MAX_SIZE},
            # the remote store's data server is on 127.0.0.1 at a free port
            "import_filtering_opts": {"allowed_hosts": "[127.0.0.1]", "allowed_ports": "[]"},
        },
    )
    procs.cache_dir = work / "cache"
    yield procs
    procs.stop()


@pytest.fixture(scope="module")
def web():
    server = GatedServer()
    yield server
    server.stop()


@pytest.fixture
def admin_c(node) -> Http:
    return Http(node.api_url, roles="admin,member,reader")


@pytest.fixture(autouse=True)
def empty_cache(request):
    yield
    if "node" in request.fixturenames:
        admin = Http(request.getfixturevalue("node").api_url, roles="admin,member,reader")
        admin.delete("/v2/cache")


def upload_image(http: Http, data: bytes) -> str:
    image_id = http.create_image(disk_format="raw", container_format="bare")["id"]
    assert http.put(f"/v2/images/{image_id}/file", data=data, headers=OCTET).status_code == 204
    return image_id


def http_image(http: Http, web: GatedServer, data: bytes) -> str:
    """An active image whose only location is on the (remote) http store."""
    name = uuid.uuid4().hex
    web.files[name] = data
    image_id = http.create_image(disk_format="raw", container_format="bare")["id"]
    assert http.post(f"/v2/images/{image_id}/locations", json={"url": web.url(name)}).status_code == 202
    assert wait_image(http, image_id)["status"] == "active"
    return image_id


def state(admin: Http) -> dict:
    resp = admin.get("/v2/cache")
    assert resp.status_code == 200, resp.text
    return resp.json()


def entry(admin: Http, image_id: str) -> dict | None:
    return next((e for e in state(admin)["cached_images"] if e["image_id"] == image_id), None)


def wait_cached(admin: Http, image_id: str) -> dict:
    return wait_for(lambda: entry(admin, image_id))


# -- without a cache ---------------------------------------------------------------------------
def test_without_image_cache_dir_the_api_is_404_after_policy(glance, admin, http):
    active = upload_image(http, b"data")
    for method, path in [
        ("GET", "/v2/cache"),
        ("PUT", f"/v2/cache/{active}"),
        ("POST", "/v2/cache/prune"),
        ("POST", "/v2/cache/clean"),
    ]:
        resp = admin.request(method, path)
        assert resp.status_code == 404, (method, path)
        assert "Caching via API is not supported" in resp.text
        assert http.request(method, path).status_code == 403
    versions = [v["id"] for v in admin.get("/versions").json()["versions"]]
    assert "v2.18" not in versions and "v2.14" not in versions
    # Glance looks the image up before anything else (an unknown image: 404 for anyone)
    missing = f"/v2/cache/{uuid.uuid4()}"
    for who in (admin, http):
        resp = who.put(missing)
        assert resp.status_code == 404 and "Caching via API" not in resp.text


def test_versions_with_a_cache(node, admin_c):
    versions = admin_c.get("/versions").json()["versions"]
    assert versions[0] == {"id": "v2.18", "status": "CURRENT", "links": versions[0]["links"]}
    assert [v["id"] for v in versions[:5]] == ["v2.18", "v2.17", "v2.16", "v2.15", "v2.14"]
    assert admin_c.get("/v2.18/cache").status_code == 200


# -- admin only --------------------------------------------------------------------------------
def test_every_cache_call_is_admin_only(node, admin_c):
    member = Http(node.api_url)
    image_id = upload_image(member, os.urandom(1000))
    calls = [
        ("GET", "/v2/cache"),
        ("PUT", f"/v2/cache/{image_id}"),
        ("DELETE", f"/v2/cache/{image_id}"),
        ("DELETE", "/v2/cache"),
        ("POST", "/v2/cache/clean"),
        ("POST", "/v2/cache/prune"),
    ]
    for method, path in calls:
        assert member.request(method, path).status_code == 403, (method, path)
    assert state(admin_c)["queued_images"] == []


def test_the_image_is_looked_up_before_the_policy(node, admin_c):
    # Glance's cached_images.py: image (404), then policy (403), then status (400).
    owner = Http(node.api_url)
    stranger = Http(node.api_url)
    queued = owner.create_image(disk_format="raw", container_format="bare")["id"]
    active = upload_image(owner, b"x" * 100)
    for image_id in (queued, active, str(uuid.uuid4())):
        assert stranger.put(f"/v2/cache/{image_id}").status_code == 404, image_id
        assert stranger.delete(f"/v2/cache/{image_id}").status_code == 404, image_id
    assert owner.put(f"/v2/cache/{queued}").status_code == 403
    assert owner.put(f"/v2/cache/{active}").status_code == 403
    assert owner.delete(f"/v2/cache/{active}").status_code == 403
    assert admin_c.put(f"/v2/cache/{queued}").status_code == 400
    assert state(admin_c)["queued_images"] == []


# -- queueing and serving ----------------------------------------------------------------------
def test_a_queued_file_store_image_is_cached_and_served_from_the_cache(node, admin_c):
    data = os.urandom(MiB)
    image_id = upload_image(admin_c, data)
    resp = admin_c.put(f"/v2/cache/{image_id}")
    assert resp.status_code == 202, resp.text
    cached = wait_cached(admin_c, image_id)
    assert cached["size"] == MiB and cached["hits"] == 0
    assert image_id not in state(admin_c)["queued_images"]
    assert (node.cache_dir / image_id).read_bytes() == data

    # The store's copy is gone: what is served now can only come from the cache.
    os.unlink(node.datadir / image_id)
    for _ in range(2):
        resp = admin_c.get(f"/v2/images/{image_id}/file")
        assert resp.status_code == 200 and resp.content == data
        assert resp.headers["Content-MD5"] == hashlib.md5(data).hexdigest()
    resp = admin_c.get(f"/v2/images/{image_id}/file", headers={"Range": "bytes=100-199"})
    assert resp.status_code == 206 and resp.content == data[100:200]
    assert resp.headers["Content-Range"] == f"bytes 100-199/{MiB}"
    after = entry(admin_c, image_id)
    assert after["hits"] == 3 and after["last_accessed"] >= cached["last_accessed"]


def test_cached_nodes_is_409_without_a_centralized_cache(node, admin_c, glance, admin):
    image_id = upload_image(admin_c, b"x")
    assert Http(node.api_url).get(f"/v2/cache/nodes/{image_id}").status_code == 403
    resp = admin_c.get(f"/v2/cache/nodes/{image_id}")
    assert resp.status_code == 409 and "Centralized caching is not enabled" in resp.text
    assert admin_c.post(f"/v2/cache/nodes/{image_id}").headers["Allow"] == "GET"
    assert admin.get(f"/v2/cache/nodes/{image_id}").status_code == 404  # no cache at all


def test_queue_refusals(node, admin_c):
    assert admin_c.put(f"/v2/cache/{uuid.uuid4()}").status_code == 404
    queued = admin_c.create_image(disk_format="raw", container_format="bare")["id"]
    resp = admin_c.put(f"/v2/cache/{queued}")
    assert resp.status_code == 400 and "active" in resp.text
    assert admin_c.delete(f"/v2/cache/{uuid.uuid4()}").status_code == 404
    assert admin_c.put("/v2/cache").status_code == 405


def test_a_download_from_a_remote_store_fills_the_cache(node, admin_c, web):
    data = os.urandom(MiB // 2)
    image_id = http_image(admin_c, web, data)
    assert entry(admin_c, image_id) is None
    assert admin_c.get(f"/v2/images/{image_id}/file").content == data
    wait_cached(admin_c, image_id)
    assert (node.cache_dir / image_id).read_bytes() == data

    # The remote store lost it: the node still serves its cached copy.
    web.files.clear()
    resp = admin_c.get(f"/v2/images/{image_id}/file")
    assert resp.status_code == 200 and resp.content == data
    assert entry(admin_c, image_id)["hits"] == 1


def test_a_cut_download_from_a_remote_store_leaves_no_entry(node, admin_c, web):
    data = os.urandom(MiB // 2)
    image_id = http_image(admin_c, web, data)
    web.cut.update(web.files)  # from now on the store sends half of the data, then hangs up
    with pytest.raises(requests.RequestException):
        admin_c.get(f"/v2/images/{image_id}/file").raise_for_status()
    wait_for(lambda: not os.listdir(node.cache_dir / "incomplete"))
    assert entry(admin_c, image_id) is None
    assert not (node.cache_dir / image_id).exists()
    web.cut.clear()


def test_delete_one_entry(node, admin_c):
    image_id = upload_image(admin_c, os.urandom(1000))
    admin_c.put(f"/v2/cache/{image_id}")
    wait_cached(admin_c, image_id)
    assert admin_c.delete(f"/v2/cache/{image_id}").status_code == 204
    assert entry(admin_c, image_id) is None
    assert not (node.cache_dir / image_id).exists()
    # A deleted image's entry can still be removed; once gone, the id is unknown.
    admin_c.put(f"/v2/cache/{image_id}")
    wait_cached(admin_c, image_id)
    assert admin_c.delete(f"/v2/images/{image_id}").status_code == 204
    assert admin_c.delete(f"/v2/cache/{image_id}").status_code == 204
    assert admin_c.delete(f"/v2/cache/{image_id}").status_code == 404


def test_clear_targets(node, admin_c, web):
    cached_id = upload_image(admin_c, os.urandom(1000))
    admin_c.put(f"/v2/cache/{cached_id}")
    wait_cached(admin_c, cached_id)
    # An image whose caching hangs on its remote store stays in the queue meanwhile.
    slow_id = http_image(admin_c, web, os.urandom(100_000))
    web.gate.clear()
    try:
        assert admin_c.put(f"/v2/cache/{slow_id}").status_code == 202
        assert state(admin_c)["queued_images"] == [slow_id]

        resp = admin_c.delete("/v2/cache", headers={"x-image-cache-clear-target": "invalid"})
        assert resp.status_code == 400
        assert admin_c.delete("/v2/cache", headers={"x-image-cache-clear-target": "cache"}).status_code == 204
        assert state(admin_c) == {"cached_images": [], "queued_images": [slow_id]}
        assert admin_c.delete("/v2/cache", headers={"x-image-cache-clear-target": "queue"}).status_code == 204
        assert state(admin_c)["queued_images"] == []
    finally:
        web.gate.set()
    wait_cached(admin_c, slow_id)  # the caching under way was not cancelled
    admin_c.put(f"/v2/cache/{cached_id}")
    wait_cached(admin_c, cached_id)
    assert admin_c.delete("/v2/cache", headers={"x-image-cache-clear-target": ""}).status_code == 204
    assert state(admin_c) == {"cached_images": [], "queued_images": []}


# -- pruning and cleaning ----------------------------------------------------------------------
def test_the_cache_prunes_itself_least_recently_used_first(node, admin_c):
    ids = [upload_image(admin_c, os.urandom(MiB)) for _ in range(4)]
    for image_id in ids[:3]:
        admin_c.put(f"/v2/cache/{image_id}")
        wait_cached(admin_c, image_id)
    # The first becomes the most recently used; the second is now the least.
    assert admin_c.get(f"/v2/images/{ids[0]}/file").status_code == 200
    admin_c.put(f"/v2/cache/{ids[3]}")
    wait_cached(admin_c, ids[3])
    cached = {e["image_id"] for e in state(admin_c)["cached_images"]}
    assert cached == {ids[0], ids[2], ids[3]}
    assert sum(e["size"] for e in state(admin_c)["cached_images"]) <= MAX_SIZE

    # An entry the database does not know (left by a crash, copied by hand) is adopted, with
    # its file's age, and pruned first.
    stray = str(uuid.uuid4())
    (node.cache_dir / stray).write_bytes(os.urandom(2 * MiB))
    os.utime(node.cache_dir / stray, (1000, 1000))
    resp = admin_c.post("/v2/cache/prune")
    assert resp.status_code == 200
    assert resp.json() == {"total_files_pruned": 1, "total_bytes_pruned": 2 * MiB}
    assert admin_c.post("/v2/cache/prune").json() == {"total_files_pruned": 0, "total_bytes_pruned": 0}
    assert not (node.cache_dir / stray).exists()


def test_an_image_larger_than_the_cache_is_not_cached(node, admin_c):
    image_id = upload_image(admin_c, os.urandom(MAX_SIZE + 1))
    assert admin_c.put(f"/v2/cache/{image_id}").status_code == 202
    wait_for(lambda: image_id not in state(admin_c)["queued_images"])
    assert entry(admin_c, image_id) is None


def test_clean_removes_dead_incomplete_entries(node, admin_c):
    dead = node.cache_dir / "incomplete" / str(uuid.uuid4())
    dead.write_bytes(b"half an image")
    resp = admin_c.post("/v2/cache/clean")
    assert resp.status_code == 200
    assert resp.content == b""  # Glance answers with no body
    assert not dead.exists()
