"""Every store other than our file store, through glance_store: its drivers, options and
location URLs (http read-only; rbd, s3 and swift with our own writers; cinder when configured)."""

from __future__ import annotations

import logging

import glance_store
from glance_store import backend as gs_backend
from glance_store import capabilities as gs_capabilities
from glance_store import exceptions as gs_exc
from glance_store import location as gs_location
from oslo_config import cfg

from glance_service import exceptions
from glance_service.store import rbd as rbd_writer
from glance_service.store import s3 as s3_writer
from glance_service.store import swift as swift_store
from glance_service.store.hashing import HASH_ALGO
from glance_service.store.source import READ_CHUNK, DataSource, StoredData

LOG = logging.getLogger(__name__)

_ERRORS: list[tuple[type[Exception], type[exceptions.GlanceServiceError]]] = [
    # a delete the store refuses because the data is in use (rbd: clones, watchers, snapshots)
    (gs_exc.InUseByStore, exceptions.InUseByStore),
    (gs_exc.HasSnapshot, exceptions.InUseByStore),
    (gs_exc.NotFound, exceptions.NotFound),
    (gs_exc.Duplicate, exceptions.Duplicate),
    (gs_exc.StorageFull, exceptions.StorageFull),
    (gs_exc.StoreAddDisabled, exceptions.Gone),
    (gs_exc.StorageWriteDenied, exceptions.StoreUnavailable),
    (gs_exc.RemoteServiceUnavailable, exceptions.StoreUnavailable),
    (gs_exc.UnknownScheme, exceptions.BadRequest),
    (gs_exc.BadStoreUri, exceptions.BadRequest),
    (gs_exc.Invalid, exceptions.BadRequest),
    (gs_exc.Forbidden, exceptions.Forbidden),
]


# Stores whose uploads go through our own writers (rbd.py, s3.py, swift.py: parallel hashing,
# bounded memory, no orphans); glance_store's driver still configures them, reads and deletes.
# Keyed by the driver's first scheme.
_WRITERS = {"rbd": rbd_writer, "s3": s3_writer, "swift+https": swift_store}
# Stores read and deleted through our own module (swift: ranged GETs, which its driver's get()
# ignores, and one Keystone token per process instead of one per call).
_READERS = {"swift+https": swift_store}
# Stores deleted through our own module's ``delete_location`` (rbd: a refused delete leaves the
# image and its protected snapshot as they were; swift: see _READERS).
_DELETERS = {"rbd": rbd_writer, "swift+https": swift_store}


def _writer(store):
    return _WRITERS.get(store.get_schemes()[0])


def _reader(store):
    return _READERS.get(store.get_schemes()[0])


def _delete_at(store, loc) -> None:
    own = _DELETERS.get(store.get_schemes()[0])
    if own is not None:
        own.delete_location(store, loc)
    else:
        store.delete(loc)


def _no_store(url: str) -> None:
    # No enabled store serves this scheme (a store since removed from the configuration, or an
    # external location nothing here can reach): the data is not ours to remove.
    LOG.warning(
        "Location %s is left as it is: no store of this site serves it", url.split("://", 1)[0] + "://..."
    )


def _source(chunks, size, offset: int, length: int | None, random: bool) -> DataSource:
    """A DataSource for a driver's ``get()``: ranged by the driver when it reads at random,
    else cut out of the whole stream here."""
    if not random:
        chunks = _skip_and_limit(chunks, offset, length)
        total = size
        if size is not None:
            size = (size - offset) if length is None else min(length, size - offset)
    else:
        total = None if (offset or length is not None) else size
    return DataSource(size if size is not None else length, total, chunks=_translated(chunks))


def translate(exc: Exception) -> exceptions.GlanceServiceError:
    """The service error for a glance_store (or network) failure."""
    if isinstance(exc, exceptions.GlanceServiceError):
        return exc
    for gs_type, ours in _ERRORS:
        if isinstance(exc, gs_type):
            return ours(str(exc) or None)
    if isinstance(exc, OSError):
        return exceptions.StoreUnavailable(f"The image store could not be reached: {exc}")
    return exceptions.StoreUnavailable(f"The image store failed: {exc}")


class _CheckedReader:
    """Enforces the size cap and the declared size on data handed to a glance_store driver."""

    def __init__(self, reader, expected_size: int | None, size_cap: int):
        self._reader = reader
        self._expected = expected_size
        self._cap = size_cap
        self.size = 0

    def read(self, n: int = READ_CHUNK) -> bytes:
        buf = self._reader.read(n if n and n > 0 else READ_CHUNK)
        self.size += len(buf)
        if self.size > self._cap:
            raise exceptions.ImageSizeLimitExceeded(f"The image exceeds the limit of {self._cap} bytes.")
        if self._expected is not None:
            if self.size > self._expected or (not buf and self.size != self._expected):
                raise exceptions.BadRequest(
                    f"The data size does not match the declared size of {self._expected} bytes."
                )
        return buf


def _skip_and_limit(chunks, offset: int, length: int | None):
    """Cut ``[offset, offset+length)`` out of a chunk stream (for stores without random access)."""
    left = length
    for chunk in chunks:
        if offset:
            if len(chunk) <= offset:
                offset -= len(chunk)
                continue
            chunk, offset = chunk[offset:], 0
        if left is not None:
            chunk = chunk[:left]
            left -= len(chunk)
        if chunk:
            yield chunk
        if left == 0:
            return


def _add_to(
    store, image_id: str, reader, expected_size: int | None, size_cap: int, hash_algo: str
) -> StoredData:
    """Write through our own streaming writer for the store's kind when there is one (rbd, s3,
    swift), else through glance_store's driver with the size checked as the data passes. The
    declared size is checked against the cap here, once, for both paths."""
    if expected_size is not None and expected_size > size_cap:
        raise exceptions.ImageSizeLimitExceeded(
            f"The image size {expected_size} exceeds the limit of {size_cap} bytes."
        )
    own = _writer(store)
    if own is not None:
        return own.add(
            store, image_id, reader, expected_size=expected_size, size_cap=size_cap, hash_algo=hash_algo
        )
    checked = _CheckedReader(reader, expected_size, size_cap)
    try:
        url, size, checksum, hash_value, metadata = store.add(
            image_id, checked, expected_size or 0, hash_algo
        )
    except Exception as exc:
        raise translate(exc) from exc
    return StoredData(url, size, checksum, hash_algo, hash_value, dict(metadata or {}))


class GlanceStoreBackends:
    def __init__(self, conf: cfg.ConfigOpts):
        self.conf = conf
        self.count = glance_store.create_stores(conf)

    def _store(self, scheme: str):
        try:
            return gs_backend.get_store_from_scheme(scheme)
        except gs_exc.UnknownScheme:
            raise exceptions.BadRequest(f"The store '{scheme}' is not enabled.") from None

    def add(
        self,
        kind: str,
        image_id: str,
        reader,
        *,
        expected_size: int | None,
        size_cap: int,
        hash_algo: str = HASH_ALGO,
    ) -> StoredData:
        return _add_to(self._store(kind), image_id, reader, expected_size, size_cap, hash_algo)

    def open(self, url: str, offset: int = 0, length: int | None = None) -> DataSource:
        try:
            loc = gs_location.get_location_from_uri(url, conf=self.conf)
            store = gs_backend.get_store_from_uri(url)
            own = _reader(store)
            if own is not None:
                return own.open_location(store, loc, offset, length)
            random = _random(store, offset, length)
            if random:
                chunks, size = store.get(loc, offset=offset, chunk_size=length)
            else:
                chunks, size = store.get(loc)
        except exceptions.GlanceServiceError:
            raise
        except Exception as exc:
            raise translate(exc) from exc
        return _source(chunks, size, offset, length, random)

    def discard(self, kind: str, image_id: str) -> None:
        """Remove what a dead upload of ``image_id`` left in store ``kind`` (rbd, s3, swift)."""
        own = _writer(self._store(kind))
        if own is not None:
            own.discard(self._store(kind), image_id)

    def delete(self, url: str) -> None:
        """Remove the data at ``url``; gone already is no error. Raises ``InUseByStore`` when
        the store refuses because the data is in use, another error when it fails."""
        try:
            loc = gs_location.get_location_from_uri(url, conf=self.conf)
            store = gs_backend.get_store_from_uri(url)
            _delete_at(store, loc)
        except (gs_exc.NotFound, gs_exc.StoreDeleteNotSupported, exceptions.NotFound):
            # gone already, or a read-only store (http) whose data is not ours to remove
            return
        except gs_exc.UnknownScheme:
            _no_store(url)
            return
        except exceptions.GlanceServiceError:
            raise
        except Exception as exc:
            raise translate(exc) from exc


def _random(store, offset: int, length: int | None) -> bool:
    """Whether the driver's ``get()`` serves this range itself (a whole read always is)."""
    if offset or length is not None:
        return store.is_capable(gs_capabilities.BitMasks.READ_RANDOM)
    return True


def _translated(chunks):
    try:
        yield from chunks
    except Exception as exc:
        raise translate(exc) from exc


class MultiBackends:
    """glance_store's multi-store mode (``[DEFAULT] enabled_backends``): every backend that is
    not served by our file store, addressed by its store identifier. glance_store keeps its
    scheme map in module globals read through ``cfg.CONF``, as in Glance."""

    def __init__(self, conf: cfg.ConfigOpts, reserved: dict[str, str]):
        from glance_store import multi_backend

        self.conf = conf
        self._mb = multi_backend
        self.count = multi_backend.create_multi_stores(conf, reserved_stores=dict(reserved))

    def store(self, backend: str):
        try:
            return self._mb.get_store_from_store_identifier(backend)
        except gs_exc.UnknownScheme:
            raise exceptions.BadRequest(f"The store '{backend}' is not enabled.") from None

    def add(
        self,
        backend: str,
        image_id: str,
        reader,
        *,
        expected_size: int | None,
        size_cap: int,
        hash_algo: str = HASH_ALGO,
    ) -> StoredData:
        return _add_to(self.store(backend), image_id, reader, expected_size, size_cap, hash_algo)

    def open(self, url: str, backend: str | None, offset: int = 0, length: int | None = None) -> DataSource:
        try:
            if backend is None:
                # a location without its backend: glance_store searches them by scheme
                random = not (offset or length is not None)
                chunks, size = self._mb.get(url, None)
            else:
                store = self.store(backend)
                own = _reader(store)
                if own is not None:
                    loc = gs_location.get_location_from_uri_and_backend(url, backend, conf=self.conf)
                    return own.open_location(store, loc, offset, length)
                random = _random(store, offset, length)
                if random:
                    chunks, size = self._mb.get(url, backend, offset=offset, chunk_size=length)
                else:
                    chunks, size = self._mb.get(url, backend)
        except exceptions.GlanceServiceError:
            raise
        except Exception as exc:
            raise translate(exc) from exc
        return _source(chunks, size, offset, length, random)

    def discard(self, backend: str, image_id: str) -> None:
        """Remove what a dead upload of ``image_id`` left in ``backend`` (rbd, s3, swift)."""
        own = _writer(self.store(backend))
        if own is not None:
            own.discard(self.store(backend), image_id)

    def delete(self, url: str, backend: str | None) -> None:
        try:
            if backend:
                store = self.store(backend)
                _delete_at(store, gs_location.get_location_from_uri_and_backend(url, backend, conf=self.conf))
            else:
                self._mb.delete(url, backend)
        except (gs_exc.NotFound, gs_exc.StoreDeleteNotSupported, exceptions.NotFound):
            return
        except gs_exc.UnknownScheme:
            _no_store(url)
            return
        except exceptions.GlanceServiceError:
            raise
        except Exception as exc:
            raise translate(exc) from exc
