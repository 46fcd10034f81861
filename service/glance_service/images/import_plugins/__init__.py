"""Import plugins: upstream Glance's ``glance.image_import.plugins``, run by the import worker
(``images/import_workers.py``) on the staged data of a ``glance-direct``, ``web-download`` or
``glance-download`` import, after staging and before the data is written to the stores, in the
order ``[image_import_opts] image_import_plugins`` lists them. As upstream, none run for
``copy-image`` (its data is already the image's).

The plugins, with upstream's names and options:

* ``no_op``: logs that it ran;
* ``image_decompression`` (``decompression.py``): zip (one member), gzip, and xz/lzma content
  is replaced by what it holds; other content is left as it is, and so is an image whose
  ``container_format`` is ``compressed``;
* ``image_conversion`` (``conversion.py``): ``qemu-img`` converts the staged data to
  ``[image_conversion] output_format`` once the data is checked (format inspector, then
  ``qemu-img info`` under resource limits): a backing file or external data file, a disallowed
  VMDK, or data that is not the declared ``disk_format`` fails the import;
* ``inject_image_metadata`` (``inject.py``): ``[inject_metadata_properties] inject`` set on
  images imported by users with none of the ``ignore_user_roles``.

A plugin changes the staged file in place (a new file renamed over it) and records the image
values to set (``Job.values``, ``Job.properties``); the worker applies them with the image's
activation, so a failed import leaves the image as it was, back in ``queued``. Unknown names
are skipped with a warning, as upstream's stevedore loader does.
"""

from __future__ import annotations

import dataclasses
import shutil
from collections.abc import Callable

from oslo_config import cfg
from oslo_log import log as logging

from glance_service.common.registrar import registrar

LOG = logging.getLogger(__name__)

# Upstream's declarations (glance/async_/flows/api_image_import.py, plugins/*.py).
import_opts = [
    cfg.ListOpt(
        "image_import_plugins",
        item_type=cfg.types.String(quotes=True),
        bounds=True,
        sample_default="[no_op]",
        default=[],
        help="Import plugins run on the staged data of glance-direct, web-download and "
        "glance-download imports, in this order, written in brackets: e.g. "
        "[image_decompression, image_conversion, inject_image_metadata]. Possible values: no_op, "
        "image_decompression, image_conversion, inject_image_metadata.",
    ),
]
conversion_opts = [
    cfg.StrOpt(
        "output_format",
        default="raw",
        choices=("qcow2", "raw", "vmdk"),
        help="The disk format the image_conversion import plugin converts images to (with "
        "qemu-img) before they are stored. Related options: [image_format] disk_formats.",
    ),
]
inject_opts = [
    cfg.ListOpt(
        "ignore_user_roles",
        default="admin",
        help="Users with any of these roles get no injected properties (inject_image_metadata).",
    ),
    cfg.DictOpt(
        "inject",
        default={},
        help="Properties the inject_image_metadata plugin sets on imported images, e.g. k1:v1,k2:v2.",
    ),
]

register_opts = registrar(
    ("image_import_opts", import_opts),
    ("image_conversion", conversion_opts),
    ("inject_metadata_properties", inject_opts),
)


def list_opts() -> list[tuple[str | None, list[cfg.Opt]]]:
    return [
        ("image_import_opts", import_opts),
        ("image_conversion", conversion_opts),
        ("inject_metadata_properties", inject_opts),
    ]


register_opts(cfg.CONF)


class PluginError(Exception):
    """A plugin refused the data or could not process it; the message is the task's."""


@dataclasses.dataclass
class Job:
    """What the plugins of one import share."""

    conf: cfg.ConfigOpts
    image: dict  # the image as the import started
    path: str  # the staged data (replaced in place by a plugin that changes it)
    roles: list[str]  # the importing user's roles
    values: dict = dataclasses.field(default_factory=dict)  # image attributes to set
    properties: dict = dataclasses.field(default_factory=dict)  # extra properties to set
    data_changed: bool = False
    beat: Callable[[], None] = lambda: None  # refreshes the task while a plugin works

    @property
    def image_id(self) -> str:
        return self.image["id"]

    def get(self, key: str):
        """The image's ``key`` as the plugins so far left it."""
        return self.values.get(key, self.image.get(key))


def _no_op(job: Job) -> None:
    LOG.debug("No_op import plugin")


def _decompression(job: Job) -> None:
    from glance_service.images.import_plugins import decompression

    decompression.run(job)


def _conversion(job: Job) -> None:
    from glance_service.images.import_plugins import conversion

    conversion.run(job)


def _inject(job: Job) -> None:
    from glance_service.images.import_plugins import inject

    inject.run(job)


PLUGINS: dict[str, Callable[[Job], None]] = {
    "no_op": _no_op,
    "image_decompression": _decompression,
    "image_conversion": _conversion,
    "inject_image_metadata": _inject,
}


def configured(conf: cfg.ConfigOpts) -> list[tuple[str, Callable[[Job], None]]]:
    """The plugins ``image_import_plugins`` names, in its order (unknown names skipped)."""
    register_opts(conf)
    out = []
    for name in conf.image_import_opts.image_import_plugins:
        plugin = PLUGINS.get(name)
        if plugin is None:
            LOG.warning(
                "Import plugin %s is unknown: skipped ([image_import_opts] image_import_plugins)", name
            )
            continue
        out.append((name, plugin))
    return out


def check_options(conf: cfg.ConfigOpts) -> None:
    """Reads the plugin list once at start-up: a list written without upstream's brackets
    stops the service with the fix (instead of failing every import), and an unknown name is
    logged once."""
    register_opts(conf)
    try:
        names = conf.image_import_opts.image_import_plugins
    except cfg.ConfigFileValueError as exc:
        raise ValueError(
            f"[image_import_opts] image_import_plugins is not a valid list ({exc}): write it as "
            "Glance does, in brackets, e.g. image_import_plugins = [image_conversion]"
        ) from exc
    for name in names:
        if name not in PLUGINS:
            LOG.warning(
                "Import plugin %s is unknown and will be skipped (known: %s)", name, ", ".join(PLUGINS)
            )
    if "image_conversion" in names and shutil.which("qemu-img") is None:
        LOG.error("Import plugin image_conversion needs qemu-img (Debian's qemu-utils): imports will fail")


def run(job: Job) -> Job:
    """Run the configured plugins on ``job`` in order; ``PluginError`` when one refuses."""
    for name, plugin in configured(job.conf):
        LOG.debug("Import of image %s: running plugin %s", job.image_id, name)
        plugin(job)
    return job
