"""Integration tests of the rbd and s3 stores against a real Ceph 16 cluster (tests/fixtures/ceph.py).

One cluster per session; one image service per backend, single-store, configured with
glance_store's own option names. Skipped, with the reason, when Ceph is not installed or the
cluster does not come up.
"""

from __future__ import annotations

import os
from collections.abc import Iterator

import pytest

from tests.fixtures.ceph import CephCluster, CephStartError, bindings_dir, missing_binaries, start_ceph
from tests.fixtures.glance_procs import GlanceProcs, start_glance
from tests.integration.backends.helpers import Client


@pytest.fixture(scope="session")
def ceph(tmp_path_factory) -> Iterator[CephCluster]:
    missing = missing_binaries()
    if missing:
        pytest.skip(f"Ceph is not installed ({', '.join(missing)}): scripts/host-deps.sh installs it")
    try:
        cluster = start_ceph(tmp_path_factory.mktemp("ceph"))
    except CephStartError as exc:
        pytest.skip(f"the Ceph test cluster did not start: {exc}")
    yield cluster
    cluster.stop()


def _glance_on(ceph: CephCluster, kind: str, workdir) -> GlanceProcs:
    pybind = bindings_dir(ceph.workdir)
    if pybind is None:
        pytest.skip("python3-rbd/python3-rados are not installed (scripts/host-deps.sh)")
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


def pytest_terminal_summary(terminalreporter):
    from tests.integration.backends.helpers import FIGURES

    if FIGURES:
        terminalreporter.section("Ceph backends: throughput seen by the client")
        for backend, what, mbps in FIGURES:
            terminalreporter.write_line(f"{backend:4} {what:24} {mbps:8.1f} MB/s")
