"""The file store's own data path.

It writes exactly where glance_store's ``file`` driver would (``<datadir>/<image_id>``,
location ``file://<datadir>/<image_id>``) and reads the locations that driver wrote, but:

* hashes md5 and sha512 in two threads and writes in a third, with 1 MiB buffers and
  bounded queues (memory flat whatever the size; glance_store hashes both in one loop);
* writes a partial file next to the target, starts writeback as it goes (so the final
  ``fsync`` has little left to do), ``fsync``s it, links it into place without ever
  replacing existing data, and ``fsync``s the directory: the data is durable before
  ``add`` returns;
* removes its partial file on any failure; a partial file outlives its writer only if the
  process died, and ``cleanup_partial`` finds those by the ``flock`` no one holds any more;
* reads hand out the open file, positioned, so the server can ``sendfile`` it.
"""

from __future__ import annotations

import contextlib
import ctypes
import ctypes.util
import errno
import fcntl
import logging
import os
import secrets
import urllib.parse

from glance_service import exceptions
from glance_service.store.hashing import HASH_ALGO, ParallelHasher
from glance_service.store.pipeline import Worker
from glance_service.store.source import BoundedFile, DataSource, Incoming, StoredData

LOG = logging.getLogger(__name__)

# Writeback is started every WRITEBACK_WINDOW bytes and the window before it is waited for:
# at most two windows are dirty, so the disk writes while the client sends.
WRITEBACK_WINDOW = 32 * 1024 * 1024
PARTIAL_MARK = ".partial-"
SCHEMES = ("file", "filesystem")

_SYNC_FILE_RANGE_WAIT_BEFORE = 1
_SYNC_FILE_RANGE_WRITE = 2
_SYNC_FILE_RANGE_WAIT_AFTER = 4


def _load_sync_file_range():
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or None, use_errno=True)
        fn = libc.sync_file_range
    except (OSError, AttributeError):
        return None
    fn.argtypes = [ctypes.c_int, ctypes.c_int64, ctypes.c_int64, ctypes.c_uint]
    fn.restype = ctypes.c_int
    return fn


_sync_file_range = _load_sync_file_range()


def storage_error(exc: OSError, path: str) -> exceptions.GlanceServiceError:
    """The service error for a failed write, read or sync in the store."""
    if exc.errno in (errno.ENOSPC, errno.EDQUOT, errno.EFBIG):
        return exceptions.StorageFull()
    if exc.errno in (errno.EACCES, errno.EPERM, errno.EROFS):
        LOG.error("Image store denied access to %s: %s", path, exc)
        return exceptions.StoreUnavailable("The image store denied write access.")
    LOG.error("Image store I/O error on %s: %s", path, exc)
    return exceptions.StoreUnavailable(f"The image store failed: {os.strerror(exc.errno or 0)}.")


def owns(url: str) -> bool:
    """Whether ``url`` is a file store location (read even when the file store is not enabled,
    e.g. after a switch to another backend)."""
    return url.split(":", 1)[0].lower() in SCHEMES


def path_from_url(url: str) -> str:
    """The file path of a ``file://`` location, parsed like glance_store does."""
    pieces = urllib.parse.urlparse(url)
    if pieces.scheme not in SCHEMES:
        raise exceptions.BadRequest(f"Not a file store location: {url}")
    path = (pieces.netloc + pieces.path).strip()
    if not path:
        raise exceptions.BadRequest("No path in the file store location.")
    return path


def fsync_dir(path: str) -> None:
    fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


class _FileWriter:
    """Writes buffers to ``fd``, keeping writeback going behind the writes."""

    def __init__(self, fd: int, path: str):
        self._fd = fd
        self._path = path
        self._written = 0
        self._kicked = 0  # writeback started up to here
        self._waited = 0  # durable up to here

    def write(self, buf: bytes) -> None:
        view = memoryview(buf)
        try:
            while view:
                n = os.write(self._fd, view)
                view = view[n:]
            self._written += len(buf)
            if _sync_file_range is not None and self._written - self._kicked >= WRITEBACK_WINDOW:
                self._writeback()
        except OSError as exc:
            raise storage_error(exc, self._path) from exc

    def _writeback(self) -> None:
        _sync_file_range(self._fd, self._kicked, self._written - self._kicked, _SYNC_FILE_RANGE_WRITE)
        if self._kicked > self._waited:
            flags = _SYNC_FILE_RANGE_WAIT_BEFORE | _SYNC_FILE_RANGE_WRITE | _SYNC_FILE_RANGE_WAIT_AFTER
            if _sync_file_range(self._fd, self._waited, self._kicked - self._waited, flags) != 0:
                err = ctypes.get_errno()
                raise OSError(err, os.strerror(err))
            self._waited = self._kicked
        self._kicked = self._written


class FileStore:
    """Image data as files in one data directory (or several, by priority and free space,
    as glance_store's ``filesystem_store_datadirs``)."""

    def __init__(self, datadir: str | None = None, datadirs: list[str] | None = None, file_perm: int = 0):
        if bool(datadir) == bool(datadirs):
            raise exceptions.GlanceServiceError(
                "Set exactly one of [glance_store] filesystem_store_datadir and filesystem_store_datadirs."
            )
        # (priority, path), highest priority first
        self._dirs: list[tuple[int, str]] = []
        if datadir:
            self._dirs.append((0, datadir))
        for entry in datadirs or []:
            path, _, prio = entry.strip().rpartition(":")
            if not path or not prio.strip().lstrip("-").isdigit():
                path, prio = entry.strip(), "0"
            self._dirs.append((int(prio), path.strip()))
        self._dirs.sort(key=lambda d: -d[0])
        self._file_perm = int(str(file_perm), 8) if file_perm and file_perm > 0 else 0
        for _, path in self._dirs:
            os.makedirs(path, exist_ok=True)

    @property
    def datadirs(self) -> list[str]:
        return [path for _, path in self._dirs]

    # -- write --------------------------------------------------------------------------------
    def add(
        self, image_id: str, reader, *, expected_size: int | None, size_cap: int, hash_algo: str = HASH_ALGO
    ) -> StoredData:
        return self.write(
            Incoming(image_id, reader, expected_size=expected_size, size_cap=size_cap, hash_algo=hash_algo)
        )

    def write(self, data: Incoming) -> StoredData:
        image_id, hash_algo = data.image_id, data.hash_algo
        _check_id(image_id)
        datadir = self._choose_datadir(data.expected_size or 0)
        final = os.path.join(datadir, image_id)
        if os.path.lexists(final):
            raise exceptions.Duplicate(f"Data for image {image_id} already exists in the store.")
        fd, partial = self._create_partial(datadir, image_id)
        hasher = ParallelHasher(hash_algo)
        writer = Worker("store-write", _FileWriter(fd, partial).write)
        done = False
        try:
            size = data.feed(hasher, writer.put)
            writer.finish()
            checksum, hash_value = hasher.hexdigests()
            try:
                if self._file_perm:
                    os.fchmod(fd, self._file_perm)
                os.fsync(fd)
                os.link(partial, final)
            except FileExistsError:
                raise exceptions.Duplicate(
                    f"Data for image {image_id} already exists in the store."
                ) from None
            except OSError as exc:
                raise storage_error(exc, partial) from exc
            done = True
        finally:
            if not done:
                writer.abort()
                hasher.abort()
            _unlink(partial)
            os.close(fd)  # releases the lock
        try:
            fsync_dir(datadir)
        except OSError as exc:
            _unlink(final)
            raise storage_error(exc, datadir) from exc
        return StoredData("file://" + final, size, checksum, hash_algo, hash_value, {})

    def _create_partial(self, datadir: str, image_id: str) -> tuple[int, str]:
        """A new partial file, locked for as long as it is open."""
        while True:
            path = os.path.join(datadir, f".{image_id}{PARTIAL_MARK}{secrets.token_hex(6)}")
            try:
                fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, 0o600)
            except FileExistsError:
                continue
            except OSError as exc:
                raise storage_error(exc, path) from exc
            fcntl.flock(fd, fcntl.LOCK_EX)
            # cleanup_partial() may have removed the file between open and flock: start again.
            if same_file(path, fd):
                return fd, path
            os.close(fd)

    def _choose_datadir(self, size: int) -> str:
        if len(self._dirs) == 1:
            return self._dirs[0][1]
        # glance_store's rule: the highest priority that has room, the most free space within it.
        for prio in sorted({p for p, _ in self._dirs}, reverse=True):
            best, best_free = None, 0
            for p, path in self._dirs:
                if p != prio:
                    continue
                st = os.statvfs(path)
                free = st.f_bavail * st.f_frsize
                if free >= size and free > best_free:
                    best, best_free = path, free
            if best is not None:
                return best
        raise exceptions.StorageFull()

    # -- read / delete --------------------------------------------------------------------------
    def open(self, url: str, offset: int = 0, length: int | None = None) -> DataSource:
        return open_url(url, offset, length)

    def delete(self, url: str) -> None:
        delete_url(url)

    def url_for(self, image_id: str) -> list[str]:
        """Where this store would have put ``image_id`` (one URL per data directory)."""
        _check_id(image_id)
        return ["file://" + os.path.join(d, image_id) for d in self.datadirs]

    # -- partial files --------------------------------------------------------------------------
    def cleanup_partial(self, image_id: str | None = None) -> int:
        """Remove partial files no live writer holds (all of them, or one image's)."""
        prefix = f".{image_id}{PARTIAL_MARK}" if image_id else "."
        removed = 0
        for datadir in self.datadirs:
            try:
                names = os.listdir(datadir)
            except FileNotFoundError:
                continue
            for name in names:
                if name.startswith(prefix) and PARTIAL_MARK in name:
                    removed += _remove_if_unlocked(os.path.join(datadir, name))
            if removed:
                try:
                    fsync_dir(datadir)
                except OSError:
                    pass
        return removed


def open_url(url: str, offset: int = 0, length: int | None = None) -> DataSource:
    """Open a ``file://`` location (ours or glance_store's) at ``offset`` for ``length`` bytes."""
    path = path_from_url(url)
    try:
        fileobj = open(path, "rb", buffering=0)  # noqa: SIM115 - owned by the DataSource
    except FileNotFoundError:
        raise exceptions.NotFound("The image data is gone from the store.") from None
    except OSError as exc:
        raise storage_error(exc, path) from exc
    try:
        total = os.fstat(fileobj.fileno()).st_size
        if offset < 0 or offset > total:
            raise exceptions.RangeNotSatisfiable(total)
        end = total if length is None else offset + length
        if end > total:
            raise exceptions.RangeNotSatisfiable(total)
        fileobj.seek(offset)
    except BaseException:
        fileobj.close()
        raise
    return DataSource(end - offset, total, fileobj=BoundedFile(fileobj, end))


def delete_url(url: str) -> None:
    """Remove the data at a ``file://`` location; missing data is not an error. A file that
    cannot be removed is ``InUseByStore`` (409) when busy, else ``Forbidden`` (403: glance_store's
    file driver raises its ``Forbidden`` for any failed unlink, and Glance answers 403)."""
    path = path_from_url(url)
    exc = _unlink(path, "image data")
    if exc is not None:
        if exc.errno in (errno.EBUSY, errno.ETXTBSY):
            raise exceptions.InUseByStore("The image data is in use in the file store.") from exc
        raise exceptions.Forbidden("The image data could not be removed from the file store.") from exc
    with contextlib.suppress(OSError):
        fsync_dir(os.path.dirname(path))


def _remove_if_unlocked(path: str) -> int:
    try:
        fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
    except FileNotFoundError:
        return 0
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            return 0  # a live upload is writing it
        if not same_file(path, fd):
            return 0
        os.unlink(path)
        LOG.info("Removed partial image data %s left by an interrupted upload", path)
        return 1
    finally:
        os.close(fd)


def same_file(path: str, fd: int) -> bool:
    try:
        st = os.stat(path)
    except FileNotFoundError:
        return False
    fst = os.fstat(fd)
    return (st.st_dev, st.st_ino) == (fst.st_dev, fst.st_ino)


def _unlink(path: str, what: str = "partial image data") -> OSError | None:
    """Remove ``path`` (gone already is fine); the error, logged, when it cannot be removed."""
    try:
        os.unlink(path)
    except FileNotFoundError:
        return None
    except OSError as exc:
        LOG.error("Could not remove %s %s: %s", what, path, exc)
        return exc
    return None


def _check_id(image_id: str) -> None:
    # The id becomes a file name: never let it name another directory.
    if not image_id or "/" in image_id or image_id in (".", "..") or image_id.startswith("."):
        raise exceptions.BadRequest(f"Invalid image id for the file store: {image_id!r}")
