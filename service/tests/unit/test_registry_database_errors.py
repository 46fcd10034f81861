"""The registry's answer when the database itself fails: 503 (try again), never 500.

Seen in day2's credential rotation: between the new database password and the registry's
reload, a new connection is refused (MariaDB 1045) and a download answered 500."""

from __future__ import annotations

import pytest
import sqlalchemy as sa

from glance_service.registry.server import RegistryApp
from tests.fixtures.registry_rpc import rpc


class _Failing:
    def __init__(self, exc: Exception):
        self.exc = exc

    def image_get(self, ctx, image_id, include_deleted=False):
        raise self.exc


def _call(app: RegistryApp) -> tuple[str, dict]:
    return rpc(app, "image_get", {"image_id": "x"})


@pytest.mark.parametrize(
    "exc",
    [
        sa.exc.OperationalError("SELECT 1", {}, Exception(1045, "Access denied for user 'glance'")),
        sa.exc.OperationalError("SELECT 1", {}, Exception(2003, "Can't connect to MySQL server")),
        sa.exc.InterfaceError("SELECT 1", {}, Exception("connection already closed")),
        sa.exc.TimeoutError("QueuePool limit reached"),
    ],
)
def test_a_database_that_fails_is_503(exc):
    status, body = _call(RegistryApp(_Failing(exc)))
    assert status.startswith("503"), (status, body)
    assert body["error"]["type"] == "ServiceUnavailable"
    assert "database" in body["error"]["message"]


def test_other_errors_stay_500():
    status, body = _call(RegistryApp(_Failing(RuntimeError("bug"))))
    assert status.startswith("500")
