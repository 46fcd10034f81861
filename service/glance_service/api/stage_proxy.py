"""Staged data lives on one API node: hand its import (and delete) to that node.

As upstream Glance (``glance/api/v2/images.py``: ``is_proxyable``,
``_proxy_request_to_host``): ``PUT /stage`` records the staging node's own URL (its
``[DEFAULT] worker_self_reference_url``, else ``public_endpoint``) on the image as
``os_glance_stage_host`` (hidden, and reserved like every ``os_glance_*`` name). Another node
that receives the ``glance-direct`` import, or the delete, of that image replays the request
against that URL with the caller's credentials, after its own checks, and answers what that
node answered. With neither option set, nothing is recorded and every node keeps the old
behaviour (it works on its own staging area).

Upstream's errors are kept: the stage node cannot be reached → 504, other failures of the
call → 502, its error answers → the same status. A delete whose stage node cannot be reached
goes on locally (the staged data stays on that node, which is unavoidable).
"""

from __future__ import annotations

import requests
import webob
from oslo_config import cfg
from oslo_log import log as logging

from glance_service import exceptions
from glance_service.common.registrar import registrar
from glance_service.context import RequestContext
from glance_service.images import import_tasks

LOG = logging.getLogger(__name__)

STAGE_HOST = import_tasks.STAGE_HOST
# Seconds to wait for the stage node's answer (upstream's value).
TIMEOUT = 60
# Set on a handed-off request: its receiver works on it itself, so that two nodes that
# disagree about a URL (a VIP given as worker_self_reference_url) cannot pass it around.
PROXIED_HEADER = "X-Glance-Stage-Proxied"
# Request headers the stage node needs besides the caller's identity.
FORWARDED_HEADERS = ("X-Image-Meta-Store",)

opts = [
    cfg.StrOpt(
        "worker_self_reference_url",
        help="The URL of this glance-api node as the other API nodes reach it (not a load "
        "balancer's VIP). Recorded on an image whose data this node stages (glance-direct); "
        "another node that receives that image's import or delete hands the request to this "
        "URL. Unset: public_endpoint is used instead, which is normally the same on every "
        "node and so turns the hand-off off.",
    ),
]


register_opts = registrar((None, opts))


def stage_host(conf: cfg.ConfigOpts, image: dict, headers) -> str | None:
    """The node to hand a request about ``image`` to, or None to do it here (upstream's
    ``is_proxyable``: the recorded URL when it is not this node's)."""
    if headers.get(PROXIED_HEADER):
        return None
    return import_tasks.staged_elsewhere(conf, image.get("properties") or {})


def target_url(host: str, path: str) -> str:
    """The same path on ``host`` (a base URL, with or without a trailing slash or a path)."""
    return host.rstrip("/") + "/" + path.lstrip("/")


def forward_headers(ctx: RequestContext, req_headers) -> dict[str, str]:
    """The caller's identity (token, or the trusted identity headers), its global request id,
    the headers the operation reads, and the hand-off mark."""
    headers = ctx.to_headers()
    for name in FORWARDED_HEADERS:
        value = req_headers.get(name)
        if value is not None:
            headers[name] = value
    headers[PROXIED_HEADER] = "1"
    return headers


class Proxied:
    """The stage node's successful answer: its status and request id."""

    def __init__(self, status: int, request_id: str | None):
        self.status = status
        self.request_id = request_id


def _remote_message(resp: requests.Response) -> str:
    try:
        body = resp.json()
    except ValueError:
        body = None
    if isinstance(body, dict) and isinstance(body.get("message"), str):
        # WebOb's JSON error body: "<explanation><br /><br />\n<detail>\n\n"
        return body["message"].split("<br />", 1)[0].strip() or resp.reason
    return resp.reason or f"The stage host answered {resp.status_code}."


def forward(
    req: webob.Request, ctx: RequestContext, host: str, body: object = None, *, session=None
) -> Proxied:
    """Replay ``req`` (its method and path, ``body`` as JSON) on ``host``. Raises
    ``StageHostUnreachable`` (504), ``StageHostFailed`` (502), or ``ProxiedError`` with the
    stage node's own status and message."""
    url = target_url(host, req.path)
    LOG.info("Proxying %s request to host %s which has image.", req.method, host)
    call = (session or requests).request
    try:
        resp = call(
            req.method,
            url,
            json=body,
            headers=forward_headers(ctx, req.headers),
            timeout=TIMEOUT,
            allow_redirects=False,
        )
    except requests.exceptions.ConnectionError as exc:  # ConnectTimeout included
        LOG.error("Failed to proxy to %r: %s", url, exc)
        raise exceptions.StageHostUnreachable("Stage host is unavailable") from exc
    except requests.exceptions.RequestException as exc:
        LOG.error("Failed to proxy to %r: %s", url, exc)
        raise exceptions.StageHostFailed("Stage host is unavailable") from exc
    request_id = resp.headers.get("x-openstack-request-id")
    if resp.status_code // 100 != 2:
        raise exceptions.ProxiedError(resp.status_code, _remote_message(resp), request_id)
    return Proxied(resp.status_code, request_id)
