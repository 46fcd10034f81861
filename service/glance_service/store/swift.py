"""Writes and reads image data in OpenStack Swift: our own data path for the swift store.

glance_store's ``swift`` driver keeps the options (``swift_store_auth_address``,
``swift_store_user``, ``swift_store_key``, ``swift_store_config_file`` with
``default_swift_reference``, ``swift_store_container``, ``swift_store_create_container_on_put``,
``swift_store_large_object_size``, ``swift_store_large_object_chunk_size``, region, endpoint,
TLS options), authenticates with Keystone, finds the storage URL in the catalog and deletes;
this module replaces its ``add()`` and ``get()`` and writes what that ``add()`` writes: the object
``<container>/<image id>``, or for a large image the segments ``<image id>-00001``, ... and a
Dynamic Large Object manifest ``<image id>`` (``X-Object-Manifest: <container>/<image id>-``),
at the driver's location URL (``swift+config://<reference>/...`` or ``swift+http(s)://...``).

Why not the driver's ``add()`` (glance_store 5.7.0):

* a declared size of at least ``swift_store_large_object_size`` sends every segment with the
  full segment length as Content-Length, the last one too: unless the size is a multiple of the
  segment size the last PUT waits for bytes that never come and the upload hangs until Swift's
  client timeout, then fails (seen with the test Swift: 50 s, then a 499 and an error);
* data goes in 64 KiB reads with md5 and sha512 computed one after the other in the request's
  thread;
* nothing removes segments of an earlier upload that died with the process, and a DLO manifest
  lists every object of its prefix: a later upload of the same image would serve them as data.

And not its ``get()``: it ignores ``offset`` and ``chunk_size`` (a ranged download in multi-store
mode gets the image from its first byte) and reads 64 KiB chunks.

Here: 1 MiB reads hashed in two threads (``ParallelHasher``); a declared size below
``swift_store_large_object_size`` is one streamed PUT with its Content-Length, anything else
(also every upload of unknown size) streamed segment by segment, each PUT with the segment's
real length (chunked for an unknown size), nothing held beyond one read buffer; the manifest is
written only once the data has ended at the declared size. Any failure deletes what was written
(Swift's timestamps make the DELETE win over a PUT that completes after it). Reads are ranged
GETs with 1 MiB chunks.
"""

from __future__ import annotations

import hashlib
import logging
import threading
import urllib.parse

import requests

from glance_service import exceptions
from glance_service.store.hashing import ParallelHasher
from glance_service.store.source import READ_CHUNK, DataSource, Incoming, StoredData, translated

LOG = logging.getLogger(__name__)
# python-swiftclient logs every request with its response headers at INFO (3 lines per call).
logging.getLogger("swiftclient").setLevel(logging.WARNING)

# connect, and wait for Swift's answer once a body is sent (the proxy's node timeouts are lower)
TIMEOUT = (10, 300)


def _segment_name(key: str, number: int) -> str:
    # glance_store's naming: its delete() and any Glance find the segments by this prefix
    return f"{key}-{number:05d}"


class _Feed:
    """The client's data read in 1 MiB buffers (counted and checked by ``Incoming``), hashed on
    the way."""

    def __init__(self, data: Incoming, hasher: ParallelHasher):
        self._data = data
        self._hasher = hasher
        self._pending = b""
        self.eof = False
        self.error: BaseException | None = None

    def _fill(self) -> None:
        buf = self._data.read(READ_CHUNK)
        if not buf:
            self.eof = True
            return
        self._hasher.update(buf)
        self._pending = buf

    def at_end(self) -> bool:
        """True once the data has ended (reads ahead one buffer if needed)."""
        if not self._pending and not self.eof:
            self._fill()
        return not self._pending and self.eof

    def take(self, limit: int | None):
        """The next ``limit`` bytes (all the rest for None), as a PUT body. Errors are also kept
        in ``error``: the HTTP client may wrap what a body iterator raises."""
        sent = 0
        try:
            while limit is None or sent < limit:
                if not self._pending:
                    if self.eof:
                        return
                    self._fill()
                    if not self._pending:
                        return
                piece = self._pending
                if limit is not None and len(piece) > limit - sent:
                    piece = piece[: limit - sent]
                self._pending = self._pending[len(piece) :]
                sent += len(piece)
                yield piece
        except BaseException as exc:
            self.error = exc
            raise


class _Body:
    """A body of known length: ``requests`` sends it with Content-Length, in our buffers."""

    def __init__(self, chunks, length: int):
        self._chunks = chunks
        self.len = length

    def __iter__(self):
        return iter(self._chunks)


class _Writer:
    """One image's objects: PUTs of data through a requests session, cleanup on failure."""

    def __init__(self, driver, location, container: str, key: str):
        self.driver = driver
        self.location = location
        self.container = container
        self.key = key
        self.written: list[str] = []  # every name a PUT was started for
        self.session = requests.Session()
        self.session.verify = False if driver.insecure else (driver.cacert or True)

    def connection(self):
        # the token is renewed before it expires (long uploads)
        return _connection(self.driver, self.location)

    def put(self, name: str, feed: _Feed, limit: int, *, sized: bool) -> None:
        """PUT the next ``limit`` bytes (or fewer, up to the end of the data) as ``name``: with
        that Content-Length when ``sized`` (the length is known to be there), else chunked."""
        conn = self.connection()
        url = f"{conn.url.rstrip('/')}/{urllib.parse.quote(self.container)}/{urllib.parse.quote(name)}"
        chunks = feed.take(limit)
        body = _Body(chunks, limit) if sized else chunks
        headers = {"X-Auth-Token": conn.token, "Content-Type": "application/octet-stream"}
        if sized and limit == 0:
            body = b""
        self.written.append(name)
        try:
            resp = self.session.put(url, data=body, headers=headers, timeout=TIMEOUT)
        except BaseException:
            if feed.error is not None:
                raise feed.error from None
            raise
        if feed.error is not None:
            raise feed.error
        if resp.status_code >= 300:
            raise _SwiftError(resp.status_code, resp.text[:200])

    def put_manifest(self) -> None:
        self.connection().put_object(
            self.container, self.key, None, headers={"X-Object-Manifest": f"{self.container}/{self.key}-"}
        )
        self.written.append(self.key)

    def remove(self, names) -> None:
        """Delete ``names``; best effort (logged): the upload's own error matters more."""
        try:
            conn = self.connection()
        except Exception as exc:  # noqa: BLE001 - e.g. Keystone down: the cause, logged once
            LOG.error("Could not remove %s from Swift: %s", ", ".join(names), exc)
            return
        for name in names:
            try:
                conn.delete_object(self.container, name)
            except Exception as exc:  # noqa: BLE001
                if getattr(exc, "http_status", None) != 404:
                    LOG.error("Could not delete %s/%s from Swift: %s", self.container, name, exc)

    def close(self) -> None:
        self.session.close()


class _SwiftError(Exception):
    def __init__(self, status: int, text: str):
        super().__init__(f"Swift answered {status}: {text}")
        self.http_status = status


def add(driver, data: Incoming) -> StoredData:
    """Store ``data`` as object ``data.image_id`` with glance_store's ``driver`` settings."""
    _single_tenant(driver)
    key = str(data.image_id)
    with translated(lambda exc: _translate(exc, key)):
        location = driver.create_location(key)
        writer = _Writer(driver, location, location.container, key)
        try:
            conn = _checked_connection(driver, location)
            driver._create_container_if_missing(location.container, conn)
            if _exists(conn, location.container, key):
                raise exceptions.Duplicate(f"Data for image {key} already exists in the store.")
            # segments of an upload that died with its process: a manifest would serve them
            writer.remove(_segments(conn, location.container, key))
            size, checksum, hash_value = _stream(writer, data)
        finally:
            writer.close()
    from glance_store._drivers.swift import utils as sutils

    by_reference = sutils.is_multiple_swift_store_accounts_enabled(driver.conf, backend=driver.backend_group)
    url = location.get_uri(credentials_included=not by_reference)
    return StoredData(url, size, checksum, data.hash_algo, hash_value, {})


def _stream(writer: _Writer, data: Incoming) -> tuple[int, str, str]:
    hasher = ParallelHasher(data.hash_algo)
    feed = _Feed(data, hasher)
    expected_size = data.expected_size
    done = False
    try:
        if expected_size is not None and expected_size < writer.driver.large_object_size:
            writer.put(writer.key, feed, expected_size, sized=True)
        else:
            segment = writer.driver.large_object_chunk_size
            number, assigned = 1, 0
            while not feed.at_end():
                if expected_size is None:
                    # unknown size: chunked PUTs of up to one segment each
                    writer.put(_segment_name(writer.key, number), feed, segment, sized=False)
                else:
                    # the last segment is shorter: its own length, never the segment size
                    length = min(segment, expected_size - assigned)
                    writer.put(_segment_name(writer.key, number), feed, length, sized=True)
                    assigned += length
                number += 1
        # extra data past the declared size, or a short body: no manifest, nothing kept
        if not feed.at_end():
            raise exceptions.BadRequest(
                f"The data is larger than the declared size of {expected_size} bytes."
            )
        if writer.key not in writer.written:
            writer.put_manifest()
        checksum, hash_value = hasher.hexdigests()
        done = True
    finally:
        if not done:
            hasher.abort()
            writer.remove(list(reversed(writer.written)))
    return data.size, checksum, hash_value


def delete_location(driver, location) -> None:
    """Delete the object at ``location`` and, for a large object, its segments (DLO: every object
    of the manifest's prefix; SLO: Swift's multipart-manifest delete). Raises NotFound."""
    loc = location.store_location
    try:
        conn = _checked_connection(driver, loc)
        head = conn.head_object(loc.container, loc.obj)
        if str(head.get("x-static-large-object", "")).lower() == "true":
            conn.delete_object(loc.container, loc.obj, query_string="multipart-manifest=delete")
            return
        manifest = head.get("x-object-manifest")
        if manifest:
            seg_container, prefix = urllib.parse.unquote(manifest).split("/", 1)
            _, listing = conn.get_container(seg_container, prefix=prefix, full_listing=True)
            for segment in listing:
                _delete(conn, seg_container, segment["name"])
        conn.delete_object(loc.container, loc.obj)
    except Exception as exc:
        if getattr(exc, "http_status", None) == 404:
            raise exceptions.NotFound(f"The swift store holds no data for {loc.obj}.") from None
        raise _translate(exc, loc.obj, doing="deleting") from exc


def _delete(conn, container: str, name: str) -> None:
    try:
        conn.delete_object(container, name)
    except Exception as exc:
        if getattr(exc, "http_status", None) != 404:
            raise


# Keystone sessions per (backend, account): a token is asked for once per process and renewed
# by keystoneauth before it expires. glance_store's driver authenticates again for every add,
# get and delete: measured here, 1 to 2.5 s each (Keystone issuing the token, then Swift's
# proxy validating the new token with Keystone), more than the transfer of a 64 MiB image.
# Not keyed by the driver object: glance_store builds a new swift driver at every lookup (it
# is not DRIVER_REUSABLE).
_SESSIONS: dict[tuple, tuple] = {}
_SESSIONS_LOCK = threading.Lock()


def _session_key(driver, location) -> tuple:
    secret = getattr(location, "key", None) or getattr(location, "application_credential_secret", None)
    return (
        driver.backend_group,
        getattr(location, "user", None) or getattr(location, "application_credential_id", None),
        hashlib.sha256((secret or "").encode()).hexdigest(),
        (location.swift_url or "").rstrip("/"),
    )


def _connection(driver, location):
    """A swiftclient connection with a valid token for ``location``'s account."""
    key = _session_key(driver, location)
    with _SESSIONS_LOCK:
        entry = _SESSIONS.get(key)
        if entry is None:
            session = driver.init_client(location).session
            url = driver.conf_endpoint or session.get_endpoint(
                service_type=driver.service_type, interface=driver.endpoint_type, region_name=driver.region
            )
            if not url:
                raise exceptions.StoreUnavailable(
                    f"Keystone's catalog has no '{driver.service_type}' endpoint for the swift store."
                )
            entry = _SESSIONS[key] = (session, url)
    session, url = entry
    return driver.get_store_connection(session.get_token(), url)


def _checked_connection(driver, location):
    """``_connection`` whose token Swift accepts: one revoked since (401) is replaced once."""
    conn = _connection(driver, location)
    try:
        conn.head_account()
    except Exception as exc:
        if getattr(exc, "http_status", None) != 401:
            raise
        with _SESSIONS_LOCK:
            entry = _SESSIONS.pop(_session_key(driver, location), None)
        if entry is not None:
            entry[0].invalidate()
        conn = _connection(driver, location)
    return conn


def _single_tenant(driver) -> None:
    from glance_store._drivers.swift import store as swift_store

    if isinstance(driver, swift_store.MultiTenantStore):
        raise exceptions.StoreUnavailable(
            "swift_store_multi_tenant = true is not supported by this image service: it needs the "
            "user's service catalog; use a single-tenant swift store."
        )


def _exists(conn, container: str, name: str) -> bool:
    try:
        conn.head_object(container, name)
    except Exception as exc:
        if getattr(exc, "http_status", None) == 404:
            return False
        raise
    return True


def _segments(conn, container: str, key: str) -> list[str]:
    _, listing = conn.get_container(container, prefix=f"{key}-", full_listing=True)
    return [o["name"] for o in listing]


def discard(driver, image_id: str) -> None:
    """Remove what an interrupted upload of ``image_id`` left: its segments, and the object or
    manifest if one was written but never recorded (the caller knows the image holds no data).
    Best effort: logged, never raised."""
    key = str(image_id)
    try:
        _single_tenant(driver)
        location = driver.create_location(key)
        conn = _checked_connection(driver, location)
        for name in [*_segments(conn, location.container, key), key]:
            _delete(conn, location.container, name)
    except Exception as exc:  # noqa: BLE001 - best effort, logged
        if getattr(exc, "http_status", None) == 404:
            return  # no container: nothing was written
        LOG.error("Could not remove partial data of %s from the swift store: %s", key, exc)


def open_location(driver, location, offset: int = 0, length: int | None = None) -> DataSource:
    """Stream the object at ``location`` (a glance_store Location), from ``offset`` for
    ``length`` bytes, with a ranged GET; the size comes from Swift's answer."""
    loc = location.store_location
    headers = {}
    if offset or length is not None:
        end = "" if length is None else str(offset + length - 1)
        headers["Range"] = f"bytes={offset}-{end}"
    try:
        conn = _checked_connection(driver, loc)
        resp_headers, body = conn.get_object(
            loc.container, loc.obj, resp_chunk_size=READ_CHUNK, headers=headers
        )
    except Exception as exc:
        raise _translate(exc, loc.obj, reading=True) from exc
    size = int(resp_headers.get("content-length", 0))
    total = size
    if "content-range" in resp_headers:
        # "bytes <first>-<last>/<total>"
        total = int(resp_headers["content-range"].rsplit("/", 1)[1])
    return DataSource(size, None if headers else total, chunks=_checked(body, size, loc.obj))


def _checked(body, size: int, name: str):
    """The GET's chunks; a short read (Swift failing mid-way) is an error, not a short image."""
    got = 0
    try:
        for chunk in body:
            got += len(chunk)
            yield chunk
    except Exception as exc:
        raise _translate(exc, name, reading=True) from exc
    if got != size:
        raise exceptions.StoreUnavailable(f"The swift store sent {got} of {size} bytes of {name}.")


def _translate(
    exc: Exception, key: str, reading: bool = False, doing: str | None = None
) -> exceptions.GlanceServiceError:
    """The service error for a Swift or Keystone failure (never the credentials in a message)."""
    from glance_store import exceptions as gs_exc

    what = doing or ("reading" if reading else "writing")
    status = getattr(exc, "http_status", None)
    if isinstance(exc, gs_exc.BackendException):
        # the driver's own words, e.g. a missing container without create_container_on_put
        LOG.error("The swift store failed while %s %s: %s", what, key, exc)
        return exceptions.StoreUnavailable(str(exc) or None)
    if isinstance(exc, gs_exc.GlanceStoreException):
        from glance_service.store.driver_errors import translate

        return translate(exc)
    if status == 404 and reading:
        return exceptions.NotFound(f"The swift store holds no data for {key}.")
    if status in (413, 507):
        return exceptions.StorageFull("The swift store is full or refused the object's size.")
    name = type(exc).__name__
    if status in (401, 403) or name in ("Unauthorized", "AuthorizationFailure", "Forbidden"):
        LOG.error("Swift or Keystone refused the glance user while %s %s: %s", what, key, exc)
        return exceptions.StoreUnavailable(
            "The swift store refused the image service's credentials (check the swift store's "
            "user, key and auth address)."
        )
    LOG.error("The swift store failed while %s %s: %s", what, key, exc)
    if isinstance(exc, (OSError, requests.RequestException)) or name in ("ConnectFailure", "ConnectionError"):
        return exceptions.StoreUnavailable("The swift store could not be reached.")
    return exceptions.StoreUnavailable(f"The swift store failed while {what} the image data.")
