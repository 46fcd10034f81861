"""Our ``/healthcheck`` backends (oslo.middleware plugins, entry point group
``oslo.middleware.healthcheck`` in pyproject.toml; ``common.healthcheck`` explains the rest).

Each check runs through a ``CachedProbe``: cached for ``[healthcheck] check_cache_seconds``
(``store_check_cache_seconds`` for stores), bounded by ``check_timeout``, never raising.

- ``glance_registry``: glance-api in registry mode calls the registry's ``ping`` (the RPC
  no-op, which also runs ``SELECT 1`` on the registry's database) with a client of its own
  whose timeout is ``check_timeout``. It uses the API's own path to the registry (address,
  TLS, signed identity), not the registry's ``/healthcheck``: a registry drained by its
  disable file still serves the API, and must not drain the API with it.
- ``glance_database``: the process's database (glance-registry; glance-api with
  ``data_api = database``): ``SELECT 1``.
- ``glance_store``: glance-api's default store: the file store's directories exist and a
  file can be created in them; rbd: a connection to the cluster and its pool; s3: the bucket
  (or ``s3_store_create_bucket_on_put``); swift: the account answers with a valid token.

A check that does not apply to the process (the registry check in database mode, the
database check of an API in registry mode, the store check of the registry) answers ``OK``
with a detail saying so: the same ``backends`` line serves every mode.
"""

from __future__ import annotations

import os
import tempfile

from oslo_middleware.healthcheck import pluginbase

from glance_service.common import healthcheck


def _resources(conf: dict) -> healthcheck.Resources | None:
    return conf.get(healthcheck.RESOURCES_KEY)


def _ok(details: str) -> pluginbase.HealthcheckResult:
    return pluginbase.HealthcheckResult(available=True, reason="OK", details=details)


class _CachedCheck(pluginbase.HealthcheckBaseExtension):
    reason = "UNAVAILABLE"
    name = "check"
    store = False

    def __init__(self, oslo_conf, conf):
        super().__init__(oslo_conf, conf)
        healthcheck.register_opts(oslo_conf)
        self.resources = _resources(conf)
        group = oslo_conf.healthcheck
        ttl = group.store_check_cache_seconds if self.store else group.check_cache_seconds
        self.not_applicable = self.applies() is not True
        self.probe = healthcheck.CachedProbe(
            self.name, self.check, reason=self.reason, ttl=ttl, timeout=group.check_timeout
        )

    def applies(self) -> bool | str:
        """True, or why the check does not apply to this process."""
        return True

    def check(self) -> pluginbase.HealthcheckResult:
        raise NotImplementedError

    def healthcheck(self, server_port: int) -> pluginbase.HealthcheckResult:
        why = self.applies()
        if why is not True:
            return _ok(f"{self.name}: {why}")
        return self.probe.result()


class RegistryCheck(_CachedCheck):
    """glance-api → glance-registry (``data_api = registry``)."""

    reason = "REGISTRY UNAVAILABLE"
    name = "glance_registry"

    def __init__(self, oslo_conf, conf):
        self._client = None
        super().__init__(oslo_conf, conf)

    def applies(self) -> bool | str:
        res = self.resources
        if res is None or res.service != "glance-api":
            return "not glance-api"
        if getattr(res.conf, "data_api", "registry") != "registry":
            return "not used (data_api = database)"
        return True

    def _registry(self):
        if self._client is None:
            from glance_service.registry.client import RegistryClient

            client = RegistryClient(self.resources.conf)
            # One short call: the check's own client, its own connection.
            client.timeout = max(1, self.oslo_conf.healthcheck.check_timeout)
            self._client = client
        return self._client

    def check(self) -> pluginbase.HealthcheckResult:
        from glance_service.context import RequestContext

        client = self._registry()
        try:
            client.ping(RequestContext.admin())
        finally:
            client.close()  # each probe runs in a thread of its own
        return _ok(f"registry at {client.url} answered")


class DatabaseCheck(_CachedCheck):
    """The process's own database (glance-registry; glance-api with ``data_api = database``)."""

    reason = "DATABASE UNAVAILABLE"
    name = "glance_database"

    def applies(self) -> bool | str:
        res = self.resources
        if res is None or res.data_api is None:
            return "no database in this process"
        if res.service == "glance-api" and getattr(res.conf, "data_api", "registry") != "database":
            return "not used (data_api = registry: glance_registry checks it)"
        return True

    def check(self) -> pluginbase.HealthcheckResult:
        from glance_service.context import RequestContext

        self.resources.data_api.ping(RequestContext.admin())
        return _ok("database answered")


class StoreCheck(_CachedCheck):
    """glance-api's default store."""

    reason = "STORE UNAVAILABLE"
    name = "glance_store"
    store = True

    def applies(self) -> bool | str:
        res = self.resources
        if res is None or res.stores is None:
            return "no image store in this process"
        return True

    def check(self) -> pluginbase.HealthcheckResult:
        stores = self.resources.stores
        backend = stores.default_backend  # a single store's is its kind
        kind = stores.backends[backend]
        if kind == "file":
            return check_file_dirs(stores.file_stores[backend].datadirs, backend)
        return check_driver(kind, stores.drivers.store(backend), backend)


def check_file_dirs(datadirs: list[str], backend: str) -> pluginbase.HealthcheckResult:
    """Every directory exists and takes a new file (created and removed at once)."""
    for path in datadirs:
        if not os.path.isdir(path):
            return pluginbase.HealthcheckResult(
                available=False,
                reason=StoreCheck.reason,
                details=f"store {backend}: {path} is not a directory",
            )
        try:
            fd, name = tempfile.mkstemp(prefix=".healthcheck-", dir=path)
        except OSError as exc:
            return pluginbase.HealthcheckResult(
                available=False,
                reason=StoreCheck.reason,
                details=f"store {backend}: cannot create a file in {path}: {exc.strerror}",
            )
        os.close(fd)
        os.unlink(name)
    return _ok(f"store {backend}: {', '.join(datadirs)} writable")


def check_driver(kind: str, driver, backend: str) -> pluginbase.HealthcheckResult:
    """What the glance_store driver offers cheaply: a connection to the service it uses."""
    if kind == "rbd":
        with driver.get_connection(conffile=driver.conf_file, rados_id=driver.user) as conn:
            with conn.open_ioctx(driver.pool):
                pass
        return _ok(f"store {backend}: pool {driver.pool} reachable")
    if kind == "s3":
        client = driver._create_s3_client()
        if driver._bucket_exists(client, driver.bucket):
            return _ok(f"store {backend}: bucket {driver.bucket} reachable")
        if driver._option_get("s3_store_create_bucket_on_put"):
            return _ok(f"store {backend}: bucket {driver.bucket} absent, created on the first upload")
        return pluginbase.HealthcheckResult(
            available=False,
            reason=StoreCheck.reason,
            details=f"store {backend}: bucket {driver.bucket} does not exist",
        )
    if kind == "swift":
        from glance_service.store import swift

        swift._checked_connection(driver, driver.create_location("healthcheck"))
        return _ok(f"store {backend}: account reachable")
    return _ok(f"store {backend}: {kind} not probed")
