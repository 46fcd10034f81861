"""Deleting an image whose data the store cannot remove, against real processes on the file
store: the refusal is the answer, and the image stays, listed and whole.

The file store refuses for real here: the image's data path is made a directory, which
``unlink`` cannot remove whatever the caller's privileges (root included; chattr is not
available in containers). glance_store's file driver turns a failed unlink into its
``Forbidden``, which Glance answers with 403; RBD's refusal (clones) is 409 and is tested
against a real Ceph in tests/integration/backends/test_ceph_backends.py.
"""

from __future__ import annotations

import contextlib
import os

from tests.functional.conftest import Http

OCTET = {"Content-Type": "application/octet-stream"}


def _active_image(h: Http, data: bytes) -> dict:
    image = h.create_image(disk_format="raw", container_format="bare")
    assert h.put(f"/v2/images/{image['id']}/file", data=data, headers=OCTET).status_code == 204
    return image


@contextlib.contextmanager
def undeletable(path):
    """The data at ``path`` cannot be unlinked while inside (the file waits next to it)."""
    aside = path.with_name(path.name + ".aside")
    os.rename(path, aside)
    path.mkdir()
    try:
        yield
    finally:
        path.rmdir()
        os.rename(aside, path)


def test_store_refusal_keeps_the_image(glance, http):
    image = _active_image(http, b"precious data")
    data = glance.datadir / image["id"]
    with undeletable(data):
        resp = http.delete(f"/v2/images/{image['id']}")
        assert resp.status_code == 403, resp.text
        shown = http.get(f"/v2/images/{image['id']}")
        assert shown.status_code == 200 and shown.json()["status"] == "active"
        listed = http.get("/v2/images", params={"name": image["name"]}).json()["images"]
        assert [i["id"] for i in listed] == [image["id"]]
    assert http.get(f"/v2/images/{image['id']}/file").content == b"precious data"
    # the store takes it now: the same delete succeeds and removes the data
    assert http.delete(f"/v2/images/{image['id']}").status_code == 204
    assert http.get(f"/v2/images/{image['id']}").status_code == 404
    assert not data.exists()


def test_data_already_gone_is_no_obstacle(glance, http):
    image = _active_image(http, b"soon gone")
    (glance.datadir / image["id"]).unlink()
    assert http.delete(f"/v2/images/{image['id']}").status_code == 204
    assert http.get(f"/v2/images/{image['id']}").status_code == 404
