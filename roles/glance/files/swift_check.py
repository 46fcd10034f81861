"""Precheck of one swift store, as glance_store will use it: a Keystone v3 password login with
the store's reference (glance-swift.conf), the object-store endpoint from the catalog, and the
container (HEAD; created with PUT when missing and the store may create it).

Standalone because: roles/glance (ansible.builtin.script) copies this one file to the API host
and runs it with the host's python3, before or without the service's venv; the deploy host's
helpers (molecule/shared/files/checklib.py) are not there, so it keeps its own Keystone token
request. Standard library only.

Arguments: store name, container, create-on-put (True/False), endpoint interface, region (may be
empty), check mode (True/False). Credentials in the environment: SWIFT_AUTH_ADDRESS, SWIFT_USER
(project:user), SWIFT_KEY, SWIFT_USER_DOMAIN, SWIFT_PROJECT_DOMAIN.
Exit 0: the container exists; prints "created" when this run created it. Else a message
naming the variable to fix.
"""

from __future__ import annotations

import json
import os
import sys
import urllib.error
import urllib.request

TIMEOUT = 15


def request(method: str, url: str, headers: dict, body: bytes | None = None):
    req = urllib.request.Request(url, data=body, method=method, headers=headers)
    try:
        with urllib.request.urlopen(req, timeout=TIMEOUT) as resp:
            return resp.status, resp.headers, resp.read()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.headers, exc.read()


def login(store: str) -> tuple[str, list]:
    address = os.environ["SWIFT_AUTH_ADDRESS"].rstrip("/")
    project, _, user = os.environ["SWIFT_USER"].partition(":")
    if not user:
        sys.exit(f"swift store {store}: glance_swift_store_user must be project:user, not '{project}'")
    body = {
        "auth": {
            "identity": {
                "methods": ["password"],
                "password": {
                    "user": {
                        "name": user,
                        "domain": {"name": os.environ["SWIFT_USER_DOMAIN"]},
                        "password": os.environ["SWIFT_KEY"],
                    }
                },
            },
            "scope": {"project": {"name": project, "domain": {"name": os.environ["SWIFT_PROJECT_DOMAIN"]}}},
        }
    }
    try:
        status, headers, data = request(
            "POST", f"{address}/auth/tokens", {"Content-Type": "application/json"}, json.dumps(body).encode()
        )
    except OSError as exc:
        sys.exit(
            f"swift store {store}: Keystone at {address} does not answer ({exc}): "
            "check glance_swift_store_auth_address (Keystone's v3 URL)"
        )
    if status != 201:
        sys.exit(
            f"swift store {store}: Keystone at {address} refused {project}:{user} (HTTP {status}): "
            "check glance_swift_store_user (project:user) and glance_swift_store_key"
        )
    return headers["X-Subject-Token"], json.loads(data)["token"].get("catalog", [])


def storage_url(store: str, catalog: list, interface: str, region: str) -> str:
    for service in catalog:
        if service.get("type") != "object-store":
            continue
        for endpoint in service.get("endpoints", []):
            if endpoint.get("interface") == interface and (not region or endpoint.get("region_id") == region):
                return endpoint["url"].rstrip("/")
    sys.exit(
        f"swift store {store}: Keystone's catalog has no {interface} object-store endpoint"
        + (f" in region {region}" if region else "")
        + ": register Swift in Keystone, or set swift_store_endpoint_type/swift_store_region"
    )


def main() -> None:
    store, container, create, interface, region, check = sys.argv[1:7]
    token, catalog = login(store)
    url = f"{storage_url(store, catalog, interface, region)}/{container}"
    headers = {"X-Auth-Token": token}
    try:
        status, _, _ = request("HEAD", url, headers)
        if status in (200, 204):
            return
        if status == 404 and create == "True":
            if check == "True":
                print("created")
                return
            status, _, _ = request("PUT", url, headers)
            if status in (201, 202):
                print("created")
                return
    except OSError as exc:
        sys.exit(f"swift store {store}: Swift at {url} does not answer ({exc})")
    hint = (
        "create it or set swift_store_create_container_on_put: true"
        if status == 404
        else "give the user a role Swift accepts for the project (operator_roles)"
    )
    sys.exit(f"swift store {store}: container {url}: HTTP {status}: {hint}")


if __name__ == "__main__":
    main()
