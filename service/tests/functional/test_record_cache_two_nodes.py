"""The shared record cache (registry/record_cache.py) with real processes: two glance-api
nodes (A and B) on one glance-registry, a real memcached, trusted headers. Writes through A
are seen on B's next GET, by the right projects only; an unchanged image is served by B
without a registry call; with memcached stopped, and after it comes back, both nodes answer
as before.

Registry calls are counted from the registry's access log: each GET carries its own
``X-Openstack-Request-Id``, which glance-api passes to the registry as the global request id.
"""

from __future__ import annotations

import time
import uuid
from pathlib import Path

import pytest

from glance_service.registry import record_cache
from tests.fixtures.glance_procs import GlanceProcs, start_glance
from tests.fixtures.memcached import Memcached, start_memcached
from tests.functional.conftest import Http

OCTET = {"Content-Type": "application/octet-stream"}


class Nodes:
    def __init__(self, a: GlanceProcs, b: GlanceProcs, memcached: Memcached):
        self.a, self.b, self.memcached = a, b, memcached

    @property
    def registry_log(self) -> Path:
        return self.a.workdir / "log" / "glance-registry.log"

    def registry_calls(self, request_id: str) -> int:
        """Registry calls made for the API request ``request_id``: waits until a later probe
        request (which always reaches the registry) is logged, so none is still in flight."""
        probe = _request_id()
        Http(self.b.api_url, roles="admin,member,reader").get(
            "/v2/images?limit=1", headers={"X-Openstack-Request-Id": probe}
        )
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            lines = self.registry_log.read_text(errors="replace").splitlines()
            if any(probe in line and "/rpc" in line for line in lines):
                return sum(1 for line in lines if request_id in line and "/rpc" in line)
            time.sleep(0.05)
        raise AssertionError(f"the registry did not log the probe call {probe}")


def _request_id() -> str:
    return f"req-{uuid.uuid4()}"


def settle() -> None:
    """Past a write's tombstone (record_cache.TOMBSTONE_SECONDS): the next read fills."""
    time.sleep(record_cache.TOMBSTONE_SECONDS + 0.5)


@pytest.fixture(scope="module")
def nodes(tmp_path_factory):
    base = tmp_path_factory.mktemp("record-cache")
    memcached = start_memcached()
    servers = {"glance_metadata_cache_servers": [memcached.address]}
    try:
        a = start_glance(base / "a", workers=1, extra_vars=servers)
    except BaseException:
        memcached.stop()
        raise
    try:
        b = a.add_api(base / "b")
    except BaseException:
        a.stop()
        memcached.stop()
        raise
    nodes = Nodes(a, b, memcached)
    yield nodes
    b.stop()
    a.stop()
    # The memcached running now: a test restarts it (a new process on the same port).
    nodes.memcached.stop()


def at(node: GlanceProcs, project: str, roles: str = "reader,member") -> Http:
    return Http(node.api_url, project=project, roles=roles)


def status(http: Http, image_id: str, request_id: str | None = None) -> int:
    headers = {"X-Openstack-Request-Id": request_id} if request_id else None
    return http.get(f"/v2/images/{image_id}", headers=headers).status_code


def test_the_cache_is_configured_on_every_process(nodes):
    for conf in (nodes.a.api_conf, nodes.a.registry_conf, nodes.b.api_conf):
        assert f"memcached_servers = {nodes.memcached.address}" in conf.read_text()


def test_an_unchanged_image_is_served_by_b_without_a_registry_call(nodes):
    owner = uuid.uuid4().hex
    image = at(nodes.a, owner).create_image(disk_format="raw", container_format="bare")
    assert at(nodes.a, owner).put(f"/v2/images/{image['id']}/file", data=b"x" * 1024, headers=OCTET).ok
    settle()
    b = at(nodes.b, owner)
    first, second, download = _request_id(), _request_id(), _request_id()
    hits = int(nodes.memcached.stats()["get_hits"])
    assert status(b, image["id"], first) == 200
    resp = b.get(f"/v2/images/{image['id']}", headers={"X-Openstack-Request-Id": second})
    assert resp.status_code == 200 and resp.json()["status"] == "active"
    assert resp.json()["checksum"]
    data = b.get(f"/v2/images/{image['id']}/file", headers={"X-Openstack-Request-Id": download})
    assert data.status_code == 200 and data.content == b"x" * 1024
    assert nodes.registry_calls(first) == 1
    assert nodes.registry_calls(second) == 0
    assert nodes.registry_calls(download) == 0
    assert int(nodes.memcached.stats()["get_hits"]) >= hits + 2


def test_a_patch_through_a_is_seen_on_b_next_get(nodes):
    owner = uuid.uuid4().hex
    a, b = at(nodes.a, owner), at(nodes.b, owner)
    image_id = a.create_image(name="v0")["id"]
    settle()
    assert b.get(f"/v2/images/{image_id}").json()["name"] == "v0"
    hit = _request_id()
    assert b.get(f"/v2/images/{image_id}", headers={"X-Openstack-Request-Id": hit}).json()["name"] == "v0"
    assert nodes.registry_calls(hit) == 0
    resp = a.patch(f"/v2/images/{image_id}", [{"op": "replace", "path": "/name", "value": "v1"}])
    assert resp.status_code == 200, resp.text
    assert b.get(f"/v2/images/{image_id}").json()["name"] == "v1"
    # and in quick succession (each read within the last write's tombstone)
    for n in range(2, 6):
        assert b.get(f"/v2/images/{image_id}").json()["name"] == f"v{n - 1}"
        assert b.get(f"/v2/images/{image_id}").json()["name"] == f"v{n - 1}"
        resp = a.patch(f"/v2/images/{image_id}", [{"op": "replace", "path": "/name", "value": f"v{n}"}])
        assert resp.status_code == 200, resp.text
        assert b.get(f"/v2/images/{image_id}").json()["name"] == f"v{n}"


def test_members_through_a_are_seen_on_b_for_the_right_projects(nodes):
    owner, member, other = (uuid.uuid4().hex for _ in range(3))
    image_id = at(nodes.a, owner).create_image(visibility="shared")["id"]
    on_b = {p: at(nodes.b, p) for p in (owner, member, other)}

    def seen() -> dict[str, int]:
        """Right after the write (the registry answers), then once the tombstone is gone
        (the first read fills, the second is answered from the cache): the same answers."""
        now = {project: status(http, image_id) for project, http in on_b.items()}
        settle()
        at(nodes.b, owner).get(f"/v2/images/{image_id}")  # fills
        for project, http in on_b.items():
            hit = _request_id()
            assert status(http, image_id, hit) == now[project], project
            assert nodes.registry_calls(hit) == 0, project
        return now

    assert seen() == {owner: 200, member: 404, other: 404}
    resp = at(nodes.a, owner).post(f"/v2/images/{image_id}/members", json={"member": member})
    assert resp.status_code == 200, resp.text
    assert seen() == {owner: 200, member: 200, other: 404}
    resp = at(nodes.a, member).put(f"/v2/images/{image_id}/members/{member}", json={"status": "accepted"})
    assert resp.status_code == 200, resp.text
    assert seen() == {owner: 200, member: 200, other: 404}
    assert at(nodes.a, owner).delete(f"/v2/images/{image_id}/members/{member}").status_code == 204
    assert seen() == {owner: 200, member: 404, other: 404}


def test_a_delete_through_a_is_seen_on_b(nodes):
    owner = uuid.uuid4().hex
    image_id = at(nodes.a, owner).create_image(visibility="community")["id"]
    settle()
    admin_b = at(nodes.b, "admins", roles="admin,member,reader")
    viewers = [at(nodes.b, owner), at(nodes.b, uuid.uuid4().hex), admin_b]
    assert [status(v, image_id) for v in viewers] == [200, 200, 200]
    assert [status(v, image_id) for v in viewers] == [200, 200, 200]
    assert at(nodes.a, owner).delete(f"/v2/images/{image_id}").status_code == 204
    assert [status(v, image_id) for v in viewers] == [404, 404, 404]
    assert [status(v, image_id) for v in viewers] == [404, 404, 404]


def test_both_nodes_answer_with_memcached_stopped_and_after_it_is_back(nodes):
    owner, member, other = (uuid.uuid4().hex for _ in range(3))
    image_id = at(nodes.a, owner).create_image(visibility="shared", name="before")["id"]
    assert at(nodes.a, owner).post(f"/v2/images/{image_id}/members", json={"member": member}).ok

    def check(name: str) -> None:
        for node in (nodes.a, nodes.b):
            for _ in range(2):
                resp = at(node, member).get(f"/v2/images/{image_id}")
                assert resp.status_code == 200 and resp.json()["name"] == name
                assert status(at(node, other), image_id) == 404

    settle()
    check("before")  # cached
    port = nodes.memcached.port
    nodes.memcached.stop()  # by its PID
    started = time.monotonic()
    check("before")
    resp = at(nodes.a, owner).patch(
        f"/v2/images/{image_id}", [{"op": "replace", "path": "/name", "value": "down"}]
    )
    assert resp.status_code == 200, resp.text
    check("down")
    assert time.monotonic() - started < 10, "memcached down must cost little"

    nodes.memcached = start_memcached(port=port)
    check("down")
    time.sleep(6)  # past memcached_dead_retry (5 s): the clients use memcached again
    check("down")
    first, second = _request_id(), _request_id()
    assert status(at(nodes.b, member), image_id, first) == 200
    assert status(at(nodes.b, member), image_id, second) == 200
    assert nodes.registry_calls(second) == 0
    resp = at(nodes.a, owner).patch(
        f"/v2/images/{image_id}", [{"op": "replace", "path": "/name", "value": "back"}]
    )
    assert resp.status_code == 200, resp.text
    check("back")
    assert at(nodes.a, owner).delete(f"/v2/images/{image_id}/members/{member}").status_code == 204
    for node in (nodes.a, nodes.b):
        assert status(at(node, member), image_id) == 404


def test_direct_mode_nodes_fill_and_invalidate_themselves(tmp_path):
    """``data_api = database``: each glance-api owns the database, so it fills and invalidates
    the cache itself; a write through A is still seen on B's next GET."""
    memcached = start_memcached()
    servers = {"glance_metadata_cache_servers": [memcached.address]}
    try:
        a = start_glance(tmp_path / "a", workers=1, data_api="database", extra_vars=servers)
        try:
            b = a.add_api(tmp_path / "b")
            try:
                owner, other = uuid.uuid4().hex, uuid.uuid4().hex
                image_id = at(a, owner).create_image(name="one")["id"]
                settle()
                hits = int(memcached.stats()["get_hits"])
                for _ in range(2):
                    assert at(b, owner).get(f"/v2/images/{image_id}").json()["name"] == "one"
                    assert status(at(b, other), image_id) == 404
                assert int(memcached.stats()["get_hits"]) > hits
                ops = [{"op": "replace", "path": "/name", "value": "two"}]
                assert at(a, owner).patch(f"/v2/images/{image_id}", ops).status_code == 200
                assert at(b, owner).get(f"/v2/images/{image_id}").json()["name"] == "two"
                assert at(a, owner).delete(f"/v2/images/{image_id}").status_code == 204
                assert status(at(b, owner), image_id) == 404
            finally:
                b.stop()
        finally:
            a.stop()
    finally:
        memcached.stop()
