"""Unified limits in the toolkit: glance-api.conf.j2's use_keystone_limits and [oslo_limit]
(upstream's install guide: the glance user, system-scoped; the image endpoint by type and
region, or by id), and roles/glance's glance_registered_limits module (what it plans, what it
refuses, that the admin password never shows). The module against a real Keystone, through the
role: service/tests/features/test_unified_limits.py."""

from __future__ import annotations

import importlib.util
import json
import os
import socket
import subprocess
import sys
from pathlib import Path

import yaml
from test_templates import ROOT, parse, render

BIN = Path(sys.executable).parent
MODULE = ROOT / "roles/glance/library/glance_registered_limits.py"


def _defaults() -> dict:
    return yaml.safe_load((ROOT / "roles/glance/defaults/main.yml").read_text())


def _own(conf, section: str) -> dict[str, str]:
    return {k: v for k, v in conf.items(section) if k not in conf.defaults()}


def test_off_by_default_no_oslo_limit_section() -> None:
    assert _defaults()["glance_use_keystone_limits"] is False
    conf = parse(render("glance-api.conf.j2"))
    assert conf["DEFAULT"]["use_keystone_limits"] == "False"
    assert not conf.has_section("oslo_limit")


def test_on_renders_oslo_limit_as_upstreams_guide() -> None:
    conf = parse(
        render("glance-api.conf.j2", glance_use_keystone_limits=True, glance_keystone_region="North")
    )
    assert conf["DEFAULT"]["use_keystone_limits"] == "True"
    assert _own(conf, "oslo_limit") == {
        "auth_url": "http://198.51.100.10:5000",
        "auth_type": "password",
        "user_domain_name": "Default",
        "username": "glance",
        "password": "kspass",
        "system_scope": "all",
        "region_name": "North",
        "endpoint_service_type": "image",
        "endpoint_region_name": "North",
        "endpoint_interface": "public",
    }


def test_an_endpoint_id_replaces_the_lookup_and_the_preview_masks_the_password() -> None:
    conf = parse(
        render(
            "glance-api.conf.j2",
            glance_use_keystone_limits=True,
            glance_keystone_limits_endpoint_id="e1",
            glance_config_redact=True,
        )
    )
    section = _own(conf, "oslo_limit")
    assert section["endpoint_id"] == "e1"
    assert "endpoint_service_type" not in section and "endpoint_region_name" not in section
    assert section["password"] == "<redacted>"


def test_the_registered_limit_defaults_are_upstreams_guide() -> None:
    assert _defaults()["glance_keystone_registered_limits"] == {
        "image_size_total": 1000,
        "image_stage_total": 1000,
        "image_count_total": 100,
        "image_count_uploading": 100,
    }


def _module():
    spec = importlib.util.spec_from_file_location("glance_registered_limits", MODULE)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_plan_creates_the_missing_and_corrects_the_different() -> None:
    plan = _module().plan
    existing = {"image_size_total": 1000, "image_count_total": 50, "other": 1}
    wanted = {"image_size_total": 1000, "image_count_total": 100, "image_stage_total": 10}
    assert plan(existing, wanted) == (["image_stage_total"], {"image_count_total": [50, 100]})
    assert plan(wanted, wanted) == ([], {})


def _run_module(tmp_path: Path, args: dict) -> dict:
    env = {
        **os.environ,
        "ANSIBLE_NOCOLOR": "1",
        "ANSIBLE_HOME": str(tmp_path),
        "ANSIBLE_LOCAL_TEMP": str(tmp_path / "tmp"),
        "ANSIBLE_LIBRARY": str(MODULE.parent),
        "ANSIBLE_LOAD_CALLBACK_PLUGINS": "1",
        "ANSIBLE_STDOUT_CALLBACK": "json",
    }
    env.pop("ANSIBLE_CONFIG", None)
    cmd = [str(BIN / "ansible"), "localhost", "-i", "localhost,", "-c", "local", "-m", MODULE.stem]
    cmd += ["-a", json.dumps(args), "-e", f"ansible_python_interpreter={sys.executable}"]
    result = subprocess.run(
        cmd, cwd=tmp_path, env=env, capture_output=True, text=True, timeout=120, check=False
    )
    out = json.loads(result.stdout)["plays"][0]["tasks"][0]["hosts"]["localhost"]
    out["_stdout"] = result.stdout
    return out


def _closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


AUTH = {
    "auth_url": "",
    "username": "admin",
    "password": "s3cret-admin-pw",
    "project_name": "admin",
    "user_domain_name": "Default",
    "project_domain_name": "Default",
}


def test_a_negative_limit_is_refused(tmp_path: Path) -> None:
    auth = {**AUTH, "auth_url": f"http://127.0.0.1:{_closed_port()}/v3"}
    out = _run_module(tmp_path, {"auth": auth, "limits": {"image_count_total": -1}})
    assert out["failed"] and "cannot be negative" in out["msg"]


def test_keystone_unreachable_fails_without_showing_the_password(tmp_path: Path) -> None:
    auth = {**AUTH, "auth_url": f"http://127.0.0.1:{_closed_port()}/v3"}
    out = _run_module(tmp_path, {"auth": auth, "region_name": "RegionOne", "limits": {"image_size_total": 1}})
    assert out["failed"] and out["msg"].startswith("Keystone: "), out
    assert "s3cret-admin-pw" not in out["_stdout"]


def test_argument_specs_describe_the_variables() -> None:
    spec = yaml.safe_load((ROOT / "roles/glance/meta/argument_specs.yml").read_text())
    options = spec["argument_specs"]["main"]["options"]
    for name in (
        "glance_use_keystone_limits",
        "glance_keystone_registered_limits",
        "glance_keystone_limits_region",
        "glance_keystone_limits_endpoint_interface",
        "glance_keystone_limits_endpoint_id",
    ):
        assert options[name]["description"], name
