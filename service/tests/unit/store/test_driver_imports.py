"""A process imports the glance_store drivers of the stores it is configured with, no others.

glance_store registers its options by importing every driver, and with each its client library:
boto3, botocore and s3transfer alone held 16.5 MiB in every API worker of a site without an S3
store (bench/RESULTS.md, session 3). The options of a store configured are registered (and read)
as before, in both configuration forms."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
from oslo_config import cfg

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "fixtures"))

import glance_procs  # noqa: E402

from glance_service.store import Stores, register_opts  # noqa: E402

# Client libraries of the drivers a file store does not need, and those drivers.
NOT_FOR_A_FILE_STORE = (
    "boto3",
    "botocore",
    "s3transfer",
    "swiftclient",
    "rados",
    "rbd",
    "os_brick",
    "oslo_vmware",
    "glance_store._drivers.s3",
    "glance_store._drivers.swift",
    "glance_store._drivers.rbd",
    "glance_store._drivers.cinder",
    "glance_store._drivers.vmware_datastore",
)

# Builds glance-api's application as a gunicorn worker does (cmd/api.py, then app_factory);
# prints the modules imported and the store options given as arguments, read back.
BUILD_APP = """
import json, sys
from glance_service.api import app, options, wiring
from glance_service.common import config
conf = config.CONF
wiring.register_opts(conf)
options.register_opts(conf)
config.load("glance-api", ["--config-file", sys.argv[1]], 9292, conf)
app.app_factory(conf)
read = {name: getattr(getattr(conf, name.split(".")[0]), name.split(".")[1]) for name in sys.argv[2:]}
print(json.dumps({"modules": sorted(sys.modules), "read": read}))
"""


def _api_conf(tmp_path: Path, **variables) -> Path:
    (tmp_path / "log").mkdir()
    values = {
        "glance_api_bind_host": "127.0.0.1",
        "glance_api_port": glance_procs.free_port(),
        "glance_api_workers": 1,
        "glance_registry_host": "127.0.0.1",
        "glance_registry_port": glance_procs.free_port(),
        "glance_data_api": "registry",
        "glance_auth_flavor": "",
        "glance_filesystem_store_datadir": str(tmp_path / "images"),
        "glance_staging_store_datadir": str(tmp_path / "staging"),
        "glance_tasks_store_datadir": str(tmp_path / "tasks"),
        "glance_log_dir": str(tmp_path / "log"),
        "glance_healthcheck_disable_file": str(tmp_path / "disabled"),
        "glance_debug": False,
        "glance_api_conf_overrides": {"DEFAULT": {"node_staging_uri": f"file://{tmp_path}/staging"}},
        **variables,
    }
    path = tmp_path / "glance-api.conf"
    path.write_text(glance_procs.render("glance-api.conf.j2", values))
    return path


def _build_app(conf_file: Path, *read: str) -> tuple[set[str], dict]:
    done = subprocess.run(
        [sys.executable, "-c", BUILD_APP, str(conf_file), *read], capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 0, done.stderr[-3000:]
    out = json.loads(done.stdout.splitlines()[-1])
    return set(out["modules"]), out["read"]


@pytest.mark.parametrize(
    "variables",
    [
        pytest.param({}, id="single-store"),
        pytest.param({"glance_store_backend": "file"}, id="multi-store"),
    ],
)
def test_a_file_store_imports_no_other_driver(tmp_path, variables):
    modules, _ = _build_app(_api_conf(tmp_path, **variables))
    assert "glance_service.store" in modules  # the stores were built
    assert sorted(modules & set(NOT_FOR_A_FILE_STORE)) == []


S3 = {
    "s3_store_host": "http://127.0.0.1:9",
    "s3_store_access_key": "a",
    "s3_store_secret_key": "b",
    "s3_store_bucket": "bk",
}


def test_a_configured_s3_single_store_has_its_options(tmp_path):
    ini = tmp_path / "s3.conf"
    s3 = "".join(f"{option} = {value}\n" for option, value in S3.items())
    ini.write_text(
        f"[DEFAULT]\nnode_staging_uri = file://{tmp_path}/staging\n"
        f"[glance_store]\nstores = file, s3\ndefault_store = s3\n{s3}"
    )
    conf = cfg.ConfigOpts()
    register_opts(conf)
    conf(["--config-file", str(ini)], default_config_files=[])
    stores = Stores(conf)
    assert conf.glance_store.s3_store_bucket == "bk"
    assert stores.drivers.store("s3").bucket == "bk"
    assert stores.default_store == "s3"


def test_a_configured_s3_multi_store_has_its_options(tmp_path):
    stores = [{"name": "fast", "type": "file"}, {"name": "cheap", "type": "s3", **S3}]
    conf_file = _api_conf(tmp_path, glance_stores=stores, glance_http_store=False)
    modules, read = _build_app(
        conf_file,
        "cheap.s3_store_bucket",
        "os_glance_staging_store.filesystem_store_datadir",
        "os_glance_tasks_store.filesystem_store_datadir",
    )
    assert "glance_store._drivers.s3" in modules
    assert "swiftclient" not in modules
    assert read == {
        "cheap.s3_store_bucket": "bk",
        "os_glance_staging_store.filesystem_store_datadir": f"{tmp_path}/staging",
        "os_glance_tasks_store.filesystem_store_datadir": f"{tmp_path}/tasks",
    }
