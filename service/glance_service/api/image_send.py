"""``image.send`` for downloads: the bytes that left, counted when the server closes the body.

Upstream sends it from the download's iterator (``glance/notifier.py``, ``ImageProxy``) and,
for cache hits, from ``glance/api/common.py`` with the receiver's address; here both carry
``destination_ip``. INFO when every byte of the answer was sent, ERROR when fewer were.
"""

from __future__ import annotations

import os

import webob

from glance_service.common import notifications
from glance_service.context import RequestContext


def counted(svc, ctx: RequestContext, image: dict, req: webob.Request, body, size: int | None):
    """The body, sending ``image.send`` (bytes sent, receiver) when the server closes it."""
    events = notifications.of(svc)
    if not events.enabled:
        return body

    def send(sent: int) -> None:
        events.image_send(image, ctx, sent, size, req.remote_addr)

    file_wrapper = req.environ.get("wsgi.file_wrapper")
    if file_wrapper is not None and isinstance(body, file_wrapper):
        return _sendfile_counted(body, size, send)
    return _counted(body, send)


def _counted(body, send):
    sent = 0
    try:
        for chunk in body:
            sent += len(chunk)
            yield chunk
    finally:
        close = getattr(body, "close", None)
        if close is not None:
            close()
        send(sent)


def _sendfile_counted(body, size: int | None, send):
    """The server's own file wrapper (so it still uses sendfile), counting on close: gunicorn
    puts the file's offset back after a complete sendfile, and Python's sendfile leaves it
    after the bytes sent when the client went away."""
    filelike = body.filelike
    try:
        start = os.lseek(filelike.fileno(), 0, os.SEEK_CUR)
    except (OSError, AttributeError, ValueError):
        start = None

    def close() -> None:
        try:
            here = os.lseek(filelike.fileno(), 0, os.SEEK_CUR) if start is not None else None
        except (OSError, ValueError):
            here = None
        filelike.close()
        send(here - start if start is not None and here is not None and here != start else size or 0)

    body.close = close  # gunicorn's FileWrapper sets ``close`` on the instance too
    return body
