"""Functional tests: real glance-registry + glance-api on SQLite, trusted-headers mode."""

from __future__ import annotations

import uuid
from collections.abc import Iterator

import pytest
import requests

from tests.fixtures.glance_procs import GlanceProcs, start_glance


@pytest.fixture(scope="session")
def glance(tmp_path_factory) -> Iterator[GlanceProcs]:
    # The tests' data servers listen on 127.0.0.1 at free ports: admitted as an operator would
    # admit an internal mirror (Glance's syntax; loopback is refused unless named).
    procs = start_glance(
        tmp_path_factory.mktemp("glance"),
        extra_api={"import_filtering_opts": {"allowed_hosts": "[127.0.0.1]", "allowed_ports": "[]"}},
    )
    yield procs
    procs.stop()


class Http:
    """Raw HTTP against one glance-api, as one identity (trusted headers).

    ``project``/``roles`` default to a member of a fresh project, with Keystone's implied
    ``reader`` role, as a real token would carry it.
    """

    def __init__(
        self, base_url: str, project: str | None = None, roles: str = "reader,member", user: str | None = None
    ):
        self.base_url = base_url
        self.project = project or uuid.uuid4().hex
        self.user = user or uuid.uuid4().hex
        self.roles = roles
        self.session = requests.Session()

    def headers(self, extra: dict | None = None) -> dict:
        h = {"X-Project-Id": self.project, "X-User-Id": self.user, "X-Roles": self.roles}
        h.update(extra or {})
        return h

    def request(self, method: str, path: str, *, headers: dict | None = None, **kwargs) -> requests.Response:
        return self.session.request(
            method, self.base_url + path, headers=self.headers(headers), timeout=30, **kwargs
        )

    def get(self, path: str, **kw) -> requests.Response:
        return self.request("GET", path, **kw)

    def post(self, path: str, **kw) -> requests.Response:
        return self.request("POST", path, **kw)

    def put(self, path: str, **kw) -> requests.Response:
        return self.request("PUT", path, **kw)

    def delete(self, path: str, **kw) -> requests.Response:
        return self.request("DELETE", path, **kw)

    def patch(self, path: str, ops: list, media: str = "application/openstack-images-v2.1-json-patch", **kw):
        return self.request(
            "PATCH", path, json=ops, headers={"Content-Type": media, **kw.pop("headers", {})}, **kw
        )

    def create_image(self, **body) -> dict:
        body.setdefault("name", "img-" + uuid.uuid4().hex[:8])
        resp = self.post("/v2/images", json=body)
        assert resp.status_code == 201, resp.text
        return resp.json()

    def as_other(self, project: str | None = None, roles: str = "reader,member") -> Http:
        return Http(self.base_url, project=project, roles=roles)


@pytest.fixture
def http(glance) -> Http:
    """A member of a fresh project (its own images, nothing else)."""
    return Http(glance.api_url)


@pytest.fixture
def admin(glance) -> Http:
    return Http(glance.api_url, roles="admin,member,reader")
