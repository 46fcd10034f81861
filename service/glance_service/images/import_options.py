"""The options of interoperable import: ``[import_filtering_opts]`` (which URLs web-download may
fetch, Glance's ``validate_import_uri``), ``[taskflow_executor]``, ``[task]`` and the task
options of ``[DEFAULT]``, with Glance's names and meanings.
"""

from __future__ import annotations

from oslo_config import cfg

from glance_service.common.registrar import registrar
from glance_service.images import url_filter


def _allowed_and_disallowed(
    what: str, allowed: list, allowed_help: str, noun: str, item_type=None
) -> list[cfg.Opt]:
    """web-download's ``allowed_<what>`` and ``disallowed_<what>`` (upstream's declarations:
    ``bounds``, a list is written ``[a, b]``, as Glance documents it)."""
    typed = {"item_type": item_type} if item_type is not None else {}
    return [
        cfg.ListOpt(f"allowed_{what}", bounds=True, default=allowed, help=allowed_help, **typed),
        cfg.ListOpt(
            f"disallowed_{what}",
            bounds=True,
            default=[],
            help=f"web-download: {noun} refused (unused if allowed_{what}).",
            **typed,
        ),
    ]


_PORT = cfg.types.Integer(min=1, max=65535)
filtering_opts = [
    *_allowed_and_disallowed(
        "schemes", ["http", "https"], "web-download: URL schemes allowed, e.g. [http, https].", "URL schemes"
    ),
    *_allowed_and_disallowed(
        "hosts",
        [],
        "web-download: the only hosts allowed, e.g. [127.0.0.1, images.example.org] (empty: any).",
        "hosts",
        cfg.types.HostAddress(),
    ),
    *_allowed_and_disallowed(
        "ports",
        [80, 443],
        "web-download: the only ports allowed, e.g. [80, 443] (empty: any).",
        "ports",
        _PORT,
    ),
]
worker_opts = [
    cfg.IntOpt(
        "max_workers",
        default=10,
        min=1,
        help="Imports (and location imports) one glance-api worker process runs at the same time.",
    ),
]
# [task] as in Glance; [DEFAULT] task_time_to_live is the old name Glance still reads.
task_group_opts = [
    cfg.IntOpt(
        "task_time_to_live",
        default=48,
        deprecated_opts=[cfg.DeprecatedOpt("task_time_to_live", group="DEFAULT")],
        help="Hours a finished task is kept (its expires_at).",
    ),
]
task_opts = [
    cfg.BoolOpt(
        "do_secure_hash",
        default=True,
        help="Location import (POST /v2/images/{id}/locations) reads the data to compute the "
        "image's checksum and os_hash_value.",
    ),
    cfg.IntOpt(
        "import_stale_timeout",
        default=3600,
        min=60,
        help="Seconds after which a task run by glance-api on another host, which has not "
        "refreshed it since, is taken as interrupted at start-up. Running tasks refresh "
        "themselves every minute.",
    ),
]


register_opts = registrar(
    ("import_filtering_opts", filtering_opts),
    ("taskflow_executor", worker_opts),
    (None, task_opts),
    ("task", task_group_opts),
)


def list_opts() -> list[tuple[str | None, list[cfg.Opt]]]:
    return [
        (None, task_opts),
        ("task", task_group_opts),
        ("import_filtering_opts", filtering_opts),
        ("taskflow_executor", worker_opts),
    ]


register_opts(cfg.CONF)


class ImportOptionsError(ValueError):
    """A ``[import_filtering_opts]`` value oslo.config cannot read."""


def check_options(conf: cfg.ConfigOpts) -> None:
    """Reads every filtering list once, so that a value written without Glance's brackets
    stops the service at start-up (and a reload's trial build) with the fix, instead of failing
    each web-download with a 500."""
    conf.register_opts(filtering_opts, group="import_filtering_opts")
    for opt in filtering_opts:
        try:
            getattr(conf.import_filtering_opts, opt.dest)
        except cfg.ConfigFileValueError as exc:
            raise ImportOptionsError(
                f"[import_filtering_opts] {opt.dest} is not a valid list ({exc}): write it as "
                f"Glance does, in brackets, e.g. {opt.dest} = [{_EXAMPLES.get(opt.dest, '')}]"
            ) from exc
    # the import plugins' list (issue 18), read the same way
    from glance_service.images import import_plugins

    try:
        import_plugins.check_options(conf)
    except ValueError as exc:
        raise ImportOptionsError(str(exc)) from exc


_EXAMPLES = {
    "allowed_schemes": "http, https",
    "disallowed_schemes": "ftp",
    "allowed_hosts": "127.0.0.1, images.example.org",
    "disallowed_hosts": "169.254.169.254",
    "allowed_ports": "80, 443",
    "disallowed_ports": "8080",
}


def uri_allowed(conf: cfg.ConfigOpts, uri: object) -> bool:
    """Whether the service may fetch ``uri`` (``images.url_filter``: Glance's rules)."""
    return url_filter.uri_allowed(conf.import_filtering_opts, uri)
