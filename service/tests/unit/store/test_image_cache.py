"""The on-disk image cache: verified fills, no partial entries, LRU pruning, claims, cleaning."""

from __future__ import annotations

import hashlib
import os
import subprocess
import sys
import uuid

import pytest

from glance_service.store import image_cache
from glance_service.store.image_cache import ImageCache
from glance_service.store.source import DataSource


def image(data: bytes, **extra) -> dict:
    return {
        "id": str(uuid.uuid4()),
        "size": len(data),
        "checksum": hashlib.md5(data).hexdigest(),
        "os_hash_algo": "sha512",
        "os_hash_value": hashlib.sha512(data).hexdigest(),
        **extra,
    }


@pytest.fixture
def cache(tmp_path) -> ImageCache:
    return ImageCache(str(tmp_path / "cache"), max_size=1000, stall_time=3600)


def fill(cache: ImageCache, img: dict, data: bytes) -> bool:
    writer = cache.writer(img)
    assert writer is not None
    writer.write(data[:10])
    writer.write(data[10:])
    return writer.commit()


def test_a_verified_fill_is_served_with_a_hit(cache):
    data = os.urandom(300)
    img = image(data)
    assert fill(cache, img, data)
    source, total, first = cache.serve(img["id"], None, None)
    assert (total, first, source.size) == (300, 0, 300) and source.fileobj is not None
    assert b"".join(source) == data
    source.close()
    source, total, first = cache.serve(img["id"], (10, 19), lambda wanted, total: (10, 10))
    assert b"".join(source) == data[10:20]
    source.close()
    [entry] = cache.cached()
    assert entry["image_id"] == img["id"] and entry["hits"] == 2 and entry["size"] == 300
    assert os.listdir(cache.incomplete) == []


@pytest.mark.parametrize("damage", ["short", "other-bytes"])
def test_a_fill_that_does_not_match_the_image_is_dropped(cache, damage):
    data = os.urandom(300)
    img = image(data)
    wrong = data[:200] if damage == "short" else os.urandom(300)
    assert not fill(cache, img, wrong)
    assert cache.serve(img["id"], None, None) is None
    assert cache.cached() == [] and os.listdir(cache.incomplete) == []


def test_md5_checks_an_image_without_os_hash(cache):
    data = os.urandom(100)
    img = image(data, os_hash_algo=None, os_hash_value=None)
    assert fill(cache, img, data)


def test_no_writer_without_a_hash_when_too_large_or_already_busy(cache):
    data = os.urandom(100)
    assert cache.writer(image(data, checksum=None, os_hash_value=None)) is None
    assert cache.writer(image(os.urandom(1001))) is None
    img = image(data)
    first = cache.writer(img)
    assert first is not None and cache.writer(img) is None  # one writer per entry
    first.abort()
    assert fill(cache, img, data)
    assert cache.writer(img) is None  # cached already


def test_a_tee_caches_only_a_complete_stream(cache):
    data = os.urandom(400)
    img = image(data)
    closed = []
    source = DataSource(400, 400, chunks=iter([data[:200], data[200:]]), on_close=lambda: closed.append(1))
    tee = cache.tee(img, source)
    it = iter(tee)
    next(it)
    tee.close()  # the client went away after the first chunk
    assert closed and cache.cached() == [] and os.listdir(cache.incomplete) == []

    tee = cache.tee(img, DataSource(400, 400, chunks=iter([data[:200], data[200:]])))
    assert b"".join(tee) == data
    assert [e["image_id"] for e in cache.cached()] == [img["id"]]


def test_prune_removes_least_recently_used_first(cache):
    images = [(image(d), d) for d in (os.urandom(400), os.urandom(400))]
    for img, data in images:
        assert fill(cache, img, data)
    # Reading the first makes the second the least recently used.
    cache.serve(images[0][0]["id"], None, None)[0].close()
    third = os.urandom(400)
    assert fill(cache, image(third), third)  # 1200 > 1000: the fill prunes
    left = {e["image_id"] for e in cache.cached()}
    assert images[1][0]["id"] not in left and images[0][0]["id"] in left
    assert cache.prune() == (0, 0)


def test_rows_follow_the_files(cache):
    data = os.urandom(50)
    img = image(data)
    assert fill(cache, img, data)
    os.unlink(cache.path(img["id"]))
    stray = str(uuid.uuid4())
    with open(cache.path(stray), "wb") as f:
        f.write(b"x" * 70)
    assert [(e["image_id"], e["size"]) for e in cache.cached()] == [(stray, 70)]


def test_queue_and_claims(cache):
    a, b = str(uuid.uuid4()), str(uuid.uuid4())
    assert cache.queue(a) and cache.queue(b) and not cache.queue(a)
    assert cache.queued() == [a, b]
    me = image_cache.process_marker()
    assert cache.claim(me) == a
    assert cache.claim(me) == b
    assert cache.claim(me) is None  # both held by a live process
    # A dead process's claim is taken over.
    dead = subprocess.run(
        [sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True
    )
    with cache._db() as db:
        db.execute(
            "UPDATE queued_images SET claimed_by = ? WHERE image_id = ?", (f"{dead.stdout.strip()}:1", a)
        )
    assert cache.claim(me) == a
    assert cache.delete_all_queued() == 2 and cache.queued() == []


def test_clean_removes_dead_and_stalled_incomplete_entries(cache):
    dead = os.path.join(cache.incomplete, str(uuid.uuid4()))
    with open(dead, "wb") as f:
        f.write(b"partial")
    data = os.urandom(10)
    live = cache.writer(image(data))
    assert cache.clean() == 1 and not os.path.exists(dead)
    assert os.path.exists(live.path)  # held by a live writer
    os.utime(live.path, (1, 1))
    assert cache.clean() == 1  # stalled past image_cache_stall_time
    live.abort()


def test_ids_that_are_not_image_ids_never_name_files(cache):
    with pytest.raises(Exception, match="Invalid image id"):
        cache.path("../etc")
    assert cache.serve("../etc", None, None) is None
    assert not image_cache.valid_id("a/b") and image_cache.valid_id(str(uuid.uuid4()))
