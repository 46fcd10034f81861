"""``glance-api``: the Image API v2 server."""

from __future__ import annotations

import sys

from oslo_log import log as logging

from glance_service.common import config, server

LOG = logging.getLogger(__name__)


def recover(services) -> None:
    """Give back images whose upload was cut by a crash (the data path's own recovery)."""
    try:
        from glance_service.api import image_data

        recover_uploads = getattr(image_data, "recover_interrupted_uploads", None)
        if recover_uploads is not None:
            recover_uploads(services)
    except Exception:
        LOG.exception("Recovery of interrupted uploads failed; the API starts anyway")
    try:
        # Imports whose process died: failed, their images back to queued (or still active).
        from glance_service.images import imports

        imports.recover_interrupted_imports(services)
    except Exception:
        LOG.exception("Recovery of interrupted imports failed; the API starts anyway")


def main(argv: list[str] | None = None) -> None:
    from glance_service.api import app as app_mod

    conf = config.CONF
    app_mod.register_opts(conf)
    config.load("glance-api", sys.argv[1:] if argv is None else argv, 9292, conf)
    if conf.data_api == "database":
        from glance_service.db import session as db_session

        db_session.register_opts(conf)
        config.size_database_pool(conf)
    # Recovery runs once, in the master, before the workers fork.
    services = app_mod.build_services(conf)
    recover(services)
    # Nothing opened here may be shared with the workers (sockets, database pools).
    for part in (services.data, services.stores):
        close = getattr(part, "close", None)
        if close is not None:
            close()
    del services
    # Delayed delete: one scrubber process per API host, forked before the workers.
    from glance_service.images import scrubber

    scrubber.start_periodic(conf)
    server.serve(lambda: app_mod.app_factory(conf), conf, "glance-api")
