"""Unified limits: what a project's images count (a real SQLite database) and how the counts
meet Keystone's limits (the real oslo.limit, its Keystone connection replaced by a fake that
answers registered and project limits, as oslo.limit's own LimitFixture does)."""

from __future__ import annotations

import json
import subprocess
import sys
from types import SimpleNamespace

import pytest
from oslo_config import cfg

from glance_service import exceptions
from glance_service.api import options
from glance_service.context import RequestContext
from glance_service.db import migrate
from glance_service.db.database_api import DatabaseAPI
from glance_service.images import quotas, unified_limits
from glance_service.images.unified_limits import (
    IMAGE_COUNT_TOTAL,
    IMAGE_COUNT_UPLOADING,
    IMAGE_SIZE_TOTAL,
    IMAGE_STAGE_TOTAL,
    MIB,
)

ALPHA = RequestContext(project_id="alpha", roles=["member"])
BETA = RequestContext(project_id="beta", roles=["member"])
ADMIN = RequestContext(project_id="admins", roles=["admin"], is_admin=True)


@pytest.fixture
def dbapi(tmp_path):
    url = f"sqlite:///{tmp_path}/glance.sqlite"
    migrate.sync(url)
    api = DatabaseAPI(url=url)
    yield api
    api.db.dispose()


def _image(dbapi, ctx, status: str, size: int | None = None, copies: int = 0, **props) -> dict:
    image = dbapi.image_create(ctx, {"properties": props} if props else {})
    for n in range(copies):
        dbapi.image_location_add(ctx, image["id"], f"file:///images/{image['id']}.{n}")
    return dbapi.image_update(ctx, image["id"], {"size": size, "status": status})


# -- counting (the data API) ---------------------------------------------------------------------
def test_an_empty_project_counts_nothing(dbapi):
    assert dbapi.image_quota_usage(ALPHA, "alpha") == {
        IMAGE_SIZE_TOTAL: 0,
        IMAGE_STAGE_TOTAL: 0,
        IMAGE_COUNT_TOTAL: 0,
        IMAGE_COUNT_UPLOADING: 0,
    }


def test_counts_as_upstream(dbapi):
    _image(dbapi, ALPHA, "active", 3 * MIB, copies=2)  # stored twice
    _image(dbapi, ALPHA, "queued")
    _image(dbapi, ALPHA, "saving", 5)  # no location yet: stores nothing
    _image(dbapi, ALPHA, "uploading", 7 * MIB)  # staged
    _image(dbapi, ALPHA, "importing", 11 * MIB)  # staged, being imported
    # copy-image in progress: an active image with stores left to import to
    _image(dbapi, ALPHA, "active", 13 * MIB, copies=1, os_glance_importing_to_stores="fast")
    _image(dbapi, ALPHA, "active", 17 * MIB, copies=1, os_glance_importing_to_stores="")
    _image(dbapi, ALPHA, "killed", 19 * MIB, copies=1)
    gone = _image(dbapi, ALPHA, "active", 23 * MIB, copies=1)
    dbapi.image_destroy(ALPHA, gone["id"])
    _image(dbapi, BETA, "active", 29 * MIB, copies=1)  # another project
    assert dbapi.image_quota_usage(ALPHA, "alpha") == {
        IMAGE_SIZE_TOTAL: (6 + 13 + 17) * MIB,
        IMAGE_STAGE_TOTAL: (7 + 11 + 13) * MIB,
        IMAGE_COUNT_TOTAL: 7,
        IMAGE_COUNT_UPLOADING: 4,  # saving, uploading, importing, copying
    }


def test_only_the_project_or_an_admin_may_ask(dbapi):
    assert dbapi.image_quota_usage(ADMIN, "alpha")[IMAGE_COUNT_TOTAL] == 0
    with pytest.raises(exceptions.Forbidden):
        dbapi.image_quota_usage(BETA, "alpha")


def test_usage_is_in_whole_mib(dbapi):
    _image(dbapi, ALPHA, "active", 2 * MIB - 1, copies=1)
    assert unified_limits.project_usage(dbapi, ALPHA, "alpha")[IMAGE_SIZE_TOTAL] == 1
    assert unified_limits.mib(MIB - 1) == 0 and unified_limits.mib(None) == 0


# -- enforcement (real oslo.limit, fake Keystone) ------------------------------------------------
class FakeKeystone:
    """The calls oslo.limit makes to Keystone, answered from two dicts."""

    def __init__(self, registered: dict[str, int], project: dict[str, dict[str, int]]):
        self.registered, self.project = registered, project

    def get_endpoint(self, endpoint_id):
        return SimpleNamespace(id=endpoint_id, service_id="svc", region_id="RegionOne")

    def get(self, path):
        assert path == "/limits/model"
        return SimpleNamespace(json=lambda: {"model": {"name": "flat"}})

    def registered_limits(self, service_id=None, region_id=None, resource_name=None):
        return [
            SimpleNamespace(resource_name=name, default_limit=value)
            for name, value in self.registered.items()
            if resource_name in (None, name)
        ]

    def limits(self, service_id=None, region_id=None, resource_name=None, project_id=None):
        return [
            SimpleNamespace(resource_name=name, resource_limit=value, project_id=pid)
            for pid, values in self.project.items()
            if project_id in (None, pid)
            for name, value in values.items()
            if resource_name in (None, name)
        ]


@pytest.fixture
def keystone(monkeypatch):
    from oslo_limit import limit

    fake = FakeKeystone(
        {IMAGE_SIZE_TOTAL: 10, IMAGE_STAGE_TOTAL: 10, IMAGE_COUNT_TOTAL: 3, IMAGE_COUNT_UPLOADING: 1},
        {"alpha": {IMAGE_SIZE_TOTAL: 4}},
    )
    monkeypatch.setattr(limit, "_SDK_CONNECTION", fake)
    unified_limits.register_opts()
    cfg.CONF.set_override("endpoint_id", "ep", group="oslo_limit")
    yield fake
    cfg.CONF.clear_override("endpoint_id", group="oslo_limit")


def _conf(on: bool = True) -> cfg.ConfigOpts:
    conf = cfg.ConfigOpts()
    options.register_opts(conf)
    conf([])
    conf.set_override("use_keystone_limits", on)
    return conf


def test_off_checks_nothing_and_reports_empty_usage(dbapi):
    conf = _conf(False)
    for _ in range(5):
        _image(dbapi, ALPHA, "active", 100 * MIB, copies=1)
    unified_limits.enforce(conf, dbapi, ALPHA, IMAGE_SIZE_TOTAL, 1000)  # no Keystone asked
    assert unified_limits.usage(conf, dbapi, ALPHA) == {}


def test_a_project_limit_overrides_the_registered_default(dbapi, keystone):
    conf = _conf()
    _image(dbapi, ALPHA, "active", 3 * MIB, copies=1)
    unified_limits.enforce(conf, dbapi, ALPHA, IMAGE_SIZE_TOTAL, 1)  # 3 + 1 <= 4
    with pytest.raises(exceptions.LimitExceeded) as caught:
        unified_limits.enforce(conf, dbapi, ALPHA, IMAGE_SIZE_TOTAL, 2)  # 3 + 2 > 4
    assert caught.value.code == 413
    assert caught.value.message == (
        "The request returned a 413 Request Entity Too Large. This generally means that rate "
        "limiting or a quota threshold was breached.\n\nThe response body:\n"
        "Project alpha is over a limit for [Resource image_size_total is over limit of 4 due to "
        "current usage 3 and delta 2]"
    )
    _image(dbapi, BETA, "active", 9 * MIB, copies=1)
    unified_limits.enforce(conf, dbapi, BETA, IMAGE_SIZE_TOTAL, 1)  # registered: 10


def test_delta_zero_refuses_only_a_project_already_over(dbapi, keystone):
    conf = _conf()
    _image(dbapi, ALPHA, "saving")  # the upload being checked counts itself
    unified_limits.enforce(conf, dbapi, ALPHA, IMAGE_COUNT_UPLOADING)  # 1 <= 1
    _image(dbapi, ALPHA, "uploading")
    with pytest.raises(exceptions.LimitExceeded):
        unified_limits.enforce(conf, dbapi, ALPHA, IMAGE_COUNT_UPLOADING)


def test_create_counts_the_new_image(dbapi, keystone):
    conf = _conf()
    for _ in range(2):
        _image(dbapi, ALPHA, "queued")
    unified_limits.enforce(conf, dbapi, ALPHA, IMAGE_COUNT_TOTAL, 1)  # the third
    _image(dbapi, ALPHA, "queued")
    with pytest.raises(exceptions.LimitExceeded, match="image_count_total is over limit of 3"):
        unified_limits.enforce(conf, dbapi, ALPHA, IMAGE_COUNT_TOTAL, 1)


def test_a_resource_without_a_registered_limit_allows_nothing(dbapi, keystone):
    conf = _conf()
    del keystone.registered[IMAGE_STAGE_TOTAL]
    with pytest.raises(exceptions.LimitExceeded):
        unified_limits.enforce(conf, dbapi, ALPHA, IMAGE_STAGE_TOTAL, 1)


def test_usage_reports_limit_and_usage_per_resource(dbapi, keystone):
    conf = _conf()
    _image(dbapi, ALPHA, "active", 3 * MIB, copies=1)
    _image(dbapi, ALPHA, "uploading", 2 * MIB)
    assert unified_limits.usage(conf, dbapi, ALPHA) == {
        IMAGE_SIZE_TOTAL: {"limit": 4, "usage": 3},
        IMAGE_STAGE_TOTAL: {"limit": 10, "usage": 2},
        IMAGE_COUNT_TOTAL: {"limit": 3, "usage": 2},
        IMAGE_COUNT_UPLOADING: {"limit": 1, "usage": 1},
    }


def test_user_storage_quota_is_ignored_under_unified_limits():
    conf = _conf(False)
    conf.set_override("user_storage_quota", "1G")
    assert quotas.storage_quota(conf) == 1024**3
    conf.set_override("use_keystone_limits", True)
    assert quotas.storage_quota(conf) == 0


def test_off_by_default_loads_no_oslo_limit():
    code = (
        "import sys, json\n"
        "from glance_service.api import app, images, image_data, imports, info\n"
        "from glance_service.images import unified_limits\n"
        "print(json.dumps(sorted(m for m in sys.modules if m.startswith(('oslo_limit', 'openstack')))))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert json.loads(out.stdout.splitlines()[-1]) == []
