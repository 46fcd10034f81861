import errno
import fcntl
import hashlib
import io
import os
import tracemalloc

import pytest

from glance_service import exceptions
from glance_service.store import filesystem
from glance_service.store.filesystem import FileStore

IMAGE_ID = "5f2c8d9e-8a41-4a7e-9d0e-6c1b2a3f4e5d"
SIZES = [0, 1, 65535, 65536, 65537, 4 * 1024 * 1024 + 3]


class ChunkReader:
    """A request body that hands out at most ``piece`` bytes per read, like a socket."""

    def __init__(self, data: bytes, piece: int = 65536, fail_after: int | None = None):
        self._buf = io.BytesIO(data)
        self._piece = piece
        self._fail_after = fail_after

    def read(self, n):
        if self._fail_after is not None and self._buf.tell() >= self._fail_after:
            raise ConnectionResetError("client went away")
        return self._buf.read(min(n, self._piece))


class PatternReader:
    """``size`` bytes generated on the fly (never held in memory)."""

    def __init__(self, size: int):
        self._left = size
        self._block = os.urandom(1024 * 1024)

    def read(self, n):
        n = min(n, self._left, len(self._block))
        self._left -= n
        return self._block[:n]


@pytest.fixture
def store(tmp_path):
    return FileStore(str(tmp_path / "images"))


def listing(store):
    return sorted(os.listdir(store.datadirs[0]))


@pytest.mark.parametrize("size", SIZES)
def test_add_writes_where_glance_store_would_with_exact_hashes(store, size):
    data = os.urandom(size)
    stored = store.add(IMAGE_ID, ChunkReader(data), expected_size=None, size_cap=1 << 40)
    path = os.path.join(store.datadirs[0], IMAGE_ID)
    assert stored.url == "file://" + path
    assert stored.size == size
    assert stored.checksum == hashlib.md5(data).hexdigest()
    assert stored.hash_algo == "sha512"
    assert stored.hash_value == hashlib.sha512(data).hexdigest()
    with open(path, "rb") as f:
        assert f.read() == data
    assert listing(store) == [IMAGE_ID]  # no partial file left


def test_add_with_expected_size(store):
    data = os.urandom(70000)
    stored = store.add(IMAGE_ID, ChunkReader(data), expected_size=70000, size_cap=1 << 40)
    assert stored.size == 70000


@pytest.mark.parametrize("expected", [69999, 70001, 0])
def test_size_mismatch_is_bad_request_and_leaves_nothing(store, expected):
    with pytest.raises(exceptions.BadRequest):
        store.add(IMAGE_ID, ChunkReader(os.urandom(70000)), expected_size=expected, size_cap=1 << 40)
    assert listing(store) == []


def test_size_cap_leaves_nothing(store):
    with pytest.raises(exceptions.ImageSizeLimitExceeded):
        store.add(IMAGE_ID, PatternReader(3 * 1024 * 1024), expected_size=None, size_cap=2 * 1024 * 1024)
    assert listing(store) == []


def test_declared_size_over_cap_is_refused_before_reading(store):
    reader = ChunkReader(b"abc")
    with pytest.raises(exceptions.ImageSizeLimitExceeded):
        store.add(IMAGE_ID, reader, expected_size=10, size_cap=9)
    assert reader._buf.tell() == 0


def test_exact_cap_is_allowed(store):
    assert store.add(IMAGE_ID, ChunkReader(b"x" * 10), expected_size=None, size_cap=10).size == 10


@pytest.mark.parametrize("fail_after", [0, 65536, 2 * 1024 * 1024])
def test_client_vanishing_mid_stream_leaves_nothing(store, fail_after):
    reader = ChunkReader(os.urandom(3 * 1024 * 1024), piece=1024 * 1024, fail_after=fail_after)
    with pytest.raises(ConnectionResetError):
        store.add(IMAGE_ID, reader, expected_size=None, size_cap=1 << 40)
    assert listing(store) == []


def test_existing_data_is_never_replaced(store):
    first = store.add(IMAGE_ID, ChunkReader(b"first"), expected_size=None, size_cap=100)
    with pytest.raises(exceptions.Duplicate):
        store.add(IMAGE_ID, ChunkReader(b"second"), expected_size=None, size_cap=100)
    with open(filesystem.path_from_url(first.url), "rb") as f:
        assert f.read() == b"first"
    assert listing(store) == [IMAGE_ID]


@pytest.mark.parametrize("bad_id", ["../etc", ".hidden", "a/b", ""])
def test_ids_that_are_not_file_names_are_refused(store, bad_id):
    with pytest.raises(exceptions.BadRequest):
        store.add(bad_id, ChunkReader(b"x"), expected_size=None, size_cap=100)


def test_write_error_maps_to_storage_full_and_leaves_nothing(store, monkeypatch):
    real_write = os.write

    def full_after_a_while(fd, buf):
        if os.fstat(fd).st_size > 2 * 1024 * 1024:
            raise OSError(errno.ENOSPC, "No space left on device")
        return real_write(fd, buf)

    monkeypatch.setattr(filesystem.os, "write", full_after_a_while)
    with pytest.raises(exceptions.StorageFull):
        store.add(IMAGE_ID, PatternReader(8 * 1024 * 1024), expected_size=None, size_cap=1 << 40)
    assert listing(store) == []


def test_dev_full_is_storage_full():
    fd = os.open("/dev/full", os.O_WRONLY)
    try:
        with pytest.raises(exceptions.StorageFull):
            filesystem._FileWriter(fd, "/dev/full").write(b"x" * 4096)
    finally:
        os.close(fd)


def test_memory_stays_flat_for_a_large_upload(store):
    size = 96 * 1024 * 1024
    tracemalloc.start()
    try:
        stored = store.add(IMAGE_ID, PatternReader(size), expected_size=size, size_cap=1 << 40)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert stored.size == size
    # a few 1 MiB buffers in the queues, never the image
    assert peak < 16 * 1024 * 1024


# -- reads ------------------------------------------------------------------------------------
def test_open_whole_and_ranges(store):
    data = os.urandom(200000)
    url = store.add(IMAGE_ID, ChunkReader(data), expected_size=None, size_cap=1 << 40).url
    src = store.open(url)
    assert (src.size, src.total_size) == (200000, 200000)
    assert b"".join(src) == data
    src.close()
    src = store.open(url, 1000, 5000)
    assert src.size == 5000
    # positioned for sendfile: the descriptor's offset is the range start
    assert os.lseek(src.fileobj.fileno(), 0, os.SEEK_CUR) == 1000
    assert b"".join(src) == data[1000:6000]
    src.close()
    src = store.open(url, 199999)
    assert b"".join(src) == data[-1:]
    src.close()


@pytest.mark.parametrize(("offset", "length"), [(200001, None), (0, 200001), (199990, 11), (-1, None)])
def test_unsatisfiable_ranges(store, offset, length):
    url = store.add(IMAGE_ID, ChunkReader(b"y" * 200000), expected_size=None, size_cap=1 << 40).url
    with pytest.raises(exceptions.RangeNotSatisfiable):
        store.open(url, offset, length)


def test_open_missing_is_not_found(store):
    with pytest.raises(exceptions.NotFound):
        store.open("file://" + os.path.join(store.datadirs[0], IMAGE_ID))


def test_delete_is_idempotent(store):
    url = store.add(IMAGE_ID, ChunkReader(b"z"), expected_size=None, size_cap=100).url
    store.delete(url)
    store.delete(url)
    assert listing(store) == []


def test_locations_written_by_glance_store_are_readable(tmp_path):
    from glance_store._drivers import filesystem as gs_fs
    from oslo_config import cfg

    import glance_service.store as facade

    conf = cfg.ConfigOpts()
    facade.register_opts(conf)
    conf([], default_config_files=[])
    conf.set_override("filesystem_store_datadir", str(tmp_path / "gs"), group="glance_store")
    driver = gs_fs.Store(conf)
    driver.configure()
    data = os.urandom(100000)
    url, size, checksum, *_ = driver.add(IMAGE_ID, io.BytesIO(data), len(data), "sha512")
    src = FileStore(str(tmp_path / "gs")).open(url, 10, 20)
    assert b"".join(src) == data[10:30]
    src.close()


# -- partial files ------------------------------------------------------------------------------
def test_cleanup_removes_only_partials_no_one_holds(store):
    datadir = store.datadirs[0]
    dead = os.path.join(datadir, f".{IMAGE_ID}.partial-dead")
    live = os.path.join(datadir, ".aaaa.partial-live")
    with open(dead, "wb") as f:
        f.write(b"crashed")
    with open(os.path.join(datadir, IMAGE_ID), "wb") as f:
        f.write(b"complete image")
    holder = os.open(live, os.O_CREAT | os.O_WRONLY)
    fcntl.flock(holder, fcntl.LOCK_EX)
    try:
        assert store.cleanup_partial() == 1
        assert listing(store) == [".aaaa.partial-live", IMAGE_ID]
    finally:
        os.close(holder)
    assert store.cleanup_partial() == 1
    assert listing(store) == [IMAGE_ID]


def test_multiple_datadirs_by_priority(tmp_path):
    low, high = tmp_path / "low", tmp_path / "high"
    store = FileStore(datadirs=[f"{low}:1", f"{high}:50"])
    stored = store.add(IMAGE_ID, ChunkReader(b"data"), expected_size=None, size_cap=100)
    assert stored.url == f"file://{high}/{IMAGE_ID}"
