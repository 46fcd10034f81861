"""Take over a running upstream Glance 33 and hand back to it, through the APIs (issue 19).

Upstream glance-api (uwsgi, its own venv, SQLite, a file store) is populated through its API
as several projects; every image's JSON as its owner and as each member, the member records,
each project's listing and the sha512 of every download are recorded. Then ``glance-manage
adopt`` converts its database into ours and our real glance-registry + glance-api serve the
same file store directory: every answer must be the same, field by field. A second adopt
writes nothing. ``glance-manage handback`` into a fresh upstream schema, upstream started on
it, and the same comparison again.
"""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest
import requests
import sqlalchemy as sa

from tests.fixtures.glance_procs import start_glance
from tests.fixtures.upstream_adopt import UpstreamGlance, make_schema

A, B, C, D = "proj-a", "proj-b", "proj-c", "proj-d"
ADMIN = "proj-admin"
RW = "reader,member"
UPSTREAM_OPTS = {
    "delayed_delete": True,
    "show_multiple_locations": True,
    "show_image_direct_url": True,
    "enabled_import_methods": "[glance-direct,copy-image]",
}
BACKENDS = ["fast", "slow"]  # two file stores: images in either, one copied into both


class Client:
    def __init__(self, url: str):
        self.url = url

    def call(self, method: str, path: str, project: str, roles: str = RW, **kw) -> requests.Response:
        headers = {
            "X-Identity-Status": "Confirmed",
            "X-Project-Id": project,
            "X-User-Id": f"user-{project}",
            "X-Roles": roles,
            **kw.pop("headers", {}),
        }
        return requests.request(method, self.url + path, headers=headers, timeout=60, **kw)

    def ok(self, method: str, path: str, project: str, roles: str = RW, **kw) -> dict:
        resp = self.call(method, path, project, roles, **kw)
        assert resp.status_code < 300, f"{method} {path}: {resp.status_code} {resp.text[:500]}"
        return resp.json() if resp.content else {}


def populate(api: Client) -> dict:
    """Images of every visibility and status, members of every status, tags, properties, two
    locations, a metadef namespace. Returns the image ids by name and who may see them."""
    images = {}

    def create(name, owner, roles=RW, data=True, store=None, **body):
        body = {"name": name, "disk_format": "raw", "container_format": "bare", **body}
        image = api.ok("POST", "/v2/images", owner, roles, json=body)
        if data:
            payload = os.urandom(4096) + name.encode()
            headers = {"Content-Type": "application/octet-stream"}
            if store:
                headers["X-Image-Meta-Store"] = store
            api.ok("PUT", f"/v2/images/{image['id']}/file", owner, roles, data=payload, headers=headers)
        images[name] = image["id"]
        return image["id"]

    admin = "admin,member,reader"
    create("pub", A, admin, visibility="public", os_distro="debian", hw_disk_bus="scsi", tags=["x", "y"])
    create("priv", A, protected=True, min_disk=3, min_ram=512, tags=["prod"], custom_key="ü-value")
    shared = create("shared", A, visibility="shared", tags=["team"])
    create("comm", B, visibility="community", os_version="12", store="slow")
    deact = create("deact", B)
    create("queued", C, data=False, min_ram=64)
    gone = create("pend", C)
    hidden = create("hidden", A, os_hidden=True)
    two = create("two-locations", A)
    for member, status in ((B, "accepted"), (C, "pending"), (D, "rejected")):
        api.ok("POST", f"/v2/images/{shared}/members", A, json={"member": member})
        if status != "pending":
            api.ok("PUT", f"/v2/images/{shared}/members/{member}", member, json={"status": status})
    api.ok("POST", f"/v2/images/{deact}/actions/deactivate", ADMIN, admin)
    # a second location in the other store: copy-image (a task), as an admin
    api.ok(
        "POST",
        f"/v2/images/{two}/import",
        ADMIN,
        admin,
        json={"method": {"name": "copy-image"}, "stores": ["slow"]},
    )
    deadline = time.monotonic() + 120
    while api.ok("GET", f"/v2/images/{two}", A).get("stores") != "fast,slow":
        assert time.monotonic() < deadline, api.ok("GET", f"/v2/images/{two}", A)
        time.sleep(1)
    api.ok("DELETE", f"/v2/images/{gone}", C)  # delayed_delete: pending_delete
    api.ok(
        "POST",
        "/v2/metadefs/namespaces",
        A,
        admin,
        json={
            "namespace": "OS::Adopt::Test",
            "display_name": "Adopt",
            "visibility": "public",
            "properties": {"speed": {"type": "integer", "title": "Speed"}},
            "objects": [{"name": "obj", "properties": {"a": {"type": "string", "title": "A"}}}],
            "tags": [{"name": "fast"}],
        },
    )
    assert hidden and images
    return images


def record(api: Client, images: dict) -> dict:
    """Everything a client sees, by (who, what)."""
    seen = {}
    for project in (A, B, C, D):
        listing = api.ok("GET", "/v2/images?limit=1000&member_status=all", project)
        seen[(project, "list")] = sorted(i["id"] for i in listing["images"])
        for name, image_id in images.items():
            resp = api.call("GET", f"/v2/images/{image_id}", project)
            seen[(project, name)] = (resp.status_code, resp.json() if resp.status_code == 200 else None)
            if resp.status_code == 200:
                data = api.call("GET", f"/v2/images/{image_id}/file", project)
                digest = hashlib.sha512(data.content).hexdigest() if data.status_code == 200 else None
                seen[(project, name, "file")] = (data.status_code, digest)
    shared = images["shared"]
    seen["members"] = api.ok("GET", f"/v2/images/{shared}/members", A)
    for member in (B, C, D):
        seen[("member", member)] = api.ok("GET", f"/v2/images/{shared}/members/{member}", member)
    ns = api.ok("GET", "/v2/metadefs/namespaces/OS::Adopt::Test", A, "admin,member,reader")
    seen["metadef"] = ns
    tasks = api.ok("GET", f"/v2/images/{images['two-locations']}/tasks", ADMIN, "admin,member,reader")[
        "tasks"
    ]
    assert tasks, "copy-image left no task"
    for task in tasks:
        seen[("task", task["id"])] = api.ok("GET", f"/v2/tasks/{task['id']}", ADMIN, "admin,member,reader")
    seen["image tasks"] = tasks
    return seen


def _tags_as_set(value):
    """Upstream's ``tags`` come from a Python set: their order is arbitrary, on both sides."""
    if isinstance(value, tuple) and isinstance(value[1], dict) and "tags" in value[1]:
        return (value[0], dict(value[1], tags=sorted(value[1]["tags"])))
    return value


def differences(before: dict, after: dict) -> list[str]:
    out = []
    for key in before:
        a, b = _tags_as_set(before[key]), _tags_as_set(after.get(key))
        if a == b:
            continue
        if (
            isinstance(a, tuple)
            and isinstance(b, tuple)
            and isinstance(a[1], dict)
            and isinstance(b[1], dict)
        ):
            for field in sorted(set(a[1]) | set(b[1])):
                if a[1].get(field) != b[1].get(field):
                    out.append(f"{key} {field}: {a[1].get(field)!r} != {b[1].get(field)!r}")
            if a[0] != b[0]:
                out.append(f"{key} status {a[0]} != {b[0]}")
        elif isinstance(a, dict) and isinstance(b, dict):
            for field in sorted(set(a) | set(b)):
                if a.get(field) != b.get(field):
                    out.append(f"{key} {field}: {a.get(field)!r} != {b.get(field)!r}")
        else:
            out.append(f"{key}: {a!r} != {b!r}")
    return out


def manage(conf: Path, *args: str) -> subprocess.CompletedProcess:
    done = subprocess.run(
        [sys.executable, "-m", "glance_service.cmd.manage", "--config-file", str(conf), *args],
        capture_output=True, text=True, timeout=300, check=False,
    )  # fmt: skip
    assert done.returncode == 0, done.stdout + done.stderr
    return done


@pytest.fixture
def upstream(tmp_path):
    store = tmp_path / "store"
    url = f"sqlite:///{tmp_path}/upstream.sqlite"
    make_schema(url, tmp_path / "upstream")
    old = UpstreamGlance(tmp_path / "upstream", url, store, UPSTREAM_OPTS, backends=BACKENDS)
    old.start()
    yield old
    old.stop()


def test_takeover_and_handback_show_the_same_images(upstream, tmp_path):
    api = Client(upstream.url)
    images = populate(api)
    before = record(api, images)
    assert before[(A, "pub")][1]["status"] == "active"
    assert before[(B, "deact")][1]["status"] == "deactivated"
    assert before[(C, "pend")][0] == 404
    two = before[(A, "two-locations")][1]
    assert two["stores"] == "fast,slow"
    assert [loc["metadata"].get("store") for loc in two["locations"]] == ["fast", "slow"]
    assert before[(B, "comm")][1]["stores"] == "slow"
    assert before[("member", C)]["status"] == "pending" and before[("member", D)]["status"] == "rejected"

    ours_url = f"sqlite:///{tmp_path}/ours.sqlite"
    conf = tmp_path / "glance-manage.conf"
    conf.write_text(f"[database]\nconnection = {ours_url}\n")
    check = manage(conf, "adopt", "--from-connection", upstream.db_url, "--check", "--json")
    report = json.loads(check.stdout)
    assert report["survey"]["schema"]["revision"] == "2024_1_contract01"
    assert report["refused"] == []
    assert (
        json.loads(manage(conf, "adopt", "--from-connection", upstream.db_url, "--json").stdout)["changed"]
        > 0
    )
    assert (
        json.loads(manage(conf, "adopt", "--from-connection", upstream.db_url, "--json").stdout)["changed"]
        == 0
    )

    eng = sa.create_engine(ours_url)
    with eng.connect() as c:
        pend = c.execute(
            sa.text("SELECT status, deleted FROM images WHERE id = :i"), {"i": images["pend"]}
        ).one()
    eng.dispose()
    assert tuple(pend) == ("pending_delete", 1)  # our scrubber takes it from here

    ours = start_glance(
        tmp_path / "ours",
        database_url=ours_url,
        extra_vars={"glance_show_multiple_locations": True, "glance_show_image_direct_url": True},
        extra_api={
            "DEFAULT": {"enabled_backends": ",".join(f"{b}:file" for b in BACKENDS)},
            "glance_store": {"default_backend": BACKENDS[0]},
            **{b: {"filesystem_store_datadir": str(upstream.store_dir / b)} for b in BACKENDS},
            "os_glance_staging_store": {"filesystem_store_datadir": str(tmp_path / "ours-staging")},
            "os_glance_tasks_store": {"filesystem_store_datadir": str(tmp_path / "ours-tasks")},
        },
    )
    try:
        after = record(Client(ours.api_url), images)
    finally:
        ours.stop()
    diff = differences(before, after)
    assert diff == [], "\n".join(diff)

    upstream.stop()
    back_url = f"sqlite:///{tmp_path}/back.sqlite"
    make_schema(back_url, tmp_path / "back")
    manage(conf, "handback", "--to-connection", back_url)
    again = UpstreamGlance(tmp_path / "back", back_url, upstream.store_dir, UPSTREAM_OPTS, backends=BACKENDS)
    again.start()
    try:
        returned = record(Client(again.url), images)
    finally:
        again.stop()
    assert differences(before, returned) == []
