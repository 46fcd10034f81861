import hashlib
import os
import threading

import pytest

from glance_service.store.hashing import ParallelHasher
from glance_service.store.pipeline import Worker

SIZES = [0, 1, 65535, 65536, 65537, 3 * 1024 * 1024 + 7]


@pytest.mark.parametrize("size", SIZES)
@pytest.mark.parametrize("piece", [1000, 65536, 1024 * 1024])
def test_parallel_hashes_match_hashlib(size, piece):
    data = os.urandom(size)
    hasher = ParallelHasher()
    for i in range(0, size, piece):
        hasher.update(data[i : i + piece])
    md5, sha512 = hasher.hexdigests()
    assert md5 == hashlib.md5(data).hexdigest()
    assert sha512 == hashlib.sha512(data).hexdigest()


def test_small_then_large_buffers_keep_their_order():
    # The first buffers are consumed inline, later ones in the thread: the digest proves order.
    parts = [os.urandom(10), os.urandom(300 * 1024), os.urandom(5), os.urandom(2 * 1024 * 1024)]
    hasher = ParallelHasher()
    for part in parts:
        hasher.update(part)
    assert hasher.hexdigests()[1] == hashlib.sha512(b"".join(parts)).hexdigest()


def test_worker_uses_a_thread_only_for_large_buffers():
    seen = []
    worker = Worker("t", lambda buf: seen.append(threading.current_thread().name))
    worker.put(b"x" * 10)
    worker.put(b"x" * (1024 * 1024))
    worker.finish()
    assert seen == [threading.current_thread().name, "t"]


def test_worker_error_reaches_the_producer_without_deadlock():
    def fail(buf):
        raise OSError("disk on fire")

    worker = Worker("t", fail, depth=1)
    big = b"x" * (1024 * 1024)
    with pytest.raises(OSError, match="disk on fire"):
        # The producer must see the error at a later put (or at finish), never block forever.
        for _ in range(50):
            worker.put(big)
        worker.finish()


def test_worker_abort_drops_queued_buffers():
    consumed = []
    gate = threading.Event()

    def slow(buf):
        gate.wait()
        consumed.append(len(buf))

    worker = Worker("t", slow, depth=8)
    for _ in range(4):
        worker.put(b"x" * (1024 * 1024))
    gate.set()
    worker.abort()
    assert len(consumed) <= 1
