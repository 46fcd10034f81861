"""A consumer thread fed through a bounded queue: the building block of the upload path.

The upload reads a buffer from the client once and hands the same (immutable) ``bytes`` to
several consumers: the md5 hasher, the sha512 hasher and the file writer. Each runs in its
own thread because hashlib and ``os.write`` release the GIL on large buffers, so the three
overlap with each other and with the next ``recv``. The queues are bounded, so memory stays
at ``depth`` buffers per consumer whatever the image size, and a slow consumer (the disk)
slows the reader down instead of piling data up.

Small inputs never start a thread: until a buffer of ``inline_below`` bytes or more arrives,
``put`` consumes in the caller's thread (a zero-byte or tiny image costs no thread start).
"""

from __future__ import annotations

import queue
import threading
from collections.abc import Callable

_STOP = None


class Worker:
    def __init__(
        self, name: str, consume: Callable[[bytes], None], depth: int = 4, inline_below: int = 256 * 1024
    ):
        self._name = name
        self._consume = consume
        self._depth = depth
        self._inline_below = inline_below
        self._queue: queue.Queue | None = None
        self._thread: threading.Thread | None = None
        self._error: BaseException | None = None
        self._aborted = False

    def put(self, buf: bytes) -> None:
        """Hand one buffer over; raises the consumer's error if it has failed."""
        if self._error is not None:
            raise self._error
        if self._thread is None:
            if len(buf) < self._inline_below:
                self._consume(buf)
                return
            self._start()
        self._queue.put(buf)

    def finish(self) -> None:
        """Wait until every buffer is consumed; re-raise the consumer's error."""
        self._stop()
        if self._error is not None:
            raise self._error

    def abort(self) -> None:
        """Stop without consuming what is still queued (errors are dropped)."""
        self._aborted = True
        self._stop()

    def _start(self) -> None:
        self._queue = queue.Queue(maxsize=self._depth)
        self._thread = threading.Thread(target=self._run, name=self._name, daemon=True)
        self._thread.start()

    def _stop(self) -> None:
        if self._thread is not None:
            self._queue.put(_STOP)
            self._thread.join()
            self._thread = None

    def _run(self) -> None:
        while True:
            buf = self._queue.get()
            if buf is _STOP:
                return
            # After an error or an abort keep draining, so that the producer never blocks on a
            # full queue; it sees the error at its next put().
            if self._error is None and not self._aborted:
                try:
                    self._consume(buf)
                except BaseException as exc:  # noqa: BLE001 - handed to the producer thread
                    self._error = exc
