"""gunicorn's threaded (gthread) worker, with two per-request costs cut.

gunicorn's gthread worker serves each request of a kept-alive connection as a round trip
between its threads: the pool thread serves one request, hands the connection back to the
main thread through a pipe (a future, a done-callback, a queued method), the main thread
registers the socket with its poller, wakes when the next request arrives, unregisters it and
submits the connection to the pool again. On a create + 1 KiB upload that hand-over was about
a third of glance-registry's CPU and a quarter of glance-api's (issue 17, py-spy ``--gil``).

- **Keep-alive linger**: after a request on a kept-alive connection, the pool thread waits up
  to ``KEEPALIVE_LINGER`` for the connection's next request and serves it itself, skipping the
  hand-over. glance-api's threads call the registry several times per API request, a few
  milliseconds apart, and clients send their next request just as quickly. The thread stops
  lingering (and hands the connection back as gunicorn does) when the wait is over, when the
  worker is stopping, and whenever another connection waits for a thread: the linger only
  uses threads that would otherwise be idle, so a busy worker shares its threads as before.
- **Heartbeat throttled**: gunicorn touches the worker's temp file (``os.utime``, which the
  arbiter watches) at every pass of its event loop, that is on every request: 7% of an API
  worker's samples per create + upload. Here at most every ``min(1 s, timeout / 4)``: the loop
  still wakes at least every second, and the arbiter kills a worker only after ``timeout``
  seconds without one.
- **Connections spread evenly**: a worker that holds more connections than another stands back
  from a new one for a moment (``common.accept_balance``): kept-alive connections otherwise
  pile up on whichever worker won the accept race, and one worker is one core.
"""

from __future__ import annotations

import select
import ssl
import time

from gunicorn.workers import gthread

from glance_service.common.accept_balance import NOT_ACCEPTING, AcceptGate

# How long a pool thread waits for a kept-alive connection's next request before handing the
# connection back to the main thread: longer than the gap between the registry calls of one
# API request (a few ms, an fsync included), short enough that an idle connection gives its
# thread back at once at human time scales.
KEEPALIVE_LINGER = 0.03
# The wait is cut into slices of this length, between which the thread checks whether another
# connection waits for a thread or the worker is stopping: the most such a connection waits.
LINGER_SLICE = 0.005


class ThreadWorker(gthread.ThreadWorker):
    """gunicorn's gthread worker with the keep-alive linger and the throttled heartbeat."""

    keepalive_linger = KEEPALIVE_LINGER
    linger_slice = LINGER_SLICE
    _next_notify = 0.0
    accept_gate = AcceptGate(None, None)

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        # In the master, before the fork: a slot in the table its workers share (if it has one).
        table = getattr(self.app, "connection_table", None)
        self.balance_slot = table.claim() if table is not None else None
        if table is not None:
            self.accept_gate = AcceptGate(table, self.balance_slot)

    def accept(self, listener) -> None:
        if not self.accept_gate.should_accept(self.nr_conns):
            # Another worker holds fewer: leave this connection to it for a moment.
            super().set_accept_enabled(False)
            return
        super().accept(listener)
        self.accept_gate.publish(self.nr_conns)

    def set_accept_enabled(self, enabled: bool) -> None:
        # gunicorn's loop re-enables accepting on every pass; a deferral holds until it ends.
        if enabled and self.accept_gate.deferring:
            if self.accept_gate.resume_in() > 0:
                return
            self.accept_gate.resumed()
        super().set_accept_enabled(enabled)

    def wait_for_and_dispatch_events(self, timeout: float) -> None:
        # A stopping worker drains what it holds and takes nothing new.
        self.accept_gate.publish(self.nr_conns if self.alive else NOT_ACCEPTING)
        if self.accept_gate.deferring:
            timeout = min(timeout, self.accept_gate.resume_in())
        super().wait_for_and_dispatch_events(timeout)

    def notify(self) -> None:
        now = time.monotonic()
        if now >= self._next_notify:
            self._next_notify = now + min(1.0, (self.timeout or 4) / 4)
            super().notify()

    def handle(self, conn):
        keepalive = super().handle(conn)
        # True only after a served HTTP/1 request whose connection stays open (gunicorn
        # returns False or its own "no data yet" marker otherwise).
        while keepalive is True and self._next_request_arrived(conn):
            keepalive = super().handle(conn)
        return keepalive

    def _others_wait(self) -> bool:
        """Whether a connection waits in the pool's queue for a free thread. The executor
        starts a new thread for new work while it has fewer than ``threads``, so work queues
        only when every thread is taken. An executor without the queue: never linger."""
        queue = getattr(self.tpool, "_work_queue", None)
        return queue is None or not queue.empty()

    def _next_request_arrived(self, conn) -> bool:
        """Wait (at most ``keepalive_linger``) for ``conn``'s next request; False when this
        thread should hand the connection back to the main thread instead."""
        if not self.alive or self._others_wait():
            return False
        if conn.parser.unreader.buf.getvalue():
            return True  # read ahead with the previous request: nothing to wait for
        sock = conn.sock
        if isinstance(sock, ssl.SSLSocket) and sock.pending():
            return True  # decrypted and buffered in the TLS layer: poll would not see it
        poller = select.poll()
        poller.register(sock, select.POLLIN)
        deadline = time.monotonic() + self.keepalive_linger
        while True:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                return False
            if poller.poll(min(remaining, self.linger_slice) * 1000):
                # Readable: the next request, or the peer closed (then the next handle()
                # reads the end and closes, as gunicorn would have).
                return self.alive
            if not self.alive or self._others_wait():
                return False
