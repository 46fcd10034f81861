#!/usr/bin/env python3
"""Audit an image endpoint as the Keystone administrator, from the deploy host.

Logs in (password from GLANCE_DAY2_ADMIN_PASSWORD), lists every image through the API
(following `next`), sums sizes, and downloads the most recent active images of the sample,
comparing their sha512 with os_hash_value. Prints one JSON document; exits 0 even when a check
fails (the playbook decides), 2 when the endpoint cannot be reached or the login fails.
Standard library only: it runs on Ansible's own Python.
"""

import argparse
import hashlib
import json
import os
import sys
import urllib.error
import urllib.request


def _request(url, token=None, body=None, timeout=60):
    headers = {"Content-Type": "application/json"}
    if token:
        headers["X-Auth-Token"] = token
    data = json.dumps(body).encode() if body is not None else None
    return urllib.request.urlopen(urllib.request.Request(url, data=data, headers=headers), timeout=timeout)


def login(args):
    body = {
        "auth": {
            "identity": {
                "methods": ["password"],
                "password": {
                    "user": {
                        "name": args.user,
                        "domain": {"name": "Default"},
                        "password": os.environ["GLANCE_DAY2_ADMIN_PASSWORD"],
                    }
                },
            },
            "scope": {"project": {"name": args.project, "domain": {"name": "Default"}}},
        }
    }
    with _request(args.auth_url.rstrip("/") + "/v3/auth/tokens", body=body) as resp:
        return resp.headers["X-Subject-Token"]


def list_images(api, token):
    images, url = [], api + "/v2/images?limit=200"
    while url:
        with _request(url, token) as resp:
            page = json.load(resp)
        images.extend(page["images"])
        url = api + page["next"] if page.get("next") else None
    return images


def check_sample(api, token, image):
    digest = hashlib.sha512()
    with _request(f"{api}/v2/images/{image['id']}/file", token, timeout=600) as resp:
        while chunk := resp.read(1 << 20):
            digest.update(chunk)
    ok = image.get("os_hash_algo") == "sha512" and digest.hexdigest() == image.get("os_hash_value")
    return {"id": image["id"], "name": image.get("name"), "ok": ok, "sha512": digest.hexdigest()}


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--api", required=True, help="image endpoint, e.g. http://host:9292")
    parser.add_argument("--auth-url", required=True, help="Keystone, without /v3")
    parser.add_argument("--user", default="admin")
    parser.add_argument("--project", default="admin")
    parser.add_argument("--sample", type=int, default=3)
    args = parser.parse_args()
    api = args.api.rstrip("/")
    try:
        token = login(args)
        images = list_images(api, token)
    except (urllib.error.URLError, OSError, KeyError, ValueError) as exc:
        print(json.dumps({"ok": False, "error": f"{type(exc).__name__}: {exc}"}))
        return 2
    active = sorted((i for i in images if i.get("status") == "active"), key=lambda i: i.get("created_at", ""))
    sample, errors = [], []
    for image in list(reversed(active))[: args.sample]:
        try:
            sample.append(check_sample(api, token, image))
        except (urllib.error.URLError, OSError) as exc:
            errors.append(f"{image['id']}: {type(exc).__name__}: {exc}")
    report = {
        "ok": not errors and all(s["ok"] for s in sample),
        "count": len(images),
        "active": len(active),
        "size": sum(i.get("size") or 0 for i in images),
        "images": {i["id"]: {"name": i.get("name"), "os_hash_value": i.get("os_hash_value")} for i in images},
        "sample": sample,
        "errors": errors,
    }
    print(json.dumps(report))
    return 0


if __name__ == "__main__":
    sys.exit(main())
