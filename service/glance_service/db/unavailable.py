"""A database that does not answer is a 503 (the call may succeed again), never a 500.

The errors that mean it (a refused or dropped connection: a password rotation's window, a
restart; a full pool), the 503 they become, and the wrapper glance-api puts around the
database in direct mode (``[DEFAULT] data_api = database``); glance-registry maps the same
errors in ``registry/server.py``.
"""

from __future__ import annotations

import functools
from typing import Any

import sqlalchemy as sa

from glance_service import exceptions

DATABASE_DOWN = (sa.exc.OperationalError, sa.exc.InterfaceError, sa.exc.TimeoutError)


def unavailable(exc: BaseException) -> exceptions.ServiceUnavailable:
    return exceptions.ServiceUnavailable(f"The image database is unavailable: {type(exc).__name__}")


class Answering503:
    """The data API of ``inner`` with :data:`DATABASE_DOWN` raised as 503s."""

    def __init__(self, inner: Any):
        self._inner = inner

    def __getattr__(self, name: str) -> Any:
        attr = getattr(self._inner, name)
        if name.startswith("_") or not callable(attr):
            return attr

        @functools.wraps(attr)
        def call(*args, **kwargs):
            try:
                return attr(*args, **kwargs)
            except DATABASE_DOWN as exc:
                raise unavailable(exc) from exc

        setattr(self, name, call)  # built once per operation, not per call
        return call
