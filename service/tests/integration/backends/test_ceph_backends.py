"""The rbd and s3 stores on a real Ceph cluster: data round trip, what lands in the backend,
delete, and uploads cut off mid-way (no orphan RBD image, object or multipart upload)."""

from __future__ import annotations

import json
import os
import re

import pytest

from tests.functional.data.helpers import RawUpload
from tests.integration.backends.helpers import FIGURES, Client, MiB, wait_for

SIZE = 64 * MiB


class Backend:
    """What one backend holds, seen with the cluster's own tools (rbd CLI, boto3)."""

    def __init__(self, kind: str, ceph):
        self.kind = kind
        self.ceph = ceph

    def holds(self, image_id: str) -> bool:
        if self.kind == "rbd":
            return image_id in self.ceph.rbd_images()
        return image_id in self.ceph.s3_keys()

    def leftovers(self, image_id: str) -> list[str]:
        """Anything of ``image_id`` in the backend: image/object, or an unfinished multipart upload."""
        found = [image_id] if self.holds(image_id) else []
        if self.kind == "s3":
            found += [f"multipart:{k}" for k in self.ceph.s3_multipart_uploads() if k == image_id]
        return found

    def location_pattern(self) -> str:
        if self.kind == "rbd":
            return rf"rbd://{self.ceph.fsid}/{self.ceph.pool}/{{id}}/snap"
        return rf"s3://127\.0\.0\.1:{self.ceph.rgw_port}/{self.ceph.bucket}/{{id}}"


@pytest.fixture(params=["rbd", "s3"])
def backend(request, ceph) -> tuple[Client, Backend]:
    procs = request.getfixturevalue(f"glance_{request.param}")
    return Client(procs), Backend(request.param, ceph)


@pytest.mark.parametrize("chunked", [False, True], ids=["declared-size", "chunked"])
def test_round_trip_lands_in_the_backend_and_delete_removes_it(backend, chunked):
    client, store = backend
    image_id = client.new_image()
    sent_sha, up = client.upload(image_id, SIZE, chunked=chunked)

    image = client.get(f"/v2/images/{image_id}").json()
    assert (image["status"], image["size"]) == ("active", SIZE)
    assert (image["os_hash_algo"], image["os_hash_value"]) == ("sha512", sent_sha)
    assert store.holds(image_id)
    # glance_store's location form, so glance_store (which serves the download) reads it
    (location,) = client.locations(image_id)
    assert re.fullmatch(store.location_pattern().format(id=image_id), location), location

    got_sha, count, down = client.download(image_id)
    assert (count, got_sha) == (SIZE, sent_sha)
    mode = "chunked" if chunked else "declared"
    FIGURES.extend([(store.kind, f"upload 64 MiB {mode}", up), (store.kind, f"download 64 MiB {mode}", down)])

    assert client.delete(f"/v2/images/{image_id}").status_code == 204
    assert store.leftovers(image_id) == []


@pytest.mark.parametrize("chunked", [False, True], ids=["declared-size", "chunked"])
def test_cut_upload_leaves_no_orphan(backend, chunked):
    client, store = backend
    image_id = client.new_image()
    raw = RawUpload(client.base_url, image_id, client.headers(), length=SIZE, chunked=chunked)
    # past the first S3 part and the first RBD object: data really reached the backend
    for _ in range(24):
        raw.send(os.urandom(MiB))
    wait_for(lambda: client.status(image_id) == "saving")
    wait_for(lambda: store.leftovers(image_id), timeout=30)
    raw.close()
    wait_for(lambda: client.status(image_id) == "queued", timeout=30)
    wait_for(lambda: store.leftovers(image_id) == [], timeout=30)
    # the image takes a new upload afterwards
    sent_sha, _ = client.upload(image_id, 3 * MiB + 5, chunked=False)
    assert client.get(f"/v2/images/{image_id}").json()["os_hash_value"] == sent_sha


def test_wrong_declared_size_is_400_and_leaves_nothing(backend):
    client, store = backend
    image_id = client.new_image()
    resp = client.put(
        f"/v2/images/{image_id}/file",
        data=os.urandom(12 * MiB),
        headers={"Content-Type": "application/octet-stream", "x-openstack-image-size": str(13 * MiB)},
    )
    assert resp.status_code == 400, resp.text
    assert client.status(image_id) == "queued"
    assert store.leftovers(image_id) == []


def test_rbd_image_is_cloneable_and_exactly_sized(glance_rbd, ceph):
    # Unknown size: the image grew in large steps while writing and ends at the data's size, with
    # the protected snapshot that Nova/Cinder clone from.
    client = Client(glance_rbd)
    image_id = client.new_image()
    client.upload(image_id, 10 * MiB + 3, chunked=True)
    info = json.loads(ceph.rbd("info", "--format", "json", f"{ceph.pool}/{image_id}"))
    assert info["size"] == 10 * MiB + 3
    snaps = json.loads(ceph.rbd("snap", "ls", "--format", "json", f"{ceph.pool}/{image_id}"))
    assert [s["name"] for s in snaps] == ["snap"]
    protected = ceph.rbd("info", "--format", "json", f"{ceph.pool}/{image_id}@snap")
    assert json.loads(protected)["protected"] == "true"
    assert client.delete(f"/v2/images/{image_id}").status_code == 204
    assert image_id not in ceph.rbd_images()


def _rbd_state(ceph, image_id: str) -> dict:
    """What the pool holds of ``image_id``: images named after it, its snapshots, the trash."""
    names = [n for n in ceph.rbd_images() if image_id in n]
    snaps = []
    if image_id in names:
        for snap in json.loads(ceph.rbd("snap", "ls", "--format", "json", f"{ceph.pool}/{image_id}")):
            info = json.loads(ceph.rbd("info", "--format", "json", f"{ceph.pool}/{image_id}@{snap['name']}"))
            snaps.append((snap["name"], info["protected"]))
    trash = [t["name"] for t in json.loads(ceph.rbd("trash", "ls", "--format", "json", ceph.pool) or "[]")]
    return {"images": names, "snaps": snaps, "trash": [t for t in trash if image_id in t]}


def _listed(client: Client, image: dict) -> list[str]:
    found = client.get("/v2/images", params={"name": image["name"]}).json()["images"]
    return [i["id"] for i in found]


def test_rbd_delete_with_a_clone_is_409_until_the_clone_goes(glance_rbd, ceph):
    """Nova and Cinder boot from an image by cloning its protected snapshot: while the clone
    exists the image cannot go (409, as upstream), and it stays whole and usable."""
    client = Client(glance_rbd)
    image = client.create_image(disk_format="raw", container_format="bare")
    image_id = image["id"]
    sent_sha, _ = client.upload(image_id, 6 * MiB + 7, chunked=False)
    (location,) = client.locations(image_id)
    child = f"instance-disk-{image_id}"
    ceph.rbd("clone", f"{ceph.pool}/{image_id}@snap", f"{ceph.pool}/{child}")

    resp = client.delete(f"/v2/images/{image_id}")
    assert resp.status_code == 409, resp.text
    assert "in use" in resp.text
    assert client.status(image_id) == "active"
    assert _listed(client, image) == [image_id]
    assert client.locations(image_id) == [location]
    assert _rbd_state(ceph, image_id) == {
        "images": sorted([image_id, child]),
        "snaps": [("snap", "true")],
        "trash": [],
    }
    got_sha, count, _ = client.download(image_id)
    assert (count, got_sha) == (6 * MiB + 7, sent_sha)

    ceph.rbd("rm", f"{ceph.pool}/{child}")
    assert client.delete(f"/v2/images/{image_id}").status_code == 204
    assert client.get(f"/v2/images/{image_id}").status_code == 404
    assert _rbd_state(ceph, image_id) == {"images": [], "snaps": [], "trash": []}


def test_rbd_delete_of_an_open_image_is_409_and_keeps_its_snapshot(glance_rbd, ceph):
    """An image open elsewhere (a watcher: librbd refuses to remove it) is kept, and the
    snapshot that the delete had already removed is put back, protected, so the location
    still reads and clones."""
    import sys

    from tests.fixtures.ceph import bindings_dir

    sys.path.insert(0, str(bindings_dir(ceph.workdir)))
    try:
        import rados
        import rbd
    finally:
        sys.path.pop(0)
    client = Client(glance_rbd)
    image = client.create_image(disk_format="raw", container_format="bare")
    image_id = image["id"]
    sent_sha, _ = client.upload(image_id, 3 * MiB + 1, chunked=True)
    with rados.Rados(conffile=str(ceph.conf), rados_id="admin") as cluster:
        with cluster.open_ioctx(ceph.pool) as ioctx, rbd.Image(ioctx, image_id):
            resp = client.delete(f"/v2/images/{image_id}")
    assert resp.status_code == 409, resp.text
    assert client.status(image_id) == "active" and _listed(client, image) == [image_id]
    state = _rbd_state(ceph, image_id)
    assert (state["images"], state["snaps"]) == ([image_id], [("snap", "true")])
    got_sha, count, _ = client.download(image_id)
    assert (count, got_sha) == (3 * MiB + 1, sent_sha)
    assert client.delete(f"/v2/images/{image_id}").status_code == 204
    assert _rbd_state(ceph, image_id) == {"images": [], "snaps": [], "trash": []}
