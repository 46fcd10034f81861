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
