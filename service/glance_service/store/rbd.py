"""Writes image data to Ceph RBD: our own upload path over python3-rbd/rados.

glance_store's ``rbd`` driver stays in charge of the options (``rbd_store_pool``,
``rbd_store_user``, ``rbd_store_ceph_conf``, ``rbd_store_chunk_size``, thin provisioning) and of
reads; this module replaces its ``add()`` and its ``delete()`` (``delete_location``: the same
steps, but a refused delete leaves the image and its protected snapshot as they were). It
writes exactly what that ``add()`` writes: an RBD image named after the image id in the pool,
with the protected snapshot ``snap`` that copy-on-write clones (Nova, Cinder) start from, at
the location ``rbd://<fsid>/<pool>/<image>/snap``.

Why not the driver's ``add()`` (glance_store 5.7.0):

* it hashes md5 and sha512 in one loop and writes in the same thread, one chunk at a time;
  here the two hashes run in their own threads (``ParallelHasher``) and the writes in a third,
  so hashing, writing and reading the client overlap;
* without a declared size it grows the image chunk by chunk from the chunk size up, and keeps
  that growth state on the store object that every upload of the process shares (two
  concurrent uploads of unknown size interfere); here the growth state belongs to the upload
  and the image grows by large steps (resizing a thin image is a metadata change);
* when the client declares the size (Content-Length or x-openstack-image-size) the image is
  created with that size at once, and the data must match it.

Whatever fails (the client cuts the upload, the size is wrong, the cluster refuses a write), the
partly written image is removed before the error goes up: no orphan RBD image. A process that
dies mid-upload leaves one; ``discard`` removes it when the image is found ``saving`` with no
live upload.
"""

from __future__ import annotations

import logging
import math
import urllib.parse

from glance_service import exceptions
from glance_service.store.hashing import ParallelHasher
from glance_service.store.pipeline import Worker
from glance_service.store.source import READ_CHUNK, Incoming, StoredData, translated

try:  # Debian's python3-rbd / python3-rados: only needed when an rbd store is configured
    import rados
    import rbd
except ImportError:  # pragma: no cover - depends on the host's packages
    rados = rbd = None

LOG = logging.getLogger(__name__)

SNAPSHOT = "snap"  # glance_store's DEFAULT_SNAPNAME: the location names it
# Unknown size: the image starts at this size and doubles up to MAX_GROW_STEP per step. A thin
# image costs nothing for the space it does not use; the final size is set at the end.
FIRST_SIZE = 1024**3
MAX_GROW_STEP = 64 * 1024**3


def available() -> bool:
    return rbd is not None and rados is not None


def location(fsid: str, pool: str, image: str) -> str:
    """glance_store's rbd location (``StoreLocation.get_uri``), quoted the same way."""
    q = urllib.parse.quote
    return f"rbd://{q(fsid, '')}/{q(pool, '')}/{q(image, '')}/{SNAPSHOT}"


class _ImageWriter:
    """Collects the client's buffers into object-sized writes and grows the image as needed.

    Runs in the writer thread: librbd's write releases the GIL, so hashing goes on meanwhile.
    """

    def __init__(self, image, write_size: int, provisioned: int, thin: bool):
        self._image = image
        self._write_size = write_size
        self._pending: list[bytes] = []
        self._pending_len = 0
        self.offset = 0
        self.provisioned = provisioned
        self._thin = thin

    def put(self, buf: bytes) -> None:
        self._pending.append(buf)
        self._pending_len += len(buf)
        if self._pending_len >= self._write_size:
            self.flush()

    def flush(self) -> None:
        if not self._pending_len:
            return
        data = self._pending[0] if len(self._pending) == 1 else b"".join(self._pending)
        self._pending, self._pending_len = [], 0
        end = self.offset + len(data)
        if end > self.provisioned:
            step = min(max(self.provisioned, FIRST_SIZE), MAX_GROW_STEP)
            self.provisioned = max(end, self.provisioned + step)
            self._image.resize(self.provisioned)
        # Thin provisioning (rbd_thin_provisioning): zeroes are not written, the image reads
        # them back as zeroes anyway.
        if not (self._thin and not any(data)):
            self._image.write(data, self.offset)
        self.offset = end


def add(driver, data: Incoming) -> StoredData:
    """Store ``data`` as RBD image ``data.image_id`` with glance_store's ``driver`` settings."""
    if not available():
        raise exceptions.StoreUnavailable("The rbd store needs python3-rbd and python3-rados.")
    pool, name = driver.pool, str(data.image_id)
    chunk = int(driver.WRITE_CHUNKSIZE)
    order = int(math.log(chunk, 2))
    with translated(lambda exc: _translate(exc, name)):
        with driver.get_connection(conffile=driver.conf_file, rados_id=driver.user) as conn:
            fsid = conn.get_fsid()
            with conn.open_ioctx(pool) as ioctx:
                size, checksum, hash_value = _write_image(conn, ioctx, name, order, chunk, data, driver)
    return StoredData(location(fsid, pool, name), size, checksum, data.hash_algo, hash_value, {})


def _write_image(conn, ioctx, name, order, chunk, data: Incoming, driver):
    features = conn.conf_get("rbd_default_features")
    features = int(features) if features and int(features) else rbd.RBD_FEATURE_LAYERING
    initial = data.expected_size if data.expected_size is not None else min(FIRST_SIZE, data.size_cap)
    try:
        rbd.RBD().create(ioctx, name, initial, order, old_format=False, features=features)
    except rbd.ImageExists:
        raise exceptions.Duplicate(f"Data for image {name} already exists in the store.") from None
    done = False
    try:
        with rbd.Image(ioctx, name) as image:
            writer = _ImageWriter(image, chunk, initial, bool(getattr(driver, "thin_provisioning", False)))
            hasher = ParallelHasher(data.hash_algo)
            # The writer queue holds two object-sized writes' worth of 1 MiB buffers.
            worker = Worker("rbd-write", writer.put, depth=max(4, 2 * chunk // READ_CHUNK), inline_below=0)
            try:
                size = data.feed(hasher, worker.put)
                worker.finish()
                writer.flush()
                checksum, hash_value = hasher.hexdigests()
            except BaseException:
                worker.abort()
                hasher.abort()
                raise
            if writer.provisioned != size:
                image.resize(size)
            image.flush()
            image.create_snap(SNAPSHOT)
            image.protect_snap(SNAPSHOT)
        done = True
    finally:
        if not done:
            _remove(ioctx, name)
    return size, checksum, hash_value


def _remove(ioctx, name: str) -> None:
    """Remove a partly written image (and its snapshot, if the failure came after it)."""
    try:
        with rbd.Image(ioctx, name) as image:
            for snap in list(image.list_snaps()):
                if image.is_protected_snap(snap["name"]):
                    image.unprotect_snap(snap["name"])
                image.remove_snap(snap["name"])
        rbd.RBD().remove(ioctx, name)
    except rbd.ImageNotFound:
        return
    except Exception as exc:  # noqa: BLE001 - the upload's own error matters more
        LOG.error("Could not remove the partial RBD image %s: %s", name, exc)


def discard(driver, image_id: str) -> None:
    """Remove the RBD image ``image_id`` if an interrupted upload left one (see module doc)."""
    if not available():
        return
    try:
        with driver.get_connection(conffile=driver.conf_file, rados_id=driver.user) as conn:
            with conn.open_ioctx(driver.pool) as ioctx:
                _remove(ioctx, str(image_id))
    except Exception as exc:  # noqa: BLE001 - best effort, logged
        LOG.error("Could not check the rbd store for partial data of %s: %s", image_id, exc)


def delete_location(driver, location) -> None:
    """Delete the RBD image of a location (``rbd://fsid/pool/image/snap``) with its snapshot.

    glance_store's ``delete`` in order and outcome (the snapshot is unprotected and removed,
    then the image; an image that still has other snapshots goes to the RBD trash), with one
    promise more: a refusal leaves the image as it was. Raises ``InUseByStore`` (409) when the
    snapshot has copy-on-write clones (every Nova or Cinder boot from the image makes one:
    librbd refuses to unprotect it) or the image is open elsewhere; the snapshot is then put
    back, protected, so the location and its clones keep working. ``NotFound`` when the image
    is gone already."""
    if not available():
        raise exceptions.StoreUnavailable("The rbd store needs python3-rbd and python3-rados.")
    loc = location.store_location
    pool, name, snap = loc.pool or driver.pool, loc.image, loc.snapshot
    with translated(lambda exc: _translate(exc, name, doing="deleting")):
        with driver.get_connection(conffile=driver.conf_file, rados_id=driver.user) as conn:
            with conn.open_ioctx(pool) as ioctx:
                _delete(ioctx, name, snap)


def _delete(ioctx, name: str, snap: str | None) -> None:
    unprotected = removed = False
    if snap:
        try:
            image = rbd.Image(ioctx, name)
        except rbd.ImageNotFound:
            raise exceptions.NotFound(f"The rbd store holds no image {name}.") from None
        # Closed before the removal below: an open image is a watcher, and librbd refuses to
        # remove a watched image.
        with image:
            try:
                image.unprotect_snap(snap)
                unprotected = True
            except rbd.InvalidArgument:
                pass  # not protected (any more)
            except rbd.ImageNotFound:
                pass  # no such snapshot: a delete cut short after removing it
            except rbd.ImageBusy:
                LOG.warning("RBD snapshot %s@%s has clones: the image is in use", name, snap)
                raise exceptions.InUseByStore(
                    f"The rbd snapshot {name}@{snap} has copy-on-write clones (instances or "
                    "volumes booted from the image)."
                ) from None
            try:
                image.remove_snap(snap)
                removed = True
            except rbd.ImageNotFound:
                pass
            except BaseException:
                _put_back(ioctx, name, snap, unprotected, removed)
                raise
    try:
        try:
            rbd.RBD().remove(ioctx, name)
        except rbd.ImageHasSnapshots:
            # Snapshots someone else made: glance_store moves the image to the RBD trash.
            LOG.warning("RBD image %s has snapshots left; moving it to the trash", name)
            rbd.RBD().trash_move(ioctx, name)
    except rbd.ImageNotFound:
        raise exceptions.NotFound(f"The rbd store holds no image {name}.") from None
    except rbd.ImageBusy:
        _put_back(ioctx, name, snap, unprotected, removed)
        LOG.warning("RBD image %s is open elsewhere: it is in use", name)
        raise exceptions.InUseByStore(f"The rbd image {name} is in use (open elsewhere).") from None
    except BaseException:
        _put_back(ioctx, name, snap, unprotected, removed)
        raise


def _put_back(ioctx, name: str, snap: str | None, unprotected: bool, removed: bool) -> None:
    """Undo the snapshot steps of a refused delete: the location names ``image@snap``, and
    clones need it protected. The image is never written after upload, so a snapshot taken
    again holds the same data."""
    if not (unprotected or removed):
        return
    try:
        with rbd.Image(ioctx, name) as image:
            if removed:
                image.create_snap(snap)
            image.protect_snap(snap)
    except Exception as exc:  # noqa: BLE001 - the refusal is the error to report
        LOG.error("RBD image %s kept, but its snapshot %s could not be restored: %s", name, snap, exc)


def _translate(exc: Exception, name: str, doing: str = "writing") -> exceptions.GlanceServiceError:
    if rbd is not None and isinstance(exc, rbd.NoSpace):
        return exceptions.StorageFull()
    if rados is not None and isinstance(exc, rados.PermissionDeniedError | rbd.PermissionError):
        LOG.error("The rbd store denied access while %s %s: %s", doing, name, exc)
        what = "write access" if doing == "writing" else f"access while {doing}"
        return exceptions.StoreUnavailable(f"The rbd store denied {what}.")
    if rados is not None and isinstance(exc, rados.ObjectNotFound):
        LOG.error("The rbd pool is missing: %s", exc)
        return exceptions.StoreUnavailable("The rbd store's pool does not exist.")
    LOG.error("The rbd store failed while %s %s: %s", doing, name, exc)
    return exceptions.StoreUnavailable(f"The rbd store failed: {exc}")
