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


@pytest.mark.parametrize(
    ("kind", "options", "expected"),
    [
        (
            "swift",
            {"swift_store_container": "glance", "swift_store_large_object_size": 5120},
            {"container": "glance", "large_object_size": 5120, "large_object_chunk_size": None},
        ),
        (
            "s3",
            {"s3_store_large_object_size": 100, "s3_store_thread_pools": 10},
            {
                "s3_store_large_object_size": 100,
                "s3_store_large_object_chunk_size": None,
                "s3_store_thread_pools": 10,
            },
        ),
        ("http", {}, {}),
    ],
)
def test_store_detail_properties_per_kind(kind, options, expected):
    # /v2/info/stores/detail shows these per store, under Glance's names for each kind.
    from types import SimpleNamespace

    assert Stores._properties(kind, SimpleNamespace(**options)) == expected
