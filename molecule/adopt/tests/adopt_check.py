#!/usr/bin/env python3
"""playbooks/adopt.yml and handback.yml end to end against molecule/adopt's lab host (issue 19).

Populates the upstream Glance 33 that prepare.yml installed through the `openstack` CLI (the
deploy host's, from the virtualenv this runs in): three projects (a user each) and the admin,
images of every visibility and status (active, deactivated, queued, pending_delete), shared
images with accepted, pending and rejected members, tags, custom properties, protected and
min_disk/min_ram, images in the file store, in the rbd store (glance-direct import) and one in
both (copy-image), a metadef namespace. Records every image's JSON as
the admin, its owner and each member project, the members, each user's listing and the
sha512 of every active image's data. Then adopt.yml with a client loop running (it follows
the catalog), the same records through our API field by field, adopt.yml again (changed=0),
handback.yml into a fresh Glance 33 database and the same records through upstream again,
handback.yml again (changed=0). Lines starting with `adopt:` are the measurements.
Standard library only (and the `openstack` command).
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import secrets
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "shared", "files"))
import checklib  # noqa: E402

DEPLOY = checklib.Deployment.from_env("ADOPT")  # .api: ours
OLD = os.environ["ADOPT_OLD_API"].rstrip("/")
WORKDIR = os.environ["ADOPT_WORKDIR"]
PLAIN = checklib.PLAIN
PROJECTS = ["adopt-p1", "adopt-p2", "adopt-p3"]
NAMESPACE = "OS::Adopt::Lab"


def log(msg):
    print(f"adopt: {msg}", flush=True)


def request(method, url, token=None, body=None, data=None, headers=None, timeout=120):
    """(status, parsed JSON or raw bytes or None). Never raises on an HTTP status."""
    hdrs = dict(headers or {})
    if token:
        hdrs["X-Auth-Token"] = token
    if body is not None and data is None:
        data = json.dumps(body).encode()
        hdrs.setdefault("Content-Type", "application/json")
    elif data is not None:
        hdrs.setdefault("Content-Type", "application/octet-stream")
    req = urllib.request.Request(url, data=data, headers=hdrs, method=method)
    try:
        with urllib.request.urlopen(req, timeout=timeout) as resp:
            raw, status, ctype = resp.read(), resp.status, resp.headers.get("Content-Type", "")
    except urllib.error.HTTPError as exc:
        raw, status, ctype = exc.read(), exc.code, exc.headers.get("Content-Type", "")
    if raw and "json" in ctype:
        return status, json.loads(raw)
    return status, raw or None


def ok(status, payload, what):
    if status >= 300:
        raise SystemExit(f"{what}: HTTP {status}: {str(payload)[:600]}")
    return payload


# --- Keystone: projects, users, tokens ------------------------------------------------------
def keystone_users(admin):
    auth = DEPLOY.auth_url
    roles = ok(*request("GET", f"{auth}/v3/roles?name=member", admin), "member role")["roles"]
    member_role = roles[0]["id"]
    users = {}
    for index, name in enumerate(PROJECTS, 1):
        found = ok(*request("GET", f"{auth}/v3/projects?name={name}", admin), "project")["projects"]
        if found:
            pid = found[0]["id"]
        else:
            body = {"project": {"name": name, "domain_id": "default"}}
            pid = ok(*request("POST", f"{auth}/v3/projects", admin, body), "project")["project"]["id"]
        # Derived from the admin's: a second run finds the same users (a password change
        # would revoke the tokens issued in the same second).
        user = f"adopt-u{index}"
        password = hashlib.sha256(f"{DEPLOY.admin_password}/{user}".encode()).hexdigest()[:32]
        found = ok(*request("GET", f"{auth}/v3/users?name={user}", admin), "user")["users"]
        if found:
            uid = found[0]["id"]
            try:
                checklib.keystone_token(auth, user, password, name)
            except urllib.error.HTTPError:  # made by an older version of this script
                ok(*request("PATCH", f"{auth}/v3/users/{uid}", admin, {"user": {"password": password}}), "pw")
                time.sleep(2)
        else:
            body = {
                "user": {
                    "name": user,
                    "password": password,
                    "domain_id": "default",
                    "default_project_id": pid,
                }
            }
            uid = ok(*request("POST", f"{auth}/v3/users", admin, body), "user")["user"]["id"]
        status, _ = request("PUT", f"{auth}/v3/projects/{pid}/users/{uid}/roles/{member_role}", admin)
        assert status in (200, 204), status
        token = checklib.keystone_token(auth, user, password, name)
        users[name] = {"project_id": pid, "token": token, "user": user, "password": password}
    return users


def image_endpoint(token):
    """The catalog's public image endpoint, read now (GET /v3/auth/catalog)."""
    _, catalog = request("GET", f"{DEPLOY.auth_url}/v3/auth/catalog", token, timeout=30)
    for service in catalog["catalog"]:
        if service["type"] == "image":
            for endpoint in service["endpoints"]:
                if endpoint["interface"] == "public":
                    return endpoint["url"].rstrip("/")
    raise RuntimeError("no image endpoint in the catalog")


# --- Population through the `openstack` CLI, as an operator's users fill an upstream Glance ---
OPENSTACK = os.path.join(os.path.dirname(sys.executable), "openstack")


class Cli:
    """`openstack` as one Keystone user in one project (the catalog names upstream Glance)."""

    calls = 0

    def __init__(self, user, password, project):
        self.env = {k: v for k, v in os.environ.items() if not k.startswith("OS_")} | {
            "OS_AUTH_URL": f"{DEPLOY.auth_url}/v3",
            "OS_IDENTITY_API_VERSION": "3",
            "OS_IMAGE_API_VERSION": "2",
            "OS_INTERFACE": "public",
            "OS_USERNAME": user,
            "OS_PASSWORD": password,
            "OS_PROJECT_NAME": project,
            "OS_USER_DOMAIN_NAME": "Default",
            "OS_PROJECT_DOMAIN_NAME": "Default",
        }

    def __call__(self, *args, parse=False):
        # stdin a terminal: `image create` without --file would otherwise upload stdin's bytes.
        controller, terminal = os.openpty()
        try:
            cmd = [OPENSTACK, *args, *(["-f", "json"] if parse else [])]
            proc = subprocess.run(
                cmd, stdin=terminal, capture_output=True, text=True, env=self.env, timeout=300
            )
        finally:
            os.close(controller)
            os.close(terminal)
        Cli.calls += 1
        if proc.returncode != 0:
            raise SystemExit(f"openstack {' '.join(args)}: rc {proc.returncode}: {proc.stderr[-1500:]}")
        return json.loads(proc.stdout) if parse else proc.stdout


def wait_status(token, image_id, wanted, seconds=300):
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        _, image = request("GET", f"{OLD}/v2/images/{image_id}", token)
        if isinstance(image, dict) and image.get("status") == wanted:
            return image
        time.sleep(2)
    raise SystemExit(f"image {image_id} not {wanted} after {seconds}s: {image}")


def populate(admin, users):
    """{image id: {"owner": project name, "members": [project names], "token": owner's token}}."""
    images, pending_delete = {}, []
    cli = {p: Cli(users[p]["user"], users[p]["password"], p) for p in PROJECTS}
    cli["admin"] = Cli("admin", DEPLOY.admin_password, "admin")
    data_dir = os.path.join(WORKDIR, "data")
    os.makedirs(data_dir, exist_ok=True)

    def add(project, token, name, data=True, store=None, visibility=None, protected=False, tags=(), **props):
        """`image create` (uploaded to the default store with --file), or for another store
        `image create` + `image stage` + `image import --method glance-direct --store`."""
        args = ["image", "create", name, "--disk-format", "raw", "--container-format", "bare"]
        args += [f"--{visibility}"] if visibility else []  # none: upstream's default, shared
        args += ["--protected"] if protected else []
        for option in ("min_disk", "min_ram"):
            if option in props:
                args += [f"--{option.replace('_', '-')}", str(props.pop(option))]
        for tag in tags:
            args += ["--tag", tag]
        for key, value in props.items():
            args += ["--property", f"{key}={value}"]
        path = None
        if data:
            path = os.path.join(data_dir, name)
            with open(path, "wb") as handle:
                handle.write(secrets.token_bytes(secrets.randbelow(96 << 10) + (32 << 10)))
        if data and not store:
            args += ["--file", path]
        image_id = cli[project](*args, parse=True)["id"]
        if data and store:
            cli[project]("image", "stage", "--file", path, image_id)
            cli[project]("image", "import", image_id, "--method", "glance-direct", "--store", store)
            wait_status(token, image_id, "active")
        images[image_id] = {"owner": project, "members": [], "token": token}
        return image_id

    for index, project in enumerate(PROJECTS):
        token = users[project]["token"]
        others = [p for p in PROJECTS if p != project]
        add(
            project,
            token,
            f"{project}-private",
            visibility="private",
            tags=["lab", project],
            os_distro="debian",
            os_version="12",
        )
        add(
            project,
            token,
            f"{project}-private-ceph",
            visibility="private",
            store="ceph",
            hw_disk_bus="scsi",
            custom_owner_note="x" * 40,
        )
        add(
            project,
            token,
            f"{project}-protected",
            visibility="private",
            protected=True,
            min_disk=index + 1,
            min_ram=512 * (index + 1),
        )
        add(project, token, f"{project}-community", visibility="community", tags=["community"])
        add(project, token, f"{project}-community-queued", data=False, visibility="community")
        add(project, token, f"{project}-shared-alone", hw_qemu_guest_agent="yes")
        add(
            project,
            token,
            f"{project}-queued",
            visibility="private",
            data=False,
            tags=["queued"],
            build=str(index),
        )
        deactivated = add(
            project, token, f"{project}-deactivated", visibility="private", architecture="x86_64"
        )
        cli["admin"]("image", "set", "--deactivate", deactivated)
        # Shared with both other projects: the first accepts, the second rejects.
        shared = add(project, token, f"{project}-shared", visibility="shared", tags=["shared", "lab"])
        # Shared with the first other project, which leaves it pending.
        pending = add(project, token, f"{project}-shared-pending", visibility="shared")
        for image_id, member_projects in ((shared, others), (pending, others[:1])):
            for member in member_projects:
                cli[project]("image", "add", "project", image_id, users[member]["project_id"])
                images[image_id]["members"].append(member)
        cli[others[0]]("image", "set", "--accept", shared)
        cli[others[1]]("image", "set", "--reject", shared)
        # Deleted with delayed_delete: pending_delete, for the scrubber.
        doomed = add(project, token, f"{project}-doomed", visibility="private")
        cli[project]("image", "delete", doomed)
        images.pop(doomed)
        pending_delete.append(doomed)
        # A property and a tag added after creation (a PATCH).
        cli[project]("image", "set", "--property", "patched=yes", "--tag", "patched-tag", shared)

    add("admin", admin, "admin-public", visibility="public", tags=["public"], os_distro="cirros")
    add("admin", admin, "admin-public-ceph", visibility="public", store="ceph")
    both = add("admin", admin, "admin-public-both-stores", visibility="public")
    add("admin", admin, "admin-private", visibility="private", hw_rng_model="virtio")
    # Copied into the rbd store by upstream's own import flow: two locations, two store ids.
    cli["admin"]("image", "import", both, "--method", "copy-image", "--store", "ceph")
    deadline = time.monotonic() + 300
    while time.monotonic() < deadline:
        _, image = request("GET", f"{OLD}/v2/images/{both}", admin)
        if set(image.get("stores", "").split(",")) == {"local", "ceph"}:
            break
        time.sleep(2)
    else:
        raise SystemExit(f"copy-image into the rbd store not done: {image}")

    # A metadef namespace with a property, an object and a resource type association (the CLI
    # has no metadef tag commands: its tags through the API).
    found = request("GET", f"{OLD}/v2/metadefs/namespaces/{NAMESPACE}", admin)[0] == 200
    if not found:  # made by an earlier run of verify otherwise
        meta = cli["admin"]
        meta(
            "image",
            "metadef",
            "namespace",
            "create",
            NAMESPACE,
            "--display-name",
            "Adoption lab",
            "--description",
            "molecule/adopt",
            "--public",
            "--unprotected",
        )
        meta("image", "metadef", "resource", "type", "association", "create", NAMESPACE, "OS::Glance::Image")
        meta(
            "image",
            "metadef",
            "property",
            "create",
            NAMESPACE,
            "--name",
            "speed",
            "--title",
            "Speed",
            "--type",
            "string",
            "--schema",
            json.dumps({"enum": ["fast", "slow"]}),
        )
        meta("image", "metadef", "object", "create", "--namespace", NAMESPACE, "Tier")
        body = {"tags": [{"name": "lab"}, {"name": "adopt"}]}
        ok(*request("POST", f"{OLD}/v2/metadefs/namespaces/{NAMESPACE}/tags", admin, body), "metadef tags")
    log(f"populated through {Cli.calls} `openstack` commands")
    return images, pending_delete


# --- Records and comparison -----------------------------------------------------------------
def record(base, admin, users, images):
    """What every viewer sees of every image, the members, the listings, the metadefs."""
    tokens = {"admin": admin, **{p: users[p]["token"] for p in PROJECTS}}
    seen = {}
    for image_id, info in sorted(images.items()):
        viewers = {"admin", info["owner"], *info["members"]}
        for viewer in sorted(viewers):
            status, body = request("GET", f"{base}/v2/images/{image_id}", tokens[viewer])
            seen[f"image {image_id} as {viewer}"] = [status, body]
        status, body = request("GET", f"{base}/v2/images/{image_id}/members", tokens[info["owner"]])
        seen[f"members {image_id}"] = [status, body]
    for viewer, token in tokens.items():
        status, body = request("GET", f"{base}/v2/images?limit=1000", token)
        ids = sorted(i["id"] for i in body["images"]) if status == 200 else body
        seen[f"listing as {viewer}"] = [status, ids]
        status, body = request("GET", f"{base}/v2/images?limit=1000&member_status=all&visibility=all", token)
        ids = sorted(i["id"] for i in body["images"]) if status == 200 else body
        seen[f"listing all as {viewer}"] = [status, ids]
    status, body = request("GET", f"{base}/v2/metadefs/namespaces/{NAMESPACE}", admin)
    seen["metadef namespace"] = [status, body]
    return seen


def digests(base, images, admin):
    out = {}
    for image_id, info in sorted(images.items()):
        status, body = request("GET", f"{base}/v2/images/{image_id}", admin)
        if status == 200 and body["status"] == "active":
            status, data = request("GET", f"{base}/v2/images/{image_id}/file", info["token"])
            out[image_id] = hashlib.sha512(data or b"").hexdigest() if status == 200 else f"HTTP {status}"
    return out


def normal(key, value):
    """Upstream's tags come in a Python set's order; `stores` is a comma list: both as sets.
    A namespace's lists (tags, objects) in name order."""
    if key in ("tags",) and isinstance(value, list):
        return sorted(json.dumps(v, sort_keys=True) for v in value)
    if key == "stores" and isinstance(value, str):
        return sorted(value.split(","))
    if key in ("objects", "resource_type_associations") and isinstance(value, list):
        return sorted(json.dumps(v, sort_keys=True) for v in value)
    if key == "members" and isinstance(value, list):
        return sorted(json.dumps(v, sort_keys=True) for v in value)
    return value


def differences(before, after):
    found = []
    for what in sorted(set(before) | set(after)):
        if what not in after or what not in before:
            found.append(f"{what}: only {'before' if what in before else 'after'}")
            continue
        (s1, b1), (s2, b2) = before[what], after[what]
        if s1 != s2:
            found.append(f"{what}: HTTP {s1} -> {s2} {str(b2)[:300]}")
        elif isinstance(b1, dict) and isinstance(b2, dict):
            for key in sorted(set(b1) | set(b2)):
                v1, v2 = normal(key, b1.get(key, "<absent>")), normal(key, b2.get(key, "<absent>"))
                if v1 != v2:
                    found.append(f"{what}: {key}: {json.dumps(v1)[:200]} -> {json.dumps(v2)[:200]}")
        elif isinstance(b1, list) and isinstance(b2, list) and b1 != b2:
            gone, new = sorted(set(b1) - set(b2)), sorted(set(b2) - set(b1))
            found.append(f"{what}: {len(gone)} only before {gone[:5]}, {len(new)} only after {new[:5]}")
        elif b1 != b2:
            found.append(f"{what}: {str(b1)[:300]} -> {str(b2)[:300]}")
    return found


# --- Nested ansible ---------------------------------------------------------------------------
def playbook(name):
    cmd = DEPLOY.playbook_cmd(name)
    started = time.monotonic()
    proc = subprocess.run(cmd, capture_output=True, text=True, env=os.environ | PLAIN)
    took = time.monotonic() - started
    with open(os.path.join(WORKDIR, f"{name}.{int(time.time())}.log"), "w") as handle:
        handle.write(proc.stdout + proc.stderr)
    if proc.returncode != 0:
        print(proc.stdout[-8000:], proc.stderr[-3000:])
        raise SystemExit(f"{name} failed (rc {proc.returncode})")
    changed = checklib.recap_changed(proc.stdout)
    log(f"{name}: ok in {took:.0f}s, changed={changed}")
    return took, changed


def on_host(group, module, args):
    cmd = ["ansible", "-i", DEPLOY.inventory, group, "-o", "-m", module, "-a", args]
    proc = subprocess.run(cmd, capture_output=True, text=True, env=os.environ | PLAIN)
    if proc.returncode != 0:
        raise SystemExit(f"{module} {args!r} failed: {proc.stdout[-2000:]}{proc.stderr[-2000:]}")
    found = re.search(r"\(stdout\) (.*)$", re.sub(r"\x1b\[[0-9;]*m", "", proc.stdout).strip())
    return found.group(1).replace("\\n", "\n").strip() if found else ""


def pending_delete_ids(database):
    sql = f"SELECT id FROM {database}.images WHERE status='pending_delete' ORDER BY id"
    out = on_host("database[0]", "ansible.builtin.command", f'mysql -N -e "{sql}"')
    return [line for line in out.split() if line]


# --- The client loop ------------------------------------------------------------------------
class Client(threading.Thread):
    """Reads the catalog's image endpoint, then an image's record and data, on new connections,
    in a loop: every failure is kept with its time and the URL the catalog named."""

    def __init__(self, token, image_id, sha):
        super().__init__(daemon=True)
        self.token, self.image_id, self.sha = token, image_id, sha
        self.stop, self.ok, self.failures, self.urls = threading.Event(), 0, [], {}

    def run(self):
        while not self.stop.is_set():
            url = "?"
            try:
                url = image_endpoint(self.token)
                status, body = request("GET", f"{url}/v2/images/{self.image_id}", self.token, timeout=30)
                assert status == 200 and body["id"] == self.image_id, status
                status, data = request("GET", f"{url}/v2/images/{self.image_id}/file", self.token, timeout=30)
                assert status == 200 and hashlib.sha512(data).hexdigest() == self.sha, status
                self.ok += 1
                self.urls[url] = self.urls.get(url, 0) + 1
            except Exception as exc:  # noqa: BLE001  (every failure counts)
                self.failures.append((time.monotonic(), url, repr(exc)[:200]))
                time.sleep(0.2)


def save(name, payload):
    with open(os.path.join(WORKDIR, name), "w") as handle:
        json.dump(payload, handle, indent=1, sort_keys=True, default=str)


def check_same(label, before, after, sha_before, sha_after):
    diffs = differences(before, after)
    bad_sha = sorted(i for i in sha_before if sha_after.get(i) != sha_before[i])
    save(f"diff-{label}.json", {"differences": diffs, "sha512_differ": bad_sha})
    for line in diffs[:60]:
        log(f"{label}: DIFFERENT {line}")
    log(f"{label}: {len(before)} records compared field by field, {len(diffs)} differences; "
        f"{len(sha_before)} downloads, {len(bad_sha)} sha512 different")  # fmt: skip
    return diffs, bad_sha


def main():
    os.makedirs(WORKDIR, exist_ok=True)
    admin = DEPLOY.login()
    assert image_endpoint(admin) == OLD, f"the catalog names {image_endpoint(admin)}, not upstream {OLD}"
    users = keystone_users(admin)
    started = time.monotonic()
    images, pending_delete = populate(admin, users)
    visible = len(images)
    log(f"populated upstream Glance 33 in {time.monotonic() - started:.0f}s: {visible} images "
        f"+ {len(pending_delete)} pending_delete, {len(PROJECTS)} projects + admin")  # fmt: skip
    before = record(OLD, admin, users, images)
    sha_before = digests(OLD, images, admin)
    save("upstream-before.json", {"records": before, "sha512": sha_before})
    statuses = {}
    for what, (_status, body) in before.items():
        if what.startswith("image ") and what.endswith("as admin"):
            statuses[body["status"]] = statuses.get(body["status"], 0) + 1
    visibilities = {}
    for what, (_status, body) in before.items():
        if what.startswith("image ") and what.endswith("as admin"):
            visibilities[body["visibility"]] = visibilities.get(body["visibility"], 0) + 1
    log(f"upstream: statuses {statuses} + pending_delete {len(pending_delete)}; visibilities {visibilities}")
    upstream_pd = pending_delete_ids("glance_upstream")
    assert set(pending_delete) <= set(upstream_pd), (pending_delete, upstream_pd)

    # The takeover, under a client that follows the catalog.
    probe = next(
        i
        for i, info in images.items()
        if info["owner"] == "adopt-p1" and before[f"image {i} as admin"][1]["name"] == "adopt-p1-private"
    )
    client = Client(users["adopt-p1"]["token"], probe, sha_before[probe])
    client.start()
    time.sleep(5)
    took, _ = playbook("adopt.yml")
    time.sleep(10)
    client.stop.set()
    client.join()
    assert image_endpoint(admin) == DEPLOY.api, image_endpoint(admin)
    old_failures = [f for f in client.failures if f[1] == OLD]
    new_failures = [f for f in client.failures if f[1] != OLD]
    window = (old_failures[-1][0] - old_failures[0][0]) if old_failures else 0.0
    log(f"takeover: adopt.yml {took:.0f}s; client loop {client.ok} requests ok by endpoint {client.urls}, "
        f"{len(client.failures)} failed: {len(old_failures)} at the old endpoint (the old API stopped before "
        f"the catalog switched, over {window:.1f}s), {len(new_failures)} after the switch")  # fmt: skip
    for failure in client.failures[:10]:
        log(f"client failure: {failure[1]} {failure[2]}")

    after = record(DEPLOY.api, admin, users, images)
    sha_after = digests(DEPLOY.api, images, admin)
    save("ours-after-adopt.json", {"records": after, "sha512": sha_after})
    diffs, bad_sha = check_same("adopt", before, after, sha_before, sha_after)
    ours_pd = pending_delete_ids("glance")
    log(f"adopt: pending_delete upstream {len(upstream_pd)}, ours {len(ours_pd)}")

    _, changed = playbook("adopt.yml")
    assert changed == 0, f"adopt.yml again: changed={changed}"

    # Handback into a fresh Glance 33 database (prepare.yml's db sync): upstream's glance-api
    # is pointed at it first, as an operator installs the release to hand back to.
    on_host(
        "upstream_glance_api", "ansible.builtin.replace",
        r"path=/etc/glance-upstream/glance-api.conf regexp=/glance_upstream\? replace=/glance_handback?",
    )  # fmt: skip
    ours_pd = pending_delete_ids("glance")
    took_back, _ = playbook("handback.yml")
    assert image_endpoint(admin) == OLD, image_endpoint(admin)
    back = record(OLD, admin, users, images)
    sha_back = digests(OLD, images, admin)
    save("upstream-after-handback.json", {"records": back, "sha512": sha_back})
    diffs_back, bad_sha_back = check_same("handback", before, back, sha_before, sha_back)
    back_pd = pending_delete_ids("glance_handback")
    log(
        f"handback: handback.yml {took_back:.0f}s; "
        f"pending_delete ours {len(ours_pd)}, handed back {len(back_pd)}"
    )
    _, changed = playbook("handback.yml")
    assert changed == 0, f"handback.yml again: changed={changed}"

    log(f"figures: {visible} images (+{len(pending_delete)} pending_delete) in {len(PROJECTS) + 1} projects; "
        f"takeover (adopt.yml) {took:.0f}s; client requests {client.ok} ok, {len(client.failures)} failed "
        f"({len(new_failures)} after the endpoint switch); handback.yml {took_back:.0f}s")  # fmt: skip
    problems = []
    if diffs or bad_sha:
        problems.append(f"adopt: {len(diffs)} differences, {len(bad_sha)} sha512")
    if diffs_back or bad_sha_back:
        problems.append(f"handback: {len(diffs_back)} differences, {len(bad_sha_back)} sha512")
    if sorted(ours_pd) != upstream_pd and ours_pd:
        problems.append(f"pending_delete: upstream {upstream_pd} ours {ours_pd}")
    if sorted(back_pd) != sorted(ours_pd):
        problems.append(f"pending_delete: ours {ours_pd} handed back {back_pd}")
    if new_failures:
        problems.append(f"{len(new_failures)} client requests failed after the endpoint switch")
    if problems:
        raise SystemExit("; ".join(problems))
    log("all equal")


if __name__ == "__main__":
    main()
