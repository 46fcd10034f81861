"""What a create and a small upload cost the data API: calls, and transactions in each.

The real API (router, policy, handlers, the file store) over the real DatabaseAPI on SQLite,
the data API wrapped to count its calls and the engine watched for its statements. Each call
is a registry round trip in the default deployment, and each write a transaction there: a
create is one call, an upload one read (the record its policy and state checks need) and two
writes (queued -> saving; then location, size, hashes and active together). With the record
cache (the deployed layout) the upload's read after a create is a cache hit: three registry
calls per create + upload instead of four (issue 17).
"""

from __future__ import annotations

import hashlib

import pytest
import sqlalchemy as sa
import webob
from oslo_config import cfg

from glance_service.api import app as app_mod
from glance_service.api import wiring
from glance_service.common import config
from glance_service.db import migrate
from glance_service.db.database_api import DatabaseAPI
from glance_service.images import image_schema as schema_mod
from glance_service.images import policy as policy_mod
from glance_service.store import Stores
from glance_service.store import register_opts as register_store_opts


class Counting:
    """The data API, recording each call's name."""

    def __init__(self, data: DatabaseAPI):
        self._data = data
        self.calls: list[str] = []

    def __getattr__(self, name: str):
        target = getattr(self._data, name)
        if not callable(target):
            return target

        def call(*args, **kwargs):
            self.calls.append(name)
            return target(*args, **kwargs)

        return call


class Api:
    def __init__(self, tmp_path):
        url = f"sqlite:///{tmp_path}/glance.sqlite"
        migrate.sync(url)
        self.db = DatabaseAPI(url=url)
        self.data = Counting(self.db)
        conf = cfg.ConfigOpts()
        conf.register_opts(config.paste_deploy_opts, group="paste_deploy")
        app_mod.register_opts(conf)
        register_store_opts(conf)
        conf([], project="glance-write-calls-test", default_config_files=[])
        conf.set_override("flavor", "", group="paste_deploy")
        conf.set_override("filesystem_store_datadir", str(tmp_path / "images"), group="glance_store")
        svc = wiring.Services(
            conf=conf,
            data=self.data,
            stores=Stores(conf),
            policy=policy_mod.Enforcer(conf),
            schema=schema_mod.ImageSchema.from_conf(conf),
        )
        self.app = app_mod.app_factory(conf, svc)
        self.statements: list[str] = []
        self.commits = 0
        engine = self.db.db.engine
        sa.event.listen(engine, "before_cursor_execute", self._statement)
        sa.event.listen(engine, "commit", self._commit)

    def _statement(self, conn, cursor, statement, *args) -> None:
        self.statements.append(statement.split(None, 1)[0].upper())

    def _commit(self, conn) -> None:
        self.commits += 1

    def call(self, method: str, path: str, body: bytes = b"", content_type: str | None = None):
        headers = {"X-Project-Id": "alpha", "X-User-Id": "u", "X-Roles": "member,reader"}
        req = webob.Request.blank(path, method=method, headers=headers)
        if content_type:
            req.content_type = content_type
            req.body = body
        return req.get_response(self.app)

    def reset(self) -> None:
        self.data.calls.clear()
        self.statements.clear()
        self.commits = 0


@pytest.fixture
def api(tmp_path) -> Api:
    return Api(tmp_path)


def _create(api: Api) -> str:
    body = b'{"name": "small", "disk_format": "raw", "container_format": "bare"}'
    resp = api.call("POST", "/v2/images", body, "application/json")
    assert resp.status_int == 201, resp.text
    return resp.json["id"]


def test_a_create_is_one_call_and_one_transaction_without_reads(api):
    api.reset()
    _create(api)
    assert api.data.calls == ["image_create"]
    assert api.commits == 1
    # The record it answers with is built from what was written: nothing is read back.
    assert "SELECT" not in api.statements
    assert api.statements.count("INSERT") == 1


def test_a_small_upload_is_one_read_and_two_write_transactions(api):
    image_id = _create(api)
    api.reset()
    data = b"\x5a" * 1024
    resp = api.call("PUT", f"/v2/images/{image_id}/file", data, "application/octet-stream")
    assert resp.status_int == 204, resp.text
    assert api.data.calls == ["image_get", "image_update", "image_activate"]
    assert api.commits == 2
    shown = api.call("GET", f"/v2/images/{image_id}").json
    assert shown["status"] == "active" and shown["size"] == 1024
    assert shown["checksum"] == hashlib.md5(data).hexdigest()  # noqa: S324 - Glance's checksum
    assert shown["os_hash_value"] == hashlib.sha512(data).hexdigest()


def test_the_upload_start_reads_the_image_row_once(api):
    """queued -> saving: the image row is read once (visibility, and the record it returns);
    no second SELECT of it after the UPDATE."""
    image_id = _create(api)
    api.reset()
    resp = api.call("PUT", f"/v2/images/{image_id}/file", b"x" * 10, "application/octet-stream")
    assert resp.status_int == 204, resp.text
    # image_get: 2 SELECTs (the row, its children); the start: the row, the properties, the
    # children; the end: the row.
    assert api.statements.count("SELECT") <= 6, api.statements


def test_with_the_record_cache_a_create_and_upload_are_three_registry_calls(tmp_path):
    """The deployed layout (``[metadata_cache]`` on): glance-api's reading cache in front of
    the registry hop, the registry's owning cache in front of the database. The create fills
    the cache with the record it wrote, so the upload's read (policy and state checks before
    any write, as upstream) is a hit: create, queued -> saving, activate cross the hop; the
    upload's ``image_get`` does not (issue 17: it was the fourth call)."""
    from glance_service.registry.record_cache import CachedDataAPI, RecordCache
    from tests.unit.test_record_cache import Clock, FakeMemcache

    api = Api(tmp_path)
    clock = Clock()
    cache = RecordCache(FakeMemcache(clock), ttl=300, clock=clock)
    hop = Counting(CachedDataAPI(api.db, cache, read=False, owner=True))  # glance-registry
    api.data._data = CachedDataAPI(hop, cache, read=True, owner=False)  # glance-api
    image_id = _create(api)
    assert hop.calls == ["image_create"]
    hop.calls.clear()
    resp = api.call("PUT", f"/v2/images/{image_id}/file", b"\x5a" * 1024, "application/octet-stream")
    assert resp.status_int == 204, resp.text
    assert api.data.calls[-3:] == ["image_get", "image_update", "image_activate"]
    assert hop.calls == ["image_update", "image_activate"]
    # The writes invalidated the entry: the next read crosses the hop and sees 'active'.
    assert api.call("GET", f"/v2/images/{image_id}").json["status"] == "active"
    assert hop.calls[-1] == "image_get"
