"""glance-manage: database schema management.

    glance-manage db_sync | db sync      upgrade the schema to head (idempotent): expand,
                                         migrate and contract in one go (offline upgrade)
    glance-manage db_version | db version
    glance-manage db check               what is pending, as upstream: exit 0 up to date,
                                         3 expand needed, 4 migrate needed, 5 contract needed
    glance-manage db expand | db migrate | db contract
                                         a rolling upgrade's three steps (db/migrate.py): expand
                                         before the new code starts, migrate the data, contract
                                         once no node runs the old code

The ``[database] connection`` comes from the same files Glance reads: oslo.config's default
search for ``glance-registry.conf`` then ``glance-manage.conf`` (later files win), or from
``--config-file``/``--config-dir``. Further subcommands slot into ``_add_parsers``.

    glance-manage db load_metadefs [--path DIR]     the standard metadata definitions (idempotent)
    glance-manage db purge --age_in_days N [--max_rows M]
                                         soft-deleted rows older than N days (images' rows excepted)
    glance-manage db purge_images_table --age_in_days N [--max_rows M]
    glance-manage scrub [--restore IMAGE_ID]   remove the data of pending_delete images now (needs
                                         the [glance_store] options: glance-api.conf is read too)
    glance-manage adopt --from-connection URL [--check]   an upstream Glance database's records
                                         into ours (docs/ADOPTION.md); exit 2 when refused
    glance-manage handback --to-connection URL [--check]  ours into an upstream database
"""

from __future__ import annotations

import functools
import sys
from collections.abc import Callable

from oslo_config import cfg

from glance_service.db import migrate
from glance_service.db import session as db_session
from glance_service.version import VERSION

EXIT_OK = 0
EXIT_ERROR = 1
# upstream's db check
EXIT_NEEDS_SYNC = EXIT_NEEDS_EXPAND = 3
EXIT_NEEDS_MIGRATE = 4
EXIT_NEEDS_CONTRACT = 5
EXIT_REFUSED = 2  # adopt / handback: the conversion would not be safe (reasons printed)

UP_TO_DATE = "Database is up to date. No migrations needed."


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
    """Upstream's messages and exit codes."""
    state = migrate.status(conf.database.connection)
    if state == migrate.CURRENT:
        print("Database is up to date. No upgrades needed.")
        return EXIT_OK
    if state == migrate.EXPAND:
        print("Your database is not up to date. Your first step is to run `glance-manage db expand`.")
        return EXIT_NEEDS_EXPAND
    if state == migrate.MIGRATE:
        print("Your database is not up to date. Your next step is to run `glance-manage db migrate`.")
        return EXIT_NEEDS_MIGRATE
    print("Your database is not up to date. Your next step is to run `glance-manage db contract`.")
    return EXIT_NEEDS_CONTRACT


def _upgraded(before: str | None, after: str | None, nothing: str) -> int:
    print(nothing if before == after else f"Upgraded database to: {after}, current revision(s): {after}")
    return EXIT_OK


def _rolling_step(step: Callable[[str], int]) -> Callable[[cfg.ConfigOpts], int]:
    """A rolling-upgrade step on ``[database] connection``: with no migration pending, upstream's
    "up to date" and nothing run."""

    @functools.wraps(step)
    def run(conf: cfg.ConfigOpts) -> int:
        url = conf.database.connection
        if not migrate.pending(url):
            print(UP_TO_DATE)
            return EXIT_OK
        return step(url)

    return run


@_rolling_step
def _db_expand(url: str) -> int:
    before, after = migrate.expand(url)
    return _upgraded(before, after, "Database expansion is up to date. No expansion needed.")


@_rolling_step
def _db_migrate(url: str) -> int:
    moved = migrate.migrate_data(url)
    print(f"Migrated {moved} rows" if moved else "Database migration is up to date. No migration needed.")
    return EXIT_OK


@_rolling_step
def _db_contract(url: str) -> int:
    before, after = migrate.contract(url)
    return _upgraded(before, after, UP_TO_DATE)


def _db_load_metadefs(conf: cfg.ConfigOpts) -> int:
    from glance_service.db import metadefs_loader
    from glance_service.db.database_api import DatabaseAPI

    data = DatabaseAPI(conf)
    try:
        counts = metadefs_loader.load(data, conf.command.path)
    except metadefs_loader.DefinitionError as exc:
        print(f"glance-manage: db load_metadefs: {exc}", file=sys.stderr)
        return EXIT_ERROR
    finally:
        data.db.dispose()
    print(
        "metadefs: {files} file(s): {created} namespace(s) created, {updated} completed "
        "({items_added} item(s) added), {unchanged} unchanged".format(**counts)
    )
    return EXIT_OK


def _purge(conf: cfg.ConfigOpts, images: bool) -> int:
    from glance_service.db import purge

    try:
        counts = purge.purge(
            conf.database.connection, conf.command.age_in_days, conf.command.max_rows, images=images
        )
    except ValueError as exc:
        print(f"glance-manage: {exc}", file=sys.stderr)
        return EXIT_ERROR
    for table, count in sorted(counts.items()):
        print(f"purged {count} row(s) from {table}")
    print(f"purged {sum(counts.values())} row(s) in total")
    return EXIT_OK


def _db_purge(conf: cfg.ConfigOpts) -> int:
    return _purge(conf, images=False)


def _db_purge_images_table(conf: cfg.ConfigOpts) -> int:
    return _purge(conf, images=True)


def _scrub(conf: cfg.ConfigOpts) -> int:
    from glance_service import exceptions
    from glance_service.db.database_api import DatabaseAPI
    from glance_service.images import scrubber
    from glance_service.store import Stores

    data = DatabaseAPI(conf)
    try:
        if conf.command.restore:
            try:
                scrubber.Scrubber(data, None).restore(conf.command.restore)
            except (exceptions.ImageNotFound, exceptions.ImageStatusConflict) as exc:
                print(f"glance-manage: scrub --restore: {exc.message}", file=sys.stderr)
                return EXIT_ERROR
            print(f"restored image {conf.command.restore}: pending_delete -> active")
            return EXIT_OK
        counts = scrubber.Scrubber.from_conf(conf, data, Stores(conf)).run_once()
    finally:
        data.db.dispose()
    print(
        "scrub: {images} image(s) deleted, {locations} location(s) removed, {failed} failed".format(**counts)
    )
    return EXIT_OK if not counts["failed"] else EXIT_ERROR


# issue 19: adopt / handback (docs/ADOPTION.md)
def _print_result(conf: cfg.ConfigOpts, result=None, refused=None) -> None:
    import json

    survey = result.survey if result is not None else getattr(refused, "survey", None)
    if conf.command.json:
        out = result.as_dict() if result is not None else {"survey": survey.as_dict() if survey else None}
        out["refused"] = refused.reasons if refused is not None else []
        out["check"] = bool(conf.command.check)
        print(json.dumps(out, sort_keys=True, default=str))
        return
    for line in survey.lines() if survey is not None else []:
        print(line)
    for reason in refused.reasons if refused is not None else []:
        print(f"REFUSED: {reason}")
    if result is None:
        return
    for note in result.notes:
        print(note)
    verb = "would write" if conf.command.check else "written"
    for table in result.counts.written:
        print(f"{table}: {result.counts.written[table]} {verb}, {result.counts.unchanged[table]} unchanged")
    print(f"changed: {result.counts.changed}")


def _conversion(conf: cfg.ConfigOpts, run: Callable) -> int:
    from glance_service.db import adopt

    try:
        result = run(adopt)
    except adopt.Refused as exc:
        _print_result(conf, refused=exc)
        return EXIT_REFUSED
    _print_result(conf, result)
    return EXIT_OK


def _adopt(conf: cfg.ConfigOpts) -> int:
    c = conf.command
    stores = set(c.known_stores.split(",")) if c.known_stores else None
    legacy = dict(pair.split("=", 1) for pair in c.legacy_stores.split(",")) if c.legacy_stores else None
    return _conversion(
        conf,
        lambda adopt: adopt.adopt(
            c.from_connection, conf.database.connection, c.check, c.allow_unservable, stores, legacy
        ),
    )


def _handback(conf: cfg.ConfigOpts) -> int:
    c = conf.command
    return _conversion(conf, lambda adopt: adopt.handback(conf.database.connection, c.to_connection, c.check))


def _conversion_args(parser, flag: str, help_text: str) -> None:
    parser.add_argument(flag, required=True, metavar="URL", help=help_text)
    parser.add_argument("--check", action="store_true", help="Report only; change nothing.")
    parser.add_argument("--json", action="store_true", help="Print the report as one JSON object.")


DB_ACTIONS: dict[str, tuple[Callable[[cfg.ConfigOpts], int], str]] = {
    "sync": (_db_sync, "Upgrade the database schema to the newest revision (idempotent)."),
    "version": (_db_version, "Print the database's schema revision ('base' if never synced)."),
    "check": (
        _db_check,
        "Report what is pending: exit 0 up to date, 3 expand needed, 4 migrate needed, 5 contract needed.",
    ),
    "expand": (
        _db_expand,
        "Rolling upgrade, step 1: add what the new release needs (old code keeps running).",
    ),
    "migrate": (_db_migrate, "Rolling upgrade, step 2: move the data the new release needs moved."),
    "contract": (_db_contract, "Rolling upgrade, step 3: remove what only the old release used."),
    "load_metadefs": (_db_load_metadefs, "Load the standard metadata definitions (idempotent)."),
    "purge": (_db_purge, "Remove soft-deleted rows older than --age_in_days (images' rows excepted)."),
    "purge_images_table": (_db_purge_images_table, "Remove deleted images' rows older than --age_in_days."),
}


def _purge_args(parser) -> None:
    parser.add_argument(
        "--age_in_days", type=int, default=30, help="Purge rows deleted more than this many days ago."
    )
    parser.add_argument(
        "--max_rows", type=int, default=100, help="Rows to purge per table at most (-1: all)."
    )


_DB_ARGS = {
    "load_metadefs": lambda p: p.add_argument(
        "--path", help="Directory of *.json definitions (default: the packaged ones)."
    ),
    "purge": _purge_args,
    "purge_images_table": _purge_args,
}


def _add_parsers(subparsers) -> None:
    db = subparsers.add_parser("db", help="Database schema management.")
    actions = db.add_subparsers(dest="action", metavar="ACTION")
    actions.required = True
    for name, (_, help_text) in DB_ACTIONS.items():
        parser = actions.add_parser(name, help=help_text)
        if name in _DB_ARGS:
            _DB_ARGS[name](parser)
    scrub = subparsers.add_parser(
        "scrub", help="Remove the data of pending_delete images now (delayed delete)."
    )
    scrub.add_argument(
        "--restore", metavar="IMAGE_ID", help="Bring a pending_delete image back to active instead."
    )
    # issue 19: adopt / handback
    adopt = subparsers.add_parser("adopt", help="Copy an upstream Glance database's records into ours.")
    _conversion_args(adopt, "--from-connection", "The upstream database (only read).")
    adopt.add_argument(
        "--allow-unservable", action="store_true", help="Carry images whose locations no store here serves."
    )
    adopt.add_argument("--known-stores", metavar="ID[,ID]", help="Store ids our glance-api has.")
    adopt.add_argument(
        "--legacy-stores",
        metavar="KIND=ID[,KIND=ID]",
        help="The store id for locations that name none (a single-store upstream's), by kind.",
    )
    handback = subparsers.add_parser("handback", help="Copy our records into an upstream Glance database.")
    _conversion_args(handback, "--to-connection", "The upstream database (created by its db sync).")


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


def default_config_files(scrub: bool = False) -> list[str]:
    found: list[str] = []
    # The scrubber removes data: it needs glance-api.conf's [glance_store] options too.
    for prog in (("glance-api",) if scrub else ()) + ("glance-registry", "glance-manage"):
        for path in cfg.find_config_files(project="glance", prog=prog):
            if path not in found:
                found.append(path)
    return found


def _register_store_opts(conf: cfg.ConfigOpts) -> None:
    from glance_service.api import options
    from glance_service.store import register_opts

    register_opts(conf)
    options.register_opts(conf)


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
            default_config_files=default_config_files(scrub="scrub" in args),
        )
    except cfg.Error as exc:
        print(f"glance-manage: {exc}", file=sys.stderr)
        return EXIT_ERROR
    if conf.command.name == "scrub":
        _register_store_opts(conf)
        handler = _scrub
    elif conf.command.name in ("adopt", "handback"):  # issue 19
        handler = _adopt if conf.command.name == "adopt" else _handback
    else:
        handler = DB_ACTIONS[conf.command.action][0]
    try:
        return handler(conf)
    except (migrate.UnknownRevision, migrate.PhaseOrderError) as exc:
        print(f"glance-manage: {exc}", file=sys.stderr)
        return EXIT_ERROR
    except Exception as exc:  # the operator needs the reason, not a traceback
        print(
            f"glance-manage: {conf.command.name} {getattr(conf.command, 'action', '') or ''} failed: "
            f"{type(exc).__name__}: {exc}",
            file=sys.stderr,
        )
        return EXIT_ERROR


if __name__ == "__main__":
    sys.exit(main())
