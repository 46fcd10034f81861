"""Spreads a gunicorn service's connections evenly over its workers.

Every worker watches the one listening socket; the kernel wakes them all on a new connection
and whichever calls ``accept()`` first takes it. Kept-alive connections then stay where they
landed for their whole life, and the race is not fair: 16 connections opened one after the
other landed 3/13 to 6/10 on two idle workers, and 16 opened at once sometimes all on one. On
the bench's 16-client GET run that is half the throughput (all on one worker: 1395 req/s,
evenly spread: 2900-3300; issue 17, session 14): one worker's GIL is one core. The same holds
for HAProxy's reused backend connections and for glance-api's pooled connections to
glance-registry.

So each worker publishes how many connections it holds in a table the master's workers share
(an anonymous shared mapping made by the master before it forks them), and a worker that holds
more than the least loaded of the others stands back: it stops watching the listening socket
for ``DEFER`` seconds, long enough for the other worker, woken by the same connection, to
accept it. After the deferral it takes the connection if it still waits, so a stuck or dying worker delays
a new connection by ``DEFER`` at most and never starves it.
"""

from __future__ import annotations

import mmap
import time
from collections.abc import Callable

# How long a busier worker leaves a new connection to the others: CPython's GIL switch
# interval (5 ms), the longest a worker whose other threads hold the GIL takes to run its
# accept(). 2 ms lost the race on a loaded machine (load 10 on 2 cores). The connection waits
# this long only when no other worker takes it (the other one stuck).
DEFER = 0.005
# More workers than this are not balanced (the extra ones accept as gunicorn's do).
SLOTS = 64
_FREE = -1
# A worker still booting or already stopping: it takes no connection, so nobody leaves one to it.
NOT_ACCEPTING = 2**31 - 1


class ConnectionTable:
    """Connections held per worker slot, in memory shared with the workers forked after it
    was made. The master hands out slots (``claim``) and frees those of workers that are gone
    (``keep_only``); each worker writes its own slot and reads the others'. An int slot is
    written and read whole, so readers never see a torn value; a value a moment old only
    makes one accept less even."""

    def __init__(self, slots: int = SLOTS):
        self._map = mmap.mmap(-1, slots * 4)  # anonymous and MAP_SHARED: forked children share it
        self._counts = memoryview(self._map).cast("i")
        for slot in range(slots):
            self._counts[slot] = _FREE

    def claim(self) -> int | None:
        """A free slot for a worker about to be forked (the master), not accepting until the
        worker's loop runs; None when all are taken."""
        for slot, value in enumerate(self._counts):
            if value == _FREE:
                self._counts[slot] = NOT_ACCEPTING
                return slot
        return None

    def keep_only(self, slots: set) -> None:
        """Frees every slot not in ``slots`` (the master, with its live workers' slots)."""
        for slot, value in enumerate(self._counts):
            if value != _FREE and slot not in slots:
                self._counts[slot] = _FREE

    def publish(self, slot: int, held: int) -> None:
        self._counts[slot] = held

    def count(self, slot: int) -> int | None:
        value = self._counts[slot]
        return None if value == _FREE else value

    def least_other(self, slot: int) -> int | None:
        """The fewest connections any other accepting worker holds; None when there is none."""
        others = [v for s, v in enumerate(self._counts) if v not in (_FREE, NOT_ACCEPTING) and s != slot]
        return min(others) if others else None


class AcceptGate:
    """One worker's side: whether to accept a connection now, and when to watch again."""

    def __init__(
        self,
        table: ConnectionTable | None,
        slot: int | None,
        defer: float = DEFER,
        clock: Callable[[], float] = time.monotonic,
    ):
        self._table = table if slot is not None else None
        self._slot = slot
        self._defer = defer
        self._clock = clock
        self._resume_at: float | None = None
        self._grace_until = 0.0

    def publish(self, held: int) -> None:
        """``held`` connections, or ``NOT_ACCEPTING`` once the worker stops."""
        if self._table is not None:
            self._table.publish(self._slot, held)

    def should_accept(self, held: int) -> bool:
        """False: stand back (``resume_in`` says for how long), another worker holds fewer."""
        if self._table is None:
            return True
        if self._grace_until:
            # One connection that waited through the deferral, then the spread again.
            waited, self._grace_until = self._clock() < self._grace_until, 0.0
            if waited:
                return True
        least = self._table.least_other(self._slot)
        if least is None or held <= least:
            return True
        self._resume_at = self._clock() + self._defer
        return False

    @property
    def deferring(self) -> bool:
        return self._resume_at is not None

    def resume_in(self) -> float:
        """Seconds until the worker watches the listening socket again (0: now)."""
        if self._resume_at is None:
            return 0.0
        return max(0.0, self._resume_at - self._clock())

    def resumed(self) -> None:
        """The worker watches again: the connection that waited through the deferral (if no
        other worker took it meanwhile) is accepted."""
        self._resume_at = None
        self._grace_until = self._clock() + self._defer
