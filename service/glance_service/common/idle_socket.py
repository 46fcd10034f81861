"""Whether a kept-alive connection can carry the next request."""

from __future__ import annotations

import select
import socket


def closed_by_peer(sock: socket.socket) -> bool:
    """Whether an idle connection has anything to read: EOF (the server closed it: a restart,
    its idle timeout) or bytes nothing asked for; either way it cannot carry another request.
    One ``poll`` without waiting: a request sent on such a connection would fail after being
    sent (a reset), which callers could not tell from a server that died mid-request."""
    poller = select.poll()
    poller.register(sock, select.POLLIN | select.POLLPRI)
    return bool(poller.poll(0))
