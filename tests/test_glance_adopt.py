"""roles/glance_adopt (playbooks/adopt.yml, handback.yml) run by ansible on localhost.

- ``--check``: the report of the real converter (our glance-manage from service/, behind a
  stand-in venv) on a SQLite database stamped with an upstream head; nothing written, our
  database not even created; a refused source fails the play with the reason.
- verify.yml, the sample comparison of the takeover, against a fake Keystone and two fake
  Image APIs: equal samples pass (tags compared as a set), a differing one fails naming it.

The converter's fidelity is tested in service/tests/adopt/ (real upstream Glance 33); the
whole takeover with endpoints and units is molecule's (molecule/adopt, not written yet)."""

from __future__ import annotations

import json
import os
import sqlite3
import subprocess
import sys
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parent.parent
BIN = Path(sys.executable).parent
TOKEN = "tok-adopt"


def _env(tmp: Path) -> dict:
    env = {
        **os.environ,
        "ANSIBLE_NOCOLOR": "1",
        "ANSIBLE_LOCAL_TEMP": str(tmp / "tmp"),
        "ANSIBLE_HOME": str(tmp),
        "ANSIBLE_ROLES_PATH": str(ROOT / "roles"),
    }
    env.pop("ANSIBLE_CONFIG", None)
    return env


def _play(tmp: Path, play: dict, *args: str) -> subprocess.CompletedProcess:
    (tmp / "inventory").write_text("[glance_registry]\nlocalhost ansible_connection=local\n")
    (tmp / "playbook.yml").write_text(yaml.safe_dump([play], sort_keys=False))
    return subprocess.run(
        [str(BIN / "ansible-playbook"), "-i", "inventory", "playbook.yml", *args],
        cwd=tmp, env=_env(tmp), capture_output=True, text=True, timeout=300, check=False,
    )  # fmt: skip


def _service_python() -> str:
    return sys.executable


@pytest.fixture
def deployment(tmp_path: Path) -> dict:
    """A stand-in for our deployed service: glance_venv/bin/glance-manage runs service/'s code
    on glance_etc_dir/glance-registry.conf (our database: a SQLite file not created yet)."""
    venv, etc = tmp_path / "venv", tmp_path / "etc"
    (venv / "bin").mkdir(parents=True)
    etc.mkdir()
    manage = venv / "bin" / "glance-manage"
    manage.write_text(
        f'#!/bin/sh\necho "$@" >> {tmp_path / "argv.log"}\nPYTHONPATH={ROOT / "service"} '
        f'exec {_service_python()} -m glance_service.cmd.manage "$@"\n'
    )
    manage.chmod(0o755)
    ours = tmp_path / "ours.sqlite"
    (etc / "glance-registry.conf").write_text(f"[database]\nconnection = sqlite:///{ours}\n")
    return {"glance_venv": str(venv), "glance_etc_dir": str(etc), "ours": ours}


def _upstream_like(path: Path, head: str) -> str:
    """Our schema (Glance's tables and columns) stamped with an upstream head, and two images.
    Good enough for the role's plumbing; the conversion itself is tested on upstream's own schema."""
    url = f"sqlite:///{path}"
    subprocess.run(
        [_service_python(), "-c", f"from glance_service.db import migrate; migrate.sync({url!r})"],
        env={**os.environ, "PYTHONPATH": str(ROOT / "service")}, check=True, timeout=120,
    )  # fmt: skip
    con = sqlite3.connect(path)
    con.execute("UPDATE alembic_version SET version_num = ?", (head,))
    for n, (status, vis) in enumerate((("active", "public"), ("deactivated", "shared"))):
        con.execute(
            "INSERT INTO images (id, name, status, visibility, protected, os_hidden, min_disk, min_ram, "
            "created_at, deleted) VALUES (?, ?, ?, ?, 0, 0, 0, 0, '2025-01-01 00:00:00', 0)",
            (f"00000000-0000-0000-0000-00000000000{n}", f"img{n}", status, vis),
        )
    con.commit()
    con.close()
    return url


def _adopt_play(deployment: dict, source: str) -> dict:
    return {
        "name": "Adopt",
        "hosts": "glance_registry",
        "gather_facts": False,
        "vars": {
            "ansible_python_interpreter": "{{ ansible_playbook_python }}",
            "glance_venv": deployment["glance_venv"],
            "glance_etc_dir": deployment["glance_etc_dir"],
            "glance_adopt_source_connection": source,
            "glance_adopt_old_public_url": "http://198.51.100.9:9292",
        },
        "roles": [{"role": "glance_adopt"}],
    }


def test_check_mode_reports_and_changes_nothing(deployment: dict, tmp_path: Path) -> None:
    source = _upstream_like(tmp_path / "upstream.sqlite", "2024_1_contract01")
    before = (tmp_path / "upstream.sqlite").read_bytes()
    result = _play(tmp_path, _adopt_play(deployment, source), "--check")
    out = result.stdout + result.stderr
    assert result.returncode == 0, out
    assert "revision 2024_1_contract01" in out
    assert "images by status: active=1, deactivated=1" in out
    assert "images: 2 would write" in out
    assert "changed=0" in out
    if deployment["ours"].exists():  # opened to read its revision, no schema written
        con = sqlite3.connect(deployment["ours"])
        assert con.execute("SELECT name FROM sqlite_master").fetchall() == []
        con.close()
    assert (tmp_path / "upstream.sqlite").read_bytes() == before
    assert "secret-password" not in out
    # our stores (roles/glance's defaults: one file store, the http one): a single-store
    # upstream's locations get their ids
    argv = (tmp_path / "argv.log").read_text()
    assert "--known-stores file,http --legacy-stores file=file,http=http" in argv


def test_check_mode_fails_on_an_unknown_release(deployment: dict, tmp_path: Path) -> None:
    source = _upstream_like(tmp_path / "upstream.sqlite", "zed_contract01")
    result = _play(tmp_path, _adopt_play(deployment, source), "--check")
    assert result.returncode != 0
    assert "'zed_contract01' is not a supported upstream Glance release" in result.stdout


# -- verify.yml: the sample through both APIs -------------------------------------------------
def _image(image_id: str, tags: list[str], status: str = "active") -> dict:
    return {"id": image_id, "name": image_id, "status": status, "visibility": "public", "owner": "p",
            "protected": False, "checksum": "c", "os_hash_algo": "sha512", "os_hash_value": "h",
            "size": 1, "virtual_size": 1, "min_disk": 0, "min_ram": 0, "disk_format": "raw",
            "container_format": "bare", "created_at": "2025-01-01T00:00:00Z", "tags": tags,
            "self": f"/v2/images/{image_id}"}  # fmt: skip


class FakeCloud(BaseHTTPRequestHandler):
    """Keystone (POST /v3/auth/tokens) and two Image APIs under /old and /new."""

    lists: dict[str, list] = {}
    port = 0

    def log_message(self, *args) -> None:
        pass

    def _answer(self, status: int, body: dict, headers: dict | None = None) -> None:
        data = json.dumps(body).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        for k, v in (headers or {}).items():
            self.send_header(k, v)
        self.end_headers()
        self.wfile.write(data)

    def do_POST(self) -> None:
        self.rfile.read(int(self.headers.get("Content-Length", 0)))
        endpoint = {
            "interface": "public",
            "region_id": "RegionOne",
            "url": f"http://127.0.0.1:{self.port}/new",
        }
        catalog = [{"type": "image", "endpoints": [endpoint]}]
        self._answer(201, {"token": {"catalog": catalog}}, {"X-Subject-Token": TOKEN})

    def do_GET(self) -> None:
        if self.headers.get("X-Auth-Token") != TOKEN:
            return self._answer(401, {})
        which = self.path.split("/")[1]
        return self._answer(200, {"images": self.lists[which]})


@pytest.fixture
def cloud() -> Iterator[type[FakeCloud]]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), FakeCloud)
    FakeCloud.port = server.server_address[1]
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield FakeCloud
    server.shutdown()
    server.server_close()


def _verify(cloud: type[FakeCloud], tmp_path: Path) -> subprocess.CompletedProcess:
    base = f"http://127.0.0.1:{cloud.port}"
    play = {
        "name": "Verify",
        "hosts": "glance_registry",
        "gather_facts": False,
        "vars": {
            "ansible_python_interpreter": "{{ ansible_playbook_python }}",
            "glance_keystone_public_url": base,
            "glance_keystone_admin_password": "secret-password",
            "glance_keystone_register_host": "localhost",
        },
        "tasks": [
            {
                "name": "Compare",
                "ansible.builtin.include_role": {"name": "glance_adopt", "tasks_from": "verify"},
                "vars": {"_glance_adopt_old_url": f"{base}/old", "_glance_adopt_new_url": f"{base}/new"},
            }
        ],
    }
    return _play(tmp_path, play)


def test_the_sample_compares_fields_and_tags_as_a_set(cloud: type[FakeCloud], tmp_path: Path) -> None:
    cloud.lists = {
        "old": [_image("a", ["x", "y"]), _image("b", [])],
        "new": [_image("a", ["y", "x"]), _image("b", [])],
    }
    result = _verify(cloud, tmp_path)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "2 image(s) equal through both APIs" in result.stdout

    cloud.lists["new"][1] = _image("b", [], status="queued")
    result = _verify(cloud, tmp_path)
    assert result.returncode != 0
    assert "The sample differs" in result.stdout and "'queued'" in result.stdout
