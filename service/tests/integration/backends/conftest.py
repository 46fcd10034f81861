"""Integration tests of the rbd and s3 stores against a real Ceph 16 cluster (tests/fixtures/ceph.py),
and of the swift store against a real Swift behind a real Keystone (tests/fixtures/swift.py).

One cluster of each per session; one image service per backend, configured with glance_store's
own option names. When Ceph or Swift is not installed or does not come up, the run fails under
CI and the tests skip elsewhere, with the reason (``tests/fixtures/availability.py``).
"""

from __future__ import annotations

import os
from collections.abc import Iterator

import pytest

from tests.fixtures.availability import unavailable
from tests.fixtures.ceph import CephCluster, CephStartError, bindings_dir, missing_binaries, start_ceph
from tests.fixtures.glance_procs import GlanceProcs, free_port, start_glance
from tests.fixtures.keystone import start_keystone
from tests.fixtures.swift import SwiftCluster, SwiftStartError, start_swift
from tests.fixtures.swift import missing_binaries as swift_missing
from tests.integration.backends.helpers import Client

CEPH_PACKAGES = (
    "Debian packages ceph-mon ceph-mgr ceph-osd radosgw ceph-common python3-rbd python3-rados "
    "(make deps: scripts/host-deps.sh)"
)
SWIFT_PACKAGES = (
    "Debian packages swift swift-proxy swift-account swift-container swift-object "
    "python3-keystonemiddleware (make deps: scripts/host-deps.sh)"
)


@pytest.fixture(scope="session")
def ceph(tmp_path_factory) -> Iterator[CephCluster]:
    missing = missing_binaries()
    if missing:
        unavailable(f"Ceph is not installed (no {', '.join(missing)})", CEPH_PACKAGES)
    try:
        cluster = start_ceph(tmp_path_factory.mktemp("ceph"))
    except CephStartError as exc:
        unavailable(f"the Ceph test cluster did not start: {exc}", CEPH_PACKAGES)
    yield cluster
    cluster.stop()


def _glance_on(ceph: CephCluster, kind: str, workdir) -> GlanceProcs:
    pybind = bindings_dir(ceph.workdir)
    if pybind is None:
        unavailable("the rados/rbd Python bindings are not installed", CEPH_PACKAGES)
    saved = os.environ.get("PYTHONPATH")
    # The service's interpreter sees Debian's rados/rbd modules (and nothing else of the system's).
    os.environ["PYTHONPATH"] = os.pathsep.join(p for p in (str(pybind), saved) if p)
    try:
        return start_glance(workdir, extra_api={"glance_store": ceph.glance_store_options(kind)})
    finally:
        if saved is None:
            os.environ.pop("PYTHONPATH", None)
        else:
            os.environ["PYTHONPATH"] = saved


@pytest.fixture(scope="module")
def glance_rbd(ceph, tmp_path_factory) -> Iterator[GlanceProcs]:
    procs = _glance_on(ceph, "rbd", tmp_path_factory.mktemp("glance-rbd"))
    yield procs
    procs.stop()


@pytest.fixture(scope="module")
def glance_s3(ceph, tmp_path_factory) -> Iterator[GlanceProcs]:
    procs = _glance_on(ceph, "s3", tmp_path_factory.mktemp("glance-s3"))
    yield procs
    procs.stop()


@pytest.fixture
def rbd_client(glance_rbd) -> Client:
    return Client(glance_rbd)


@pytest.fixture
def s3_client(glance_s3) -> Client:
    return Client(glance_s3)


# Segmenting from 32 MB on, in 8 MB segments (glance_store's units are MB): a 64 MiB image is a
# large object of 9 segments, a few MiB one plain object.
SWIFT_LARGE = {"swift_store_large_object_size": 32, "swift_store_large_object_chunk_size": 8}


@pytest.fixture(scope="session")
def swift(tmp_path_factory) -> Iterator[SwiftCluster]:
    missing = swift_missing()
    if missing:
        unavailable(f"Swift is not installed (no {', '.join(missing)})", SWIFT_PACKAGES)
    # A Keystone of its own (SQLite): Swift's proxy validates the glance user's tokens with it.
    ks = start_keystone(tmp_path_factory.mktemp("swift-keystone"))
    try:
        try:
            cluster = start_swift(tmp_path_factory.mktemp("swift"), ks)
        except SwiftStartError as exc:
            unavailable(f"the Swift test cluster did not start: {exc}", SWIFT_PACKAGES)
        yield cluster
        cluster.stop()
    finally:
        ks.stop()


@pytest.fixture(scope="module")
def glance_swift(swift, tmp_path_factory) -> Iterator[GlanceProcs]:
    """Single store: ``[glance_store] stores/default_store`` and the swift_store_auth_address,
    swift_store_user and swift_store_key options."""
    options = {"stores": "file,http,swift", "default_store": "swift"}
    options.update(swift.glance_store_options(**SWIFT_LARGE))
    procs = start_glance(tmp_path_factory.mktemp("glance-swift"), extra_api={"glance_store": options})
    yield procs
    procs.stop()


@pytest.fixture(scope="module")
def glance_swift_multi(swift, tmp_path_factory) -> Iterator[GlanceProcs]:
    """Multi-store: ``objects:swift`` (default; credentials in a swift_store_config_file, so the
    locations are swift+config:// without them), ``local:file``, and three swift backends that
    cannot take data: ``broken`` (Keystone refuses its password), ``nocontainer`` (its container
    does not exist and swift_store_create_container_on_put is false) and ``unreachable`` (its
    auth address is a closed port)."""
    work = tmp_path_factory.mktemp("glance-swift-multi")
    refs = swift.write_reference_file(work / "glance-swift.conf", reference="ref1")
    objects = swift.glance_store_options(container="glance-multi", **SWIFT_LARGE)
    for key in ("swift_store_auth_address", "swift_store_user", "swift_store_key"):
        objects.pop(key)
    objects.update({"swift_store_config_file": str(refs), "default_swift_reference": "ref1"})
    broken = swift.glance_store_options(container="glance-broken", swift_store_key="not-the-password")
    nocontainer = swift.glance_store_options(
        container="glance-absent", swift_store_create_container_on_put="false"
    )
    unreachable = swift.glance_store_options(swift_store_auth_address=f"http://127.0.0.1:{free_port()}/v3")
    extra = {
        "DEFAULT": {
            "enabled_backends": "objects:swift,local:file,broken:swift,nocontainer:swift,unreachable:swift"
        },
        "glance_store": {"default_backend": "objects"},
        "objects": objects,
        "broken": broken,
        "nocontainer": nocontainer,
        "unreachable": unreachable,
        "local": {"filesystem_store_datadir": str(work / "local")},
        "os_glance_staging_store": {"filesystem_store_datadir": str(work / "staging")},
        "os_glance_tasks_store": {"filesystem_store_datadir": str(work / "tasks")},
    }
    procs = start_glance(work, extra_api=extra)
    yield procs
    procs.stop()


def pytest_terminal_summary(terminalreporter):
    from tests.integration.backends.helpers import FIGURES

    if FIGURES:
        terminalreporter.section("Object store backends: throughput seen by the client")
        for backend, what, mbps in FIGURES:
            terminalreporter.write_line(f"{backend:4} {what:24} {mbps:8.1f} MB/s")
