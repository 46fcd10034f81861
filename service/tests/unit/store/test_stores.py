import hashlib
import io
import os
import socket

import pytest
from oslo_config import cfg

from glance_service import exceptions
from glance_service.store import Stores, register_opts

IMAGE_ID = "0c7f3a6e-1d2b-4c5e-8f90-a1b2c3d4e5f6"


def make_conf(tmp_path, **overrides):
    conf = cfg.ConfigOpts()
    register_opts(conf)
    conf([], default_config_files=[])
    conf.set_override("filesystem_store_datadir", str(tmp_path / "images"), group="glance_store")
    for key, value in overrides.items():
        conf.set_override(key, value, group="glance_store")
    return conf


def closed_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_options_are_registered_at_import():
    import glance_service.store  # noqa: F401

    assert cfg.CONF.glance_store.default_store == "file"


def test_round_trip_through_the_facade(tmp_path):
    stores = Stores(make_conf(tmp_path))
    data = os.urandom(300000)
    stored = stores.add(IMAGE_ID, io.BytesIO(data), expected_size=len(data), size_cap=1 << 40)
    assert stored.url == f"file://{tmp_path}/images/{IMAGE_ID}"
    assert stored.hash_value == hashlib.sha512(data).hexdigest()
    src = stores.open(stored.url, 5, 10)
    assert b"".join(src) == data[5:15]
    src.close()
    stores.delete(stored.url)
    with pytest.raises(exceptions.NotFound):
        stores.open(stored.url)


def test_default_store_must_be_enabled(tmp_path):
    with pytest.raises(exceptions.GlanceServiceError):
        Stores(make_conf(tmp_path, stores=["http"], default_store="file"))


def test_http_store_is_read_only(tmp_path):
    stores = Stores(make_conf(tmp_path))
    with pytest.raises(exceptions.Gone):
        stores.add(IMAGE_ID, io.BytesIO(b"x"), expected_size=None, size_cap=10, store="http")


def test_unreachable_http_location_is_503(tmp_path):
    stores = Stores(make_conf(tmp_path))
    with pytest.raises(exceptions.StoreUnavailable):
        src = stores.open(f"http://127.0.0.1:{closed_port()}/image.raw")
        b"".join(src)


def test_discard_removes_unrecorded_data_and_partials(tmp_path):
    stores = Stores(make_conf(tmp_path))
    stores.add(IMAGE_ID, io.BytesIO(b"orphan"), expected_size=None, size_cap=100)
    partial = tmp_path / "images" / f".{IMAGE_ID}.partial-x"
    partial.write_bytes(b"half")
    stores.discard(IMAGE_ID)
    assert os.listdir(tmp_path / "images") == []


@pytest.fixture
def http_server(tmp_path):
    import functools
    import http.server
    import threading

    root = tmp_path / "www"
    root.mkdir()
    handler = functools.partial(http.server.SimpleHTTPRequestHandler, directory=str(root))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield root, f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()


def test_http_locations_are_read_through_glance_store(tmp_path, http_server):
    root, base = http_server
    data = os.urandom(200000)
    (root / "image.raw").write_bytes(data)
    stores = Stores(make_conf(tmp_path))
    src = stores.open(base + "/image.raw")
    assert src.size == len(data)
    assert b"".join(src) == data
    src.close()
    # the http store has no random access: the range is cut out of the stream
    src = stores.open(base + "/image.raw", 70000, 100)
    assert src.size == 100
    assert b"".join(src) == data[70000:70100]
    src.close()
    # data at an http location is not ours to delete
    stores.delete(base + "/image.raw")
    assert (root / "image.raw").exists()


def test_missing_http_location_is_not_found(tmp_path, http_server):
    _, base = http_server
    with pytest.raises(exceptions.NotFound):
        Stores(make_conf(tmp_path)).open(base + "/nothing.raw")


def test_single_store_unknown_kind_is_refused(tmp_path):
    with pytest.raises(exceptions.GlanceServiceError, match="nosuchkind"):
        Stores(make_conf(tmp_path, stores=["file", "nosuchkind"], default_store="file"))


def test_single_store_legacy_driver_names_still_load(tmp_path):
    stores = Stores(
        make_conf(tmp_path, stores=["glance.store.filesystem.Store", "file"], default_store="file")
    )
    assert stores.default_store == "file"


def test_single_store_runs_as_a_multi_store_of_its_kinds(tmp_path):
    # one code path: [glance_store] stores/default_store become backends named by their kind
    stores = Stores(make_conf(tmp_path, stores=["file", "http"], default_store="file"))
    assert stores.backends == {"file": "file", "http": "http"}
    assert stores.default_backend == "file"
    assert set(stores.file_stores) == {"file", "os_glance_staging_store"}
    # what the API shows of multi-store stays off: no enabled backends, no location "store"
    assert stores.enabled == {}
    stored = stores.add(IMAGE_ID, io.BytesIO(b"data"), expected_size=4, size_cap=100)
    assert stored.metadata == {}
    assert stores.store_for_url(stored.url) == "file"


def test_single_store_discard_reaches_every_kind(tmp_path):
    # the same discard as multi-store: every backend, the file one whether default or not
    (tmp_path / "images").mkdir()
    stores = Stores(make_conf(tmp_path, stores=["file", "http"], default_store="http"))
    (tmp_path / "images" / IMAGE_ID).write_bytes(b"orphan")
    stores.discard(IMAGE_ID)
    assert os.listdir(tmp_path / "images") == []
