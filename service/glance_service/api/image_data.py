"""``PUT`` and ``GET /v2/images/{image_id}/file``: the data path's HTTP side.

Upload: ``queued → saving`` atomically (the image records which process uploads), stream
into the store (durable before it returns), then record the location and move to ``active``
with size and hashes in one transaction. Any failure removes the data and returns the image to
``queued``; when the registry cannot say how the upload ended (down, not answering, or the
activation's answer lost), the upload's own process asks again in the background until it
can, then keeps the data (recorded: ``active``) or removes it (``queued``), see
``api/upload_recovery.py``, which also recovers at start-up the uploads a dead process left. A
live upload refreshes the image's ``updated_at`` now and then, so that
recovery can tell a dead upload on another host from a long one.

Download: zero-copy for the file store when the client is on another host (the open file
goes to the server's ``wsgi.file_wrapper``, which gunicorn sends with ``sendfile`` bounded by
Content-Length from the file's current position); 1 MiB reads and writes when the client is on
this host (see ``_body``); ``Range`` for single ranges, ``Content-MD5``.
"""

from __future__ import annotations

import functools
import ipaddress
import re
import sqlite3
import time

import webob
from oslo_config import cfg
from oslo_log import log as logging

from glance_service import exceptions
from glance_service.api import cache as cache_api
from glance_service.api import common, image_send, upload_recovery
from glance_service.api.router import drain
from glance_service.common import metrics, notifications, process
from glance_service.context import RequestContext
from glance_service.images import format_inspector, quotas, states, unified_limits

LOG = logging.getLogger(__name__)

_DIGITS = re.compile(r"[0-9]+")
DEFAULT_SIZE_CAP = 1024**4  # Glance's image_size_cap default (1 TiB)
BLOCK = 1024 * 1024

# -- upload ------------------------------------------------------------------------------------
# An upload refused before or while its body is read still has body bytes on the way. Unless
# they are read, the server closes the connection with data unread, the kernel answers with a
# reset, and most clients (which send the whole body before reading) never see the error.
# Reading up to router.DRAIN_LIMIT more gives them the 4xx; past it, the connection is dropped.


def receiving_body(handler):
    """A handler that reads an image's data from the request (upload, stage): counted as an
    upload in progress (metrics); refused, the rest of the body is read first (``drain``)."""

    @functools.wraps(handler)
    def receive(req: webob.Request, svc, ctx: RequestContext, image_id: str) -> webob.Response:
        try:
            with metrics.uploading():
                return handler(req, svc, ctx, image_id)
        except exceptions.GlanceServiceError:
            drain(req.environ.get("wsgi.input"))
            raise

    return receive


def _upload(req: webob.Request, svc, ctx: RequestContext, image_id: str) -> webob.Response:
    if req.content_type != "application/octet-stream":
        raise exceptions.UnsupportedMediaType(
            f"Content type {req.content_type or '(none)'} is not supported: use application/octet-stream."
        )
    expected = _expected_size(req)
    size_cap = _conf(svc, "image_size_cap", DEFAULT_SIZE_CAP)
    if expected is not None and expected > size_cap:
        raise exceptions.ImageSizeLimitExceeded(
            f"The image size {expected} exceeds the limit of {size_cap} bytes."
        )

    # Unified limits, as upstream: the declared size against image_size_total before anything.
    unified_limits.enforce(
        svc.conf, svc.data, ctx, unified_limits.IMAGE_SIZE_TOTAL, unified_limits.mib(expected)
    )
    store = _target_store(req, svc)
    image = svc.data.image_get(ctx, image_id)
    svc.policy.enforce_image(ctx, "upload_image", image)
    states.check(image, states.SAVING)
    # user_storage_quota: refused before the image moves to 'saving' when it cannot fit.
    owner = image.get("owner")
    remaining = quotas.remaining_storage(svc.conf, svc.data, ctx, owner)
    quotas.check_upload_size(expected, remaining, quotas.storage_quota(svc.conf))
    saving = svc.data.image_update(
        ctx,
        image_id,
        {"status": states.SAVING, "properties": upload_recovery.upload_marker()},
        from_state=states.QUEUED,
    )
    _notify_saving(svc, saving or image, store)

    stored = location = None
    finalising = False
    try:
        # Unified limits: this image, now 'saving', counts itself (refused: back to 'queued').
        unified_limits.enforce(svc.conf, svc.data, ctx, unified_limits.IMAGE_COUNT_UPLOADING)
        reader = quotas.limit_upload(
            svc.conf, _BodyReader(req.environ["wsgi.input"], _heartbeat(svc, ctx, image_id)), remaining
        )
        # Inspected as it streams: a mismatch or unsafe header stops the write (415).
        reader = format_inspector.InspectingReader(reader, format_inspector.for_image(svc.conf, image))
        try:
            stored = svc.stores.add(image_id, reader, expected_size=expected, size_cap=size_cap, store=store)
        except exceptions.Duplicate:
            if reader.consumed or image.get("locations"):
                raise
            # Data no location records, for an image we now hold in 'saving': left by an upload
            # whose process died after writing it. It is nobody's: replace it.
            LOG.warning("Removing unrecorded data left for image %s by an interrupted upload", image_id)
            svc.stores.discard(image_id)
            stored = svc.stores.add(image_id, reader, expected_size=expected, size_cap=size_cap, store=store)
        verdict = reader.finish()
        if remaining is not None:
            quotas.check_after_upload(svc.conf, svc.data, ctx, owner, stored.size)
        done = {
            "status": states.ACTIVE,
            "size": stored.size,
            "checksum": stored.checksum,
            "os_hash_algo": stored.hash_algo,
            "os_hash_value": stored.hash_value,
            **({"virtual_size": verdict.virtual_size} if verdict.virtual_size is not None else {}),
        }
        activate = getattr(svc.data, "image_activate", None)
        finalising = True
        if activate is not None:
            # One transaction (and one registry call): location and 'active' together or not at all.
            activate(ctx, image_id, stored.url, stored.metadata, done, from_state=states.SAVING)
        else:
            location = svc.data.image_location_add(ctx, image_id, stored.url, stored.metadata)
            svc.data.image_update(ctx, image_id, done, from_state=states.SAVING)
    except BaseException as exc:
        _undo(svc, ctx, image_id, stored, location, exc, finalising)
        notifications.of(svc).upload_failed(image_id, exc)
        if isinstance(exc, exceptions.ImageNotFound):
            raise exceptions.Gone(f"Image {image_id} was deleted during the upload.") from exc
        raise
    _notify_active(svc, {**(saving or image), **done}, store)
    return common.no_content()


def _notify_saving(svc, image: dict, store: str | None) -> None:
    """Upstream's events as an upload starts: the move to ``saving``, then ``image.prepare``."""
    events = notifications.of(svc)
    events.image("image.update", image)
    events.image_import("image.prepare", image, store)


def _notify_active(svc, image: dict, store: str | None) -> None:
    """Upstream's events as an upload ends: ``image.upload``, ``image.activate``, the save."""
    events = notifications.of(svc)
    events.image_import("image.upload", image, store)
    events.image("image.activate", image)
    events.image("image.update", image)


def _target_store(req: webob.Request, svc) -> str | None:
    """Multi-store: the store named by ``X-Image-Meta-Store`` (400 if unknown), else the
    default backend. Single store: the header is ignored, like Glance."""
    enabled = getattr(svc.stores, "enabled", None)
    if not enabled:
        return None
    store = (req.headers.get("X-Image-Meta-Store") or "").strip() or svc.stores.default_backend
    if store not in enabled:
        raise exceptions.BadRequest(f"Store for identifier {store} not found")
    if svc.stores.is_read_only(store):
        raise exceptions.BadRequest(f"Store {store} is read-only.")
    return store


def _expected_size(req: webob.Request) -> int | None:
    """The declared data size: ``x-openstack-image-size``, else Content-Length (none when chunked)."""
    declared = req.headers.get("x-openstack-image-size")
    length = req.content_length if not _is_chunked(req) else None
    if declared is None:
        return length
    declared = declared.strip()
    if not _DIGITS.fullmatch(declared):
        raise exceptions.BadRequest(
            f"x-openstack-image-size must be a non-negative integer, not {declared!r}."
        )
    size = _header_int(declared)
    if length is not None and length != size:
        raise exceptions.BadRequest(
            f"x-openstack-image-size ({size}) does not match the request's Content-Length ({length})."
        )
    return size


# Larger than any image: what a header number with more digits than this means. int() refuses
# strings of more than 4300 digits (a ValueError, and so a 500).
_HUGE = 2**63
_HUGE_DIGITS = len(str(_HUGE))


def _header_int(digits: str) -> int:
    """A run of decimal digits from a header, as an int; any number past ``_HUGE`` is ``_HUGE``."""
    digits = digits.lstrip("0") or "0"
    return _HUGE if len(digits) > _HUGE_DIGITS else min(int(digits), _HUGE)


def _is_chunked(req: webob.Request) -> bool:
    return "chunked" in (req.headers.get("Transfer-Encoding") or "").lower()


def _conf(svc, name: str, default):
    try:
        value = getattr(svc.conf, name)
    except (AttributeError, cfg.NoSuchOptError):
        return default
    return default if value is None else value


class _BodyReader:
    """The request body for the store: client errors become 400 (the client went away or sent
    a broken chunked body), and a live upload refreshes its image now and then."""

    def __init__(self, stream, heartbeat):
        self._stream = stream
        self._heartbeat = heartbeat
        self.consumed = False

    def read(self, n: int) -> bytes:
        self._heartbeat()
        self.consumed = True
        try:
            return metrics.received(self._stream.read(n))  # issue 18 metrics: bytes uploaded
        except exceptions.GlanceServiceError:
            raise
        except Exception as exc:
            raise exceptions.BadRequest(f"The upload was interrupted: {exc or type(exc).__name__}.") from exc


# A heartbeat the registry did not take is tried again this soon (or at the usual interval).
HEARTBEAT_RETRY = 10.0


def _heartbeat(svc, ctx: RequestContext, image_id: str):
    interval = min(60.0, upload_recovery.stale_timeout(svc) / 4)
    state = {"next": time.monotonic() + interval}

    def beat() -> None:
        now = time.monotonic()
        if now < state["next"]:
            return
        state["next"] = now + interval
        try:
            # Moves updated_at; fails (and so stops the upload) if the image was deleted or reset.
            svc.data.image_update(
                ctx, image_id, {"properties": upload_recovery.upload_marker()}, from_state=states.SAVING
            )
        except exceptions.ServiceUnavailable as exc:
            # The registry is restarting or down: the data keeps coming, and the
            # finalisation decides (the registry may be back by then).
            state["next"] = time.monotonic() + min(interval, HEARTBEAT_RETRY)
            LOG.warning("Upload of image %s continues without refreshing the image: %s", image_id, exc)

    return beat


def _undo(
    svc, ctx: RequestContext, image_id: str, stored, location, exc: BaseException, finalising: bool
) -> None:
    """After a failed upload: no data left behind, image back to ``queued``.

    When the data API is what failed (the registry is down or does not answer), or when the
    outcome of the finalisation is unknown (the registry may have recorded the upload before
    its answer was lost), nothing is removed here: removing the data of an image the registry
    made ``active`` would leave it without data. The upload goes to this process's
    reconciler instead (``api/upload_recovery.py``). Errors here are logged, not raised: the
    upload's own error is what the client must see."""
    leftover = upload_recovery.Leftover(
        svc, image_id, stored.url if stored is not None else None, process.host_marker()
    )
    leftover.reset_first = finalising and getattr(exc, "may_still_run", False)
    if _data_api_down(exc) or (finalising and not _definite(exc)):
        upload_recovery.reconciler().add(leftover, exc)
        return
    try:
        if location is not None:
            try:
                svc.data.image_location_delete(ctx, image_id, location["id"])
            except exceptions.ImageNotFound:
                pass
        if stored is not None:
            svc.stores.delete(stored.url)
        try:
            svc.data.image_update(
                ctx, image_id, states.reset_on_queued({"status": states.QUEUED}), from_state=states.SAVING
            )
        except (exceptions.ImageNotFound, exceptions.ImageStatusConflict):
            pass  # deleted, or taken over by recovery: nothing to give back
    except Exception as err:  # noqa: BLE001 - retried in the background, not the client's error
        upload_recovery.reconciler().add(leftover, err)


def _data_api_down(exc: BaseException) -> bool:
    """The registry (or the database) could not be reached or did not answer."""
    return isinstance(exc, exceptions.ServiceUnavailable) and not isinstance(exc, exceptions.StoreUnavailable)


def _definite(exc: BaseException) -> bool:
    """An answer from the data API: the call was refused and changed nothing."""
    return isinstance(exc, exceptions.GlanceServiceError) and not isinstance(
        exc, exceptions.ServiceUnavailable
    )


# -- download ----------------------------------------------------------------------------------
_RANGE = re.compile(r"^bytes=([0-9]*)-([0-9]*)$")


def download(req: webob.Request, svc, ctx: RequestContext, image_id: str) -> webob.Response:
    image = svc.data.image_get(ctx, image_id)
    svc.policy.enforce_image(ctx, "download_image", image)
    if image["status"] == states.DEACTIVATED and not ctx.is_admin:
        raise exceptions.Forbidden(
            "The requested image has been deactivated. Image data download is prohibited."
        )
    locations = [loc for loc in image.get("locations") or [] if loc.get("status", "active") == "active"]
    if image["status"] not in (states.ACTIVE, states.DEACTIVATED, states.PENDING_DELETE) or not locations:
        return common.no_content()

    wanted = _parse_range(req.headers.get("Range"))
    source, total, first = _open_cached(svc, image, locations, wanted)

    status = 206 if wanted is not None else 200
    resp = webob.Response(status=status, content_type="application/octet-stream", charset=None)
    resp.app_iter = image_send.counted(svc, ctx, image, req, _body(source, req.environ), source.size)
    if source.size is not None:
        resp.content_length = source.size
    if image.get("checksum"):
        resp.headers["Content-MD5"] = image["checksum"]
    if status == 206:
        resp.headers["Content-Range"] = f"bytes {first}-{first + source.size - 1}/{total}"
    return resp


def _body(source, environ: dict):
    """The response body: the open file for ``sendfile`` when the client is on another host,
    else the data read and written in 1 MiB pieces.

    sendfile saves this process both copies, but over loopback it moves the one copy left to
    the receiving process, which then reads from page-cache pages; a copy written here costs
    the host about the same in total (measured: 0.66 against 0.70 CPU s/GiB with curl) and
    runs on another core, in parallel with the client. A client that does its own work per
    byte (glanceclient hashes with sha512 in the same thread) then receives faster: with
    sendfile its receive path cost 0.1 s/GiB more, 8% of its rate. A remote client reads from
    its own network buffers either way, so there sendfile is pure gain.
    """
    file_wrapper = environ.get("wsgi.file_wrapper")
    if source.fileobj is not None and file_wrapper is not None and not _client_on_this_host(environ):
        return file_wrapper(source.fileobj, BLOCK)
    return _closing(source)


def _client_on_this_host(environ: dict) -> bool:
    """Whether the connection's peer is on this host: a loopback address, this socket's own
    address, or a Unix socket. From the socket itself (gunicorn's ``gunicorn.socket``), not
    ``REMOTE_ADDR``, which proxy middleware rewrites from request headers."""
    sock = environ.get("gunicorn.socket")
    if sock is None:
        return False
    try:
        peer, local = sock.getpeername(), sock.getsockname()
    except OSError:
        return False
    if not isinstance(peer, tuple):
        return True  # AF_UNIX
    try:
        address = ipaddress.ip_address(peer[0])
    except ValueError:
        return False
    if address.version == 6 and address.ipv4_mapped is not None:
        address = address.ipv4_mapped
    return address.is_loopback or peer[0] == local[0]


def _parse_range(header: str | None) -> tuple[int | None, int | None] | None:
    """``(first, last)`` of a single byte range (``first`` None for a suffix ``-n``, ``last``
    None for an open end); None without a Range header."""
    if header is None:
        return None
    value = header.strip().replace(" ", "")
    if "," in value:
        raise exceptions.BadRequest("Multiple ranges are not supported.")
    found = _RANGE.match(value)
    if found is None or found.group(1) == found.group(2) == "":
        raise exceptions.RangeNotSatisfiable(message=f"Invalid Range header: {header!r}.")
    first = _header_int(found.group(1)) if found.group(1) else None
    last = _header_int(found.group(2)) if found.group(2) else None
    if first is not None and last is not None and last < first:
        raise exceptions.RangeNotSatisfiable(message=f"Invalid Range header: {header!r}.")
    return first, last


def _resolve_range(wanted: tuple[int | None, int | None], total: int) -> tuple[int, int]:
    """``(offset, length)`` of ``wanted`` within ``total`` bytes, or 416."""
    first, last = wanted
    if first is None:  # suffix: the last n bytes
        if last == 0 or total == 0:
            raise exceptions.RangeNotSatisfiable(total)
        length = min(last, total)
        return total - length, length
    if first >= total:
        raise exceptions.RangeNotSatisfiable(total)
    end = total - 1 if last is None else min(last, total - 1)
    return first, end - first + 1


def _open(svc, locations: list[dict], size: int | None, wanted):
    """Open the first location that works: ``(source, total size, range start)``."""
    error: exceptions.GlanceServiceError = exceptions.NotFound("The image data could not be found.")
    for loc in locations:
        try:
            total = size
            if wanted is None:
                return svc.stores.open(loc["url"]), total, 0
            if total is None:  # a location added without a size: ask the store
                probe = svc.stores.open(loc["url"])
                total = probe.total_size if probe.total_size is not None else probe.size
                probe.close()
            offset, length = _resolve_range(wanted, total)
            return svc.stores.open(loc["url"], offset, length), total, offset
        except (exceptions.NotFound, exceptions.StoreUnavailable) as exc:
            LOG.warning("Image data at %s is not available: %s", loc["url"], exc)
            error = exc
    raise error


def _open_cached(svc, image: dict, locations: list[dict], wanted):
    """From this node's image cache when the image is there; else from its store, filling
    the cache on the way when the store is remote (a local file needs no cache)."""
    cache = None
    if image["status"] == states.ACTIVE:
        try:
            cache = cache_api.for_services(svc)
        except (OSError, sqlite3.Error) as exc:  # a broken cache must not stop downloads
            LOG.error("Image cache unavailable, serving from the store: %s", exc)
    if cache is not None:
        served = cache.serve(image["id"], wanted, _resolve_range)
        if served is not None:
            return served
    source, total, first = _open(svc, locations, image.get("size"), wanted)
    if cache is not None and wanted is None and source.fileobj is None:
        source = cache.tee(image, source)
    return source, total, first


def _closing(source):
    try:
        yield from source
    finally:
        source.close()


# The handler the route table names (defined last: it wraps _upload).
upload = receiving_body(_upload)
