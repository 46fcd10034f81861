"""What the check scripts that molecule's verify runs on the deploy host share.

Their settings from verify.yml's environment (one prefix a scenario), the Keystone token, calls
to the image API, the bytes of an image, nested ansible runs without colour and their recap.
Standard library only (the scripts run with the deploy host's ansible python). A script finds
this file with `sys.path.insert(0, <molecule>/shared/files)` from its own location.

Scripts that run alone on a target host (roles/*/files/*.py) do not import this: they are
copied there one file at a time, so they keep their own copy of the token request.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import urllib.request
from dataclasses import dataclass

# Nested ansible runs without colour (molecule sets ANSIBLE_FORCE_COLOR for its own output).
PLAIN = {"ANSIBLE_NOCOLOR": "1", "ANSIBLE_FORCE_COLOR": "0"}


@dataclass(frozen=True)
class Deployment:
    """The deployment under test, as verify.yml passes it: <PREFIX>_API (the image API's URL),
    <PREFIX>_AUTH_URL (Keystone), <PREFIX>_ADMIN_PASSWORD, <PREFIX>_PROJECT (the repository) and
    <PREFIX>_INVENTORY (molecule's inventory, for nested ansible runs)."""

    api: str
    auth_url: str
    admin_password: str
    project: str
    inventory: str
    # Seconds a request to the image API may take (large uploads want more).
    timeout: float = 60

    @classmethod
    def from_env(cls, prefix: str, timeout: float = 60) -> Deployment:
        env = os.environ
        return cls(
            api=env[f"{prefix}_API"].rstrip("/"),
            auth_url=env[f"{prefix}_AUTH_URL"].rstrip("/"),
            admin_password=env[f"{prefix}_ADMIN_PASSWORD"],
            project=env[f"{prefix}_PROJECT"],
            inventory=env[f"{prefix}_INVENTORY"],
            timeout=timeout,
        )

    def call(self, method: str, path: str, token: str | None = None, body=None, data=None):
        """A request to the image API (path from /v2 on); see call()."""
        return call(method, self.api + path, token, body=body, data=data, timeout=self.timeout)

    def login(self) -> str:
        """A token of admin in project admin (domain Default)."""
        return keystone_token(self.auth_url, "admin", self.admin_password, "admin")

    def image(self, token: str, image_id: str) -> dict:
        with self.call("GET", f"/v2/images/{image_id}", token) as resp:
            return json.load(resp)

    def download_sha512(self, token: str, image_id: str) -> str:
        digest = hashlib.sha512()
        with self.call("GET", f"/v2/images/{image_id}/file", token) as resp:
            while chunk := resp.read(1 << 20):
                digest.update(chunk)
        return digest.hexdigest()

    def playbook_cmd(self, name: str, *extra: str) -> list[str]:
        """ansible-playbook of playbooks/<name> against molecule's inventory."""
        return ["ansible-playbook", "-i", self.inventory, f"{self.project}/playbooks/{name}", *extra]


def call(method, url, token=None, body=None, data=None, timeout=60):
    """An HTTP request: body is sent as JSON, data as an octet stream. Returns the response
    (a context manager); an HTTP error status raises urllib.error.HTTPError."""
    headers = {"X-Auth-Token": token} if token else {}
    if body is not None:
        data = json.dumps(body).encode()
        headers["Content-Type"] = "application/json"
    elif data is not None:
        headers["Content-Type"] = "application/octet-stream"
    req = urllib.request.Request(url, data=data, headers=headers, method=method)
    return urllib.request.urlopen(req, timeout=timeout)


def keystone_token(auth_url, user, password, project, domain="Default"):
    """A project-scoped token from Keystone v3 (password method, user and project in domain)."""
    identity = {"user": {"name": user, "domain": {"name": domain}, "password": password}}
    scope = {"project": {"name": project, "domain": {"name": domain}}}
    auth = {"identity": {"methods": ["password"], "password": identity}, "scope": scope}
    with call("POST", f"{auth_url}/v3/auth/tokens", body={"auth": auth}) as resp:
        return resp.headers["X-Subject-Token"]


def recap_changed(stdout: str) -> int:
    """The sum of changed= over the hosts of an ansible-playbook run's PLAY RECAP."""
    return sum(int(n) for n in re.findall(r"changed=(\d+)", stdout.split("PLAY RECAP")[-1]))
