"""The import plugins' options in glance-api.conf.j2 (issue 18): upstream's sections from the
glance_image_import_plugins / glance_image_conversion_* / glance_inject_metadata_* variables,
image_conversion on by default when the default store is rbd (and only then), the role's
_glance_image_import_plugins (vars/main.yml, which decides whether qemu-utils is installed)
agreeing with the template, and the rendered file read by the service's own options."""

from __future__ import annotations

import json
import os
import subprocess

import pytest
import yaml
from test_template_stores import ROLE_DEFAULTS, THREE, api, evaluate, role_vars
from test_templates import ROOT, render

ROLE = yaml.safe_load((ROOT / "roles/glance/defaults/main.yml").read_text())
PLUGIN_DEFAULTS = {
    name: ROLE[name]
    for name in (
        "glance_image_import_plugins",
        "glance_image_conversion_on_rbd",
        "glance_image_conversion_output_format",
        "glance_inject_metadata_properties",
        "glance_inject_metadata_ignore_user_roles",
    )
}
RBD = {"glance_stores": [], "glance_store_backend": "rbd", "glance_default_backend": ""}
FILE = {"glance_stores": [], "glance_store_backend": "file", "glance_default_backend": ""}
THREE_ON_RBD = {"glance_stores": THREE, "glance_store_backend": "file", "glance_default_backend": ""}
THREE_ON_FILE = {"glance_stores": THREE, "glance_store_backend": "file", "glance_default_backend": "local"}


def plugins_of(conf) -> str:
    return conf["image_import_opts"]["image_import_plugins"]


CASES = [
    (RBD, {}, "[image_conversion]"),
    (FILE, {}, "[]"),
    (THREE_ON_RBD, {}, "[image_conversion]"),  # "fast" (rbd) is the default store
    (THREE_ON_FILE, {}, "[]"),
    (RBD, {"glance_image_conversion_on_rbd": False}, "[]"),
    (
        FILE,
        {"glance_image_import_plugins": ["image_decompression", "image_conversion"]},
        "[image_decompression, image_conversion]",
    ),
    (RBD, {"glance_image_import_plugins": ["inject_image_metadata"]}, "[inject_image_metadata]"),
]


@pytest.mark.parametrize(("stores", "extra", "expected"), CASES)
def test_conversion_on_by_default_with_rbd_only(stores, extra, expected) -> None:
    conf = api(**{**PLUGIN_DEFAULTS, **stores, **extra})
    assert plugins_of(conf) == expected
    assert conf["image_conversion"]["output_format"] == "raw"


@pytest.mark.parametrize(("stores", "extra", "expected"), CASES)
def test_role_decides_as_the_template(stores, extra, expected) -> None:
    """vars/main.yml's list (qemu-utils is installed when it holds image_conversion)."""
    rv = role_vars()
    variables = {**PLUGIN_DEFAULTS, **stores, **extra}
    variables["_glance_stores_effective"] = evaluate(rv["_glance_stores_effective"], variables)
    variables["_glance_default_backend"] = evaluate(rv["_glance_default_backend"], variables)
    variables["_glance_default_store_kind"] = evaluate(rv["_glance_default_store_kind"], variables)
    chosen = evaluate(rv["_glance_image_import_plugins"], variables)
    assert chosen == ([] if expected == "[]" else expected.strip("[]").split(", "))


def test_qemu_utils_installed_when_conversion_runs() -> None:
    tasks = yaml.safe_load((ROOT / "roles/glance/tasks/install.yml").read_text())
    task = next(t for t in tasks if (t.get("ansible.builtin.apt") or {}).get("name") == "qemu-utils")
    assert "'image_conversion' in _glance_image_import_plugins" in task["when"]


def test_conversion_and_injection_options_from_variables() -> None:
    conf = api(
        **{
            **PLUGIN_DEFAULTS,
            **FILE,
            "glance_image_import_plugins": ["image_conversion", "inject_image_metadata"],
            "glance_image_conversion_output_format": "qcow2",
            "glance_inject_metadata_properties": {"cloud_region": "east", "billing_tier": "gold"},
            "glance_inject_metadata_ignore_user_roles": ["admin", "service"],
        }
    )
    assert plugins_of(conf) == "[image_conversion, inject_image_metadata]"
    assert conf["image_conversion"]["output_format"] == "qcow2"
    assert conf["inject_metadata_properties"]["inject"] == "cloud_region:east,billing_tier:gold"
    assert conf["inject_metadata_properties"]["ignore_user_roles"] == "admin,service"


def test_role_defaults_are_upstreams() -> None:
    conf = api(**PLUGIN_DEFAULTS, **FILE)
    assert conf["inject_metadata_properties"]["ignore_user_roles"] == "admin"
    assert conf["inject_metadata_properties"]["inject"] == ""


# The service reads the rendered sections with its own option declarations (upstream's).
SERVICE_LOAD = """
import json, sys
from oslo_config import cfg
from glance_service.images import import_plugins
conf = cfg.ConfigOpts()
import_plugins.register_opts(conf)
conf(["--config-file", sys.argv[1]], default_config_files=[])
print(json.dumps({
    "plugins": conf.image_import_opts.image_import_plugins,
    "output_format": conf.image_conversion.output_format,
    "inject": conf.inject_metadata_properties.inject,
    "ignore": conf.inject_metadata_properties.ignore_user_roles,
}))
"""


@pytest.mark.parametrize(("stores", "plugins"), [(RBD, ["image_conversion"]), (FILE, [])])
def test_rendered_file_loads_in_the_service_options(tmp_path, stores, plugins) -> None:
    python = ROOT / ".venv/bin/python"
    if not python.exists():
        missing = f"no {python} with the service installed (to get it: make venv)"
        if os.environ.get("CI", "").lower() not in ("", "0", "false", "no", "off"):
            pytest.fail(missing)
        pytest.skip(missing)
    variables = {
        **ROLE_DEFAULTS,
        **PLUGIN_DEFAULTS,
        **stores,
        "glance_inject_metadata_properties": {"cloud_region": "east"},
    }
    (tmp_path / "glance-api.conf").write_text(render("glance-api.conf.j2", **variables))
    env = {**os.environ, "PYTHONPATH": str(ROOT / "service")}
    done = subprocess.run(
        [str(python), "-c", SERVICE_LOAD, str(tmp_path / "glance-api.conf")],
        capture_output=True,
        text=True,
        timeout=120,
        cwd=tmp_path,
        env=env,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    loaded = json.loads(done.stdout.strip().splitlines()[-1])
    assert loaded == {
        "plugins": plugins,
        "output_format": "raw",
        "inject": {"cloud_region": "east"},
        "ignore": ["admin"],
    }
