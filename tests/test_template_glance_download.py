"""glance-download's options in glance-api.conf: the role's variables, read by oslo.config with
the service's own declarations (as glance-api reads them)."""

from __future__ import annotations

from pathlib import Path

import yaml
from oslo_config import cfg

from tests.test_templates import render

ROOT = Path(__file__).resolve().parent.parent
DEFAULTS = yaml.safe_load((ROOT / "roles" / "glance" / "defaults" / "main.yml").read_text())


def _read(text: str, tmp_path: Path) -> cfg.ConfigOpts:
    from glance_service.api import options
    from glance_service.images import glance_download

    path = tmp_path / "glance-api.conf"
    path.write_text(text)
    conf = cfg.ConfigOpts()
    conf.register_opts([o for o in options.data_opts if o.name == "enabled_import_methods"])
    glance_download.register_opts(conf)
    conf(["--config-file", str(path)], project="glance-test")
    return conf


def test_role_defaults_are_upstreams(tmp_path) -> None:
    text = render(
        "glance-api.conf.j2",
        glance_enabled_import_methods=DEFAULTS["glance_enabled_import_methods"],
        glance_download_extra_properties=DEFAULTS["glance_download_extra_properties"],
    )
    conf = _read(text, tmp_path)
    assert conf.enabled_import_methods == ["glance-direct", "web-download", "copy-image"]
    assert conf.glance_download_properties.extra_properties == [
        "hw_",
        "trait:",
        "os_distro",
        "os_secure_boot",
        "os_type",
    ]


def test_glance_download_enabled_and_prefixes_chosen(tmp_path) -> None:
    text = render(
        "glance-api.conf.j2",
        glance_enabled_import_methods=["glance-direct", "glance-download"],
        glance_download_extra_properties=["hw_", "os_", "trait:"],
    )
    conf = _read(text, tmp_path)
    assert conf.enabled_import_methods == ["glance-direct", "glance-download"]
    assert conf.glance_download_properties.extra_properties == ["hw_", "os_", "trait:"]


def test_without_the_variables_nothing_is_written() -> None:
    # The service's tests render the template without role defaults.
    text = render("glance-api.conf.j2")
    assert "enabled_import_methods" not in text
    assert "glance_download_properties" not in text
