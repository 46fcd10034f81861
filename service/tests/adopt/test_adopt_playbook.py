"""roles/glance_adopt's takeover run by ansible against real services (issue 19): a Keystone,
upstream Glance 33 (uwsgi, Keystone auth) named by the catalog, our glance-registry +
glance-api beside it. The old API's hosts are left out of the inventory (no systemd here): its
stop and start are molecule's part.

1. a run whose catch-up conversion fails: the role rolls back, the catalog names the old API
   again, the play fails saying so;
2. a run that succeeds: records equal, the catalog names ours, ours answers;
3. a third run: changed=0;
4. handback into a fresh upstream schema served by a second upstream glance-api: the catalog
   names it, it lists the images; a second handback run: changed=0.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import requests
import yaml

from tests.fixtures.glance_procs import start_glance
from tests.fixtures.keystone import REGION, start_keystone
from tests.fixtures.upstream_adopt import UpstreamGlance, make_schema

ROOT = Path(__file__).resolve().parents[3]
BIN = Path(sys.executable).parent


@pytest.fixture
def keystone(tmp_path):
    ks = start_keystone(tmp_path / "keystone", workers=1)
    yield ks
    ks.stop()


def _authtoken(ks) -> dict:
    return {
        "keystone_authtoken": {
            "www_authenticate_uri": ks.url,
            "auth_url": ks.url,
            "auth_type": "password",
            "project_name": "service",
            "username": "glance",
            "password": ks.glance_password,
            "user_domain_name": "Default",
            "project_domain_name": "Default",
        }
    }


def _catalog_url(ks) -> str:
    token = requests.post(
        f"{ks.auth_url}/auth/tokens",
        json={
            "auth": {
                "identity": {"methods": ["password"], "password": {"user": {
                    "name": "admin", "domain": {"name": "Default"}, "password": ks.users["admin"].password}}},
                "scope": {"project": {"name": "admin", "domain": {"name": "Default"}}},
            }
        },
        timeout=30,
    ).json()["token"]  # fmt: skip
    image = [s for s in token["catalog"] if s["type"] == "image"][0]
    return [e["url"] for e in image["endpoints"] if e["interface"] == "public"][0]


def _manage_wrapper(tmp_path: Path, fail_catch_up: bool) -> Path:
    """glance_venv/bin/glance-manage: our code; optionally failing the second conversion run
    (the catch-up after the old API's stop)."""
    venv = tmp_path / ("venv-failing" if fail_catch_up else "venv")
    (venv / "bin").mkdir(parents=True, exist_ok=True)
    counter = venv / "runs"
    fail = (
        f'case "$*" in *--json*) case "$*" in *--check*) ;; *) echo x >> {counter}; '
        f'[ "$(wc -l < {counter})" -ge 2 ] && {{ echo "injected failure" >&2; exit 1; }} ;; esac ;; esac\n'
        if fail_catch_up
        else ""
    )
    script = venv / "bin" / "glance-manage"
    script.write_text(
        f"#!/bin/sh\n{fail}PYTHONPATH={ROOT / 'service'} "
        f'exec {sys.executable} -m glance_service.cmd.manage "$@"\n'
    )
    script.chmod(0o755)
    return venv


def _run_role(tmp_path: Path, variables: dict, entry: str = "main") -> subprocess.CompletedProcess:
    (tmp_path / "inventory").write_text("[glance_registry]\nlocalhost ansible_connection=local\n")
    include = {"name": "glance_adopt"} if entry == "main" else {"name": "glance_adopt", "tasks_from": entry}
    play = {
        "name": "Adopt",
        "hosts": "glance_registry",
        "gather_facts": False,
        "vars": {"ansible_python_interpreter": "{{ ansible_playbook_python }}", **variables},
        "tasks": [{"name": "Enter the role", "ansible.builtin.include_role": include}],
    }
    (tmp_path / "adopt.yml").write_text(yaml.safe_dump([play], sort_keys=False))
    env = {
        **os.environ,
        "ANSIBLE_NOCOLOR": "1",
        "ANSIBLE_ROLES_PATH": str(ROOT / "roles"),
        "ANSIBLE_LOCAL_TEMP": str(tmp_path / "ansible-tmp"),
        "ANSIBLE_HOME": str(tmp_path / "ansible-home"),
    }
    env.pop("ANSIBLE_CONFIG", None)
    return subprocess.run(
        [str(BIN / "ansible-playbook"), "-i", "inventory", "adopt.yml",
         "-e", json.dumps({"_glance_adopt_fact": str(tmp_path / "facts" / "glance_adopt.fact")})],
        cwd=tmp_path, env=env, capture_output=True, text=True, timeout=900, check=False,
    )  # fmt: skip


def test_takeover_rolls_back_on_a_failure_then_succeeds_once(keystone, tmp_path):
    ks = keystone
    src = f"sqlite:///{tmp_path}/upstream.sqlite"
    make_schema(src, tmp_path / "upstream")
    old = UpstreamGlance(
        tmp_path / "upstream",
        src,
        tmp_path / "store",
        {"delayed_delete": True},
        _authtoken(ks),
        flavor="keystone",
    )
    old.start()
    ours = None
    try:
        ks.register_image_endpoints(old.url)
        token = ks.token("admin")
        for n in range(3):
            image = requests.post(
                f"{old.url}/v2/images",
                headers={"X-Auth-Token": token},
                json={"name": f"img{n}", "disk_format": "raw", "container_format": "bare", "tags": ["t"]},
                timeout=30,
            ).json()
            requests.put(
                f"{old.url}/v2/images/{image['id']}/file",
                headers={"X-Auth-Token": token, "Content-Type": "application/octet-stream"},
                data=os.urandom(1024),
                timeout=30,
            ).raise_for_status()
        ours_db = f"sqlite:///{tmp_path}/ours.sqlite"
        ours = start_glance(
            tmp_path / "ours",
            flavor="keystone",
            keystone={"public_url": ks.url, "internal_url": ks.url, "password": ks.glance_password},
            database_url=ours_db,
            extra_vars={"glance_filesystem_store_datadir": str(tmp_path / "store")},
            workers=1,
        )
        variables = {
            "glance_etc_dir": str(ours.registry_conf.parent),
            "glance_adopt_source_connection": src,
            "glance_adopt_old_public_url": old.url,
            "glance_public_url": ours.api_url,
            "glance_keystone_public_url": ks.url,
            "glance_keystone_admin_user": "admin",
            "glance_keystone_admin_project": "admin",
            "glance_keystone_admin_password": ks.users["admin"].password,
            "glance_keystone_password": ks.glance_password,
            "glance_keystone_region": REGION,
            "glance_keystone_register_host": "localhost",
        }

        failing = _run_role(
            tmp_path, {**variables, "glance_venv": str(_manage_wrapper(tmp_path, fail_catch_up=True))}
        )
        assert failing.returncode != 0, failing.stdout
        assert "The takeover was rolled back" in failing.stdout, failing.stdout[-3000:]
        assert _catalog_url(ks) == old.url
        assert requests.get(f"{old.url}/v2/images", headers={"X-Auth-Token": token}, timeout=30).ok

        venv = str(_manage_wrapper(tmp_path, fail_catch_up=False))
        done = _run_role(tmp_path, {**variables, "glance_venv": venv})
        assert done.returncode == 0, done.stdout[-5000:] + done.stderr[-2000:]
        assert _catalog_url(ks) == ours.api_url
        listed = requests.get(
            f"{ours.api_url}/v2/images", headers={"X-Auth-Token": ks.token("admin", fresh=True)}, timeout=30
        ).json()["images"]
        assert sorted(i["name"] for i in listed) == ["img0", "img1", "img2"]
        assert json.loads((tmp_path / "facts" / "glance_adopt.fact").read_text())["state"] == "adopted"

        again = _run_role(tmp_path, {**variables, "glance_venv": venv})
        assert again.returncode == 0, again.stdout[-3000:]
        assert "changed=0" in again.stdout and "Adopted already" in again.stdout

        # handback into a fresh upstream schema, its glance-api already up (the role would
        # start its unit: no systemd here), the catalog back to it, a second run unchanged
        back_db = f"sqlite:///{tmp_path}/back.sqlite"
        make_schema(back_db, tmp_path / "back")
        back = UpstreamGlance(
            tmp_path / "back",
            back_db,
            tmp_path / "store",
            {"delayed_delete": True},
            _authtoken(ks),
            flavor="keystone",
        )
        back.start()
        try:
            handback = {**variables, "glance_venv": venv, "glance_adopt_handback_connection": back_db}
            handback["glance_adopt_old_public_url"] = back.url
            returned = _run_role(tmp_path, handback, "handback")
            assert returned.returncode == 0, returned.stdout[-5000:] + returned.stderr[-2000:]
            assert _catalog_url(ks) == back.url
            listed = requests.get(
                f"{back.url}/v2/images", headers={"X-Auth-Token": ks.token("admin", fresh=True)}, timeout=30
            ).json()["images"]
            assert sorted(i["name"] for i in listed) == ["img0", "img1", "img2"]
            assert (
                json.loads((tmp_path / "facts" / "glance_adopt.fact").read_text())["state"] == "handed_back"
            )
            twice = _run_role(tmp_path, handback, "handback")
            assert twice.returncode == 0 and "changed=0" in twice.stdout, twice.stdout[-3000:]
        finally:
            back.stop()
    finally:
        if ours is not None:
            ours.stop()
        old.stop()
