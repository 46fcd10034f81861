"""md5 (``checksum``) and sha512 (``os_hash_value``) of a stream, computed in parallel.

Measured on the target machine: md5 alone 780 MiB/s, sha512 alone 790 MiB/s, both in one
thread 395 MiB/s, both in two threads 780 MiB/s. hashlib releases the GIL for buffers above
2 KiB, so one thread per algorithm doubles the rate on two cores.
"""

from __future__ import annotations

import hashlib

from glance_service.store.pipeline import Worker

HASH_ALGO = "sha512"


class ParallelHasher:
    """Feed buffers with ``update``; ``hexdigests()`` returns ``(md5, <algo>)`` hex digests."""

    def __init__(self, algo: str = HASH_ALGO, depth: int = 4):
        self._md5 = hashlib.md5(usedforsecurity=False)
        self._sha = hashlib.new(algo)
        self._workers = [
            Worker("hash-md5", self._md5.update, depth),
            Worker("hash-" + algo, self._sha.update, depth),
        ]

    def update(self, buf: bytes) -> None:
        for worker in self._workers:
            worker.put(buf)

    def hexdigests(self) -> tuple[str, str]:
        for worker in self._workers:
            worker.finish()
        return self._md5.hexdigest(), self._sha.hexdigest()

    def abort(self) -> None:
        for worker in self._workers:
            worker.abort()
