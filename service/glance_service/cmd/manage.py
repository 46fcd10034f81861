"""glance-manage: database schema management.

    glance-manage db_sync | db sync      upgrade the schema to head (idempotent)
    glance-manage db_version | db version
    glance-manage db check               exit 0: schema current; 3: a sync is needed; other: error

The ``[database] connection`` comes from the same files Glance reads: oslo.config's default
search for ``glance-registry.conf`` then ``glance-manage.conf`` (later files win), or from
``--config-file``/``--config-dir``. Further subcommands (``db load_metadefs``, ``db purge``,
``scrub``) slot into ``_add_parsers``.
"""

from __future__ import annotations

import sys
from collections.abc import Callable

from oslo_config import cfg

from glance_service.db import migrate
from glance_service.db import session as db_session
from glance_service.version import VERSION

EXIT_OK = 0
EXIT_ERROR = 1
EXIT_NEEDS_SYNC = 3


def _db_sync(conf: cfg.ConfigOpts) -> int:
    before, after = migrate.sync(conf.database.connection)
    if before == after:
        print(f"schema: already at {after}")
    else:
        print(f"schema: {before or 'base'} -> {after}")
    return EXIT_OK


def _db_version(conf: cfg.ConfigOpts) -> int:
    print(migrate.current(conf.database.connection) or "base")
    return EXIT_OK


def _db_check(conf: cfg.ConfigOpts) -> int:
    url = conf.database.connection
    if migrate.needs_sync(url):
        current = migrate.current(url) or "base"
        print(
            f"The database schema is at {current}, this release needs {migrate.head()}: "
            "run glance-manage db_sync",
            file=sys.stderr,
        )
        return EXIT_NEEDS_SYNC
    print(f"schema: current ({migrate.head()})")
    return EXIT_OK


DB_ACTIONS: dict[str, tuple[Callable[[cfg.ConfigOpts], int], str]] = {
    "sync": (_db_sync, "Upgrade the database schema to the newest revision (idempotent)."),
    "version": (_db_version, "Print the database's schema revision ('base' if never synced)."),
    "check": (_db_check, "Exit 0 if the schema is current, 3 if glance-manage db_sync is needed."),
}


def _add_parsers(subparsers) -> None:
    db = subparsers.add_parser("db", help="Database schema management.")
    actions = db.add_subparsers(dest="action", metavar="ACTION")
    actions.required = True
    for name, (_, help_text) in DB_ACTIONS.items():
        actions.add_parser(name, help=help_text)


command_opt = cfg.SubCommandOpt("command", title="Commands", handler=_add_parsers, help="Available commands")


def _legacy_argv(argv: list[str]) -> list[str]:
    """Glance's legacy spellings: ``db_sync`` → ``db sync``, ``db_version`` → ``db version``."""
    out = []
    for arg in argv:
        if arg.startswith("db_") and arg[3:] in DB_ACTIONS and not out[-1:] == ["--config-file"]:
            out += ["db", arg[3:]]
        else:
            out.append(arg)
    return out


def default_config_files() -> list[str]:
    found: list[str] = []
    for prog in ("glance-registry", "glance-manage"):
        for path in cfg.find_config_files(project="glance", prog=prog):
            if path not in found:
                found.append(path)
    return found


def main(argv: list[str] | None = None) -> int:
    conf = cfg.ConfigOpts()
    conf.register_cli_opt(command_opt)
    db_session.register_opts(conf)
    args = _legacy_argv(list(sys.argv[1:] if argv is None else argv))
    try:
        conf(
            args,
            project="glance",
            prog="glance-manage",
            version=VERSION,
            default_config_files=default_config_files(),
        )
    except cfg.Error as exc:
        print(f"glance-manage: {exc}", file=sys.stderr)
        return EXIT_ERROR
    handler = DB_ACTIONS[conf.command.action][0]
    try:
        return handler(conf)
    except migrate.UnknownRevision as exc:
        print(f"glance-manage: {exc}", file=sys.stderr)
        return EXIT_ERROR
    except Exception as exc:  # the operator needs the reason, not a traceback
        print(
            f"glance-manage: {conf.command.name} {conf.command.action} failed: {type(exc).__name__}: {exc}",
            file=sys.stderr,
        )
        return EXIT_ERROR


if __name__ == "__main__":
    sys.exit(main())
