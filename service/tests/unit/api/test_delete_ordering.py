"""Deleting an image or a location never loses track of data the store keeps.

The real API (router, policy, handlers) over the real DatabaseAPI on SQLite, with a store
double that holds each location's data as a real file and can refuse to delete chosen
locations the way RBD does while copy-on-write clones exist (``InUseByStore``, 409). The
order under test: the store first, then the record; a refusal leaves both.
"""

from __future__ import annotations

import os

import pytest
import webob
from oslo_config import cfg

from glance_service import exceptions
from glance_service.api import app as app_mod
from glance_service.api import wiring
from glance_service.common import config
from glance_service.context import RequestContext
from glance_service.db import migrate
from glance_service.db.database_api import DatabaseAPI
from glance_service.images import image_schema as schema_mod
from glance_service.images import policy as policy_mod
from glance_service.store import filesystem


class Crash(BaseException):
    """Stands for the process dying between the store's delete and the database update."""


class Store:
    """Data as real files; ``refuse`` holds URLs the store will not delete (in use)."""

    def __init__(self, root, enabled: dict[str, str] | None = None):
        self.root = root
        self.enabled = enabled or {}
        self.refuse: set[str] = set()
        self.crash_after_delete = False
        self.calls: list[tuple[str, str | None]] = []

    def put(self, name: str) -> str:
        path = self.root / name
        path.write_bytes(b"data of " + name.encode())
        return "file://" + str(path)

    def delete(self, url: str, backend: str | None = None) -> None:
        self.calls.append((url, backend))
        if url in self.refuse:
            raise exceptions.InUseByStore("The rbd image has clones.")
        filesystem.delete_url(url)
        if self.crash_after_delete:
            raise Crash()

    def unstage(self, image_id: str) -> None:
        pass

    def weight(self, backend: str) -> int:
        return 0

    def is_read_only(self, backend: str) -> bool:
        return False


def exists(url: str) -> bool:
    return os.path.exists(filesystem.path_from_url(url))


def _conf(**overrides) -> cfg.ConfigOpts:
    conf = cfg.ConfigOpts()
    conf.register_opts(config.paste_deploy_opts, group="paste_deploy")
    app_mod.register_opts(conf)
    conf([], project="glance-delete-test")
    conf.set_override("flavor", "", group="paste_deploy")
    for key, value in overrides.items():
        conf.set_override(key, value)
    return conf


class Api:
    def __init__(self, tmp_path, enabled: dict[str, str] | None = None, **overrides):
        url = f"sqlite:///{tmp_path}/glance.sqlite"
        migrate.sync(url)
        self.data = DatabaseAPI(url=url)
        datadir = tmp_path / "data"
        datadir.mkdir()
        self.store = Store(datadir, enabled)
        conf = _conf(**overrides)
        svc = wiring.Services(
            conf=conf,
            data=self.data,
            stores=self.store,
            policy=policy_mod.Enforcer(conf),
            schema=schema_mod.ImageSchema.from_conf(conf),
        )
        self.app = app_mod.app_factory(conf, svc)
        self.owner = RequestContext(user_id="u", project_id="alpha", roles=["member", "reader"])
        self.admin_ctx = RequestContext.admin()

    def call(self, method: str, path: str, json=None, admin: bool = False) -> webob.Response:
        roles = "admin,member,reader" if admin else "member,reader"
        headers = {"X-Project-Id": "alpha", "X-Roles": roles, "Accept": "application/json"}
        req = webob.Request.blank(path, method=method, headers=headers)
        if json is not None:
            import json as json_mod

            req.body = json_mod.dumps(json).encode()
            req.content_type = "application/openstack-images-v2.1-json-patch"
        return req.get_response(self.app)

    def image(self, copies: int = 1, stores: list[str] | None = None) -> tuple[str, list[str]]:
        image = self.data.image_create(
            self.owner,
            {"status": "active", "owner": "alpha", "disk_format": "raw", "container_format": "bare"},
        )
        urls = []
        for i in range(copies):
            url = self.store.put(f"{image['id']}-{i}")
            meta = {"store": stores[i]} if stores else {}
            self.data.image_location_add(self.owner, image["id"], url, meta)
            urls.append(url)
        return image["id"], urls

    def locations(self, image_id: str) -> list[str]:
        return [loc["url"] for loc in self.data.image_get(self.owner, image_id)["locations"]]


@pytest.fixture
def api(tmp_path) -> Api:
    return Api(tmp_path)


def test_store_refusal_is_409_and_the_image_stays(api):
    image_id, (url,) = api.image()
    api.store.refuse.add(url)
    resp = api.call("DELETE", f"/v2/images/{image_id}")
    assert resp.status_int == 409, resp.text
    assert "in use" in resp.text
    shown = api.call("GET", f"/v2/images/{image_id}")
    assert shown.status_int == 200 and shown.json["status"] == "active"
    assert image_id in [i["id"] for i in api.call("GET", "/v2/images").json["images"]]
    assert api.locations(image_id) == [url] and exists(url)
    # the clones are gone: the same delete now succeeds and removes the data
    api.store.refuse.clear()
    assert api.call("DELETE", f"/v2/images/{image_id}").status_int == 204
    assert api.call("GET", f"/v2/images/{image_id}").status_int == 404
    assert not exists(url)


def test_one_copy_refused_keeps_only_that_copy(api):
    image_id, (first, second) = api.image(copies=2)
    api.store.refuse.add(second)
    assert api.call("DELETE", f"/v2/images/{image_id}").status_int == 409
    # the first copy's data went, and so did its record; the refused copy keeps both
    assert not exists(first) and exists(second)
    assert api.locations(image_id) == [second]
    assert api.call("GET", f"/v2/images/{image_id}").json["status"] == "active"


def test_data_already_gone_does_not_block_the_delete(api):
    image_id, (url,) = api.image()
    os.unlink(filesystem.path_from_url(url))
    assert api.call("DELETE", f"/v2/images/{image_id}").status_int == 204
    assert api.call("GET", f"/v2/images/{image_id}").status_int == 404


def test_crash_after_the_store_delete_is_finished_by_the_next_delete(api):
    image_id, (url,) = api.image()
    api.store.crash_after_delete = True
    with pytest.raises(Crash):
        api.call("DELETE", f"/v2/images/{image_id}")
    # the data is gone, the record is not: the image is still there to delete
    assert not exists(url) and api.locations(image_id) == [url]
    api.store.crash_after_delete = False
    assert api.call("DELETE", f"/v2/images/{image_id}").status_int == 204
    assert api.call("GET", f"/v2/images/{image_id}").status_int == 404


def test_delete_passes_the_locations_store(tmp_path):
    api = Api(tmp_path, enabled={"fast": "file", "cheap": "file"})
    image_id, urls = api.image(copies=2, stores=["fast", "cheap"])
    assert api.call("DELETE", f"/v2/images/{image_id}").status_int == 204
    assert api.store.calls == [(urls[0], "fast"), (urls[1], "cheap")]


def test_delayed_delete_leaves_the_data_to_the_scrubber(tmp_path):
    api = Api(tmp_path, delayed_delete=True)
    image_id, (url,) = api.image()
    api.store.refuse.add(url)
    assert api.call("DELETE", f"/v2/images/{image_id}").status_int == 204
    assert api.store.calls == [] and exists(url)


# -- one location ------------------------------------------------------------------------------


def test_patch_remove_refused_is_409_and_the_location_stays(tmp_path):
    api = Api(tmp_path, show_multiple_locations=True)
    image_id, (first, second) = api.image(copies=2)
    api.store.refuse.add(first)
    patch = [{"op": "remove", "path": "/locations/0"}]
    resp = api.call("PATCH", f"/v2/images/{image_id}", json=patch, admin=True)
    assert resp.status_int == 409, resp.text
    assert api.locations(image_id) == [first, second] and exists(first)
    api.store.refuse.clear()
    resp = api.call("PATCH", f"/v2/images/{image_id}", json=patch, admin=True)
    assert resp.status_int == 200, resp.text
    assert [loc["url"] for loc in resp.json["locations"]] == [second]
    # the removed location's data is removed too (it was left in the store before)
    assert not exists(first) and exists(second)


def test_patch_remove_of_a_location_whose_data_is_gone(tmp_path):
    api = Api(tmp_path, show_multiple_locations=True)
    image_id, (first, second) = api.image(copies=2)
    os.unlink(filesystem.path_from_url(first))
    patch = [{"op": "remove", "path": "/locations/0"}]
    assert api.call("PATCH", f"/v2/images/{image_id}", json=patch, admin=True).status_int == 200
    assert api.locations(image_id) == [second]


def test_delete_from_store_refused_is_409_and_the_copy_stays(tmp_path):
    api = Api(tmp_path, enabled={"fast": "file", "cheap": "file"})
    image_id, (fast, cheap) = api.image(copies=2, stores=["fast", "cheap"])
    api.store.refuse.add(fast)
    resp = api.call("DELETE", f"/v2/stores/fast/{image_id}", admin=True)
    assert resp.status_int == 409, resp.text
    assert api.locations(image_id) == [fast, cheap] and exists(fast)
    api.store.refuse.clear()
    assert api.call("DELETE", f"/v2/stores/fast/{image_id}", admin=True).status_int == 204
    assert api.locations(image_id) == [cheap] and not exists(fast)
