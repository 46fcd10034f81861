"""glance-api in direct mode (``[DEFAULT] data_api = database``): a database that does not
answer is a 503 (try again), as through the registry, never a 500 with a traceback."""

from __future__ import annotations

import pytest
import sqlalchemy as sa
from oslo_config import cfg

from glance_service import exceptions
from glance_service.api import wiring
from glance_service.context import RequestContext
from glance_service.db import session as db_session
from glance_service.db.unavailable import Answering503


def _direct_mode(url: str) -> cfg.ConfigOpts:
    conf = cfg.ConfigOpts()
    wiring.register_opts(conf)
    db_session.register_opts(conf)
    conf([], default_config_files=[])
    conf.set_override("data_api", "database")
    conf.set_override("connection", url, group="database")
    return conf


def test_an_unreachable_database_in_direct_mode_is_service_unavailable(tmp_path):
    # A directory where the SQLite file should be: every connection fails (OperationalError).
    (tmp_path / "glance.sqlite").mkdir()
    data = wiring.build_data_api(_direct_mode(f"sqlite:///{tmp_path}/glance.sqlite"))
    with pytest.raises(exceptions.ServiceUnavailable) as raised:
        data.image_get(RequestContext.admin(), "0f4c2e2a-3c4d-4a6e-9d1e-2f3a4b5c6d7e")
    assert raised.value.code == 503
    assert "database" in raised.value.message


@pytest.mark.parametrize(
    "exc",
    [
        sa.exc.OperationalError("SELECT 1", {}, Exception(2003, "Can't connect to MySQL server")),
        sa.exc.InterfaceError("SELECT 1", {}, Exception("connection already closed")),
        sa.exc.TimeoutError("QueuePool limit reached"),
    ],
)
def test_database_errors_become_503_other_errors_pass(exc):
    class Inner:
        calls = 0

        def image_get(self, ctx, image_id):
            Inner.calls += 1
            raise exc

        def image_update(self, ctx, image_id, values):
            raise KeyError(image_id)

    data = Answering503(Inner())
    with pytest.raises(exceptions.ServiceUnavailable):
        data.image_get(None, "x")
    with pytest.raises(KeyError):  # not the database's failure: stays what it was (a 500)
        data.image_update(None, "x", {})
    assert Inner.calls == 1
