"""What molecule's scenarios share lives once, under molecule/shared/.

A scenario references its own files, molecule/shared/ and the repository's playbooks, never
another scenario's directory (day2 once linked default's group_vars, multinode its converge).
The check scripts that verify runs on the deploy host take the Keystone token, the image API
calls and the nested runs' recap from molecule/shared/files/checklib.py, tested here against
a stand-in Keystone and image API on 127.0.0.1.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import subprocess
import sys
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parent.parent
MOLECULE = ROOT / "molecule"
SHARED = MOLECULE / "shared"
SCENARIOS = sorted(p.parent.name for p in MOLECULE.glob("*/molecule.yml"))
CHECK_SCRIPTS = [
    MOLECULE / "backend-switch" / "tests" / "switch_check.py",
    MOLECULE / "day2" / "tests" / "day2_check.py",
]

sys.path.insert(0, str(SHARED / "files"))
import checklib  # noqa: E402


def referenced_paths(name: str) -> list[str]:
    """Every path molecule.yml names for the scenario: playbooks and inventory links."""
    provisioner = yaml.safe_load((MOLECULE / name / "molecule.yml").read_text())["provisioner"]
    paths = list(provisioner.get("playbooks", {}).values())
    paths += list(provisioner.get("inventory", {}).get("links", {}).values())
    return paths


def borrowed(name: str, path: Path) -> bool:
    """path (resolved) is inside another scenario's directory."""
    try:
        other = path.relative_to(MOLECULE).parts[0]
    except ValueError:
        return False  # outside molecule/: the repository's playbooks, inventories
    return other not in (name, "shared")


@pytest.mark.parametrize("name", SCENARIOS)
def test_scenario_borrows_no_other_scenarios_files(name: str) -> None:
    for ref in referenced_paths(name):
        target = (MOLECULE / name / ref).resolve()
        assert target.exists(), f"{name}: molecule.yml names {ref}, which does not exist"
        assert not borrowed(name, target), f"{name}: {ref} is another scenario's: move it to molecule/shared/"
    for path in (MOLECULE / name).rglob("*"):
        if path.is_symlink():
            target = path.resolve()
            assert target.exists(), f"{path.relative_to(ROOT)}: dangling link"
            assert not borrowed(name, target), (
                f"{path.relative_to(ROOT)} links {target.relative_to(ROOT)}: move it to molecule/shared/"
            )


@pytest.mark.parametrize("name", SCENARIOS)
def test_scenario_files_name_no_other_scenario(name: str) -> None:
    """Playbooks, scripts and conftests name molecule/shared/, not another scenario's files."""
    others = "|".join(re.escape(s) for s in SCENARIOS if s != name)
    pattern = re.compile(rf"(?:molecule/|\.\./)(?:{others})/")
    for path in (MOLECULE / name).rglob("*"):
        if path.is_file() and not path.is_symlink() and path.suffix in (".yml", ".py", ".md", ".j2"):
            found = pattern.search(path.read_text())
            assert not found, f"{path.relative_to(ROOT)} names {found.group(0)}: move it to molecule/shared/"


def test_borrowing_is_detected() -> None:
    assert borrowed("multinode", MOLECULE / "default" / "converge.yml")
    assert not borrowed("multinode", SHARED / "converge.yml")
    assert not borrowed("galera", ROOT / "playbooks" / "database.yml")


@pytest.mark.parametrize("script", CHECK_SCRIPTS, ids=lambda p: p.parent.parent.name)
def test_check_scripts_take_the_token_request_from_checklib(script: Path) -> None:
    text = script.read_text()
    assert "import checklib" in text
    assert "/v3/auth/tokens" not in text and "X-Subject-Token" not in text, (
        f"{script.name} requests its own Keystone token: use checklib"
    )


@pytest.mark.parametrize("script", CHECK_SCRIPTS, ids=lambda p: p.parent.parent.name)
def test_check_scripts_import_checklib_from_their_own_location(script: Path, tmp_path: Path) -> None:
    """verify.yml runs the script by its path, from any directory and without PYTHONPATH."""
    code = "import runpy, sys; sys.argv = [sys.argv[1]]; runpy.run_path(sys.argv[0], run_name='not_main')"
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    prefix = "SWITCH" if "switch" in script.name else "DAY2"
    env |= {f"{prefix}_{k}": "x" for k in ("API", "AUTH_URL", "ADMIN_PASSWORD", "PROJECT", "INVENTORY")}
    env |= {"DAY2_WHEELHOUSE": "x"}
    proc = subprocess.run(
        [sys.executable, "-c", code, str(script)], cwd=tmp_path, env=env, capture_output=True, text=True
    )
    assert proc.returncode == 0, proc.stderr


class FakeCloud(BaseHTTPRequestHandler):
    """Keystone's POST /v3/auth/tokens (admin/secret only) and an image API of one image."""

    image_bytes = b"0123456789" * 200_000

    def log_message(self, *args) -> None:
        pass

    def _reply(self, status: int, body: bytes, headers: dict | None = None) -> None:
        self.send_response(status)
        for key, value in (headers or {}).items():
            self.send_header(key, value)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def do_POST(self) -> None:
        data = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
        self.server.seen.append(("POST", self.path, data, self.headers.get("Content-Type")))
        user = data["auth"]["identity"]["password"]["user"]
        if self.path == "/v3/auth/tokens" and user["password"] == "secret":
            self._reply(201, b"{}", {"X-Subject-Token": "tok-1"})
        else:
            self._reply(401, b"{}")

    def do_GET(self) -> None:
        self.server.seen.append(("GET", self.path, None, self.headers.get("X-Auth-Token")))
        if self.headers.get("X-Auth-Token") != "tok-1":
            self._reply(401, b"{}")
        elif self.path == "/v2/images/i-1":
            self._reply(200, json.dumps({"id": "i-1", "status": "active"}).encode())
        elif self.path == "/v2/images/i-1/file":
            self._reply(200, self.image_bytes)
        else:
            self._reply(404, b"{}")


@pytest.fixture
def cloud():
    server = ThreadingHTTPServer(("127.0.0.1", 0), FakeCloud)
    server.seen = []
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield server
    server.shutdown()
    server.server_close()


def deployment(cloud, monkeypatch, password: str = "secret") -> checklib.Deployment:
    url = f"http://127.0.0.1:{cloud.server_address[1]}"
    for key, value in {
        "API": url + "/",
        "AUTH_URL": url + "/",
        "ADMIN_PASSWORD": password,
        "PROJECT": "/srv/toolkit",
        "INVENTORY": "/tmp/inventory",
    }.items():
        monkeypatch.setenv(f"T_{key}", value)
    return checklib.Deployment.from_env("T", timeout=7)


def test_login_sends_the_keystone_v3_password_request(cloud, monkeypatch) -> None:
    deploy = deployment(cloud, monkeypatch)
    assert deploy.login() == "tok-1"
    method, path, body, content_type = cloud.seen[0]
    assert (method, path, content_type) == ("POST", "/v3/auth/tokens", "application/json")
    assert body == {
        "auth": {
            "identity": {
                "methods": ["password"],
                "password": {"user": {"name": "admin", "domain": {"name": "Default"}, "password": "secret"}},
            },
            "scope": {"project": {"name": "admin", "domain": {"name": "Default"}}},
        }
    }


def test_login_refused_raises(cloud, monkeypatch) -> None:
    import urllib.error

    with pytest.raises(urllib.error.HTTPError) as err:
        deployment(cloud, monkeypatch, password="wrong").login()
    assert err.value.code == 401


def test_image_and_download_use_the_token(cloud, monkeypatch) -> None:
    deploy = deployment(cloud, monkeypatch)
    assert deploy.timeout == 7
    assert deploy.image("tok-1", "i-1") == {"id": "i-1", "status": "active"}
    assert deploy.download_sha512("tok-1", "i-1") == hashlib.sha512(FakeCloud.image_bytes).hexdigest()
    assert [s[:2] for s in cloud.seen] == [("GET", "/v2/images/i-1"), ("GET", "/v2/images/i-1/file")]
    assert {s[3] for s in cloud.seen} == {"tok-1"}


def test_playbook_cmd_and_recap(monkeypatch, cloud) -> None:
    deploy = deployment(cloud, monkeypatch)
    assert deploy.playbook_cmd("health.yml", "-e", "a=b") == [
        "ansible-playbook",
        "-i",
        "/tmp/inventory",
        "/srv/toolkit/playbooks/health.yml",
        "-e",
        "a=b",
    ]
    stdout = (
        "TASK [x] changed=9 in a message\n"
        "PLAY RECAP ****\n"
        "h1 : ok=3 changed=2 unreachable=0\n"
        "h2 : ok=3 changed=1 unreachable=0\n"
    )
    assert checklib.recap_changed(stdout) == 3
    assert checklib.PLAIN == {"ANSIBLE_NOCOLOR": "1", "ANSIBLE_FORCE_COLOR": "0"}
