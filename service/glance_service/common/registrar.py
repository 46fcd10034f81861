"""``registrar``: a module's ``register_opts`` from its option lists. Its own module (not
``common/config.py``, which loads logging and the server's request log) so that any layer,
the domain included, can use it without importing a web server."""

from __future__ import annotations

from collections.abc import Callable

from oslo_config import cfg


def registrar(*groups: tuple[str | None, list[cfg.Opt]]) -> Callable[[cfg.ConfigOpts], None]:
    """A module's ``register_opts(conf)``: registers each of its option lists in its group
    (None: ``[DEFAULT]``). Registering again is a no-op, as oslo.config allows."""

    def register_opts(conf: cfg.ConfigOpts) -> None:
        for group, opts in groups:
            conf.register_opts(opts, group=group)

    return register_opts
