"""glance_store's errors as the service's own: one table for every store and writer.

Its own module (not in backends.py) because the swift writer needs it too and backends.py
imports the writers: here nothing in store/ imports back.
"""

from __future__ import annotations

from glance_store import exceptions as gs_exc

from glance_service import exceptions

# glance_store's errors -> ours, the first match wins.
_ERRORS: list[tuple[type[Exception] | tuple[type[Exception], ...], type[exceptions.GlanceServiceError]]] = [
    # a delete the store refuses because the data is in use (rbd: clones, watchers, snapshots)
    ((gs_exc.InUseByStore, gs_exc.HasSnapshot), exceptions.InUseByStore),
    (gs_exc.NotFound, exceptions.NotFound),
    (gs_exc.Duplicate, exceptions.Duplicate),
    (gs_exc.StorageFull, exceptions.StorageFull),
    (gs_exc.StoreAddDisabled, exceptions.Gone),
    ((gs_exc.StorageWriteDenied, gs_exc.RemoteServiceUnavailable), exceptions.StoreUnavailable),
    ((gs_exc.UnknownScheme, gs_exc.BadStoreUri, gs_exc.Invalid), exceptions.BadRequest),
    (gs_exc.Forbidden, exceptions.Forbidden),
]


def translate(exc: Exception) -> exceptions.GlanceServiceError:
    """The service error for a glance_store (or network) failure."""
    if isinstance(exc, exceptions.GlanceServiceError):
        return exc
    for gs_type, ours in _ERRORS:
        if isinstance(exc, gs_type):
            return ours(str(exc) or None)
    if isinstance(exc, OSError):
        return exceptions.StoreUnavailable(f"The image store could not be reached: {exc}")
    return exceptions.StoreUnavailable(f"The image store failed: {exc}")
