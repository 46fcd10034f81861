"""What the pytest verifiers of the scenarios with tests of their own (backends, features) share:
the scenario's hosts over SSH (testinfra), the administrator's openstacksdk connection, and the
image API over plain HTTP with the administrator's token (so data calls can be timed). Each
scenario's tests/conftest.py reads its own environment prefix and builds its fixtures from these.
A conftest finds this file with `sys.path.insert(0, <molecule>/shared/files)`.
"""

from __future__ import annotations

import time

import openstack
import requests
import testinfra

SSH_ARGS = "-o StrictHostKeyChecking=no -o UserKnownHostsFile=/dev/null -o LogLevel=ERROR"


def ssh_host(address: str, key: str):
    return testinfra.get_host(f"ssh://root@{address}", ssh_identity_file=key, ssh_extra_args=SSH_ARGS)


def admin_cloud(auth_url: str, password: str, region: str):
    return openstack.connect(
        auth_url=auth_url,
        username="admin",
        password=password,
        project_name="admin",
        user_domain_name="Default",
        project_domain_name="Default",
        region_name=region,
        interface="public",
    )


class ImageAPI:
    """The image API v2 over plain HTTP with the admin's token."""

    def __init__(self, base: str, token: str):
        self.base = base.rstrip("/") + "/v2"
        self.http = requests.Session()
        self.http.headers["X-Auth-Token"] = token

    def request(self, method: str, path: str, expect: int | tuple[int, ...], **kwargs) -> requests.Response:
        resp = self.http.request(method, self.base + path, timeout=600, **kwargs)
        codes = (expect,) if isinstance(expect, int) else expect
        assert resp.status_code in codes, f"{method} {path}: {resp.status_code} {resp.text[:500]}"
        return resp

    def wait_status(self, image_id: str, status: str, timeout: float = 300) -> dict:
        deadline = time.monotonic() + timeout
        while True:
            image = self.request("GET", f"/images/{image_id}", 200).json()
            if image["status"] == status:
                return image
            assert time.monotonic() < deadline, f"image {image_id} is {image['status']}, not {status}"
            time.sleep(1)
