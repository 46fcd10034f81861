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
from glance_service.store.driver_errors import translate
from glance_service.store.source import DataSource, Incoming, StoredData, translated

LOG = logging.getLogger(__name__)

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


def _add_to(store, data: Incoming) -> StoredData:
    """Write through our own streaming writer for the store's kind when there is one (rbd, s3,
    swift), else through glance_store's driver, which reads ``data`` (size checked as it passes)."""
    own = _writer(store)
    if own is not None:
        return own.add(store, data)
    try:
        url, size, checksum, hash_value, metadata = store.add(
            data.image_id, data, data.expected_size or 0, data.hash_algo
        )
    except Exception as exc:
        raise translate(exc) from exc
    return StoredData(url, size, checksum, data.hash_algo, hash_value, dict(metadata or {}))


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


class Drivers:
    """The stores glance_store's drivers serve, each addressed by a backend id. Multi-store
    (``[DEFAULT] enabled_backends``): the ids and sections of that option. A single store
    (``[glance_store] stores``/``default_store``, no ``enabled_backends``) runs the same way as
    a multi-store whose ids are the store kinds (``http``, ``rbd``, ...), with the options of
    ``[glance_store]``: only how a driver and a location are looked up differs. glance_store
    keeps its scheme maps in module globals read through ``cfg.CONF``, as in Glance."""

    def __init__(self, conf: cfg.ConfigOpts, backends: dict[str, str], reserved: dict[str, str] | None):
        """``backends``: id -> kind; ``reserved``: Glance's reserved stores in multi-store, None
        for a single store."""
        from glance_store import multi_backend

        self.conf = conf
        self.backends = backends
        self.multistore = reserved is not None
        self._mb = multi_backend
        if self.multistore:
            self.count = multi_backend.create_multi_stores(conf, reserved_stores=dict(reserved))
        else:
            self.count = glance_store.create_stores(conf)

    def store(self, backend: str):
        """The driver of ``backend``."""
        try:
            if self.multistore:
                return self._mb.get_store_from_store_identifier(backend)
            return gs_backend.get_store_from_scheme(backend)
        except gs_exc.UnknownScheme:
            raise exceptions.BadRequest(f"The store '{backend}' is not enabled.") from None

    def _locate(self, url: str, backend: str | None):
        """The driver and glance_store location of ``url`` held by ``backend`` (None: found by
        the URL's scheme, as glance_store does for a location without its backend)."""
        if not self.multistore:
            # a single store's locations name no backend: the URL's scheme picks the driver
            return gs_backend.get_store_from_uri(url), gs_location.get_location_from_uri(url, conf=self.conf)
        if backend is None:
            scheme = url.split(":", 1)[0].lower()
            backend = next((b for b, kind in self.backends.items() if scheme.startswith(kind)), None)
            if backend is None:
                raise gs_exc.NotFound("Image not found in any configured backend")
        store = self.store(backend)
        return store, gs_location.get_location_from_uri_and_backend(url, backend, conf=self.conf)

    def add(self, backend: str, data: Incoming) -> StoredData:
        return _add_to(self.store(backend), data)

    def open(self, url: str, backend: str | None, offset: int = 0, length: int | None = None) -> DataSource:
        with translated(translate):
            store, loc = self._locate(url, backend)
            own = _reader(store)
            if own is not None:
                return own.open_location(store, loc, offset, length)
            random = _random(store, offset, length)
            if random:
                chunks, size = store.get(loc, offset=offset, chunk_size=length)
            else:
                chunks, size = store.get(loc)
        return _source(chunks, size, offset, length, random)

    def discard(self, backend: str, image_id: str) -> None:
        """Remove what a dead upload of ``image_id`` left in ``backend`` (rbd, s3, swift)."""
        store = self.store(backend)
        own = _writer(store)
        if own is not None:
            own.discard(store, image_id)

    def delete(self, url: str, backend: str | None) -> None:
        """Remove the data at ``url``; gone already is no error. Raises ``InUseByStore`` when
        the store refuses because the data is in use, another error when it fails."""
        try:
            store, loc = self._locate(url, backend)
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
