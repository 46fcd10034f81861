"""The modules that talk to Keystone and the Image API from the deploy host (roles/glance_day2's
glance_image_audit, roles/glance_switch's glance_switch) log in through the module_utils file they
share, run by ansible itself (AnsiballZ packs the module_utils) against a small fake Keystone and
Image API on 127.0.0.1. The audit runs through the role's own audit.yml, as health.yml and
upgrade_check.yml run it; the switch's module by itself (its tasks need a deployment)."""

from __future__ import annotations

import hashlib
import json
import os
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
TOKEN = "tok-123"
DATA = {"a": b"first image", "b": b"second image"}


def _image(image_id: str, status: str, created: str, **extra) -> dict:
    return {"id": image_id, "name": f"image {image_id}", "status": status, "created_at": created, **extra}


IMAGES = [
    _image(
        "a",
        "active",
        "2020",
        size=11,
        stores="file",
        os_hash_algo="sha512",
        os_hash_value=hashlib.sha512(DATA["a"]).hexdigest(),
    ),
    _image("b", "active", "2021", size=12, stores="file", os_hash_algo="sha512", os_hash_value="0" * 128),
    _image("c", "queued", "2022", size=None, stores=""),
]


class FakeCloud(BaseHTTPRequestHandler):
    logins: list[dict] = []

    def log_message(self, *args) -> None:
        pass

    def _answer(self, status: int, body: bytes | dict, headers: dict | None = None) -> None:
        data = body if isinstance(body, bytes) else json.dumps(body).encode()
        self.send_response(status)
        for key, value in {**(headers or {}), "Content-Length": str(len(data))}.items():
            self.send_header(key, value)
        self.end_headers()
        self.wfile.write(data)

    def do_POST(self) -> None:
        body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
        FakeCloud.logins.append(body)
        user = body["auth"]["identity"]["password"]["user"]
        if self.path != "/v3/auth/tokens" or user["password"] != "secret":
            return self._answer(401, {"error": {"code": 401}})
        base = f"http://127.0.0.1:{self.server.server_port}"
        catalog = [
            {"type": "image", "endpoints": [{"interface": "public", "region_id": "RegionOne", "url": base}]}
        ]
        self._answer(201, {"token": {"catalog": catalog}}, {"X-Subject-Token": TOKEN})

    def do_GET(self) -> None:
        if self.headers.get("X-Auth-Token") != TOKEN:
            return self._answer(401, {})
        if self.path.startswith("/v2/images?"):
            # Two pages: the listing must follow `next`.
            if "marker=" in self.path:
                return self._answer(200, {"images": IMAGES[2:]})
            return self._answer(200, {"images": IMAGES[:2], "next": "/v2/images?limit=200&marker=b"})
        if self.path.endswith("/file"):
            return self._answer(200, DATA[self.path.split("/")[3]])
        self._answer(404, {})


@pytest.fixture(scope="module")
def cloud() -> Iterator[int]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), FakeCloud)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield server.server_port
    server.shutdown()
    server.server_close()


def _env(tmp: Path, **extra: str) -> dict:
    env = {
        **os.environ,
        "ANSIBLE_NOCOLOR": "1",
        "ANSIBLE_LOCAL_TEMP": str(tmp / "tmp"),
        "ANSIBLE_HOME": str(tmp),
    }
    env.pop("ANSIBLE_CONFIG", None)
    env.update(extra)
    return env


def test_audit_through_the_role(cloud: int, tmp_path: Path) -> None:
    tasks = []
    for password in ("secret", "wrong"):
        tasks += [
            {
                "name": f"Audit with the password {password}",
                "ansible.builtin.include_role": {"name": "glance_day2", "tasks_from": "audit"},
                "vars": {"_glance_day2_audit_sample": 2, "glance_keystone_admin_password": password},
            },
            {
                "name": "Keep the result",
                "ansible.builtin.copy": {
                    "content": "{{ _glance_day2_audit | to_json }}",
                    "dest": str(tmp_path / f"audit-{password}.json"),
                    "mode": "0600",
                },
            },
        ]
    play = {
        "name": "Audit the fake cloud",
        "hosts": "localhost",
        "connection": "local",
        "gather_facts": False,
        "vars": {
            "ansible_python_interpreter": "{{ ansible_playbook_python }}",
            "ansible_host": "127.0.0.1",
            "glance_api_port": cloud,
            "glance_keystone_public_url": f"http://127.0.0.1:{cloud}",
        },
        "tasks": tasks,
    }
    (tmp_path / "playbook.yml").write_text(yaml.safe_dump([play], sort_keys=False))
    result = subprocess.run(
        [str(BIN / "ansible-playbook"), "-i", "localhost,", "playbook.yml"],
        cwd=tmp_path,
        env=_env(tmp_path, ANSIBLE_ROLES_PATH=str(ROOT / "roles")),
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    good = json.loads((tmp_path / "audit-secret.json").read_text())
    assert (good["count"], good["active"], good["size"]) == (3, 2, 23)
    # The newest active images first; b's hash does not match, so the audit is not ok.
    assert [(s["id"], s["ok"]) for s in good["sample"]] == [("b", False), ("a", True)]
    assert good["ok"] is False and good["errors"] == []
    assert set(good["images"]) == {"a", "b", "c"}
    bad = json.loads((tmp_path / "audit-wrong.json").read_text())
    assert bad["ok"] is False and "401" in bad["error"], bad
    # no_log: the audit's result (and the password in its arguments) stays out of the output.
    assert '"count"' not in result.stdout
    login = FakeCloud.logins[0]["auth"]
    assert login["scope"] == {"project": {"name": "admin", "domain": {"name": "Default"}}}
    assert login["identity"]["password"]["user"]["name"] == "admin"


def test_switch_module_logs_in_and_finds_the_endpoint_in_the_catalog(cloud: int, tmp_path: Path) -> None:
    args = {
        "action": "plan",
        "target": "rbd",
        "sources": ["file"],
        "auth_url": f"http://127.0.0.1:{cloud}/v3",
        "username": "admin",
        "password": "secret",
        "project_name": "admin",
    }
    role = ROOT / "roles/glance_switch"
    result = subprocess.run(
        [
            str(BIN / "ansible"),
            "localhost",
            "-i",
            "localhost,",
            "-c",
            "local",
            "-m",
            "glance_switch",
            "-a",
            json.dumps(args),
            "-e",
            f"ansible_python_interpreter={sys.executable}",
        ],
        cwd=tmp_path,
        env=_env(
            tmp_path,
            ANSIBLE_LIBRARY=str(role / "library"),
            ANSIBLE_MODULE_UTILS=str(role / "module_utils"),
            ANSIBLE_LOAD_CALLBACK_PLUGINS="1",
            ANSIBLE_STDOUT_CALLBACK="json",
        ),
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    plan = json.loads(result.stdout)["plays"][0]["tasks"][0]["hosts"]["localhost"]
    assert [r["id"] for r in plan["move"]] == ["a", "b"]
    assert [r["id"] for r in plan["empty"]] == ["c"]
