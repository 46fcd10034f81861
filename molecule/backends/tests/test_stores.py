"""The image service with four named stores (rbd `fast`, s3 `cheap`, swift `objects`, file
`local`, the default) and the read-only http store: every store takes a 64 MiB image, gives the
same bytes back, holds it where its own tool sees it, and loses it on delete; copy-image moves
data between stores; an image by http location serves nginx's file."""

from __future__ import annotations

import hashlib
import json
import os
import shlex
import time
import uuid

import pytest
from conftest import env

MiB = 1024 * 1024
SIZE_MIB = 64
STORES = ["fast", "cheap", "objects", "local"]


def new_image(api, name: str) -> str:
    body = {"name": name, "disk_format": "raw", "container_format": "bare"}
    return api.request("POST", "/images", 201, json=body).json()["id"]


def wait_for(predicate, what: str, timeout: float = 300, step: float = 1):
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(step)


def download_sha512(api, image_id: str) -> tuple[str, int, float]:
    start = time.monotonic()
    digest, size = hashlib.sha512(), 0
    with api.request("GET", f"/images/{image_id}/file", 200, stream=True) as resp:
        for chunk in resp.iter_content(MiB):
            digest.update(chunk)
            size += len(chunk)
    return digest.hexdigest(), size, time.monotonic() - start


def locations(api, image_id: str) -> list[dict]:
    return api.request("GET", f"/images/{image_id}/locations", 200).json()


# --- where each store keeps an image, asked with the backend's own tool ----------------------


def in_rbd(ceph, image_id: str) -> bool:
    return image_id in json.loads(ceph.check_output("rbd ls --format json images"))


def in_s3(s3, image_id: str) -> bool:
    listing = s3.list_objects_v2(Bucket="glance", Prefix=image_id)
    return any(o["Key"].startswith(image_id) for o in listing.get("Contents", []))


def in_swift(objects, image_id: str) -> bool:
    # The `swift` client on the Swift host, as the image service's own Keystone user.
    auth = {
        "OS_AUTH_URL": env("AUTH_URL"),
        "OS_USERNAME": "glance",
        "OS_PASSWORD": env("GLANCE_PASSWORD"),
        "OS_PROJECT_NAME": "service",
        "OS_USER_DOMAIN_NAME": "Default",
        "OS_PROJECT_DOMAIN_NAME": "Default",
        "OS_IDENTITY_API_VERSION": "3",
    }
    prefix = " ".join(f"{k}={shlex.quote(v)}" for k, v in auth.items())
    out = objects.run(f"{prefix} swift list glance --prefix {image_id}")
    assert out.rc == 0, out.stderr
    return any(line.startswith(image_id) for line in out.stdout.split())


def in_file(ctl, image_id: str, url: str) -> bool:
    assert url.startswith("file://"), url
    return ctl.file(url[len("file://") :]).exists


@pytest.fixture(scope="module")
def present(ctl, ceph, s3, objects):
    """present[store](image_id, location_url) -> whether the store's backend holds the image."""
    return {
        "fast": lambda image_id, url: in_rbd(ceph, image_id),
        "cheap": lambda image_id, url: in_s3(s3, image_id),
        "objects": lambda image_id, url: in_swift(objects, image_id),
        "local": lambda image_id, url: in_file(ctl, image_id, url),
    }


# --- tests -------------------------------------------------------------------------------------


def test_info_stores_lists_every_store_with_the_default(api):
    stores = {s["id"]: s for s in api.request("GET", "/info/stores", 200).json()["stores"]}
    assert set(stores) == {*STORES, "http"}
    assert [name for name, s in stores.items() if s.get("default")] == ["local"]
    assert str(stores["http"].get("read-only")).lower() == "true"


def round_trip(api, present, store: str) -> tuple[float, float]:
    """Upload 64 MiB to ``store``, check it there and back, delete it; (upload s, download s)."""
    data = os.urandom(SIZE_MIB * MiB)
    sha512 = hashlib.sha512(data).hexdigest()
    image_id = new_image(api, f"backends-{store}-{uuid.uuid4().hex[:6]}")
    location = None
    try:
        start = time.monotonic()
        api.request(
            "PUT",
            f"/images/{image_id}/file",
            204,
            data=data,
            headers={"Content-Type": "application/octet-stream", "X-Image-Meta-Store": store},
        )
        up = time.monotonic() - start
        del data
        image = api.request("GET", f"/images/{image_id}", 200).json()
        assert image["status"] == "active"
        assert image["stores"] == store
        assert image["size"] == SIZE_MIB * MiB
        assert (image["os_hash_algo"], image["os_hash_value"]) == ("sha512", sha512)

        back, size, down = download_sha512(api, image_id)
        assert (back, size) == (sha512, SIZE_MIB * MiB)

        [location] = locations(api, image_id)
        assert location["metadata"]["store"] == store
        assert present[store](image_id, location["url"]), f"{store}: {location['url']} not in the backend"
    finally:
        api.request("DELETE", f"/images/{image_id}", (204, 404))
    wait_for(lambda: not present[store](image_id, location["url"]), f"{store} to drop {image_id}", 60)
    return up, down


@pytest.mark.parametrize("store", STORES)
def test_store_round_trip(api, present, throughput, store):
    # Twice: the first write to a store may pay one-time costs (the RADOS Gateway creates its
    # data pool on the first object, Swift its container); both are reported.
    for attempt in ("first", "second"):
        up, down = round_trip(api, present, store)
        for direction, seconds in (("upload", up), ("download", down)):
            throughput.append(
                {
                    "store": store,
                    "attempt": attempt,
                    "direction": direction,
                    "mib": SIZE_MIB,
                    "seconds": round(seconds, 3),
                    "mb_s": round(SIZE_MIB * MiB / seconds / 1e6, 1),
                }
            )


def test_copy_image_from_local_to_fast(api, present):
    data = os.urandom(16 * MiB)
    sha512 = hashlib.sha512(data).hexdigest()
    image_id = new_image(api, "backends-copy")
    try:
        api.request(
            "PUT",
            f"/images/{image_id}/file",
            204,
            data=data,
            headers={"Content-Type": "application/octet-stream"},
        )
        assert api.request("GET", f"/images/{image_id}", 200).json()["stores"] == "local"
        body = {"method": {"name": "copy-image"}, "stores": ["fast"]}
        api.request("POST", f"/images/{image_id}/import", 202, json=body)

        def copied():
            image = api.request("GET", f"/images/{image_id}", 200).json()
            assert not image.get("os_glance_failed_import"), image
            return image if set(image["stores"].split(",")) == {"local", "fast"} else None

        image = wait_for(copied, "the copy to fast")
        assert image["os_hash_value"] == sha512
        by_store = {loc["metadata"]["store"]: loc["url"] for loc in locations(api, image_id)}
        assert set(by_store) == {"local", "fast"}
        assert present["fast"](image_id, by_store["fast"])
        assert present["local"](image_id, by_store["local"])
        assert download_sha512(api, image_id)[:2] == (sha512, 16 * MiB)
    finally:
        api.request("DELETE", f"/images/{image_id}", (204, 404))
    wait_for(lambda: not present["fast"](image_id, by_store["fast"]), "rbd to drop the copy", 60)
    assert not present["local"](image_id, by_store["local"])


def test_image_by_http_location_serves_nginx_file(api, objects):
    url = env("HTTP_URL") + "sample.raw"
    sha512 = objects.check_output("sha512sum /srv/http-store/images/sample.raw").split()[0]
    size = int(objects.check_output("stat -c %s /srv/http-store/images/sample.raw"))
    image_id = new_image(api, "backends-http")
    try:
        body = {"url": url, "validation_data": {"os_hash_algo": "sha512", "os_hash_value": sha512}}
        api.request("POST", f"/images/{image_id}/locations", 202, json=body)

        def active():
            image = api.request("GET", f"/images/{image_id}", 200).json()
            assert image["status"] in ("queued", "importing", "active"), image
            return image if image["status"] == "active" else None

        image = wait_for(active, "the location import")
        assert (image["size"], image["os_hash_value"]) == (size, sha512)
        assert download_sha512(api, image_id)[:2] == (sha512, size)
    finally:
        api.request("DELETE", f"/images/{image_id}", (204, 404))
    # The http store is read-only: deleting the image leaves nginx's file alone.
    assert objects.file("/srv/http-store/images/sample.raw").exists
