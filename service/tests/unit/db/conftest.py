"""The DatabaseAPI over both backends: SQLite (embedded default) and a private MariaDB."""

from __future__ import annotations

import itertools

import pytest
import sqlalchemy as sa

from glance_service.context import RequestContext
from glance_service.db import migrate
from glance_service.db.database_api import DatabaseAPI
from glance_service.db.models import Base
from tests.fixtures.mariadb import mariadb  # noqa: F401  (session fixture used below)

_names = itertools.count()


@pytest.fixture(scope="session", params=["sqlite", "mariadb"])
def backend(request) -> str:
    return request.param


@pytest.fixture
def fresh_url(backend, request, tmp_path) -> str:
    """An empty database (no schema) of the current backend."""
    if backend == "sqlite":
        return f"sqlite:///{tmp_path}/glance.sqlite"
    server = request.getfixturevalue("mariadb")
    return server.create_database(f"glance_fresh_{next(_names)}", "glance", "glance-pw")


@pytest.fixture(scope="session")
def synced_url(backend, request, tmp_path_factory) -> str:
    """One migrated database per backend for the whole session; tests empty it first."""
    if backend == "sqlite":
        url = f"sqlite:///{tmp_path_factory.mktemp('sqlite')}/glance.sqlite"
    else:
        url = request.getfixturevalue("mariadb").create_database("glance_unit", "glance", "glance-pw")
    migrate.sync(url)
    return url


@pytest.fixture(scope="session")
def _session_api(synced_url):
    api = DatabaseAPI(url=synced_url)
    yield api
    api.db.dispose()


@pytest.fixture
def dbapi(_session_api) -> DatabaseAPI:
    with _session_api.db.writer() as s:
        for table in reversed(Base.metadata.sorted_tables):
            s.execute(sa.delete(table))
    return _session_api


@pytest.fixture
def admin() -> RequestContext:
    return RequestContext(user_id="u-admin", project_id="admins", roles=["admin"], is_admin=True)


@pytest.fixture
def alice() -> RequestContext:
    return RequestContext(user_id="u-alice", project_id="alpha", roles=["member"])


@pytest.fixture
def bob() -> RequestContext:
    return RequestContext(user_id="u-bob", project_id="beta", roles=["member"])


@pytest.fixture
def carol() -> RequestContext:
    return RequestContext(user_id="u-carol", project_id="gamma", roles=["member"])
