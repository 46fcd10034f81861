"""Keystone v3 password login, shared by the toolkit's modules that talk to the Image API as the
administrator from the deploy host: roles/glance_switch's glance_switch and roles/glance_day2's
glance_image_audit. roles/glance_day2/module_utils/ holds a symlink to this file: Ansible adds a
role's module_utils/ to the search path only when that role is loaded, and each play loads one
of the two roles. TLS trust: the system's, or SSL_CERT_FILE from the task's environment."""

from __future__ import annotations

import json

from ansible.module_utils.urls import open_url


def password_token(
    auth_url: str,
    username: str,
    password: str,
    project_name: str,
    user_domain: str = "Default",
    project_domain: str = "Default",
    timeout: int = 30,
) -> tuple[str, list]:
    """A project-scoped token and the service catalog: POST <auth_url>/auth/tokens (auth_url ends in /v3).

    Raises what open_url raises (HTTPError for a refused login, URLError when Keystone cannot be reached)."""
    identity = {"name": username, "domain": {"name": user_domain}, "password": password}
    scope = {"project": {"name": project_name, "domain": {"name": project_domain}}}
    body = {"auth": {"identity": {"methods": ["password"], "password": {"user": identity}}, "scope": scope}}
    resp = open_url(
        auth_url.rstrip("/") + "/auth/tokens",
        method="POST",
        data=json.dumps(body),
        headers={"Content-Type": "application/json"},
        timeout=timeout,
    )
    return resp.headers["X-Subject-Token"], json.loads(resp.read())["token"].get("catalog", [])
