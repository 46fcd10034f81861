"""The ``glance-download`` import method: an image of another region's Glance imported here.

As Glance 33 (``_ImportMetadata`` in its ``api_image_import`` flow and the ``glance_download``
internal plugin):

* the other region's image endpoint is looked up in the service catalog of the caller's token
  (``X-Service-Catalog``, which keystonemiddleware's ``auth_token`` sets from the user's token,
  never from a service token): the first endpoint of an ``image`` service whose region is
  ``glance_region`` (case-insensitive), its ``<glance_service_interface>URL``;
* the remote image's record (``GET /v2/images/{id}``, with the caller's token) must be
  ``active``; its ``disk_format`` and ``container_format`` replace the local image's, and each
  of its properties whose name starts with one of ``[glance_download_properties]
  extra_properties`` is set here (``os_glance_*`` ones are dropped: reserved);
* its data (``GET /v2/images/{id}/file``, the caller's token) is staged, its size checked
  against the remote ``size``, then it goes the way of web-download's data (format inspection,
  hashing, the target stores);
* on failure the local image goes back to ``queued`` with its former formats and properties.

Every URL fetched passes ``[import_filtering_opts]``, as upstream's ``open_external_uri``.
The caller's token and catalog reach the worker in memory only (``images/import_workers.py``),
never in the task record.
"""

from __future__ import annotations

import dataclasses
import json

import requests
from oslo_config import cfg
from oslo_log import log as logging

from glance_service import exceptions
from glance_service.common.registrar import registrar
from glance_service.images.import_options import uri_allowed

LOG = logging.getLogger(__name__)

RESERVED_PREFIX = "os_glance"
# The image record's own fields: never copied as properties, whatever the prefixes say.
CORE_FIELDS = frozenset(
    {
        "id", "name", "status", "visibility", "protected", "os_hidden", "checksum", "os_hash_algo",
        "os_hash_value", "owner", "size", "virtual_size", "min_disk", "min_ram", "container_format",
        "disk_format", "created_at", "updated_at", "tags", "self", "file", "schema", "direct_url",
        "locations", "stores",
    }
)  # fmt: skip

# Upstream's option, declared as upstream declares it.
glance_download_opts = [
    cfg.ListOpt(
        "extra_properties",
        item_type=cfg.types.String(quotes=True),
        bounds=True,
        default=["hw_", "trait:", "os_distro", "os_secure_boot", "os_type"],
        help="glance-download: prefixes of the source image's properties set on the imported image, "
        "e.g. [hw_, 'trait:', os_distro]. Other properties are not copied; os_glance_* never are.",
    ),
]

register_opts = registrar(("glance_download_properties", glance_download_opts))
register_opts(cfg.CONF)


def list_opts() -> list[tuple[str | None, list[cfg.Opt]]]:
    return [("glance_download_properties", glance_download_opts)]


@dataclasses.dataclass(frozen=True)
class Credentials:
    """The caller's token and its service catalog (raw JSON, as ``X-Service-Catalog``)."""

    token: str | None
    catalog: str | None


class DownloadError(exceptions.GlanceServiceError):
    """glance-download cannot go on; the message goes to the task."""


def endpoint(catalog: str | list | None, region: str, interface: str) -> str:
    """The ``interface`` URL of ``region``'s image service in ``catalog`` (v2-style, as
    keystonemiddleware passes it); upstream's ``get_glance_endpoint``."""
    if isinstance(catalog, str):
        try:
            catalog = json.loads(catalog)
        except ValueError:
            catalog = None
    for service in catalog if isinstance(catalog, list) else []:
        if not isinstance(service, dict) or service.get("type") != "image":
            continue
        for ep in service.get("endpoints") or []:
            if str(ep.get("region") or "").lower() == region.lower():
                url = ep.get(f"{interface}URL")
                if url:
                    return url.rstrip("/")
                break
    raise DownloadError(f"{interface} glance endpoint not found for region {region}")


def carried_properties(remote: dict, prefixes: list[str]) -> dict[str, str]:
    """The remote image's properties set here: names starting with one of ``prefixes``."""
    out = {}
    for key, value in remote.items():
        if key in CORE_FIELDS or not any(key.startswith(p) for p in prefixes):
            continue
        if key.startswith(RESERVED_PREFIX):
            LOG.warning("glance-download: dropping reserved property %s of the source image", key)
            continue
        out[key] = value if isinstance(value, str) else json.dumps(value)
    return out


def open_url(conf, url: str, headers: dict, *, max_redirects: int = 5) -> requests.Response:
    """GET ``url`` (streamed), every hop through ``[import_filtering_opts]``; the token goes
    only to the first hop's host."""
    import urllib.parse

    origin = urllib.parse.urlsplit(url).netloc
    session = requests.Session()
    for _ in range(max_redirects + 1):
        if not uri_allowed(conf, url):
            session.close()
            raise DownloadError(f"URI does not pass filtering: {url}")
        sent = headers if urllib.parse.urlsplit(url).netloc == origin else {}
        try:
            resp = session.get(url, headers=sent, stream=True, allow_redirects=False, timeout=60)
        except requests.RequestException as exc:
            session.close()
            raise DownloadError(f"GET {url} failed: {exc}") from exc
        if resp.is_redirect:
            url = urllib.parse.urljoin(url, resp.headers["Location"])
            resp.close()
            continue
        return resp
    session.close()
    raise DownloadError(f"Too many redirects from {url}.")


class GlanceDownload:
    """The metadata half of one glance-download task, and its undoing."""

    def __init__(self, svc, ctx, image_id: str, method: dict, credentials: Credentials | None):
        self.svc, self.ctx, self.image_id = svc, ctx, image_id
        self.region = method.get("glance_region")
        self.remote_id = method.get("glance_image_id")
        self.interface = method.get("glance_service_interface") or "public"
        self.credentials = credentials or Credentials(None, None)
        self.base: str | None = None
        self.applied: dict[str, str] = {}
        self.old: dict | None = None
        self.record: dict = {}

    @property
    def headers(self) -> dict[str, str]:
        token = self.credentials.token
        return {"X-Auth-Token": token} if token else {}

    @property
    def file_url(self) -> str:
        return f"{self.base}/v2/images/{self.remote_id}/file"

    def fetch(self) -> dict:
        """The remote image's record; it must be active and have a size."""
        if self.credentials.token is None and self.credentials.catalog is None:
            raise DownloadError(
                "The caller's token is no longer available (the API process restarted): "
                "start the import again."
            )
        self.base = endpoint(self.credentials.catalog, self.region, self.interface)
        url = f"{self.base}/v2/images/{self.remote_id}"
        LOG.info("Fetching glance image metadata from remote host %s", url)
        resp = open_url(self.svc.conf, url, self.headers)
        with resp:
            if resp.status_code != 200:
                raise DownloadError(
                    f"Image {self.remote_id} of region {self.region} could not be read: "
                    f"HTTP {resp.status_code} from {url}"
                )
            try:
                data = resp.json()
            except ValueError as exc:
                raise DownloadError(f"{url} did not answer an image record: {exc}") from exc
        if data.get("status") != "active":
            raise DownloadError(f"Source image status should be active instead of {data.get('status')}")
        try:
            data["size"] = int(data["size"])
        except (TypeError, ValueError, KeyError) as exc:
            raise DownloadError(
                f"Size attribute of remote image {self.remote_id} could not be determined."
            ) from exc
        self.record = data
        return data

    def check_hashes(self, hashes: dict) -> None:
        """The data written here hashes as the remote image says (where the algorithms match).
        Upstream checks only the size."""
        mine = {"checksum": hashes.get("checksum")}
        theirs = {"checksum": self.record.get("checksum")}
        if self.record.get("os_hash_algo") == hashes.get("os_hash_algo"):
            mine["os_hash_value"] = hashes.get("os_hash_value")
            theirs["os_hash_value"] = self.record.get("os_hash_value")
        for key, expected in theirs.items():
            if expected and mine[key] and expected != mine[key]:
                raise DownloadError(
                    f"The data downloaded from image {self.remote_id} of region {self.region} does "
                    f"not match its {key} ({mine[key]}, expected {expected})."
                )

    def apply(self, image: dict, remote: dict) -> dict:
        """Set the remote formats and carried properties on the local image; returns it."""
        self.old = {
            "disk_format": image.get("disk_format"),
            "container_format": image.get("container_format"),
            "properties": dict(image.get("properties") or {}),
        }
        register_opts(self.svc.conf)  # idempotent; the service's conf may not be cfg.CONF
        props = carried_properties(remote, self.svc.conf.glance_download_properties.extra_properties)
        values: dict = {"disk_format": remote["disk_format"], "container_format": remote["container_format"]}
        if props:
            values["properties"] = props
        image = self.svc.data.image_update(self.ctx, self.image_id, values)
        self.applied = props
        return image

    def revert(self) -> None:
        """Put back the formats and properties ``apply`` replaced (upstream's revert)."""
        if self.old is None:
            return
        old_props = self.old["properties"]
        for key, value in self.applied.items():
            if key not in old_props:
                try:
                    self.svc.data.image_delete_property_atomic(self.ctx, self.image_id, key, value)
                except exceptions.GlanceServiceError as exc:  # changed since: left as it is
                    LOG.warning("glance-download of image %s: property %s kept: %s", self.image_id, key, exc)
        try:
            values = {k: self.old[k] for k in ("disk_format", "container_format")}
            restored = {k: old_props[k] for k in self.applied if k in old_props}
            if restored:
                values["properties"] = restored
            self.svc.data.image_update(self.ctx, self.image_id, values)
        except exceptions.GlanceServiceError as exc:
            LOG.warning("glance-download of image %s: could not restore its metadata: %s", self.image_id, exc)
