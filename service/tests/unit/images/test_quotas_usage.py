"""``image_storage_usage`` over a real (SQLite) database: what a project's images weigh."""

from __future__ import annotations

import pytest

from glance_service import exceptions
from glance_service.context import RequestContext
from glance_service.db import migrate
from glance_service.db.database_api import DatabaseAPI

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


def _stored(dbapi, ctx, size: int, copies: int = 1, **values) -> dict:
    image = dbapi.image_create(ctx, values)
    for n in range(copies):
        dbapi.image_location_add(ctx, image["id"], f"file:///images/{image['id']}.{n}")
    return dbapi.image_update(ctx, image["id"], {"size": size, "status": "active"})


def test_empty_project_uses_nothing(dbapi):
    assert dbapi.image_storage_usage(ALPHA, "alpha") == 0


def test_sums_the_projects_images_only(dbapi):
    _stored(dbapi, ALPHA, 100)
    _stored(dbapi, ALPHA, 50, visibility="private")
    _stored(dbapi, BETA, 7000)
    assert dbapi.image_storage_usage(ALPHA, "alpha") == 150
    assert dbapi.image_storage_usage(BETA, "beta") == 7000


def test_every_live_location_counts(dbapi):
    image = _stored(dbapi, ALPHA, 100, copies=2)
    assert dbapi.image_storage_usage(ALPHA, "alpha") == 200
    dbapi.image_location_delete(ALPHA, image["id"], image["locations"][0]["id"])
    assert dbapi.image_storage_usage(ALPHA, "alpha") == 100


def test_deleted_killed_and_dataless_images_weigh_nothing(dbapi):
    gone = _stored(dbapi, ALPHA, 100)
    dbapi.image_destroy(ALPHA, gone["id"])
    killed = _stored(dbapi, ALPHA, 100)
    dbapi.image_update(ALPHA, killed["id"], {"status": "killed"})
    dbapi.image_create(ALPHA, {})  # queued, no data
    assert dbapi.image_storage_usage(ALPHA, "alpha") == 0


def test_only_the_project_or_an_admin_may_ask(dbapi):
    _stored(dbapi, ALPHA, 100)
    assert dbapi.image_storage_usage(ADMIN, "alpha") == 100
    with pytest.raises(exceptions.Forbidden):
        dbapi.image_storage_usage(BETA, "alpha")
