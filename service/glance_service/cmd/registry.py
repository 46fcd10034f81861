"""glance-registry: the image metadata service (JSON-RPC over the database).

Refuses to start when the database schema is not at this release's head, so a forgotten
``glance-manage db_sync`` is reported in one clear line instead of failing requests.
"""

from __future__ import annotations

import sys

from oslo_config import cfg
from oslo_log import log as logging

from glance_service.cmd import isolated
from glance_service.common import config, wsgi_server

LOG = logging.getLogger(__name__)


def check_schema(conf: cfg.ConfigOpts) -> str | None:
    """None when the schema is current, else the message that explains what to do."""
    from glance_service.db import migrate

    try:
        # A schema waiting only for its contraction (a rolling upgrade under way) serves this code.
        if migrate.needs_expand(conf.database.connection):
            current = migrate.current(conf.database.connection) or "empty"
            return (
                f"The database schema is {current}, this release needs {migrate.head()}: "
                "run glance-manage db_sync (or db expand in a rolling upgrade), then start "
                "glance-registry again."
            )
    except migrate.UnknownRevision as exc:
        return str(exc)
    except Exception as exc:  # unreachable database, bad URL: say so plainly
        return f"Cannot read the database schema ([database] connection): {type(exc).__name__}: {exc}"
    return None


def load_config(argv: list[str]) -> cfg.ConfigOpts:
    """The configuration as glance-registry reads it at start (``argv``: its command line). The
    [database] options are registered where they are used (``with_database_opts``: the schema
    check's child, the workers): SQLAlchemy stays out of a master."""
    return config.load("glance-registry", argv, 9191)


def with_database_opts(conf: cfg.ConfigOpts) -> cfg.ConfigOpts:
    from glance_service.db import session as db_session

    db_session.register_opts(conf)
    config.size_database_pool(conf)
    return conf


def build_app(conf: cfg.ConfigOpts):
    """The WSGI application a worker serves; the database engine is made here, after the fork."""
    from glance_service.registry.server import build_app as build_registry_app

    return build_registry_app(with_database_opts(conf))


def main(argv: list[str] | None = None) -> int:
    conf = load_config(argv if argv is not None else sys.argv[1:])

    def check() -> int:
        with_database_opts(conf)
        problem = check_schema(conf)
        if problem:
            LOG.error("glance-registry: %s", problem)
            print(f"glance-registry: {problem}", file=sys.stderr)
            return 1
        return 0

    # In a child: alembic and a database engine would stay resident in the master otherwise.
    if isolated.run(check, "The schema check") != 0:
        return 1

    check_command = isolated.reload_check_command("glance-registry")
    wsgi_server.serve(lambda: build_app(conf), conf, "glance-registry", check_command=check_command)
    return 0


if __name__ == "__main__":
    sys.exit(main())
