"""roles/tempest: tempest.conf says what the inventory deploys, the exclusions follow the
deployment's shape, the served test image is a valid qcow2, and the counts are right."""

from __future__ import annotations

import configparser
import importlib.util
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parent.parent
ROLE = ROOT / "roles" / "tempest"
SECRET = "adm1n-s3cret"


def load_runner():
    spec = importlib.util.spec_from_file_location("tempest_run", ROLE / "files" / "tempest_run.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def render(tmp_path: Path, api_vars: dict, swift_hosts: bool = False, extra: dict | None = None):
    """Render tempest.conf and the exclusions with the role's defaults and vars for an
    inventory whose one glance_api host has ``api_vars``."""
    groups = {"glance_api": {"hosts": {"api1": {"ansible_host": "198.51.100.99", **api_vars}}}}
    if swift_hosts:
        groups["storage_swift"] = {"hosts": {"swift1": {"ansible_host": "198.51.100.98"}}}
    (tmp_path / "hosts.yml").write_text(yaml.safe_dump({"all": {"children": groups}}))
    play = [
        {
            "name": "Render",
            "hosts": "localhost",
            "connection": "local",
            "gather_facts": False,
            "vars_files": [str(ROLE / "defaults" / "main.yml"), str(ROLE / "vars" / "main.yml")],
            "vars": {
                "ansible_python_interpreter": sys.executable,
                "tempest_workspace": str(tmp_path / "ws"),
                "_tempest_http_image": "http://198.51.100.1/tempest-image.qcow2",
            },
            "tasks": [
                {
                    "name": "Write tempest.conf",
                    "ansible.builtin.template": {
                        "src": str(ROLE / "templates" / "tempest.conf.j2"),
                        "dest": str(tmp_path / "tempest.conf"),
                        "mode": "0600",
                    },
                },
                {
                    "name": "Write the exclusions",
                    "ansible.builtin.copy": {
                        "content": "{{ _tempest_exclude | to_json }}",
                        "dest": str(tmp_path / "exclude.json"),
                        "mode": "0600",
                    },
                },
            ],
        }
    ]
    (tmp_path / "play.yml").write_text(yaml.safe_dump(play, sort_keys=False))
    env = dict(os.environ, ANSIBLE_CONFIG=str(ROOT / "ansible.cfg"))
    bindir = Path(sys.executable).parent
    proc = subprocess.run(
        # Overrides as extra vars: play vars would lose to the role's defaults in vars_files.
        [
            str(bindir / "ansible-playbook"),
            "-i",
            str(tmp_path / "hosts.yml"),
            "-e",
            json.dumps(extra or {}),
            str(tmp_path / "play.yml"),
        ],
        capture_output=True,
        text=True,
        env=env,
        cwd=ROOT,
        check=False,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    # strict=False: an override section repeats one, later values win (as oslo.config reads it).
    conf = configparser.ConfigParser(interpolation=None, strict=False)
    conf.read(tmp_path / "tempest.conf")
    return conf, json.loads((tmp_path / "exclude.json").read_text()), tmp_path / "tempest.conf"


LAB_LIKE = {
    "glance_keystone_public_url": "http://198.51.100.99:5000",
    "glance_keystone_admin_password": SECRET,
    "glance_keystone_region": "RegionTwo",
    "glance_store_backend": "file",
}


def test_lab_like_deployment(tmp_path: Path) -> None:
    conf, exclude, path = render(tmp_path, LAB_LIKE)
    assert oct(path.stat().st_mode & 0o777) == "0o600"
    assert conf["identity"]["uri_v3"] == "http://198.51.100.99:5000/v3"
    assert conf["auth"]["admin_password"] == SECRET
    assert conf["image"]["region"] == conf["identity"]["region"] == "RegionTwo"
    assert conf["image"]["endpoint_type"] == "public"
    assert conf["image"]["http_qcow2_image"] == "http://198.51.100.1/tempest-image.qcow2"
    available = conf["service_available"]
    assert available["glance"] == "True"
    assert [s for s in ("nova", "cinder", "neutron", "swift", "horizon") if available[s] != "False"] == []
    features = conf["image-feature-enabled"]
    assert features["http_store_enabled"] == "True"
    assert features["manage_locations"] == "False"
    assert features["do_secure_hash"] == "True"
    assert features["store_weight_enabled"] == "False"
    # roles/glance turns each API node's image cache on by default
    assert conf["image"]["image_caching_enabled"] == "True"
    (tmp_path / "off").mkdir()
    off, _, _ = render(tmp_path / "off", {**LAB_LIKE, "glance_image_cache_dir": ""})
    assert off["image"]["image_caching_enabled"] == "False"
    # One writable store (next to the http store): nowhere to copy to, nothing to delete from.
    assert [e["regex"].rsplit("[.]", 1)[-1] for e in exclude] == [
        "test_image_copy_image_import",
        "test_delete_image_from_specific_store",
    ]


def test_features_follow_the_inventory(tmp_path: Path) -> None:
    api_vars = {
        **LAB_LIKE,
        "glance_stores": [{"name": "a", "type": "file", "weight": 100}, {"name": "b", "type": "rbd"}],
        "glance_show_multiple_locations": True,
        "glance_api_conf_overrides": {
            "DEFAULT": {
                "image_cache_dir": "/var/lib/glance/cache",
                "do_secure_hash": False,
                "hashing_algorithm": "sha256",
            },
            "image_format": {"require_image_format_match": False},
        },
    }
    extra = {
        "tempest_service_available": {"nova": True},
        "tempest_conf_overrides": {"image": {"build_timeout": 60}},
    }
    conf, exclude, _ = render(tmp_path, api_vars, swift_hosts=True, extra=extra)
    features = conf["image-feature-enabled"]
    assert features["manage_locations"] == "True"
    assert features["do_secure_hash"] == "False"
    assert features["image_format_enforcement"] == "False"
    assert features["store_weight_enabled"] == "True"
    assert conf["image"]["image_caching_enabled"] == "True"
    assert conf["image"]["hashing_algorithm"] == "sha256"
    assert conf["image"]["build_timeout"] == "60"
    assert conf["service_available"]["swift"] == "True"
    assert conf["service_available"]["nova"] == "True"
    assert exclude == []


def test_no_http_store_means_no_location_tests(tmp_path: Path) -> None:
    conf, exclude, _ = render(
        tmp_path, {**LAB_LIKE, "glance_http_store": False, "glance_show_multiple_locations": True}
    )
    assert conf["image-feature-enabled"]["http_store_enabled"] == "False"
    assert conf["image-feature-enabled"]["manage_locations"] == "False"
    assert [e["regex"].rsplit("[.]", 1)[-1] for e in exclude] == ["test_image_copy_image_import"]


def test_served_image_is_a_safe_qcow2() -> None:
    from glance_service.images.format_inspector import StreamInspector

    data = load_runner().qcow2_image()
    inspector = StreamInspector("qcow2")
    inspector.feed(data)
    verdict = inspector.finish()
    assert (verdict.detected, verdict.virtual_size, verdict.size) == ("qcow2", 1 << 20, len(data))
    # Declared raw, the same data is refused: the format check sees a qcow2.
    raw = StreamInspector("raw")
    with pytest.raises(Exception, match="qcow2"):
        raw.feed(data)
        raw.finish()


def test_summary_counts() -> None:
    class Reason:
        def as_text(self) -> str:
            return "no nova"

    tests = [
        {"id": "a", "status": "success", "details": {}},
        {"id": "b", "status": "xfail", "details": {}},
        {"id": "c", "status": "fail", "details": {}},
        {"id": "d", "status": "uxsuccess", "details": {}},
        {"id": "e", "status": "skip", "details": {"reason": Reason()}},
    ]
    summary = load_runner().summarise(tests)
    assert (summary["passed"], summary["failed"], summary["skipped"]) == (2, 2, 1)
    assert summary["failed_tests"] == ["c", "d"]
    assert summary["skipped_tests"] == [{"id": "e", "reason": "no nova"}]
