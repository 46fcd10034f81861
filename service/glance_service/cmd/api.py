"""``glance-api``: the Image API v2 server."""

from __future__ import annotations

import sys

from oslo_log import log as logging

from glance_service.cmd import isolated
from glance_service.common import config, wsgi_server
from glance_service.common.after_worker_exit import AfterWorkerExit

LOG = logging.getLogger(__name__)


def recover(services) -> bool:
    """Give back images whose upload was cut by a crash (the data path's own recovery), and
    fail the imports whose process died. False when either could not run to its end."""
    complete = True
    try:
        from glance_service.api import upload_recovery

        upload_recovery.recover_interrupted_uploads(services)
    except Exception:
        LOG.exception("Recovery of interrupted uploads failed")
        complete = False
    try:
        # Imports whose process died: failed, their images back to queued (or still active).
        from glance_service.images import import_recovery

        import_recovery.recover_interrupted_imports(services)
    except Exception:
        LOG.exception("Recovery of interrupted imports failed")
        complete = False
    return complete


def _recover_in_child(conf) -> bool:
    from glance_service.api import app as app_mod

    app_mod.register_opts(conf)
    services = app_mod.build_services(conf)
    return recover(services)


def check_property_protections(conf) -> None:
    """Property protections (issue 18): a file that cannot be used stops glance-api here,
    before any worker starts (upstream's documented behaviour)."""
    from glance_service.images import property_protections as pp

    pp.register_opts(conf)
    if not conf.property_protection_file:
        return
    try:
        pp.load_rules(pp.find_file(conf), conf.property_protection_rule_format)
    except pp.InvalidPropertyProtectionFile as exc:
        LOG.error("glance-api cannot start: %s", exc)
        sys.exit(f"glance-api cannot start: {exc}")


def load_config(argv: list[str]):
    """The configuration as glance-api reads it at start (``argv``: its command line)."""
    from glance_service.api import options, wiring

    conf = config.CONF
    # Only what the master reads (data_api, delayed delete); the workers register the rest.
    wiring.register_opts(conf)
    options.register_opts(conf)
    config.load("glance-api", argv, 9292, conf)
    check_property_protections(conf)
    if conf.data_api == "database":
        from glance_service.db import session as db_session

        db_session.register_opts(conf)
        config.size_database_pool(conf)
    return conf


def build_app(conf):
    """The WSGI application a worker serves."""
    from glance_service.api import app as app_mod

    return app_mod.app_factory(conf)


def main(argv: list[str] | None = None) -> None:
    conf = load_config(sys.argv[1:] if argv is None else argv)
    # Recovery runs before the workers fork, in a child of the master: nothing it opens
    # (sockets, database pools) or imports is shared with, or resident in, the master. Again
    # after any worker exit (a worker killed mid-upload), and later when this run failed.
    recovery = AfterWorkerExit(lambda: _recover_in_child(conf), "Recovery of interrupted work")
    if isolated.run(lambda: 0 if _recover_in_child(conf) else 1, "Recovery at start-up") != 0:
        LOG.warning("Recovery at start-up did not complete; the API starts and tries it again later")
        recovery.retry_later()
    # Delayed delete: one scrubber process per API host, forked before the workers.
    from glance_service.api import wiring
    from glance_service.images import scrubber

    scrubber.start_periodic(conf, wiring.build_data_api, wiring.build_stores)

    wsgi_server.serve(
        lambda: build_app(conf),
        conf,
        "glance-api",
        after_worker_exit=recovery,
        check_command=isolated.reload_check_command("glance-api"),
    )
