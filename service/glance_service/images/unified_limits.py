"""Keystone unified limits (``[DEFAULT] use_keystone_limits``), as upstream Glance 33 has them.

Four resources, per project (the caller's: upstream enforces against the request's project,
not the image's owner): ``image_size_total`` (MiB of the project's stored images, each copy
counted), ``image_stage_total`` (MiB in the staging area), ``image_count_total`` (images
not killed or deleted) and ``image_count_uploading`` (images being uploaded, staged,
imported or copied). The data API counts (``image_quota_usage``: bytes and images); bytes
become MiB by floor division, as upstream.

Where upstream checks (and so here):

* create: ``image_count_total`` with delta 1;
* upload (``PUT .../file``): ``image_size_total`` with the declared size in MiB before the
  image is read; ``image_count_uploading`` with delta 0 once the image is ``saving`` (it
  counts itself; refused: back to ``queued``). Nothing is checked while or after the data
  streams: the limits are soft, a project may go over by the upload in flight, and its next
  request is refused;
* stage: ``image_stage_total`` with the declared size, then ``image_count_uploading`` once
  ``uploading``;
* import: ``image_size_total`` (delta 0) when the request comes (413); once the image is
  marked importing: glance-direct ``image_size_total`` with the staged size, the other methods
  ``image_stage_total`` with the image's size and ``image_count_uploading``; refused there,
  the request still answers 202 and its task fails with the 413's text (upstream checks in
  the task's flow, after answering).

Each check builds an oslo.limit ``Enforcer`` (as upstream: limits are read from Keystone per
check, so a changed limit applies at once; oslo.limit keeps one Keystone session per
process). ``oslo_limit`` is imported only when the option is on, and its ``[oslo_limit]``
options are registered then (``register_opts``): with the option off none of it is loaded.
Over a limit: ``LimitExceeded`` (413) with upstream's text. Keystone unreachable or
``[oslo_limit]`` wrong: oslo.limit's error goes up (500), logged, as upstream.
"""

from __future__ import annotations

from collections.abc import Callable

from oslo_config import cfg
from oslo_log import log as logging

from glance_service import exceptions
from glance_service.context import RequestContext

LOG = logging.getLogger(__name__)

IMAGE_SIZE_TOTAL = "image_size_total"
IMAGE_STAGE_TOTAL = "image_stage_total"
IMAGE_COUNT_TOTAL = "image_count_total"
IMAGE_COUNT_UPLOADING = "image_count_uploading"
RESOURCES = (IMAGE_SIZE_TOTAL, IMAGE_STAGE_TOTAL, IMAGE_COUNT_TOTAL, IMAGE_COUNT_UPLOADING)
_IN_MIB = (IMAGE_SIZE_TOTAL, IMAGE_STAGE_TOTAL)
MIB = 1024 * 1024

# Upstream's exception.LimitExceeded text around oslo.limit's own message.
MESSAGE = (
    "The request returned a 413 Request Entity Too Large. This generally means that rate "
    "limiting or a quota threshold was breached.\n\nThe response body:\n{body}"
)

# What builds an enforcer: ``factory(usage_callback)`` with oslo.limit's ``Enforcer``
# interface (``enforce``, ``calculate_usage``). Tests pass their own; None: oslo.limit's.
EnforcerFactory = Callable[[Callable], object]


def enabled(conf: cfg.ConfigOpts) -> bool:
    try:
        return bool(conf.use_keystone_limits)
    except (AttributeError, cfg.NoSuchOptError):
        return False


def mib(size: int | None) -> int:
    """A byte count as upstream's delta: whole MiB, rounded down (None: 0)."""
    return 0 if not size else int(size) // MIB


def _oslo_limit():
    """oslo.limit, imported (and its options registered on the global config) on first use."""
    from oslo_limit import exception as ol_exc
    from oslo_limit import limit, opts

    opts.register_opts(cfg.CONF)
    return limit, ol_exc


def register_opts() -> None:
    """Import oslo.limit and register ``[oslo_limit]`` now (the first check does it anyway)."""
    _oslo_limit()


def project_usage(data, ctx: RequestContext, project_id: str | None) -> dict[str, int]:
    """The project's usage as Keystone's limits count it: MiB and images."""
    counts = data.image_quota_usage(ctx, project_id)
    return {name: (counts[name] // MIB if name in _IN_MIB else counts[name]) for name in RESOURCES}


def _callback(data, ctx: RequestContext) -> Callable:
    def usage(project_id, resource_names):
        found = project_usage(data, ctx, project_id)
        return {name: found[name] for name in resource_names}

    return usage


def _enforcer(data, ctx: RequestContext, factory: EnforcerFactory | None):
    if factory is not None:
        return factory(_callback(data, ctx))
    limit, ol_exc = _oslo_limit()
    try:
        return limit.Enforcer(_callback(data, ctx))
    except ol_exc.SessionInitError as exc:
        LOG.error(
            "Failed to initialize oslo_limit, likely due to incorrect or insufficient configuration: %s",
            exc,
        )
        raise


def enforce(
    conf: cfg.ConfigOpts,
    data,
    ctx: RequestContext,
    resource: str,
    delta: int = 0,
    *,
    factory: EnforcerFactory | None = None,
) -> None:
    """413 (``LimitExceeded``) when the caller's project, plus ``delta``, is over ``resource``'s
    limit. Nothing (and no import) when ``use_keystone_limits`` is off."""
    if not enabled(conf):
        return
    from oslo_limit import exception as ol_exc

    enforcer = _enforcer(data, ctx, factory)
    try:
        enforcer.enforce(ctx.owner, {resource: int(delta)})
    except ol_exc.ProjectOverLimit as exc:
        LOG.warning("%s", exc)
        raise exceptions.LimitExceeded(MESSAGE.format(body=exc)) from exc


def usage(
    conf: cfg.ConfigOpts, data, ctx: RequestContext, *, factory: EnforcerFactory | None = None
) -> dict[str, dict[str, int]]:
    """``{resource: {"limit": n, "usage": n}}`` for the caller's project; ``{}`` when off."""
    if not enabled(conf):
        return {}
    enforcer = _enforcer(data, ctx, factory)
    found = enforcer.calculate_usage(ctx.owner, list(RESOURCES))
    return {name: {"usage": item.usage, "limit": item.limit} for name, item in found.items()}
