"""Bad input on every route: never a 5xx, never a dropped connection, a 4xx always says why.

The routes come from the router's own table (``api/routes.py::routes()``), so a new route
is fuzzed without editing this file. Each (route, method) gets fixed cases (malformed JSON,
deep nesting, lone surrogates, NaN, non-UTF-8, wrong types, 1 MiB strings, NUL, emoji, RTL,
bad ids, bad filters/sort keys/markers/limits, wrong content types, bad Range, bad
Content-Length) and seeded random mutations of a valid body. The requests go over raw
sockets (so that broken framing can be sent) to real glance-api + glance-registry processes,
multi-store and image cache on, so the registry path is covered.

Reproduce a failure with the seed it prints, by node id (the method and the template):
``FUZZ_SEED=<seed> pytest 'tests/functional/test_fuzz_routes.py::test_fuzz_route[POST /v2/tasks]'``.
Each (route, method) has its own generator (seeded from the seed, the method and the
template), so a new route does not change the cases of the others. A longer hunt:
``FUZZ_RANDOM_BODIES=40`` and a few seeds; ``FUZZ_LOG=<file>`` writes every answer.
"""

from __future__ import annotations

import copy
import http.client
import json
import os
import random
import re
import socket
import time
import uuid
from collections.abc import Iterator
from urllib.parse import quote

import pytest
import requests

from glance_service.api.routes import routes
from tests.fixtures.glance_procs import GlanceProcs, start_glance

SEED = int(os.environ.get("FUZZ_SEED", "20261122"))
# seeded mutations of a valid body, per (route, method) that takes one (raise it for a longer run)
RANDOM_BODIES = int(os.environ.get("FUZZ_RANDOM_BODIES", "6"))
MiB = 1024 * 1024
PROJECT = f"fuzz-{random.Random(SEED).getrandbits(48):012x}"
MEMBER = "fuzz-member"
PATCH_V21 = "application/openstack-images-v2.1-json-patch"
PATCH_V20 = "application/openstack-images-v2.0-json-patch"
OCTET = "application/octet-stream"
UNREACHABLE = "http://127.0.0.1:9/fuzz"  # loopback, refused: imports fail fast, nothing leaves the host

# Every method the router can be asked, in the order the cases run: deletes last, so the
# fixtures they may remove serve the other methods first.
METHOD_ORDER = ("GET", "HEAD", "POST", "PUT", "PATCH", "OPTIONS", "DELETE")


def _route_methods() -> list[tuple[str, str, tuple[str, ...]]]:
    """(template, method, handled methods) for every route and method of the table, plus
    one method each route does not handle (405)."""
    out = []
    for route in routes():
        handled = tuple(route.handlers)
        for method in sorted(set(handled) | {"OPTIONS"}, key=METHOD_ORDER.index):
            out.append((route.template, method, handled))
    out.sort(key=lambda item: item[1] == "DELETE")
    return out


ROUTE_METHODS = _route_methods()


# -- the service ---------------------------------------------------------------------------
@pytest.fixture(scope="module")
def fuzz_glance(tmp_path_factory) -> Iterator[GlanceProcs]:
    work = tmp_path_factory.mktemp("fuzz")
    extra = {
        "DEFAULT": {
            "enabled_backends": "fast:file,cheap:file",
            "image_cache_dir": str(work / "cache"),
            "show_multiple_locations": "true",
            "show_image_direct_url": "true",
        },
        "glance_store": {"default_backend": "fast"},
        "fast": {"filesystem_store_datadir": str(work / "fast")},
        "cheap": {"filesystem_store_datadir": str(work / "cheap")},
        "os_glance_staging_store": {"filesystem_store_datadir": str(work / "staging")},
        "os_glance_tasks_store": {"filesystem_store_datadir": str(work / "tasks")},
        # web-download only ever reaches this host
        "import_filtering_opts": {"allowed_hosts": "[127.0.0.1]", "allowed_ports": "[]"},
    }
    procs = start_glance(work, extra_api=extra, workers=1)
    yield procs
    procs.stop()


NAMESPACE = {
    "namespace": "fuzz-ns",
    "visibility": "private",
    "protected": True,
    "properties": {"p1": {"title": "P", "type": "string"}},
    "objects": [{"name": "o1", "properties": {"q": {"title": "Q", "type": "integer"}}}],
    "tags": [{"name": "t1"}],
    "resource_type_associations": [{"name": "OS::Glance::Image", "prefix": "fz_"}],
}


class Fixtures:
    """Resources the valid path variables name, made by the fuzz project's admin, and put
    back (``ensure``) after cases that may have changed or removed them."""

    def __init__(self, base: str):
        self.base = base
        self.session = requests.Session()
        self.headers = {"X-Project-Id": PROJECT, "X-User-Id": "fuzz-user", "X-Roles": "admin,member,reader"}
        self.active = self.queued = ""
        self.dirty = False
        self.task = self._task()
        self.ensure()

    def _call(self, method: str, path: str, headers: dict | None = None, **kw) -> requests.Response:
        headers = {**self.headers, **(headers or {})}
        return self.session.request(method, self.base + path, headers=headers, timeout=30, **kw)

    def _ok(self, method: str, path: str, **kw) -> requests.Response:
        resp = self._call(method, path, **kw)
        assert resp.status_code < 300, f"fixture {method} {path}: {resp.status_code} {resp.text}"
        return resp

    def _patch(self, image_id: str, ops: list) -> None:
        self._ok("PATCH", f"/v2/images/{image_id}", json=ops, headers={"Content-Type": PATCH_V21})

    def _new_image(self, data: bytes | None = None) -> str:
        body = {"name": "fuzz", "disk_format": "raw", "container_format": "bare", "visibility": "shared"}
        image_id = self._ok("POST", "/v2/images", json=body).json()["id"]
        if data is not None:
            self._ok("PUT", f"/v2/images/{image_id}/file", data=data, headers={"Content-Type": OCTET})
        return image_id

    def _task(self) -> str:
        image_id = self._new_image()
        self._ok(
            "POST",
            f"/v2/images/{image_id}/import",
            json={"method": {"name": "web-download", "uri": UNREACHABLE}},
        )
        tasks = self._ok("GET", f"/v2/images/{image_id}/tasks").json()["tasks"]
        return tasks[0]["id"] if tasks else str(uuid.uuid4())

    def _image(self, image_id: str, status: str) -> str:
        """``image_id`` back to a protected, shared image of ours with tag t1 (a new image
        when it is gone or no longer in ``status``)."""
        found = self._call("GET", f"/v2/images/{image_id}") if image_id else None
        if found is not None and found.status_code == 200 and found.json()["status"] == "deactivated":
            self._ok("POST", f"/v2/images/{image_id}/actions/reactivate")
            found = self._call("GET", f"/v2/images/{image_id}")
        if found is None or found.status_code != 200 or found.json()["status"] != status:
            image_id = self._new_image(b"fuzz" * 256 if status == "active" else None)
            found = self._ok("GET", f"/v2/images/{image_id}")
        image = found.json()
        want = {"protected": True, "visibility": "shared", "owner": PROJECT}
        ops = [{"op": "replace", "path": f"/{k}", "value": v} for k, v in want.items() if image.get(k) != v]
        if ops:
            self._patch(image_id, ops)
        if "t1" not in image.get("tags", []):
            self._ok("PUT", f"/v2/images/{image_id}/tags/t1")
        members = self._ok("GET", f"/v2/images/{image_id}/members").json()["members"]
        if not any(m["member_id"] == MEMBER for m in members):
            self._ok("POST", f"/v2/images/{image_id}/members", json={"member": MEMBER})
        return image_id

    def _namespace(self) -> None:
        path = "/v2/metadefs/namespaces/fuzz-ns"
        found = self._call("GET", path)
        if found.status_code == 404:
            self._ok("POST", "/v2/metadefs/namespaces", json=NAMESPACE)
            return
        ns = found.json()
        if not ns.get("protected") or ns.get("owner") != PROJECT:
            self._ok("PUT", path, json={"namespace": "fuzz-ns", "protected": True, "owner": PROJECT})
        if "p1" not in ns.get("properties", {}):
            self._ok("POST", path + "/properties", json={"name": "p1", **NAMESPACE["properties"]["p1"]})
        if not any(o["name"] == "o1" for o in ns.get("objects", [])):
            self._ok("POST", path + "/objects", json=NAMESPACE["objects"][0])
        if not any(t["name"] == "t1" for t in ns.get("tags", [])):
            self._ok("POST", path + "/tags/t1")
        if not ns.get("resource_type_associations"):
            self._ok("POST", path + "/resource_types", json=NAMESPACE["resource_type_associations"][0])

    def ensure(self) -> None:
        self.active = self._image(self.active, "active")
        self.queued = self._image(self.queued, "queued")
        self._namespace()
        self._ok("PUT", f"/v2/cache/{self.active}")

    def var(self, name: str, rng: random.Random) -> str:
        values = {
            "image_id": rng.choice([self.active, self.queued]),
            "member_id": MEMBER,
            "tag_value": "t1",
            "task_id": self.task,
            "store_id": rng.choice(["fast", "cheap"]),
            "namespace": "fuzz-ns",
            "resource_type": "OS::Glance::Image",
            "property_name": "p1",
            "object_name": "o1",
            "tag_name": "t1",
        }
        return quote(values.get(name, str(uuid.UUID(int=rng.getrandbits(128)))), safe=":")


@pytest.fixture(scope="module")
def fixtures(fuzz_glance) -> Fixtures:
    return Fixtures(fuzz_glance.api_url)


# -- raw HTTP -----------------------------------------------------------------------------------
class Case:
    """One request, built as bytes: method, target (already %-encoded), headers, body."""

    def __init__(
        self,
        what: str,
        method: str,
        target: str,
        headers: dict[str, str | bytes] | None = None,
        body: bytes | None = None,
        *,
        content_length: str | None = "auto",
        half_close: bool = False,
    ):
        self.what = what
        self.method = method
        self.target = target
        self.headers = dict(headers or {})
        self.body = body
        self.content_length = content_length
        self.half_close = half_close

    def describe(self) -> str:
        body = (
            "" if self.body is None else f" body={self.body[:120]!r}{'...' if len(self.body) > 120 else ''}"
        )
        return f"[{self.what}] {self.method} {self.target[:200]} headers={self.headers}{body}"

    def encode(self, host: str, identity: dict[str, str]) -> bytes:
        lines = [f"{self.method} {self.target} HTTP/1.1".encode("latin-1"), f"Host: {host}".encode()]
        headers: dict[str, str | bytes] = {**identity, **self.headers}
        if self.body is not None and self.content_length == "auto":
            headers["Content-Length"] = str(len(self.body))
        elif self.content_length not in (None, "auto"):
            headers["Content-Length"] = self.content_length
        for name, value in headers.items():
            raw = value if isinstance(value, bytes) else value.encode("latin-1")
            lines.append(name.encode("latin-1") + b": " + raw)
        return b"\r\n".join(lines) + b"\r\n\r\n" + (self.body or b"")


def send(base: str, case: Case, identity: dict[str, str], timeout: float = 30.0) -> tuple[int, dict, bytes]:
    host, port = base.removeprefix("http://").split(":")
    with socket.create_connection((host, int(port)), timeout=timeout) as sock:
        sock.sendall(case.encode(f"{host}:{port}", identity))
        if case.half_close:
            sock.shutdown(socket.SHUT_WR)
        resp = http.client.HTTPResponse(sock, method=case.method)
        resp.begin()
        body = resp.read()
        return resp.status, {k.lower(): v for k, v in resp.getheaders()}, body


def problem(case: Case, status: int, headers: dict, body: bytes) -> str | None:
    """Why this answer is wrong, or None."""
    if status >= 500:
        return f"{status}: {body[:300]!r}"
    if 400 <= status < 500 and case.method != "HEAD":
        text = body.decode("utf-8", "replace")
        if "json" in headers.get("content-type", ""):
            try:
                message = str(json.loads(text).get("message", ""))
            except (ValueError, AttributeError):
                return f"{status} with a JSON body that does not parse: {text[:200]!r}"
        else:
            message = re.sub(r"<[^>]*>", " ", text)
        title = http.client.responses.get(status, "")
        if not message.replace(title, "").replace(str(status), "").strip():
            return f"{status} without a message: {text[:200]!r}"
    return None


# -- odd values -------------------------------------------------------------------------------
LONE = "\ud800"
ODD_STRINGS = [
    "",
    " ",
    "a\x00b",
    "\x00",
    "\U0001f600\U0001f4a9",
    "\u202eevil\u202c",  # RTL override
    "\u05e9\u05dc\u05d5\u05dd",  # Hebrew (RTL)
    "\ufeff",
    "\ufffd",
    "x" * 256,
    "y" * 65536,
    "../../etc/passwd",
    "%00%ff",
    "<script>",
    "os_glance_x",
    "\\",
    '"',
    "a:b:c",
    "in:a,b",
    "\t\r\n",
    "\ud83d\ude00",  # a surrogate pair written as two characters (json.dumps keeps it a pair)
    LONE,
    "a" + LONE + "b",
    "\udfff",
]
ODD_VALUES: list = [
    None,
    True,
    False,
    0,
    -1,
    2**31,
    2**63,
    2**64 + 1,
    -(2**70),
    1.5,
    1e308,
    -0.0,
    [],
    {},
    [None],
    [LONE],
    {"": ""},
    {LONE: 1},
    ["a"] * 1000,
    [[[[[[[[]]]]]]]],
    {"a": {"b": {"c": {"d": {}}}}},
    *ODD_STRINGS,
]

# Raw bodies no JSON reader may accept (besides the per-route ones built below).
RAW_BODIES = [
    ("truncated", b'{"name": '),
    ("trailing-comma", b'{"a": 1,}'),
    ("single-quotes", b"{'a': 1}"),
    ("nested-50000", b"[" * 50000),
    ("nested-objects", b'{"a":' * 30000),
    ("nested-closed-900", b"[" * 900 + b"]" * 900),
    ("nested-closed-33", b"[" * 33 + b"]" * 33),
    ("nested-dict-500", b'{"a":' * 500 + b"1" + b"}" * 500),
    ("NaN", b'{"name": NaN, "min_disk": NaN}'),
    ("Infinity", b'{"min_ram": Infinity}'),
    ("1e999", b'{"min_ram": 1e999, "minimum": 1e999}'),
    ("huge-int", b'{"min_disk": 1' + b"0" * 5000 + b"}"),
    ("latin-1", b'{"name": "caf\xe9"}'),
    ("invalid-utf8", b"\xff\xfe\xfd"),
    ("utf8-surrogate-bytes", b'{"name": "\xed\xa0\x80"}'),
    ("utf16", '{"name": "x"}'.encode("utf-16")),
    ("bom", b'\xef\xbb\xbf{"name": "x"}'),
    ("lone-surrogate", rb'{"name": "\ud800"}'),
    ("lone-surrogate-key", rb'{"\udc00": "x"}'),
    ("lone-surrogate-array", rb'[{"op": "add", "path": "/x", "value": "\ud800"}]'),
    ("scalar", b"42"),
    ("string", b'"hello"'),
    ("null", b"null"),
    ("true", b"true"),
    ("empty-object", b"{}"),
    ("empty-array", b"[]"),
    ("array-of-scalars", b"[1, 2, 3]"),
    ("whitespace", b" \n\t "),
    ("nul-bytes", b"\x00" * 64),
    ("duplicate-keys", b'{"name": "a", "name": 5}'),
]


def _one_mib(template: object) -> bytes:
    """``template`` with its first string replaced by 1 MiB of text (or a 1 MiB document)."""
    big = "z" * MiB
    if isinstance(template, dict) and template:
        key = next(iter(template))
        return json.dumps({**template, key: big}).encode()
    if isinstance(template, list) and template and isinstance(template[0], dict):
        return json.dumps([{**template[0], "value": big}] + template[1:]).encode()
    return json.dumps({"name": big}).encode()


# Valid bodies per (method, template), mutated by the random cases. A route missing here is
# fuzzed with generic documents.
_NS = "/v2/metadefs/namespaces/{namespace}"
_PROPERTY = {"name": "p2", "title": "T", "type": "string", "enum": ["a"], "minimum": 0, "maxLength": 5}
_OBJECT = {
    "name": "o2",
    "description": "d",
    "required": ["p"],
    "properties": {"p": {"title": "P", "type": "integer"}},
}
BODIES: dict[tuple[str, str], object] = {
    ("POST", "/v2/images"): {
        "name": "n",
        "disk_format": "raw",
        "container_format": "bare",
        "tags": ["a"],
        "min_disk": 0,
        "visibility": "private",
        "custom": "v",
    },
    ("PATCH", "/v2/images/{image_id}"): [
        {"op": "replace", "path": "/name", "value": "n"},
        {"op": "add", "path": "/custom", "value": "v"},
        {"op": "add", "path": "/tags", "value": ["x"]},
        {"op": "add", "path": "/locations/-", "value": {"url": UNREACHABLE, "metadata": {}}},
        {"op": "remove", "path": "/custom"},
    ],
    ("POST", "/v2/images/{image_id}/members"): {"member": "other-project"},
    ("PUT", "/v2/images/{image_id}/members/{member_id}"): {"status": "accepted"},
    ("POST", "/v2/images/{image_id}/import"): {
        "method": {"name": "web-download", "uri": UNREACHABLE},
        "stores": ["cheap"],
        "all_stores": False,
        "all_stores_must_succeed": True,
    },
    ("POST", "/v2/images/{image_id}/locations"): {
        "url": UNREACHABLE,
        "validation_data": {"os_hash_algo": "sha256", "os_hash_value": "0" * 64},
    },
    ("POST", "/v2/tasks"): {
        "type": "import",
        "input": {
            "import_from": UNREACHABLE,
            "import_from_format": "raw",
            "image_properties": {"name": "t", "container_format": "bare"},
        },
    },
    ("POST", "/v2/metadefs/namespaces"): {
        "namespace": "fz",
        "display_name": "d",
        "description": "d",
        "visibility": "private",
        "protected": False,
        "properties": {"p": {"title": "T", "type": "string"}},
        "objects": [_OBJECT],
        "tags": [{"name": "t"}],
        "resource_type_associations": [{"name": "OS::Nova::Flavor", "prefix": "hw_"}],
    },
    ("PUT", _NS): {"namespace": "fuzz-ns", "display_name": "d", "visibility": "private", "protected": True},
    ("POST", _NS + "/resource_types"): {
        "name": "OS::Nova::Flavor",
        "prefix": "hw_",
        "properties_target": "image",
    },
    ("POST", _NS + "/properties"): _PROPERTY,
    ("PUT", _NS + "/properties/{property_name}"): {**_PROPERTY, "name": "p1"},
    ("POST", _NS + "/objects"): _OBJECT,
    ("PUT", _NS + "/objects/{object_name}"): {**_OBJECT, "name": "o1"},
    ("POST", _NS + "/tags"): {"tags": [{"name": "a"}, {"name": "b"}]},
    ("POST", _NS + "/tags/{tag_name}"): {"name": "t2"},
    ("PUT", _NS + "/tags/{tag_name}"): {"name": "t1"},
}
DATA_ROUTES = {("PUT", "/v2/images/{image_id}/file"), ("PUT", "/v2/images/{image_id}/stage")}


def _slots(doc: object, out: list) -> list:
    """Every (container, key) in ``doc``: places a mutation can replace."""
    if isinstance(doc, dict):
        for key, value in doc.items():
            out.append((doc, key))
            _slots(value, out)
    elif isinstance(doc, list):
        for i, value in enumerate(doc):
            out.append((doc, i))
            _slots(value, out)
    return out


def _odd(rng: random.Random) -> object:
    return copy.deepcopy(rng.choice(ODD_VALUES))


def mutate(template: object, rng: random.Random) -> object:
    doc = copy.deepcopy(template)
    for _ in range(rng.randint(1, 3)):
        slots = _slots(doc, [])
        action = rng.random()
        if not slots or action < 0.05:
            return _odd(rng)
        container, key = rng.choice(slots)
        if action < 0.75:
            container[key] = _odd(rng)
        elif action < 0.85 and isinstance(container, dict):
            del container[key]
        elif isinstance(container, dict):
            container[rng.choice(ODD_STRINGS)] = _odd(rng)
        else:
            container.append(_odd(rng))
    return doc


def dump(doc: object) -> bytes:
    # ensure_ascii: lone surrogates go out as \udXXX escapes, as a client's JSON encoder sends them
    return json.dumps(doc).encode()


# -- path, query and header cases ----------------------------------------------------------------
BAD_IDS = [
    "not-a-uuid",
    "00000000-0000-0000-0000-000000000000",
    "x" * 1000,
    "x" * 9000,  # past gunicorn's request line limit
    "%00",
    "a%00b",
    "%FF",
    "%ED%A0%80",  # a UTF-8 encoded lone surrogate
    "%C0%AF",  # overlong '/'
    "%F0%9F%98%80",  # emoji
    "%E2%80%AE",  # RTL override
    "%D7%A9%D7%9C%D7%95%D7%9D",
    "%2F",
    "..",
    "%20",
    "%",
    "%zz",
    "%25",
    "a;b=c",
    "os_glance_x",
    "\xff",  # raw bytes, not %-encoded: 0xff
    "\xc3\xa9",  # raw UTF-8 bytes of U+00E9
    "\xed\xa0\x80",  # raw UTF-8 bytes of a lone surrogate
]
QUERIES = [
    "limit=-1",
    "limit=abc",
    "limit=" + "9" * 40,
    "limit=",
    "limit=1.5",
    "marker=not-a-uuid",
    "marker=00000000-0000-0000-0000-000000000000",
    "marker=%ED%A0%80",
    "marker=" + "m" * 3000,
    "marker=%00",
    "sort_key=bad",
    "sort_key=name&sort_dir=up",
    "sort_key=name&sort_key=size&sort_dir=asc&sort_dir=desc&sort_dir=asc",
    "sort=name:up",
    "sort=,,,",
    "sort=:",
    "sort=name&sort_key=name",
    "sort_dir=%FF",
    "size_min=abc",
    "size_max=" + "9" * 40,
    "bogus_min=1",
    "created_at=gt:notatime",
    "updated_at=zz:2020-01-01T00:00:00Z",
    "created_at=gt:" + "2" * 50,
    "created_at=lt:9999-12-31T23:59:59-23:59",  # past datetime's range once in UTC
    'name=in:"unclosed',
    'name=in:a,"b"c',
    "id=in:,,,",
    "name=eq:%00",
    "name=%F0%9F%98%80",
    "visibility=bad",
    "member_status=bad",
    "os_hidden=maybe",
    "protected=True",
    "changes-since=2020",
    "tag=&tag=%00",
    "status=in:" + ",".join(["x"] * 500),
    "%FF=1",
    "a=%ED%A0%80",
    "%ZZ=%",
    "resource_types=%00,,%FF",
    "resource_type=OS::Glance::Image",
    "type=bad&status=bad",
    "=&&=&;",
    "x=" + "q" * 4000,
    "name=\xff\xfe",  # raw bytes
    "name=\xed\xa0\x80",
]
RANGES = [
    "bytes=",
    "bytes=-",
    "bytes=5-1",
    "bytes=0-0,2-3",
    "bytes=99999999999999999999999999-",
    "bytes=-99999999999999999999999999",
    "bytes=-0",
    "items=0-1",
    "bytes=abc",
    "bytes=1-2-3",
    "bytes=0-0",
    "bytes=1000000-",
    "bytes =0-1",
    "bytes=" + "9" * 5000 + "-",  # int() refuses more than 4300 digits
    "bytes=-" + "9" * 5000,
]
ODD_HEADERS = [
    {"Accept": "application/vnd.openstack.images-v9"},
    {"Accept": "*/*;q=x"},
    {"Accept": b"\xff\xfe"},
    {"Content-Type": "application/json; charset=latin-1"},
    {"Content-Type": b"application/\xffjson"},
    {"X-Openstack-Request-Id": "r" * 3000},
    {"X-Openstack-Request-Id": b"req-\xff"},
    {"X-Image-Meta-Store": "nope"},
    {"X-Image-Meta-Store": b"\xff"},
    {"X-Openstack-Append": "maybe"},
    {"x-image-cache-clear-target": "everything"},
    {"x-openstack-image-size": "-1"},
    {"X-Project-Id": b"caf\xe9", "X-Roles": "member,reader"},
    {"X-Roles": ""},
]


def _json_cases(method: str, template: str, target: str, rng: random.Random) -> list[Case]:
    json_type = PATCH_V21 if method == "PATCH" else "application/json"
    known = BODIES.get((method, template), {"name": "n", "value": ["v"]})
    cases = [Case(name, method, target, {"Content-Type": json_type}, body) for name, body in RAW_BODIES]
    cases.append(Case("1MiB-string", method, target, {"Content-Type": json_type}, _one_mib(known)))
    cases.append(Case("valid", method, target, {"Content-Type": json_type}, dump(known)))
    for i in range(RANDOM_BODIES):
        cases.append(
            Case(f"random-{i}", method, target, {"Content-Type": json_type}, dump(mutate(known, rng)))
        )
    for ctype in ("text/plain", None, "application/x-www-form-urlencoded", "multipart/form-data; boundary=x"):
        headers = {"Content-Type": ctype} if ctype else {}
        cases.append(Case(f"content-type={ctype}", method, target, headers, dump(known)))
    if method == "PATCH":
        cases.append(
            Case("patch-v2.0", method, target, {"Content-Type": PATCH_V20}, dump(mutate(known, rng)))
        )
        cases.append(Case("patch-as-json", method, target, {"Content-Type": "application/json"}, dump(known)))
        cases.append(
            Case("patch-charset", method, target, {"Content-Type": PATCH_V21 + "; charset=utf-8"}, b"[]")
        )
    return cases


def _data_cases(method: str, target: str) -> list[Case]:
    octet = {"Content-Type": "application/octet-stream"}
    return [
        Case("no-content-type", method, target, {}, b"data"),
        Case("json-content-type", method, target, {"Content-Type": "application/json"}, b"{}"),
        Case("size-negative", method, target, {**octet, "x-openstack-image-size": "-5"}, b"data"),
        Case("size-huge", method, target, {**octet, "x-openstack-image-size": "9" * 40}, b"data"),
        Case("size-mismatch", method, target, {**octet, "x-openstack-image-size": "3"}, b"data"),
        Case("size-text", method, target, {**octet, "x-openstack-image-size": "abc"}, b"data"),
        Case("size-5000-digits", method, target, {**octet, "x-openstack-image-size": "9" * 5000}, b"data"),
        Case("store-unknown", method, target, {**octet, "X-Image-Meta-Store": "nope"}, b"data"),
        Case("store-bytes", method, target, {**octet, "X-Image-Meta-Store": b"\xe9\xff"}, b"data"),
    ]


def _transport_cases(method: str, target: str) -> list[Case]:
    """Broken framing: bad or lying Content-Length, broken chunked bodies."""
    ctype = {"Content-Type": "application/json"}
    chunked = {**ctype, "Transfer-Encoding": "chunked"}
    return [
        Case("cl-text", method, target, ctype, b"{}", content_length="abc"),
        Case("cl-negative", method, target, ctype, b"{}", content_length="-1"),
        Case("cl-huge", method, target, ctype, b"{}", content_length="9" * 30, half_close=True),
        Case(
            "cl-longer-than-body",
            method,
            target,
            ctype,
            b'{"name": "x"}',
            content_length="100",
            half_close=True,
        ),
        Case("cl-shorter-than-body", method, target, ctype, b'{"name": "x"}', content_length="5"),
        Case(
            "cl-twice",
            method,
            target,
            {**ctype, "Content-Length": "2", "content-length": "3"},
            b"{}",
            content_length=None,
        ),
        Case("chunked-bad-size", method, target, chunked, b"zz\r\n{}\r\n0\r\n\r\n", content_length=None),
        Case("chunked-truncated", method, target, chunked, b"10\r\n{}", content_length=None, half_close=True),
        Case(
            "chunked-and-cl",
            method,
            target,
            {**chunked, "Content-Length": "6"},
            b"2\r\n{}\r\n0\r\n\r\n",
            content_length=None,
        ),
    ]


def cases_for(template: str, method: str, handled: tuple[str, ...], fx: Fixtures) -> list[Case]:
    rng = random.Random(f"{SEED}:{method}:{template}")

    def path(bad: dict[str, str] | None = None) -> str:
        return re.sub(
            r"\{(\w+)\}", lambda m: (bad or {}).get(m.group(1)) or fx.var(m.group(1), rng), template
        )

    target = path()
    names = re.findall(r"\{(\w+)\}", template)
    cases = [Case("plain", method, target)]
    if method not in handled:  # 405, whatever else is wrong
        cases += [
            Case(n, method, target, {"Content-Type": "application/json"}, b)
            for n, b in rng.sample(RAW_BODIES, 3)
        ]
        cases.append(Case("bad-id", method, path({n: rng.choice(BAD_IDS) for n in names})))
        return cases + rng.sample(_transport_cases(method, target), 2)
    # bad path segments, one variable at a time
    for name in names:
        sample = rng.sample(BAD_IDS, 10 if method == "GET" else 5)
        cases += [Case(f"{name}={bad[:20]}", method, path({name: bad})) for bad in sample]
    # bad query strings (all for GET collections, a sample elsewhere)
    sample = QUERIES if method == "GET" and not names else rng.sample(QUERIES, 6)
    cases += [Case(f"query {q[:30]}", method, f"{target}?{q}") for q in sample]
    cases += [Case(f"header {list(h)[0]}", method, target, h) for h in rng.sample(ODD_HEADERS, 4)]
    if method == "GET" and template.endswith("/file"):
        cases += [Case(f"range {r}", method, target, {"Range": r}) for r in RANGES]
        cases.append(Case("range-bytes", method, target, {"Range": b"bytes=\xff-"}))
    if (method, template) in DATA_ROUTES:
        cases += _data_cases(method, target)
    elif method in ("POST", "PUT", "PATCH"):
        cases += _json_cases(method, template, target, rng)
    else:
        # GET/DELETE: a body is refused (or at least must not break anything)
        cases += [
            Case(n, method, target, {"Content-Type": "application/json"}, b)
            for n, b in rng.sample(RAW_BODIES, 4)
        ]
    transport = _transport_cases(method, target)
    cases += transport if method in ("POST", "PUT", "PATCH") else rng.sample(transport, 3)
    return cases


def identity(rng: random.Random) -> dict[str, str]:
    roles = "admin,member,reader" if rng.random() < 0.7 else "member,reader"
    return {"X-Project-Id": PROJECT, "X-User-Id": "fuzz-user", "X-Roles": roles, "Accept": "application/json"}


# -- the tests --------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("template", "method", "handled"),
    ROUTE_METHODS,
    ids=[f"{m} {t}" for t, m, _ in ROUTE_METHODS],
)
def test_fuzz_route(fuzz_glance, fixtures, template, method, handled):
    rng = random.Random(f"{SEED}:identity:{method}:{template}")
    if fixtures.dirty:
        fixtures.ensure()
    fixtures.dirty = method not in ("GET", "HEAD", "OPTIONS")
    failures = []
    for case in cases_for(template, method, handled, fixtures):
        who = identity(rng)
        try:
            status, headers, body = send(fuzz_glance.api_url, case, who)
        except (OSError, http.client.HTTPException) as exc:
            failures.append(f"{case.describe()}\n    -> no reply: {type(exc).__name__}: {exc}")
            continue
        why = problem(case, status, headers, body)
        if os.environ.get("FUZZ_LOG"):
            with open(os.environ["FUZZ_LOG"], "a") as log:
                log.write(f"{status}\t{method} {template}\t{case.what}\t{body[:150]!r}\n")
        if why:
            failures.append(f"{case.describe()}\n    -> {why}")
    assert not failures, f"FUZZ_SEED={SEED}: {len(failures)} bad answers\n" + "\n".join(failures)


BODY_ROUTES = [(t, m) for t, m, handled in ROUTE_METHODS if m in handled and m in ("POST", "PUT", "PATCH")]


@pytest.mark.parametrize(("template", "method"), BODY_ROUTES, ids=[f"{m} {t}" for t, m in BODY_ROUTES])
def test_bad_body_is_400_before_any_lookup(fuzz_glance, template, method):
    """As in Glance, where the deserializer runs before the controller: a body that is not
    JSON is a 400 before the route's resources are looked up (these do not exist: a lookup
    would answer 404) and before the policy is checked (a reader may not write: 403)."""
    if (method, template) in DATA_ROUTES:
        pytest.skip("takes image data, not JSON")
    target = re.sub(r"\{(\w+)\}", "fuzz-missing", template)
    ctype = PATCH_V21 if method == "PATCH" else "application/json"
    who = {"X-Project-Id": "fuzz-reader", "X-Roles": "reader", "Accept": "application/json"}
    for body in (b'{"name": ', rb'{"name": "\ud800"}', b"[" * 50000, b"NaN"):
        case = Case("bad-body", method, target, {"Content-Type": ctype}, body)
        status, headers, reply = send(fuzz_glance.api_url, case, who)
        assert status == 400, f"{case.describe()} -> {status} {reply[:300]!r}"
        assert problem(case, status, headers, reply) is None


@pytest.mark.parametrize(
    ("method", "path", "ctype"),
    [
        ("GET", "/v2/nothing", "application/json"),  # 404 from the router
        ("OPTIONS", "/v2/images", "application/json"),  # 405
        ("GET", "/v2/images/{image_id}", "application/json"),  # a body is not expected: 400
        ("POST", "/v2/images/{image_id}/actions/deactivate", "application/json"),
        ("PATCH", "/v2/images/{image_id}", "application/json"),  # 415 before the body is read
        ("PUT", "/v2/images/{image_id}/file", "text/plain"),  # 415 from the upload
        ("POST", "/v2/images/{image_id}/members", "application/json"),
    ],
)
def test_refused_large_body_still_gets_its_answer(fuzz_glance, fixtures, method, path, ctype):
    """A request refused before its body is read: the body is still read (up to a bound), so
    that a client which sends the whole body before reading sees the 4xx, not a reset."""
    target = path.replace("{image_id}", fixtures.active)
    case = Case("8MiB", method, target, {"Content-Type": ctype}, b"{" + b" " * (8 * MiB))
    who = {"X-Project-Id": PROJECT, "X-Roles": "member,reader", "Accept": "application/json"}
    try:
        status, headers, body = send(fuzz_glance.api_url, case, who)
    except OSError as exc:
        pytest.fail(f"{case.describe()} -> no reply: {type(exc).__name__}: {exc}")
    assert 400 <= status < 500, (status, body[:300])
    assert problem(case, status, headers, body) is None


def test_services_survived(fuzz_glance):
    """Runs after the route tests: both processes still serve."""
    time.sleep(0.2)
    for url in (fuzz_glance.api_url, fuzz_glance.registry_url):
        assert requests.get(url + "/healthcheck", timeout=10).status_code == 200
    assert fuzz_glance.api.poll() is None and fuzz_glance.registry.poll() is None
