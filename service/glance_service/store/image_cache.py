"""The image cache of an API node: ``[DEFAULT] image_cache_dir``.

Long because: one on-disk format (files, flocks and the SQLite index) has one owner; fill,
serve, prune, queue and adoption each change it, and split apart they would share its rules.

Layout::

    <image_cache_dir>/<image_id>              complete entries, served with sendfile
    <image_cache_dir>/incomplete/<image_id>   an entry being written (flock held by its writer)
    <image_cache_dir>/cache.db                SQLite: hits and access times, and the queue

An entry is written to ``incomplete/``, checked (size and the image's hash), made durable,
then renamed into place: only complete, verified entries have their final name, and only
final names are ever served. A writer holds an ``flock`` on its incomplete file, so a second
writer of the same image backs off, and a file no one holds is known dead.

Metadata is a small SQLite file rather than xattrs: every worker process of the node shares
it (WAL, short transactions), the queue and the hit counts need atomic updates (an xattr
read-modify-write is not), and it works on any filesystem. The files stay the truth about
what is cached: rows without a file are dropped and files without a row adopted whenever the
cache is listed or pruned, so losing the database loses only counters.

Pruning keeps the total under ``image_cache_max_size``, least recently used first, after
every fill (no cron job). Queued images are cached by one worker thread per API process,
off the request path; any process may take a queued image (claims name the process, and a
dead process's claims are taken over).
"""

from __future__ import annotations

import fcntl
import hashlib
import os
import re
import sqlite3
import threading
import time
from collections.abc import Iterator

from oslo_log import log as logging

from glance_service import exceptions
from glance_service.common import process
from glance_service.store.filesystem import fsync_dir, same_file
from glance_service.store.source import BoundedFile, DataSource

LOG = logging.getLogger(__name__)

DB_NAME = "cache.db"
INCOMPLETE = "incomplete"
_ID = re.compile(r"^[0-9a-fA-F-]{1,64}$")
POLL_SECONDS = 5.0

_SCHEMA = (
    """CREATE TABLE IF NOT EXISTS cached_images (
        image_id TEXT PRIMARY KEY,
        size INTEGER NOT NULL,
        hits INTEGER NOT NULL DEFAULT 0,
        last_accessed REAL NOT NULL,
        last_modified REAL NOT NULL)""",
    """CREATE TABLE IF NOT EXISTS queued_images (
        image_id TEXT PRIMARY KEY,
        queued_at REAL NOT NULL,
        claimed_by TEXT)""",
)


def valid_id(image_id: str) -> bool:
    # Image ids name files here: never let one name another directory.
    return bool(_ID.match(image_id or ""))


class ImageCache:
    def __init__(self, directory: str, max_size: int, stall_time: int):
        self.directory = directory
        self.max_size = max_size
        self.stall_time = stall_time
        self.incomplete = os.path.join(directory, INCOMPLETE)
        os.makedirs(self.incomplete, exist_ok=True)
        self._local = threading.local()
        with self._db() as db:
            for statement in _SCHEMA:
                db.execute(statement)

    # -- database -------------------------------------------------------------------------
    def _db(self) -> sqlite3.Connection:
        db = getattr(self._local, "db", None)
        if db is None:
            db = sqlite3.connect(os.path.join(self.directory, DB_NAME), timeout=30, isolation_level=None)
            db.execute("PRAGMA journal_mode=WAL")
            db.execute("PRAGMA synchronous=NORMAL")
            self._local.db = _Tx(db)
            db = self._local.db
        return db

    def path(self, image_id: str) -> str:
        if not valid_id(image_id):
            raise exceptions.BadRequest(f"Invalid image id for the cache: {image_id!r}")
        return os.path.join(self.directory, image_id)

    # -- serving --------------------------------------------------------------------------
    def serve(self, image_id: str, wanted, resolve) -> tuple[DataSource, int, int] | None:
        """The cached data of ``image_id`` as ``(source, total, first)`` for ``wanted`` (a
        range resolved by ``resolve(wanted, total)``), or None when not cached. Counts a hit."""
        try:
            fileobj = open(self.path(image_id), "rb", buffering=0)  # noqa: SIM115 - owned by the DataSource
        except (FileNotFoundError, exceptions.BadRequest):
            return None
        except OSError as exc:
            LOG.warning("Image cache entry %s is unreadable: %s", image_id, exc)
            return None
        try:
            total = os.fstat(fileobj.fileno()).st_size
            first, length = (0, total) if wanted is None else resolve(wanted, total)
            fileobj.seek(first)
            self._hit(image_id, total)
        except BaseException:
            fileobj.close()
            raise
        return DataSource(length, total, fileobj=BoundedFile(fileobj, first + length)), total, first

    def _hit(self, image_id: str, size: int) -> None:
        now = time.time()
        try:
            with self._db() as db:
                db.execute(
                    "INSERT INTO cached_images (image_id, size, hits, last_accessed, last_modified) "
                    "VALUES (?, ?, 1, ?, ?) ON CONFLICT(image_id) DO UPDATE SET hits = hits + 1, "
                    "last_accessed = excluded.last_accessed",
                    (image_id, size, now, now),
                )
        except sqlite3.Error as exc:  # counters only: never fail a download for them
            LOG.warning("Could not count a cache hit of %s: %s", image_id, exc)

    def tee(self, image: dict, source: DataSource) -> DataSource:
        """``source`` streamed to the client and, on the way, into the cache (when it may be
        cached and no one else is caching it)."""
        writer = self.writer(image)
        if writer is None:
            return source
        return DataSource(source.size, source.total_size, chunks=_teeing(source, writer))

    # -- filling --------------------------------------------------------------------------
    def writer(self, image: dict) -> _Writer | None:
        """A writer for ``image``'s entry, or None when it is cached already, is being cached
        by someone else, is too large for the cache or has no hash to check the copy with."""
        image_id = image["id"]
        size = image.get("size")
        if not valid_id(image_id) or os.path.exists(self.path(image_id)):
            return None
        if size is None or size > self.max_size:
            return None
        if not (image.get("os_hash_algo") and image.get("os_hash_value")) and not image.get("checksum"):
            return None
        path = os.path.join(self.incomplete, image_id)
        try:
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_CLOEXEC, 0o600)
        except OSError as exc:
            LOG.warning("Cannot cache image %s: %s", image_id, exc)
            return None
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(fd)
            return None  # another writer has it
        # The previous holder may have renamed the file into place (or removed it) between our
        # open and our lock: only the file still at ``path`` may be written.
        if not same_file(path, fd) or os.path.exists(self.path(image_id)):
            os.close(fd)
            return None
        try:
            os.ftruncate(fd, 0)
        except OSError as exc:
            os.close(fd)
            LOG.warning("Cannot cache image %s: %s", image_id, exc)
            return None
        return _Writer(self, image, fd, path)

    def _record(self, image_id: str, size: int) -> None:
        now = time.time()
        with self._db() as db:
            db.execute(
                "INSERT OR REPLACE INTO cached_images (image_id, size, hits, last_accessed, last_modified) "
                "VALUES (?, ?, 0, ?, ?)",
                (image_id, size, now, now),
            )
            db.execute("DELETE FROM queued_images WHERE image_id = ?", (image_id,))

    # -- listing and removal --------------------------------------------------------------
    def _reconcile(self) -> None:
        """Rows follow the files: adopt entries without a row, drop rows without a file."""
        present = {}
        for name in os.listdir(self.directory):
            full = os.path.join(self.directory, name)
            if valid_id(name) and os.path.isfile(full):
                st = os.stat(full)
                present[name] = (st.st_size, st.st_mtime)
        with self._db() as db:
            known = {row[0] for row in db.execute("SELECT image_id FROM cached_images")}
            for gone in known - present.keys():
                db.execute("DELETE FROM cached_images WHERE image_id = ?", (gone,))
            for new in present.keys() - known:
                size, mtime = present[new]
                db.execute(
                    "INSERT OR IGNORE INTO cached_images VALUES (?, ?, 0, ?, ?)", (new, size, mtime, mtime)
                )

    def cached(self) -> list[dict]:
        self._reconcile()
        rows = self._db().execute(
            "SELECT image_id, hits, last_accessed, last_modified, size FROM cached_images "
            "ORDER BY last_accessed DESC"
        )
        keys = ("image_id", "hits", "last_accessed", "last_modified", "size")
        return [dict(zip(keys, row, strict=True)) for row in rows]

    def queued(self) -> list[str]:
        rows = self._db().execute("SELECT image_id FROM queued_images ORDER BY queued_at")
        return [row[0] for row in rows]

    def is_cached(self, image_id: str) -> bool:
        return valid_id(image_id) and os.path.exists(self.path(image_id))

    def is_queued(self, image_id: str) -> bool:
        row = self._db().execute("SELECT 1 FROM queued_images WHERE image_id = ?", (image_id,)).fetchone()
        return row is not None

    def queue(self, image_id: str) -> bool:
        """Queue ``image_id`` for caching (False if cached or queued already)."""
        if self.is_cached(image_id):
            return False
        with self._db() as db:
            cur = db.execute(
                "INSERT OR IGNORE INTO queued_images (image_id, queued_at) VALUES (?, ?)",
                (image_id, time.time()),
            )
            return cur.rowcount == 1

    def delete_cached(self, image_id: str) -> tuple[int, int]:
        """Remove one entry: ``(files, bytes)`` removed."""
        path = self.path(image_id)
        try:
            size = os.stat(path).st_size
            os.unlink(path)
            removed = (1, size)
        except FileNotFoundError:
            removed = (0, 0)
        with self._db() as db:
            db.execute("DELETE FROM cached_images WHERE image_id = ?", (image_id,))
        return removed

    def delete_queued(self, image_id: str) -> int:
        with self._db() as db:
            return db.execute("DELETE FROM queued_images WHERE image_id = ?", (image_id,)).rowcount

    def delete_all_cached(self) -> int:
        self._reconcile()
        ids = [row[0] for row in self._db().execute("SELECT image_id FROM cached_images")]
        return sum(self.delete_cached(image_id)[0] for image_id in ids)

    def delete_all_queued(self) -> int:
        with self._db() as db:
            return db.execute("DELETE FROM queued_images").rowcount

    # -- maintenance ----------------------------------------------------------------------
    def prune(self) -> tuple[int, int]:
        """Least recently used entries out until the total fits ``image_cache_max_size``:
        ``(files, bytes)`` removed."""
        self._reconcile()
        rows = list(self._db().execute("SELECT image_id, size FROM cached_images ORDER BY last_accessed"))
        total = sum(size for _, size in rows)
        files = freed = 0
        for image_id, size in rows:
            if total <= self.max_size:
                break
            n, b = self.delete_cached(image_id)
            total -= size
            files += n
            freed += b
        if files:
            LOG.info("Image cache pruned: %d file(s), %d bytes", files, freed)
        return files, freed

    def clean(self) -> int:
        """Remove incomplete entries of dead writers, and those stalled past
        ``image_cache_stall_time``: how many."""
        removed = 0
        cutoff = time.time() - self.stall_time
        for name in os.listdir(self.incomplete):
            path = os.path.join(self.incomplete, name)
            try:
                fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
            except FileNotFoundError:
                continue
            try:
                try:
                    fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                    dead = True
                except BlockingIOError:
                    dead = False
                if (dead or os.fstat(fd).st_mtime < cutoff) and same_file(path, fd):
                    os.unlink(path)
                    removed += 1
            finally:
                os.close(fd)
        return removed

    # -- the queue's worker ---------------------------------------------------------------
    def claim(self, marker: str) -> str | None:
        """Take the oldest queued image no live process holds."""
        rows = list(self._db().execute("SELECT image_id, claimed_by FROM queued_images ORDER BY queued_at"))
        for image_id, holder in rows:
            if holder is not None and marker_alive(holder):
                continue
            with self._db() as db:
                cur = db.execute(
                    "UPDATE queued_images SET claimed_by = ? WHERE image_id = ? AND claimed_by IS ?",
                    (marker, image_id, holder),
                )
            if cur.rowcount == 1:
                return image_id
        return None


class _Tx:
    """A connection whose ``with`` block is one IMMEDIATE transaction (writers queue on the
    database lock instead of failing on an upgrade from a read lock)."""

    def __init__(self, db: sqlite3.Connection):
        self.db = db

    def execute(self, *args):
        return self.db.execute(*args)

    def __enter__(self) -> _Tx:
        self.db.execute("BEGIN IMMEDIATE")
        return self

    def __exit__(self, exc_type, exc, tb) -> None:
        self.db.execute("COMMIT" if exc_type is None else "ROLLBACK")


class _Writer:
    """One entry being written: ``write`` buffers in order, then ``commit`` or ``abort``."""

    def __init__(self, cache: ImageCache, image: dict, fd: int, path: str):
        self.cache = cache
        self.image_id = image["id"]
        self.size = image.get("size")
        algo, value = image.get("os_hash_algo"), image.get("os_hash_value")
        if algo and value and algo in hashlib.algorithms_available:
            self._hash, self._expected = hashlib.new(algo), value
        else:
            self._hash, self._expected = hashlib.md5(usedforsecurity=False), image.get("checksum")
        self.fd = fd
        self.path = path
        self.written = 0
        self.failed = False

    def write(self, buf: bytes) -> None:
        if self.failed:
            return
        try:
            view = memoryview(buf)
            while view:
                view = view[os.write(self.fd, view) :]
            self._hash.update(buf)
            self.written += len(buf)
        except OSError as exc:  # a full cache disk must not break the download
            LOG.warning("Caching image %s failed: %s", self.image_id, exc)
            self.failed = True

    def commit(self) -> bool:
        """Put the entry in place if it is complete and matches the image's hash."""
        try:
            if self.failed or self.written != self.size or self._hash.hexdigest() != self._expected:
                if not self.failed:
                    LOG.warning(
                        "Not caching image %s: the data does not match its size and hash", self.image_id
                    )
                return False
            os.fdatasync(self.fd)
            os.rename(self.path, self.cache.path(self.image_id))
            fsync_dir(self.cache.directory)
            self.cache._record(self.image_id, self.written)
            self.path = None
        except (OSError, sqlite3.Error) as exc:
            LOG.warning("Caching image %s failed: %s", self.image_id, exc)
            return False
        finally:
            self.abort()
        try:
            self.cache.prune()
        except (OSError, sqlite3.Error) as exc:
            LOG.warning("Pruning the image cache failed: %s", exc)
        return True

    def abort(self) -> None:
        if self.path is not None:
            try:
                os.unlink(self.path)
            except OSError:
                pass
            self.path = None
        if self.fd is not None:
            os.close(self.fd)  # releases the lock
            self.fd = None


def _teeing(source: DataSource, writer: _Writer) -> Iterator[bytes]:
    complete = False
    try:
        for buf in source:
            writer.write(buf)
            yield buf
        complete = True
    finally:
        source.close()
        if complete:
            writer.commit()
        else:
            writer.abort()  # the client went away: a partial entry is never kept


# -- process identity (claims of the queue) -----------------------------------------------------
# the cache directory is local to the node: the pid and start time name a process
process_marker = process.local_marker
marker_alive = process.local_alive


# -- one cache and one worker per process ---------------------------------------------------------
_LOCK = threading.Lock()
_CACHES: dict[tuple[int, str], ImageCache] = {}
_WORKERS: dict[tuple[int, str], Prefetcher] = {}


def get(conf) -> ImageCache | None:
    """This process's cache (None when ``image_cache_dir`` is unset)."""
    directory = getattr(conf, "image_cache_dir", None)
    if not directory:
        return None
    key = (os.getpid(), directory)
    with _LOCK:
        cache = _CACHES.get(key)
        if cache is None:
            cache = _CACHES[key] = ImageCache(
                directory, conf.image_cache_max_size, conf.image_cache_stall_time
            )
    return cache


def start_worker(cache: ImageCache, fetch) -> Prefetcher:
    """This process's worker for ``cache`` (started once). ``fetch(image_id)`` gives the
    image record and an open ``DataSource`` of its data, or raises ``GlanceServiceError``."""
    key = (os.getpid(), cache.directory)
    with _LOCK:
        worker = _WORKERS.get(key)
        if worker is None:
            worker = _WORKERS[key] = Prefetcher(cache, fetch)
    return worker


class Prefetcher:
    """Caches queued images, one at a time, in a daemon thread of the API process."""

    def __init__(self, cache: ImageCache, fetch):
        self.cache = cache
        self.fetch = fetch
        self.event = threading.Event()
        self.marker = process_marker()
        threading.Thread(target=self._run, name="image-cache-prefetch", daemon=True).start()

    def wake(self) -> None:
        self.event.set()

    def _run(self) -> None:
        while True:
            self.event.wait(POLL_SECONDS)
            self.event.clear()
            try:
                while (image_id := self.cache.claim(self.marker)) is not None:
                    self.cache_one(image_id)
            except Exception:  # noqa: BLE001 - the worker must outlive any one failure
                LOG.exception("Image cache worker failed")

    def cache_one(self, image_id: str) -> None:
        try:
            fetched = self.fetch(image_id)
            if fetched is None:
                return
            image, source = fetched
            try:
                writer = self.cache.writer(image)
                if writer is None:
                    return
                try:
                    for buf in source:
                        writer.write(buf)
                except BaseException:
                    writer.abort()
                    raise
            finally:
                source.close()
            if writer.commit():
                LOG.info("Image %s cached", image_id)
        except exceptions.GlanceServiceError as exc:
            LOG.warning("Caching image %s failed: %s", image_id, exc.message)
        finally:
            self.cache.delete_queued(image_id)
