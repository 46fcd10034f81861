"""Store deletes: every store's "in use" refusal is ``InUseByStore`` (409), missing data is
``NotFound`` or nothing, and a refused RBD delete leaves the image exactly as it was.

The RBD cases run our delete over a small in-memory double of python3-rbd (images, snapshots,
protection, clone children, watchers), with librbd's exception types; the same delete against
a real Ceph cluster is in tests/integration/backends/test_ceph_backends.py.
"""

from __future__ import annotations

import contextlib
import types

import pytest
from glance_store import exceptions as gs_exc

from glance_service import exceptions
from glance_service.store import Stores, driver_errors, filesystem, register_opts
from glance_service.store import rbd as rbd_store

IMAGE = "0c7f3a6e-1d2b-4c5e-8f90-a1b2c3d4e5f6"


# -- the file store ------------------------------------------------------------------------------


def test_file_that_cannot_be_removed_is_refused_and_stays(tmp_path):
    # unlink() of a directory fails whatever the caller's privileges (root included)
    (tmp_path / IMAGE).mkdir()
    with pytest.raises(exceptions.Forbidden):
        filesystem.delete_url(f"file://{tmp_path}/{IMAGE}")
    assert (tmp_path / IMAGE).is_dir()


def test_missing_file_is_no_error(tmp_path):
    filesystem.delete_url(f"file://{tmp_path}/{IMAGE}")


# -- glance_store's errors -------------------------------------------------------------------------


@pytest.mark.parametrize("error", [gs_exc.InUseByStore(), gs_exc.HasSnapshot()])
def test_glance_store_in_use_errors_are_409(error):
    ours = driver_errors.translate(error)
    assert isinstance(ours, exceptions.InUseByStore) and ours.code == 409


def test_location_of_a_store_not_configured_is_skipped(tmp_path, caplog):
    from oslo_config import cfg

    conf = cfg.ConfigOpts()
    register_opts(conf)
    conf([], default_config_files=[])
    conf.set_override("filesystem_store_datadir", str(tmp_path), group="glance_store")
    conf.set_override("stores", ["file", "http"], group="glance_store")
    stores = Stores(conf)
    # swift is not enabled: nothing here can reach that data, and the image must stay deletable
    stores.delete("swift+https://user:key@keystone.invalid/v3/container/" + IMAGE)
    assert "no store" in caplog.text


# -- rbd -----------------------------------------------------------------------------------------------


class ImageNotFound(Exception):
    pass


class ImageBusy(Exception):
    pass


class ImageHasSnapshots(Exception):
    pass


class InvalidArgument(Exception):
    pass


class FakeCluster:
    """RBD images of one pool: name -> {"snaps": {name: protected}, "children": {snap: n},
    "watchers": n}. ``events`` records what changed."""

    def __init__(self):
        self.images: dict[str, dict] = {}
        self.trash: list[str] = []
        self.events: list[str] = []

    def add(self, name: str, children: int = 0, watchers: int = 0, extra_snaps=()):
        snaps = {"snap": True, **{s: False for s in extra_snaps}}
        self.images[name] = {"snaps": snaps, "children": {"snap": children}, "watchers": watchers}

    def module(self):
        cluster = self

        class Image:
            def __init__(self, ioctx, name):
                if name not in cluster.images:
                    raise ImageNotFound(name)
                self.img = cluster.images[name]

            def __enter__(self):
                return self

            def __exit__(self, *exc):
                return False

            def unprotect_snap(self, snap):
                if snap not in self.img["snaps"]:
                    raise ImageNotFound(snap)
                if not self.img["snaps"][snap]:
                    raise InvalidArgument(snap)
                if self.img["children"].get(snap):
                    raise ImageBusy(snap)
                self.img["snaps"][snap] = False
                cluster.events.append(f"unprotect {snap}")

            def remove_snap(self, snap):
                if snap not in self.img["snaps"]:
                    raise ImageNotFound(snap)
                del self.img["snaps"][snap]
                cluster.events.append(f"remove_snap {snap}")

            def create_snap(self, snap):
                self.img["snaps"][snap] = False
                cluster.events.append(f"create_snap {snap}")

            def protect_snap(self, snap):
                self.img["snaps"][snap] = True
                cluster.events.append(f"protect {snap}")

        class RBD:
            def remove(self, ioctx, name):
                if name not in cluster.images:
                    raise ImageNotFound(name)
                img = cluster.images[name]
                if img["watchers"]:
                    raise ImageBusy(name)
                if img["snaps"]:
                    raise ImageHasSnapshots(name)
                del cluster.images[name]
                cluster.events.append(f"remove {name}")

            def trash_move(self, ioctx, name):
                if cluster.images[name]["watchers"]:
                    raise ImageBusy(name)
                cluster.trash.append(name)
                del cluster.images[name]
                cluster.events.append(f"trash {name}")

        return types.SimpleNamespace(
            Image=Image,
            RBD=RBD,
            ImageNotFound=ImageNotFound,
            ImageBusy=ImageBusy,
            ImageHasSnapshots=ImageHasSnapshots,
            InvalidArgument=InvalidArgument,
            NoSpace=type("NoSpace", (Exception,), {}),
            PermissionError=type("PermissionError", (Exception,), {}),
        )


class FakeDriver:
    pool = "images"
    conf_file = "/etc/ceph/ceph.conf"
    user = "glance"

    @contextlib.contextmanager
    def get_connection(self, conffile, rados_id):
        class Conn:
            @contextlib.contextmanager
            def open_ioctx(self, pool):
                yield object()

        yield Conn()


def _location(image: str = IMAGE, snapshot: str | None = "snap"):
    return types.SimpleNamespace(
        store_location=types.SimpleNamespace(pool="images", image=image, snapshot=snapshot, fsid="f")
    )


@pytest.fixture
def ceph(monkeypatch) -> FakeCluster:
    cluster = FakeCluster()
    rados = types.SimpleNamespace(
        PermissionDeniedError=type("PermissionDeniedError", (Exception,), {}),
        ObjectNotFound=type("ObjectNotFound", (Exception,), {}),
    )
    monkeypatch.setattr(rbd_store, "rbd", cluster.module())
    monkeypatch.setattr(rbd_store, "rados", rados)
    return cluster


def test_rbd_delete_removes_snapshot_and_image(ceph):
    ceph.add(IMAGE)
    rbd_store.delete_location(FakeDriver(), _location())
    assert ceph.images == {}
    assert ceph.events == ["unprotect snap", "remove_snap snap", f"remove {IMAGE}"]


def test_rbd_snapshot_with_clones_is_in_use_and_untouched(ceph):
    ceph.add(IMAGE, children=1)
    with pytest.raises(exceptions.InUseByStore) as err:
        rbd_store.delete_location(FakeDriver(), _location())
    assert err.value.code == 409 and "clone" in err.value.message
    assert ceph.images[IMAGE]["snaps"] == {"snap": True} and ceph.events == []


def test_rbd_image_busy_is_in_use_and_its_snapshot_is_put_back(ceph):
    ceph.add(IMAGE, watchers=1)
    with pytest.raises(exceptions.InUseByStore):
        rbd_store.delete_location(FakeDriver(), _location())
    # the snapshot the location names is there again, protected: clones and reads still work
    assert ceph.images[IMAGE]["snaps"] == {"snap": True}
    assert ceph.events[-2:] == ["create_snap snap", "protect snap"]


def test_rbd_image_with_other_snapshots_goes_to_the_trash(ceph):
    # glance_store 5.7's behaviour: the image cannot be removed, the trash keeps it for Ceph
    ceph.add(IMAGE, extra_snaps=["backup"])
    rbd_store.delete_location(FakeDriver(), _location())
    assert ceph.trash == [IMAGE] and IMAGE not in ceph.images


def test_rbd_busy_image_with_other_snapshots_is_in_use(ceph):
    ceph.add(IMAGE, extra_snaps=["backup"])
    ceph.images[IMAGE]["watchers"] = 0

    def busy_trash(ioctx, name):
        raise ImageBusy(name)

    rbd_mod = rbd_store.rbd
    original = rbd_mod.RBD

    class RBD(original):
        def trash_move(self, ioctx, name):
            busy_trash(ioctx, name)

    rbd_mod.RBD = RBD
    with pytest.raises(exceptions.InUseByStore):
        rbd_store.delete_location(FakeDriver(), _location())
    assert ceph.images[IMAGE]["snaps"] == {"snap": True, "backup": False}


def test_rbd_missing_image_is_not_found(ceph):
    with pytest.raises(exceptions.NotFound):
        rbd_store.delete_location(FakeDriver(), _location())


def test_rbd_missing_snapshot_still_removes_the_image(ceph):
    # a delete cut short after the snapshot went: the next one finishes it
    ceph.add(IMAGE)
    del ceph.images[IMAGE]["snaps"]["snap"]
    rbd_store.delete_location(FakeDriver(), _location())
    assert ceph.images == {}


def test_rbd_location_without_snapshot(ceph):
    ceph.add(IMAGE)
    ceph.images[IMAGE]["snaps"] = {}
    rbd_store.delete_location(FakeDriver(), _location(snapshot=None))
    assert ceph.images == {}
