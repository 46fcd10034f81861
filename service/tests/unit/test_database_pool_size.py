"""config.size_database_pool: the pool follows the thread count unless the operator set it."""

from __future__ import annotations

from oslo_config import cfg

from glance_service.common import config
from glance_service.db import session


def conf_with(tmp_path, text: str) -> cfg.ConfigOpts:
    path = tmp_path / "glance-registry.conf"
    path.write_text(text)
    conf = cfg.ConfigOpts()
    conf.register_opts(config.server_opts(9191))
    session.register_opts(conf)
    conf(["--config-file", str(path)])
    return conf


def test_default_pool_matches_the_threads(tmp_path):
    conf = conf_with(tmp_path, "[DEFAULT]\nthreads_per_worker = 24\n")
    config.size_database_pool(conf)
    assert conf.database.max_pool_size == 24


def test_an_explicit_pool_size_is_kept(tmp_path):
    conf = conf_with(tmp_path, "[DEFAULT]\nthreads_per_worker = 24\n[database]\nmax_pool_size = 7\n")
    config.size_database_pool(conf)
    assert conf.database.max_pool_size == 7


def test_never_below_the_old_default(tmp_path):
    conf = conf_with(tmp_path, "[DEFAULT]\nthreads_per_worker = 2\n")
    config.size_database_pool(conf)
    assert conf.database.max_pool_size == 5


def test_pool_values_reach_sqlalchemy_as_oslo_db_passes_them(tmp_path):
    # oslo.db's meanings (upstream Glance reads [database] through it): 0 pooled = no limit,
    # -1 overflow = no limit, -1 recycle = never; pool_timeout unset = SQLAlchemy's 30 s.
    conf = conf_with(
        tmp_path,
        "[database]\nconnection = mysql+pymysql://glance:pw@127.0.0.1/glance\n"
        "max_pool_size = 0\nmax_overflow = -1\nconnection_recycle_time = -1\n",
    )
    pool = session.Database(conf).engine.pool
    assert (pool.size(), pool._max_overflow, pool._recycle, pool._timeout) == (0, -1, -1, 30)
    conf = conf_with(
        tmp_path, "[database]\nconnection = mysql+pymysql://glance:pw@127.0.0.1/glance\npool_timeout = 5\n"
    )
    assert session.Database(conf).engine.pool._timeout == 5
