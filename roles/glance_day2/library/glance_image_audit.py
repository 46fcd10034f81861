#!/usr/bin/python
"""Ansible module: audit an image endpoint as the Keystone administrator, from the deploy host.

Logs in (module_utils/glance_toolkit_keystone, shared with glance_switch), lists every image
through the API (following `next`), sums sizes, and downloads the most recent active images of
the sample, comparing their sha512 with os_hash_value. Never fails on what it finds: the result
says ok, and error when the endpoint cannot be reached or the login fails (the tasks decide).
"""

from __future__ import annotations

import hashlib
import json

from ansible.module_utils.basic import AnsibleModule
from ansible.module_utils.glance_toolkit_keystone import password_token
from ansible.module_utils.urls import ConnectionError as UrlsConnectionError
from ansible.module_utils.urls import open_url

DOCUMENTATION = r"""
module: glance_image_audit
short_description: List the images through one Image API endpoint and check a sample's sha512
options:
  api: {type: str, required: true, description: image endpoint, e.g. http://host:9292}
  auth_url: {type: str, required: true, description: Keystone, without /v3}
  username: {type: str, default: admin}
  password: {type: str, required: true, no_log: true}
  project_name: {type: str, default: admin}
  sample: {type: int, default: 3, description: how many of the most recent active images are downloaded}
"""


def _get(url, token, timeout=60):
    return open_url(url, headers={"Content-Type": "application/json", "X-Auth-Token": token}, timeout=timeout)


def list_images(api, token):
    images, url = [], api + "/v2/images?limit=200"
    while url:
        page = json.load(_get(url, token))
        images.extend(page["images"])
        url = api + page["next"] if page.get("next") else None
    return images


def check_sample(api, token, image):
    digest = hashlib.sha512()
    resp = _get(f"{api}/v2/images/{image['id']}/file", token, timeout=600)
    while chunk := resp.read(1 << 20):
        digest.update(chunk)
    ok = image.get("os_hash_algo") == "sha512" and digest.hexdigest() == image.get("os_hash_value")
    return {"id": image["id"], "name": image.get("name"), "ok": ok, "sha512": digest.hexdigest()}


def audit(p):
    api = p["api"].rstrip("/")
    try:
        token, _ = password_token(
            p["auth_url"].rstrip("/") + "/v3", p["username"], p["password"], p["project_name"], timeout=60
        )
        images = list_images(api, token)
    # URLError and HTTPError are OSErrors; open_url's own (TLS, proxy) are its ConnectionError.
    except (OSError, KeyError, ValueError, UrlsConnectionError) as exc:
        return {"ok": False, "error": f"{type(exc).__name__}: {exc}"}
    active = sorted((i for i in images if i.get("status") == "active"), key=lambda i: i.get("created_at", ""))
    sample, errors = [], []
    for image in list(reversed(active))[: p["sample"]]:
        try:
            sample.append(check_sample(api, token, image))
        except (OSError, UrlsConnectionError) as exc:
            errors.append(f"{image['id']}: {type(exc).__name__}: {exc}")
    return {
        "ok": not errors and all(s["ok"] for s in sample),
        "count": len(images),
        "active": len(active),
        "size": sum(i.get("size") or 0 for i in images),
        "images": {i["id"]: {"name": i.get("name"), "os_hash_value": i.get("os_hash_value")} for i in images},
        "sample": sample,
        "errors": errors,
    }


def main():
    module = AnsibleModule(
        argument_spec={
            "api": {"type": "str", "required": True},
            "auth_url": {"type": "str", "required": True},
            "username": {"type": "str", "default": "admin"},
            "password": {"type": "str", "required": True, "no_log": True},
            "project_name": {"type": "str", "default": "admin"},
            "sample": {"type": "int", "default": 3},
        },
        supports_check_mode=True,
    )
    module.exit_json(changed=False, **audit(module.params))


if __name__ == "__main__":
    main()
