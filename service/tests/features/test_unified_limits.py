"""Unified limits against a real Keystone: registered limits and a project limit made through
Keystone's API, glance-registry + glance-api in Keystone mode with ``use_keystone_limits`` on
(configs rendered from the toolkit's template, so its ``[oslo_limit]`` block is what runs),
oslo.limit reading the limits as the glance user with a system-scoped token.

Everything lives in a region of its own (with Keystone's endpoints copied into it), so this
file never touches the catalog the e2e suite's clients use (RegionOne). The service, its
endpoints, the registered limits and the glance user's reader role on the system are made by
the toolkit itself (roles/glance/tasks/keystone.yml through ansible-playbook: check mode
first, then twice to show it idempotent); the project limit through Keystone's API.

Limits (registered): image_size_total 1 MiB, image_stage_total 1 MiB, image_count_total 100,
image_count_uploading 1; project alpha: image_count_total 2.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
import time
from pathlib import Path

import pytest
import requests
import yaml

from tests.fixtures.glance_procs import BIN, REPO, start_glance
from tests.fixtures.keystone import keystone  # noqa: F401  (session fixture)
from tests.fixtures.memcached import memcached  # noqa: F401

pytestmark = pytest.mark.keystone

REGION = "LimitsRegion"
MIB = 1024 * 1024
REGISTERED = {
    "image_size_total": 1,
    "image_stage_total": 1,
    "image_count_total": 100,
    "image_count_uploading": 1,
}
ALPHA_COUNT = 2
OVER = "The request returned a 413 Request Entity Too Large."


def _system_admin(ks):
    """An openstacksdk connection as Keystone's admin, system-scoped (limits are system data)."""
    import openstack.connection
    from keystoneauth1 import session as ks_session
    from keystoneauth1.identity import v3

    admin = ks.users["admin"]
    auth = v3.Password(
        auth_url=ks.auth_url,
        username=admin.name,
        password=admin.password,
        user_domain_name="Default",
        system_scope="all",
    )
    return openstack.connection.Connection(session=ks_session.Session(auth=auth), region_name="RegionOne")


def _register(keystone, procs, tmp_path: Path, *, check: bool = False) -> str:  # noqa: F811
    """The toolkit's own registration (roles/glance/tasks/keystone.yml, run by ansible-playbook
    as site.yml runs it) for this region: service, endpoints, registered limits, the glance
    user's reader role on the system. Returns ansible's output."""
    admin = keystone.users["admin"]
    play = {
        "name": "Register glance in Keystone",
        "hosts": "localhost",
        "connection": "local",
        "gather_facts": False,
        "vars": {
            "ansible_python_interpreter": sys.executable,
            "glance_keystone_register_host": "localhost",
            "glance_keystone_public_url": keystone.url,
            "glance_keystone_region": REGION,
            "glance_keystone_admin_user": admin.name,
            "glance_keystone_admin_project": admin.project,
            "glance_keystone_admin_password": admin.password,
            "glance_keystone_password": keystone.glance_password,
            "glance_public_url": procs.api_url,
            "glance_api_port": procs.api_port,
            "glance_use_keystone_limits": True,
            "glance_keystone_registered_limits": REGISTERED,
        },
        "tasks": [{"ansible.builtin.include_role": {"name": "glance", "tasks_from": "keystone"}}],
    }
    (tmp_path / "register.yml").write_text(yaml.safe_dump([play], sort_keys=False))
    env = {
        **os.environ,
        "ANSIBLE_NOCOLOR": "1",
        "ANSIBLE_HOME": str(tmp_path),
        "ANSIBLE_ROLES_PATH": str(REPO / "roles"),
    }
    env.pop("ANSIBLE_CONFIG", None)
    cmd = [str(BIN / "ansible-playbook"), "-i", "localhost,", "register.yml", *(["--check"] if check else [])]
    result = subprocess.run(
        cmd, cwd=tmp_path, env=env, capture_output=True, text=True, timeout=600, check=False
    )
    assert result.returncode == 0, result.stdout[-6000:] + result.stderr[-3000:]
    return result.stdout


def _recap(output: str) -> dict[str, int]:
    line = next(x for x in output.splitlines() if x.startswith("localhost") and "ok=" in x)
    return {k: int(v) for k, v in re.findall(r"(\w+)=(\d+)", line)}


@pytest.fixture(scope="module")
def glance(tmp_path_factory, keystone, memcached):  # noqa: F811
    conn = _system_admin(keystone)
    ident = conn.identity
    # A region of its own, with Keystone's own endpoints in it (tokens are validated there)
    if ident.find_region(REGION) is None:
        ident.create_region(id=REGION)
    identity = ident.find_service("keystone")
    for i in ("public", "internal"):
        ident.create_endpoint(service_id=identity.id, interface=i, url=f"{keystone.url}/v3", region_id=REGION)
    service = ident.find_service("glance") or ident.create_service(name="glance", type="image")
    procs = start_glance(
        tmp_path_factory.mktemp("glance-limits"),
        flavor="keystone",
        keystone={
            "public_url": keystone.url,
            "internal_url": keystone.url,
            "password": keystone.glance_password,
            "region": REGION,
            "memcached_servers": [memcached.address],
        },
        extra_vars={"glance_use_keystone_limits": True},
    )
    try:
        work = tmp_path_factory.mktemp("register")
        # --check first: reports the limits it would make, makes none
        _register(keystone, procs, work, check=True)
        assert list(ident.registered_limits(service_id=service.id, region_id=REGION)) == []
        assert _recap(_register(keystone, procs, work))["changed"] >= 3  # endpoints, limits, role
        found = {
            r.resource_name: r.default_limit
            for r in ident.registered_limits(service_id=service.id, region_id=REGION)
        }
        assert found == REGISTERED
        assert _recap(_register(keystone, procs, work))["changed"] == 0  # idempotent
        alpha = ident.find_project("alpha", domain_id="default")
        ident.create_limit(
            service_id=service.id,
            project_id=alpha.id,
            region_id=REGION,
            resource_name="image_count_total",
            resource_limit=ALPHA_COUNT,
        )
        yield procs
    finally:
        procs.stop()
        for limit in ident.limits(service_id=service.id, region_id=REGION):
            ident.delete_limit(limit)
        for limit in ident.registered_limits(service_id=service.id, region_id=REGION):
            ident.delete_registered_limit(limit)
        for endpoint in [*ident.endpoints(region_id=REGION)]:
            ident.delete_endpoint(endpoint)


class Client:
    def __init__(self, url: str, token: str):
        self.url, self.headers = url, {"X-Auth-Token": token}

    def __call__(self, method: str, path: str, **kw) -> requests.Response:
        headers = {**self.headers, **kw.pop("headers", {})}
        return requests.request(method, self.url + path, headers=headers, timeout=60, **kw)

    def create(self, **body) -> requests.Response:
        body = {"disk_format": "raw", "container_format": "bare", "name": "limits", **body}
        return self("POST", "/v2/images", json=body)

    def image(self, **body) -> str:
        resp = self.create(**body)
        assert resp.status_code == 201, resp.text
        return resp.json()["id"]

    def upload(self, image_id: str, data: bytes) -> requests.Response:
        return self(
            "PUT",
            f"/v2/images/{image_id}/file",
            data=data,
            headers={"Content-Type": "application/octet-stream"},
        )

    def stage(self, image_id: str, data: bytes) -> requests.Response:
        return self(
            "PUT",
            f"/v2/images/{image_id}/stage",
            data=data,
            headers={"Content-Type": "application/octet-stream"},
        )

    def get(self, image_id: str) -> dict:
        resp = self("GET", f"/v2/images/{image_id}")
        assert resp.status_code == 200, resp.text
        return resp.json()

    def usage(self) -> dict:
        resp = self("GET", "/v2/info/usage")
        assert resp.status_code == 200, resp.text
        return {name: (v["usage"], v["limit"]) for name, v in resp.json()["usage"].items()}

    def delete_all(self) -> None:
        for image in self("GET", "/v2/images?limit=1000").json()["images"]:
            assert self("DELETE", f"/v2/images/{image['id']}").status_code == 204


@pytest.fixture
def alpha(glance, keystone):  # noqa: F811
    client = Client(glance.api_url, keystone.token("alpha-member"))
    client.delete_all()
    yield client
    client.delete_all()


@pytest.fixture
def beta(glance, keystone):  # noqa: F811
    client = Client(glance.api_url, keystone.token("beta-member"))
    client.delete_all()
    yield client
    client.delete_all()


def _over(resp: requests.Response, resource: str) -> None:
    assert resp.status_code == 413, resp.text
    assert OVER in resp.text
    assert f"Resource {resource} is over limit of" in resp.text


def test_usage_reports_the_registered_and_project_limits(alpha, beta):
    assert alpha.usage() == {
        "image_size_total": (0, 1),
        "image_stage_total": (0, 1),
        "image_count_total": (0, ALPHA_COUNT),
        "image_count_uploading": (0, 1),
    }
    assert beta.usage()["image_count_total"] == (0, 100)


def test_create_refused_over_the_project_image_count(alpha):
    first = alpha.image()
    alpha.image()
    _over(alpha.create(), "image_count_total")
    assert alpha.usage()["image_count_total"] == (2, ALPHA_COUNT)
    assert alpha("DELETE", f"/v2/images/{first}").status_code == 204
    assert alpha.usage()["image_count_total"] == (1, ALPHA_COUNT)
    alpha.image()


def test_upload_checks_the_declared_size_before_and_counts_after(beta):
    one = beta.image()
    assert beta.upload(one, os.urandom(MIB)).status_code == 204
    assert beta.usage()["image_size_total"] == (1, 1)
    assert beta.usage()["image_count_total"] == (1, 100)
    # 1 MiB more does not fit; the image stays queued
    two = beta.image()
    _over(beta.upload(two, os.urandom(MIB)), "image_size_total")
    assert beta.get(two)["status"] == "queued"
    # under a MiB the delta is 0 (whole MiB, as upstream): the project is at, not over, its
    # limit, so it goes in (soft limits) and counts 1 MiB only once the total crosses one more
    assert beta.upload(two, b"x" * 1000).status_code == 204
    assert beta.usage()["image_size_total"] == (1, 1)
    # deleting gives the room back at once
    assert beta("DELETE", f"/v2/images/{one}").status_code == 204
    assert beta.usage()["image_size_total"] == (0, 1)
    three = beta.image()
    assert beta.upload(three, os.urandom(MIB)).status_code == 204
    assert beta.usage()["image_size_total"] == (1, 1)
    assert beta.usage()["image_count_total"] == (2, 100)


def test_stage_checks_staging_space_and_uploads_in_progress(beta):
    big = beta.image()
    _over(beta.stage(big, os.urandom(2 * MIB)), "image_stage_total")
    assert beta.get(big)["status"] == "queued"
    staged = beta.image()
    assert beta.stage(staged, os.urandom(MIB)).status_code == 204
    assert beta.get(staged)["size"] == MIB
    assert beta.usage()["image_stage_total"] == (1, 1)
    assert beta.usage()["image_count_uploading"] == (1, 1)
    # a second image in progress is one too many: refused once it counts itself, back to queued
    second = beta.image()
    _over(beta.stage(second, b"x" * 1000), "image_count_uploading")
    assert beta.get(second)["status"] == "queued"
    # so is an upload meanwhile: refused once 'saving' (it counts itself), back to queued
    _over(beta.upload(second, b"x" * 1000), "image_count_uploading")
    assert beta.get(second)["status"] == "queued"
    assert beta.usage()["image_count_uploading"] == (1, 1)
    # importing the staged image: 1 MiB of stored data fits in image_size_total
    resp = beta("POST", f"/v2/images/{staged}/import", json={"method": {"name": "glance-direct"}})
    assert resp.status_code == 202, resp.text
    assert _wait_status(beta, staged, "active")["size"] == MIB
    assert beta.usage() == {
        "image_size_total": (1, 1),
        "image_stage_total": (0, 1),
        "image_count_total": (3, 100),
        "image_count_uploading": (0, 1),
    }


def test_import_refused_by_the_task_when_the_staged_data_does_not_fit(beta):
    stored = beta.image()
    assert beta.upload(stored, os.urandom(MIB)).status_code == 204  # size total now full
    staged = beta.image()
    assert beta.stage(staged, os.urandom(MIB)).status_code == 204
    resp = beta("POST", f"/v2/images/{staged}/import", json={"method": {"name": "glance-direct"}})
    assert resp.status_code == 202, resp.text  # as upstream: the import task fails
    image = _wait_status(beta, staged, "queued")
    tasks = beta("GET", f"/v2/images/{staged}/tasks").json()["tasks"]
    assert tasks[0]["status"] == "failure"
    assert "image_size_total is over limit of 1" in tasks[0]["message"]
    assert image["size"] is None
    # over the limit now: the request itself is refused
    other = beta.image()
    assert beta.upload(other, b"x" * 1000).status_code == 204  # delta 0: 1 MiB is not over 1
    big = beta.image()
    assert beta.upload(big, os.urandom(MIB)).status_code == 413
    # and the staged image can be staged again (its data was removed)
    assert beta.usage()["image_stage_total"] == (0, 1)
    assert beta.stage(staged, os.urandom(1000)).status_code == 204


def test_import_request_refused_when_already_over(beta, keystone):  # noqa: F811
    one = beta.image()
    two = beta.image()
    assert beta.upload(one, os.urandom(MIB)).status_code == 204
    # the quota is soft: a chunked upload declares no size and goes over
    resp = beta(
        "PUT",
        f"/v2/images/{two}/file",
        data=iter([os.urandom(MIB)]),
        headers={"Content-Type": "application/octet-stream"},
    )
    assert resp.status_code == 204, resp.text
    assert beta.usage()["image_size_total"] == (2, 1)
    three = beta.image()
    resp = beta("POST", f"/v2/images/{three}/import", json={"method": {"name": "glance-direct"}})
    _over(resp, "image_size_total")


def _wait_status(client: Client, image_id: str, status: str, timeout: float = 60) -> dict:
    deadline = time.monotonic() + timeout
    while True:
        image = client.get(image_id)
        if image["status"] == status:
            return image
        if time.monotonic() > deadline:
            pytest.fail(f"image {image_id} is {image['status']}, not {status}, after {timeout}s")
        time.sleep(0.2)
