#!/usr/bin/python
"""Ansible module: the image side of a store switch, through the Image API as the administrator.

Actions (each safe to repeat, so a switch cut anywhere resumes by running again):
  plan     read-only: which images move to the target, which are there already, which cannot
           move and why, their bytes, the order, a time estimate;
  wait     until the API's store list is exactly ``stores`` with ``default`` (new workers up);
  copy     one image: copy-image into the target (all_stores_must_succeed), wait, verify that
           ``stores`` has the target and ``os_glance_failed_import`` does not, size and hash
           unchanged; a copy already running (a killed run's) is waited for, a failed one retried;
  delete   every given image's copies in the source stores, only where the target copy exists;
  verify   every image's stores, after the switch.
"""

from __future__ import annotations

import json
import time

from ansible.module_utils.basic import AnsibleModule
from ansible.module_utils.glance_toolkit_keystone import password_token
from ansible.module_utils.urls import open_url

DOCUMENTATION = r"""
module: glance_switch
short_description: Move images between the image service's stores (backend-switch.yml)
options:
  action: {type: str, required: true, choices: [plan, wait, copy, delete, verify]}
  auth_url: {type: str, required: true, description: Keystone v3 URL}
  username: {type: str, required: true}
  password: {type: str, required: true, no_log: true}
  project_name: {type: str, required: true}
  user_domain_name: {type: str, default: Default}
  project_domain_name: {type: str, default: Default}
  region: {type: str, default: RegionOne}
  endpoint: {type: str, default: "", description: Image API URL; empty takes the catalog's public one}
  target: {type: str, description: the store the images move to}
  sources: {type: list, elements: str, default: [], description: the stores they leave}
  images: {type: list, elements: str, default: [], description: image ids (plan, delete, verify)}
  image_filter: {type: dict, default: {}, description: only images whose properties equal these}
  image_id: {type: str, description: the image to copy}
  stores: {type: list, elements: str, default: [], description: wait, the expected store names}
  default: {type: str, description: wait, the expected default store}
  rate_mib: {type: float, default: 50, description: plan, MiB/s assumed for the time estimate}
  timeout: {type: int, default: 1800, description: seconds for one copy, or for wait}
  retries: {type: int, default: 2, description: copy, attempts after a failed copy}
"""

IMPORT_TASK = "os_glance_import_task"
IMPORTING = "os_glance_importing_to_stores"
FAILED = "os_glance_failed_import"


class ApiError(Exception):
    pass


class Glance:
    def __init__(self, module: AnsibleModule):
        p = module.params
        self.module = module
        self.token, catalog = password_token(
            p["auth_url"],
            p["username"],
            p["password"],
            p["project_name"],
            user_domain=p["user_domain_name"],
            project_domain=p["project_domain_name"],
        )
        self.url = p["endpoint"].rstrip("/") if p["endpoint"] else self._endpoint(catalog, p["region"])

    @staticmethod
    def _endpoint(catalog: list, region: str) -> str:
        for service in catalog:
            if service.get("type") != "image":
                continue
            for ep in service.get("endpoints", []):
                if ep.get("interface") == "public" and ep.get("region_id", ep.get("region")) == region:
                    return ep["url"].rstrip("/")
        raise ApiError(f"Keystone's catalog has no public image endpoint in region {region}")

    def call(self, method: str, path: str, body=None, ok=(200,)) -> tuple[int, dict]:
        headers = {"X-Auth-Token": self.token}
        data = None
        if body is not None:
            headers["Content-Type"] = "application/json"
            data = json.dumps(body)
        try:
            resp = open_url(self.url + path, method=method, data=data, headers=headers, timeout=60)
            status, text = resp.status, resp.read()
        except Exception as exc:  # HTTPError carries the answer; anything else is a failure
            status = getattr(exc, "code", None)
            if status is None:
                raise ApiError(f"{method} {path}: {exc}") from exc
            text = exc.read() if hasattr(exc, "read") else b""
        if status not in ok:
            raise ApiError(f"{method} {path}: HTTP {status} {text[:300]!r}")
        return status, (json.loads(text) if text else {})

    def image(self, image_id: str) -> dict:
        return self.call("GET", f"/v2/images/{image_id}")[1]

    def images(self) -> list[dict]:
        out, path = [], "/v2/images?limit=200&visibility=all&member_status=all"
        while path:
            page = self.call("GET", path)[1]
            out.extend(page.get("images", []))
            nxt = page.get("next")
            path = nxt[nxt.index("/v2/") :] if nxt else None
        return out

    def stores(self) -> tuple[list[str], str | None]:
        listing = self.call("GET", "/v2/info/stores")[1].get("stores", [])
        default = next((s["id"] for s in listing if str(s.get("default")).lower() == "true"), None)
        return [s["id"] for s in listing], default


def csv(value) -> list[str]:
    return [v for v in (value or "").split(",") if v]


def selected(image: dict, ids: list[str], props: dict) -> bool:
    if ids and image["id"] not in ids:
        return False
    return all(str(image.get(k)) == str(v) for k, v in props.items())


def classify(image: dict, target: str, sources: list[str]) -> tuple[str, str]:
    """('done'|'move'|'blocked'|'empty', reason)."""
    stores = csv(image.get("stores"))
    if target in stores and target not in csv(image.get(FAILED)):
        return "done", ""
    if image["status"] != "active":
        held = [s for s in stores if s in sources]
        if not held:
            return "empty", f"status {image['status']}, no data in {', '.join(sources) or 'the old stores'}"
        return "blocked", f"status {image['status']}: only active images can be copied"
    return "move", ""


def do_plan(module, api: Glance) -> dict:
    p = module.params
    rows = {"move": [], "done": [], "blocked": [], "empty": []}
    for image in api.images():
        if not selected(image, p["images"], p["image_filter"]):
            continue
        kind, reason = classify(image, p["target"], p["sources"])
        rows[kind].append(
            {
                "id": image["id"],
                "name": image.get("name"),
                "size": image.get("size") or 0,
                "reason": reason,
                "status": image["status"],
                "stores": image.get("stores", ""),
            }
        )
    # Smallest first: most images are safe early, and the rate is known before the big ones.
    rows["move"].sort(key=lambda r: (r["size"], r["id"]))
    total = sum(r["size"] for r in rows["move"])
    return {
        "changed": False,
        "move": rows["move"],
        "done": [r["id"] for r in rows["done"]],
        "blocked": rows["blocked"],
        "empty": rows["empty"],
        "bytes": total,
        "estimate_s": round(total / (p["rate_mib"] * 1048576), 1) if p["rate_mib"] > 0 else None,
    }


def do_wait(module, api: Glance) -> dict:
    p = module.params
    deadline = time.monotonic() + p["timeout"]
    seen = None
    while time.monotonic() < deadline:
        try:
            seen = api.stores()
            if sorted(seen[0]) == sorted(p["stores"]) and seen[1] == p["default"]:
                return {"changed": False, "stores": seen[0], "default": seen[1]}
        except ApiError as exc:
            seen = str(exc)
        time.sleep(1)
    module.fail_json(msg=f"the API still lists {seen}, expected stores {p['stores']} default {p['default']}")


def _settled(image: dict, target: str) -> bool:
    return not image.get(IMPORT_TASK) and target not in csv(image.get(IMPORTING))


def do_copy(module, api: Glance) -> dict:
    p = module.params
    target, image_id = p["target"], p["image_id"]
    deadline = time.monotonic() + p["timeout"]
    start = time.monotonic()
    image = api.image(image_id)
    before = (image.get("size"), image.get("os_hash_value"))
    attempts, started, last_error = 0, False, ""
    while time.monotonic() < deadline:
        image = api.image(image_id)
        if not _settled(image, target):
            time.sleep(1)  # a copy in progress (maybe a killed run's): let it finish
            continue
        kind, reason = classify(image, target, p["sources"])
        if kind == "done":
            if (image.get("size"), image.get("os_hash_value")) != before:
                module.fail_json(msg=f"image {image_id} changed size or hash during its copy", image=image)
            seconds = time.monotonic() - start
            return {
                "changed": started,
                "result": "copied" if started else "already there",
                "bytes": (image.get("size") or 0) if started else 0,
                "seconds": round(seconds, 2),
                "stores": image.get("stores"),
            }
        if kind != "move":
            return {"changed": False, "result": "blocked", "reason": reason}
        if started and target in csv(image.get(FAILED)):
            last_error = f"the copy into {target} failed ({FAILED})"
        if attempts > p["retries"]:
            return {"changed": started, "result": "failed", "reason": last_error or "the copy did not land"}
        if module.check_mode:
            return {"changed": True, "result": "would copy", "bytes": image.get("size") or 0}
        body = {"method": {"name": "copy-image"}, "stores": [target], "all_stores_must_succeed": True}
        status, answer = api.call("POST", f"/v2/images/{image_id}/import", body, ok=(202, 409, 400))
        attempts += 1
        if status == 202:
            started = True
        else:
            last_error = f"copy-image answered {status}: {answer}"
        time.sleep(1)
    return {"changed": started, "result": "failed", "reason": f"no result within {p['timeout']} s"}


def do_delete(module, api: Glance) -> dict:
    p = module.params
    deleted, kept = [], []
    for image_id in p["images"]:
        image = api.image(image_id)
        stores = csv(image.get("stores"))
        if p["target"] not in stores or p["target"] in csv(image.get(FAILED)):
            kept.append({"id": image_id, "reason": f"no verified copy in {p['target']}"})
            continue
        for source in [s for s in p["sources"] if s in stores]:
            if not module.check_mode:
                api.call("DELETE", f"/v2/stores/{source}/{image_id}", ok=(204, 404))
            deleted.append(f"{image_id}@{source}")
    return {"changed": bool(deleted), "deleted": deleted, "kept": kept}


def do_verify(module, api: Glance) -> dict:
    p = module.params
    rows = []
    for image in api.images():
        if not selected(image, p["images"], p["image_filter"]):
            continue
        stores = csv(image.get("stores"))
        rows.append(
            {
                "id": image["id"],
                "status": image["status"],
                "stores": stores,
                "in_target": p["target"] in stores,
                "in_sources": [s for s in stores if s in p["sources"]],
            }
        )
    return {"changed": False, "images": rows}


def main() -> None:
    module = AnsibleModule(
        argument_spec={
            "action": {
                "type": "str",
                "required": True,
                "choices": ["plan", "wait", "copy", "delete", "verify"],
            },
            "auth_url": {"type": "str", "required": True},
            "username": {"type": "str", "required": True},
            "password": {"type": "str", "required": True, "no_log": True},
            "project_name": {"type": "str", "required": True},
            "user_domain_name": {"type": "str", "default": "Default"},
            "project_domain_name": {"type": "str", "default": "Default"},
            "region": {"type": "str", "default": "RegionOne"},
            "endpoint": {"type": "str", "default": ""},
            "target": {"type": "str"},
            "sources": {"type": "list", "elements": "str", "default": []},
            "images": {"type": "list", "elements": "str", "default": []},
            "image_filter": {"type": "dict", "default": {}},
            "image_id": {"type": "str"},
            "stores": {"type": "list", "elements": "str", "default": []},
            "default": {"type": "str"},
            "rate_mib": {"type": "float", "default": 50.0},
            "timeout": {"type": "int", "default": 1800},
            "retries": {"type": "int", "default": 2},
        },
        required_if=[
            ("action", "copy", ["target", "image_id"]),
            ("action", "plan", ["target"]),
            ("action", "delete", ["target"]),
            ("action", "verify", ["target"]),
            ("action", "wait", ["default"]),
        ],
        supports_check_mode=True,
    )
    try:
        api = Glance(module)
        action = {"plan": do_plan, "wait": do_wait, "copy": do_copy, "delete": do_delete, "verify": do_verify}
        module.exit_json(**action[module.params["action"]](module, api))
    except ApiError as exc:
        module.fail_json(msg=str(exc))
    except Exception as exc:  # open_url's errors during login
        module.fail_json(msg=f"{type(exc).__name__}: {exc}")


if __name__ == "__main__":
    main()
