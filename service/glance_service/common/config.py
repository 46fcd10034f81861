"""Configuration loading shared by the three commands.

Options are declared next to the code that reads them; this module holds the ones every
process has (where to listen, how many workers, the auth flavor) and the loader.
Option names follow Glance's where the meaning is the same, so an operator's existing
``glance-api.conf`` keeps working.
"""

from __future__ import annotations

from oslo_config import cfg
from oslo_log import log as logging

from glance_service.version import VERSION

CONF = cfg.CONF


def server_opts(default_port: int) -> list[cfg.Opt]:
    return [
        cfg.HostAddressOpt("bind_host", default="0.0.0.0", help="Address to listen on."),
        cfg.PortOpt("bind_port", default=default_port, help="Port to listen on."),
        cfg.IntOpt(
            "workers",
            default=None,
            min=0,
            help="Number of worker processes. Default: the number of CPUs, at most 8. 0: no "
            "worker processes and no master, the main process serves the requests itself (one "
            "process less; a reload rebuilds the application in place; systemd restarts a "
            "process that died).",
        ),
        cfg.IntOpt(
            "threads_per_worker",
            default=32,
            min=1,
            help="Threads per worker process; each serves one connection at a time "
            "(keep-alive connections hold their thread while idle).",
        ),
        cfg.IntOpt("backlog", default=4096, min=1, help="Listen backlog."),
        cfg.IntOpt(
            "http_keepalive_timeout",
            default=75,
            min=0,
            help="Seconds an idle keep-alive connection is held open (0 disables keep-alive).",
        ),
        cfg.IntOpt(
            "client_socket_timeout",
            default=900,
            min=0,
            help="Seconds a worker may be silent before it is restarted (guards hung workers).",
        ),
    ]


paste_deploy_opts = [
    cfg.StrOpt(
        "flavor",
        default="keystone",
        help="'keystone' validates tokens with keystonemiddleware auth_token. Empty (or any "
        "other value) trusts the X-User-Id/X-Project-Id/X-Roles headers as sent: for "
        "development only, never expose such a service.",
    ),
    cfg.StrOpt("config_file", help="Accepted for compatibility with Glance; not used."),
]

CONF.register_opts(paste_deploy_opts, group="paste_deploy")
logging.register_options(CONF)


def load(prog: str, argv: list[str] | None, default_port: int, conf: cfg.ConfigOpts = CONF) -> cfg.ConfigOpts:
    """Register the server options, parse the command line and config files, set up logging.

    Config files default to Glance's search path (``/etc/glance/<prog>.conf`` among others);
    ``--config-file`` overrides it.
    """
    conf.register_opts(server_opts(default_port))
    conf(argv, project="glance", prog=prog, version=VERSION)
    logging.setup(conf, "glance")
    # Location URLs can carry store credentials: no log line shows them.
    from glance_service.common import request_log

    request_log.install_masking()
    return conf


def size_database_pool(conf: cfg.ConfigOpts) -> None:
    """Default ``[database] max_pool_size`` to the worker's thread count.

    Each thread holds a connection for the length of a call; with fewer pooled connections than
    threads, busy moments open and close "overflow" connections on every call (a TCP connect, the
    MySQL handshake, an SSL context): half of glance-registry's CPU under 16 concurrent clients.
    An operator's explicit setting is kept."""
    if "database" not in conf or "max_pool_size" not in conf.database:
        return
    conf.set_default("max_pool_size", max(conf.threads_per_worker, 5), group="database")


def keystone_auth_enabled(conf: cfg.ConfigOpts = CONF) -> bool:
    return (conf.paste_deploy.flavor or "").strip().lower() == "keystone"
