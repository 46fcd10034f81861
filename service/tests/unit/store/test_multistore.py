"""The Stores facade in multi-store mode: configuration checks.

glance_store's multi-store drivers register their options on the global ``cfg.CONF`` whatever
configuration they are given (as in Glance), so the data path of a multi-store facade is
tested against real processes (``tests/functional/api/test_http_multistore.py``)."""

from __future__ import annotations

import pytest
from oslo_config import cfg

from glance_service import exceptions
from glance_service.store import Stores, register_opts


def test_default_backend_must_be_enabled(tmp_path):
    ini = tmp_path / "bad.conf"
    ini.write_text(
        f"[DEFAULT]\nenabled_backends = a:file\n[glance_store]\ndefault_backend = b\n"
        f"[a]\nfilesystem_store_datadir = {tmp_path}/a\n"
    )
    conf = cfg.ConfigOpts()
    register_opts(conf)
    conf(["--config-file", str(ini)])
    with pytest.raises(exceptions.GlanceServiceError, match="default_backend"):
        Stores(conf)


def test_unknown_store_kind_is_refused(tmp_path):
    # Accepted, it answered every listing with a 500 (no options for the kind); refused, a
    # reload keeps the workers it has (tests/functional/test_graceful_reload.py).
    ini = tmp_path / "bad.conf"
    ini.write_text(
        f"[DEFAULT]\nenabled_backends = a:file, b:nosuchkind\n[glance_store]\ndefault_backend = a\n"
        f"[a]\nfilesystem_store_datadir = {tmp_path}/a\n"
    )
    conf = cfg.ConfigOpts()
    register_opts(conf)
    conf(["--config-file", str(ini)])
    with pytest.raises(exceptions.GlanceServiceError, match="b:nosuchkind"):
        Stores(conf)
