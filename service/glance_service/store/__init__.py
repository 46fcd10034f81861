"""The data path's facade: one ``Stores`` per API worker.

The file store is ours (``filesystem.py``: parallel hashing, large buffers, fsync, sendfile);
every other kind goes through glance_store (``backends.py``). Calls dispatch by the
location's URL scheme (reads, deletes) or by the store kind (writes), so new backends slot in
without touching the callers.

glance_store's options (``[glance_store] stores, default_store, filesystem_store_datadir``,
...) are registered when this module is imported, so config parsing and the sample-config
generator see them.
"""

from __future__ import annotations

import contextlib
import hashlib
import logging

import glance_store
from oslo_config import cfg

from glance_service import exceptions
from glance_service.store import filesystem
from glance_service.store.backends import GlanceStoreBackends
from glance_service.store.filesystem import FileStore
from glance_service.store.hashing import HASH_ALGO
from glance_service.store.source import DataSource, StoredData

__all__ = ["DataSource", "StoredData", "Stores", "list_opts", "register_opts"]

_FILE_KINDS = ("file", "filesystem")


@contextlib.contextmanager
def _quiet_driver_loading():
    # glance_store lists its options by importing every driver; the ones whose client library
    # is not installed (cinder needs os_brick) make stevedore log an ERROR with a traceback at
    # every start. Those drivers are simply not available; say so once, quietly.
    logger = logging.getLogger("stevedore.extension")
    level = logger.level
    logger.setLevel(logging.CRITICAL)
    try:
        yield
    finally:
        logger.setLevel(level)


def register_opts(conf: cfg.ConfigOpts) -> None:
    """Register glance_store's options on ``conf`` (idempotent)."""
    with _quiet_driver_loading():
        glance_store.register_opts(conf)


def list_opts() -> list[tuple[str, list[cfg.Opt]]]:
    """glance_store's options, for the sample-config generator."""
    from glance_store import backend

    with _quiet_driver_loading():
        return backend._list_opts()


register_opts(cfg.CONF)


def _kind(name: str) -> str:
    name = (name or "").strip().lower()
    return "file" if name in _FILE_KINDS else name


class Stores:
    def __init__(self, conf: cfg.ConfigOpts):
        register_opts(conf)
        self.conf = conf
        gs = conf.glance_store
        self.default_store = _kind(gs.default_store)
        enabled = {_kind(s) for s in gs.stores}
        if self.default_store not in enabled:
            raise exceptions.GlanceServiceError(
                f"[glance_store] default_store '{gs.default_store}' is not in [glance_store] stores."
            )
        self.file: FileStore | None = None
        if "file" in enabled:
            self.file = FileStore(
                gs.filesystem_store_datadir if not gs.filesystem_store_datadirs else None,
                gs.filesystem_store_datadirs,
                gs.filesystem_store_file_perm,
            )
        self.backends = GlanceStoreBackends(conf)
        # [DEFAULT] hashing_algorithm is declared by the API (api/options.py); sha512 without it.
        self.hash_algo = getattr(conf, "hashing_algorithm", None) or HASH_ALGO
        try:
            hashlib.new(self.hash_algo)
        except ValueError:
            raise exceptions.GlanceServiceError(
                f"[DEFAULT] hashing_algorithm '{self.hash_algo}' is not a hashlib algorithm."
            ) from None

    def add(
        self,
        image_id: str,
        reader,
        *,
        expected_size: int | None,
        size_cap: int,
        store: str | None = None,
    ) -> StoredData:
        kind = _kind(store or self.default_store)
        if kind == "file":
            if self.file is None:
                raise exceptions.BadRequest("The file store is not enabled.")
            return self.file.add(
                image_id, reader, expected_size=expected_size, size_cap=size_cap, hash_algo=self.hash_algo
            )
        return self.backends.add(
            kind, image_id, reader, expected_size=expected_size, size_cap=size_cap, hash_algo=self.hash_algo
        )

    def open(self, url: str, offset: int = 0, length: int | None = None) -> DataSource:
        if filesystem.owns(url):
            return filesystem.open_url(url, offset, length)
        return self.backends.open(url, offset, length)

    def delete(self, url: str) -> None:
        if filesystem.owns(url):
            filesystem.delete_url(url)
        else:
            self.backends.delete(url)

    def cleanup_partial(self) -> int:
        """Remove partial files left by crashed uploads (none that a live upload holds)."""
        return self.file.cleanup_partial() if self.file is not None else 0

    def discard(self, image_id: str) -> None:
        """Remove whatever an interrupted upload of ``image_id`` may have left in the default
        store: unheld partial files, and complete data never recorded as a location (the
        process died between the write and the database update). Only for an image that is
        ``saving`` without a live upload, so no recorded data can be hit."""
        if self.default_store == "file" and self.file is not None:
            self.file.cleanup_partial(image_id)
            for url in self.file.url_for(image_id):
                filesystem.delete_url(url)
