"""The data path's facade: one ``Stores`` per API worker.

The file store is ours (``filesystem.py``: parallel hashing, large buffers, fsync, sendfile);
every other kind goes through glance_store (``backends.py``). Calls dispatch by the
location's URL scheme (reads, deletes) or by the store kind (writes), so new backends slot in
without touching the callers.

glance_store's own options (``[glance_store] stores, default_store, default_backend``) and the
file and http drivers' (glance_store's default ``stores``) are registered when this module is
imported; the options of the other drivers only for the stores configured (``Stores``), so a
process imports no client library it does not use (boto3, botocore and s3transfer alone hold
16.5 MiB in every API worker). The sample-config generator lists every driver's options from
glance_store's own namespaces, as upstream's does.
"""

from __future__ import annotations

import contextlib
import copy
import hashlib
import logging
import os

import glance_store
from glance_store import backend as gs_backend
from glance_store import multi_backend as gs_multi_backend
from oslo_config import cfg

from glance_service import exceptions
from glance_service.common import metrics
from glance_service.store import filesystem
from glance_service.store.backends import Drivers
from glance_service.store.filesystem import FileStore
from glance_service.store.hashing import HASH_ALGO
from glance_service.store.source import DataSource, Incoming, StoredData

__all__ = ["DataSource", "StoredData", "Stores", "list_opts", "register_opts"]

_FILE_KINDS = ("file", "filesystem")

# Glance's reserved stores (multi-store only): staged data of interoperable import, and the
# tasks' scratch space. Configured like any file backend, in sections of these names.
STAGING_STORE = "os_glance_staging_store"
TASKS_STORE = "os_glance_tasks_store"
RESERVED_STORES = {STAGING_STORE: "file", TASKS_STORE: "file"}

multistore_opts = [
    cfg.DictOpt(
        "enabled_backends",
        help="Multi-store: 'id:type' pairs, e.g. 'fast:file,cheap:file,web:http'. Each id has its "
        "own section with the driver's options (e.g. [fast] filesystem_store_datadir) and "
        "[glance_store] default_backend names the default. Unset: the single store of "
        "[glance_store] stores/default_store.",
    ),
    cfg.StrOpt(
        "node_staging_uri",
        default="file:///tmp/staging/",
        help="Single store only: file:// directory where 'glance-direct' imports stage data "
        "(multi-store uses [os_glance_staging_store] filesystem_store_datadir).",
    ),
]


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


# The drivers whose options are registered before the configuration is known: glance_store's
# default ``stores`` (their modules import nothing this service does not import anyway).
DEFAULT_KINDS = ("file", "http")


def register_opts(conf: cfg.ConfigOpts, kinds: tuple[str, ...] | None = DEFAULT_KINDS) -> None:
    """Register on ``conf`` (idempotent) our store options, glance_store's own, and in
    ``[glance_store]`` the options of the drivers of ``kinds`` (None: every driver, as
    glance_store's ``register_opts`` does, importing each driver's client library)."""
    conf.register_opts(multistore_opts)
    if kinds is None:
        with _quiet_driver_loading():
            glance_store.register_opts(conf)
        return
    conf.register_opts(gs_backend._STORE_OPTS, group="glance_store")
    for options in _driver_options(kinds).values():
        conf.register_opts(options, group="glance_store")


def _driver_options(kinds) -> dict[str, list[cfg.Opt]]:
    """kind -> the options of its glance_store driver, importing only these drivers (one whose
    client library is missing has none: glance_store disables it, as when listing them all)."""
    found: dict[str, list[cfg.Opt]] = {}
    with _quiet_driver_loading():
        for kind in dict.fromkeys(kinds):
            driver = gs_backend._load_store(None, kind, invoke_load=False)
            if getattr(driver, "OPTIONS", None) is not None:
                found[kind] = driver.OPTIONS
    return found


def _register_multi_store_opts(conf: cfg.ConfigOpts, kinds: dict[str, str]) -> None:
    """glance_store's ``multi_backend.register_store_opts`` for ``kinds`` (backend id -> kind)
    and the reserved stores, importing only the drivers of ``kinds`` (glance_store's imports
    every driver to list their options)."""
    conf.register_opts(gs_multi_backend._STORE_OPTS, group="glance_store")
    conf.enabled_backends.update(RESERVED_STORES)  # as glance_store does: its drivers read it
    for name in RESERVED_STORES:
        conf.register_opts(_reserved_file_opts(name), group=name)
    options = _driver_options(kinds.values())
    for name, kind in kinds.items():
        if kind in options:
            conf.register_opts(options[kind], group=name)


_RESERVED_FILE_OPTS = (
    "filesystem_store_datadir",
    "filesystem_store_datadirs",
    "filesystem_store_metadata_file",
    "filesystem_store_file_perm",
    "filesystem_store_chunk_size",
    "filesystem_thin_provisioning",
)


def _reserved_file_opts(name: str) -> list[cfg.Opt]:
    """The file options of reserved store ``name``, as glance_store declares them: the file
    driver's, the data directory defaulting to ``/var/lib/glance/<name>``."""
    driver = gs_backend._load_store(None, "file", invoke_load=False)
    opts = [copy.deepcopy(opt) for opt in driver.OPTIONS if opt.name in _RESERVED_FILE_OPTS]
    for opt in opts:
        if opt.name == "filesystem_store_datadir":
            opt.default = f"/var/lib/glance/{name}"
    return opts


def list_opts() -> list[tuple[str, list[cfg.Opt]]]:
    """glance_store's options, for the sample-config generator."""
    with _quiet_driver_loading():
        return [(None, multistore_opts), *gs_backend._list_opts()]


register_opts(cfg.CONF)


# /v2/info/stores/detail "properties": (store kind, Glance's key, the backend's option). An
# option the backend's section lacks shows as None (thin provisioning: False).
_PROPERTIES: list[tuple[str, str, str]] = [
    ("file", "data_dir", "filesystem_store_datadir"),
    ("file", "chunk_size", "filesystem_store_chunk_size"),
    ("file", "thin_provisioning", "filesystem_thin_provisioning"),
    ("rbd", "chunk_size", "rbd_store_chunk_size"),
    ("rbd", "pool", "rbd_store_pool"),
    ("rbd", "thin_provisioning", "rbd_thin_provisioning"),
    ("swift", "container", "swift_store_container"),
    ("swift", "large_object_size", "swift_store_large_object_size"),
    ("swift", "large_object_chunk_size", "swift_store_large_object_chunk_size"),
    ("s3", "s3_store_large_object_size", "s3_store_large_object_size"),
    ("s3", "s3_store_large_object_chunk_size", "s3_store_large_object_chunk_size"),
    ("s3", "s3_store_thread_pools", "s3_store_thread_pools"),
]


def _kind(name: str) -> str:
    name = (name or "").strip().lower()
    return "file" if name in _FILE_KINDS else name


def _known_kinds() -> set[str]:
    """The store kinds glance_store has a driver for (its entry points), plus our file store."""
    from importlib.metadata import entry_points

    # Dotted names (glance.store.rbd.Store) are the legacy spelling upstream still accepts.
    names = {ep.name.lower() for ep in entry_points(group="glance_store.drivers")}
    return (names - {"no_conf"}) | set(_FILE_KINDS)


class _Section:
    """The file options of the single store's staging directory (``node_staging_uri``), read
    like a multi-store backend's section."""

    def __init__(self, datadir: str):
        self.filesystem_store_datadir = datadir
        self.filesystem_store_datadirs = None


def _check_kinds(kinds: dict[str, str], option: str) -> None:
    """Refuse a configuration naming a kind no driver serves: every request would fail later."""
    known = _known_kinds()
    unknown = {name: kind for name, kind in kinds.items() if kind not in known}
    if unknown:
        listed = ", ".join(f"{name}:{kind}" for name, kind in unknown.items())
        short = ", ".join(sorted(k for k in known if "." not in k))
        raise exceptions.GlanceServiceError(
            f"{option} names store kinds without a driver ({listed}); known kinds: {short}."
        )


class Stores:
    """Every store of the configuration, run one way: backend id -> kind (``backends``), with a
    default backend; file backends (and the reserved staging store) are ours, every other kind
    goes through glance_store's drivers.

    Multi-store (``[DEFAULT] enabled_backends``) gives the ids. A single store (``[glance_store]
    stores``/``default_store``, as upstream still accepts) is run as a multi-store whose ids are
    the store kinds and whose default is ``default_store``; ``enabled`` stays empty then, since
    what the API shows (``/v2/info/stores``, ``OpenStack-image-store-ids``, a location's
    ``store``) exists only in multi-store, as in Glance."""

    def __init__(self, conf: cfg.ConfigOpts):
        register_opts(conf)
        self.conf = conf
        # [DEFAULT] hashing_algorithm is declared by the API (api/options.py); sha512 without it.
        self.hash_algo = getattr(conf, "hashing_algorithm", None) or HASH_ALGO
        try:
            hashlib.new(self.hash_algo)
        except ValueError:
            raise exceptions.GlanceServiceError(
                f"[DEFAULT] hashing_algorithm '{self.hash_algo}' is not a hashlib algorithm."
            ) from None
        # Multi-store: backend id -> kind, without the reserved stores (copied: glance_store
        # adds the reserved ones to the option's own dict).
        self.enabled: dict[str, str] = {
            name: _kind(kind)
            for name, kind in (conf.enabled_backends or {}).items()
            if name not in RESERVED_STORES
        }
        if self.enabled:
            self.backends, self.default_backend, sections = self._multi_store(conf)
        else:
            self.backends, self.default_backend, sections = self._single_store(conf)
        self.default_store = self.backends[self.default_backend]
        self.file_stores: dict[str, FileStore] = {
            name: FileStore(
                group.filesystem_store_datadir if not group.filesystem_store_datadirs else None,
                group.filesystem_store_datadirs,
                getattr(group, "filesystem_store_file_perm", 0),
            )
            for name, group in sections.items()
        }
        self.staging = self.file_stores[STAGING_STORE]
        # glance_store serves the other kinds (and knows every backend's options and weight).
        self.drivers = Drivers(conf, self.backends, dict(RESERVED_STORES) if self.enabled else None)

    def _multi_store(self, conf: cfg.ConfigOpts):
        """``[DEFAULT] enabled_backends``: its ids, ``default_backend``, and the option section of
        every file backend (the reserved ones included)."""
        _check_kinds(self.enabled, "[DEFAULT] enabled_backends")
        _register_multi_store_opts(conf, self.enabled)
        default = conf.glance_store.default_backend
        if default not in self.enabled:
            raise exceptions.GlanceServiceError(
                f"[glance_store] default_backend must name one of [DEFAULT] enabled_backends "
                f"({', '.join(self.enabled)}), not '{default}'."
            )
        sections = {
            name: getattr(conf, name)
            for name, kind in {**self.enabled, **RESERVED_STORES}.items()
            if kind == "file"
        }
        return dict(self.enabled), default, sections

    def _single_store(self, conf: cfg.ConfigOpts):
        """``[glance_store] stores``/``default_store`` as a multi-store: one id per kind, the file
        backend's options in ``[glance_store]``, staging in ``[DEFAULT] node_staging_uri``."""
        gs = conf.glance_store
        backends = {_kind(s): _kind(s) for s in gs.stores}
        _check_kinds(backends, "[glance_store] stores")
        # As glance_store loads them: by the names in ``stores``
        register_opts(conf, tuple(str(s).strip() for s in gs.stores))
        default = _kind(gs.default_store)
        if default not in backends:
            raise exceptions.GlanceServiceError(
                f"[glance_store] default_store '{gs.default_store}' is not in [glance_store] stores."
            )
        staging = conf.node_staging_uri or "file:///tmp/staging/"
        if not filesystem.owns(staging):
            raise exceptions.GlanceServiceError(
                f"[DEFAULT] node_staging_uri must be a file:// directory, not '{staging}'."
            )
        sections = {"file": gs} if "file" in backends else {}
        sections[STAGING_STORE] = _Section(filesystem.path_from_url(staging))
        return backends, default, sections

    def add(
        self,
        image_id: str,
        reader,
        *,
        expected_size: int | None,
        size_cap: int,
        store: str | None = None,
    ) -> StoredData:
        """Store ``reader``'s data in backend ``store`` (default: the default backend)."""
        data = Incoming(
            image_id, reader, expected_size=expected_size, size_cap=size_cap, hash_algo=self.hash_algo
        )
        backend = store or self.default_backend
        kind = self.backends.get(backend)
        if kind is None:
            raise exceptions.BadRequest(f"Store '{backend}' is not enabled at this site.")
        with metrics.store_operation(backend, "add"):  # issue 18 metrics
            if kind == "file":
                stored = self.file_stores[backend].write(data)
            else:
                stored = self.drivers.add(backend, data)
        if self.enabled:
            stored.metadata = {**stored.metadata, "store": backend}
        return stored

    def open(
        self, url: str, offset: int = 0, length: int | None = None, backend: str | None = None
    ) -> DataSource:
        with metrics.store_operation(self._metrics_store(url, backend), "open"):  # issue 18 metrics
            if filesystem.owns(url):
                return filesystem.open_url(url, offset, length)
            return self.drivers.open(url, backend, offset, length)

    def delete(self, url: str, backend: str | None = None) -> None:
        """Remove the data at ``url`` (held by ``backend``, a location's ``store``, in
        multi-store). Data already gone is no error; a store that refuses because the data
        is in use raises ``InUseByStore`` (409), one that fails another error: callers keep
        the location then, so the data is never lost track of."""
        with metrics.store_operation(self._metrics_store(url, backend), "delete"):  # issue 18 metrics
            if filesystem.owns(url):
                filesystem.delete_url(url)
            else:
                # a backend since removed from the configuration: glance_store finds one by scheme
                self.drivers.delete(url, backend if backend in self.backends else None)

    def _metrics_store(self, url: str, backend: str | None) -> str | None:
        """The store's label in the metrics (looked up only while they are on)."""
        if not metrics.active():
            return None
        return backend if backend in self.backends else self.store_for_url(url)

    def cleanup_partial(self) -> int:
        """Remove partial files left by crashed uploads (none that a live upload holds)."""
        return sum(store.cleanup_partial() for store in self.file_stores.values())

    def discard(self, image_id: str) -> None:
        """Remove whatever an interrupted upload of ``image_id`` may have left: unheld partial
        files, and complete data never recorded as a location (the process died between the
        write and the database update). Only for an image that is ``saving`` without a live
        upload, so no recorded data can be hit. The upload may have targeted any backend."""
        for backend in self.backends:
            self.discard_from(image_id, backend)

    def discard_from(self, image_id: str, backend: str) -> None:
        """Remove unrecorded data of ``image_id`` from one backend (see ``discard``)."""
        if backend not in self.backends:
            return
        store = self.file_stores.get(backend)
        if store is None:
            self.drivers.discard(backend, image_id)
            return
        store.cleanup_partial(image_id)
        for url in store.url_for(image_id):
            filesystem.delete_url(url)

    def weight(self, backend: str) -> int:
        return int(getattr(getattr(self.conf, backend), "weight", 0) or 0)

    def is_read_only(self, backend: str) -> bool:
        return self.backends.get(backend) == "http"

    def store_for_url(self, url: str) -> str | None:
        """The backend id holding ``url`` (file backends by directory, others by scheme)."""
        if filesystem.owns(url):
            path = filesystem.path_from_url(url)
            for name, store in self.file_stores.items():
                if name in self.backends and any(
                    os.path.dirname(path) == d.rstrip("/") for d in store.datadirs
                ):
                    return name
            return None
        scheme = url.split(":", 1)[0].lower()
        for name, kind in self.backends.items():
            if scheme.startswith(kind):
                return name
        return None

    def info(self, detail: bool = False) -> list[dict]:
        """``/v2/info/stores`` entries (Glance's keys; reserved stores are never listed)."""
        out = []
        for name, kind in self.enabled.items():
            group = getattr(self.conf, name)
            entry: dict = {"id": name}
            description = getattr(group, "store_description", None)
            if description:
                entry["description"] = description
            if name == self.default_backend:
                entry["default"] = "true"
            if self.is_read_only(name):
                entry["read-only"] = "true"
            if detail:
                entry["type"] = kind
                entry["weight"] = self.weight(name)
                entry["properties"] = self._properties(kind, group)
            out.append(entry)
        return out

    @staticmethod
    def _properties(kind: str, group) -> dict:
        return {
            prop: getattr(group, option, False if prop == "thin_provisioning" else None)
            for of_kind, prop, option in _PROPERTIES
            if of_kind == kind
        }

    # -- staging (interoperable import) ---------------------------------------------------
    def stage(self, image_id: str, reader, *, expected_size: int | None, size_cap: int) -> StoredData:
        with metrics.store_operation(STAGING_STORE, "stage"):  # issue 18 metrics
            return self.staging.add(
                image_id, reader, expected_size=expected_size, size_cap=size_cap, hash_algo=self.hash_algo
            )

    def staged_url(self, image_id: str) -> str | None:
        """The staged data of ``image_id`` if complete, else None."""
        for url in self.staging.url_for(image_id):
            if os.path.exists(filesystem.path_from_url(url)):
                return url
        return None

    def unstage(self, image_id: str) -> None:
        """Remove staged data of ``image_id`` (complete or partial, never a live writer's)."""
        self.staging.cleanup_partial(image_id)
        for url in self.staging.url_for(image_id):
            filesystem.delete_url(url)
