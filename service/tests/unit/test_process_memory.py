"""The systemd units and the test fixture cap glibc's malloc arenas (MALLOC_ARENA_MAX).

Without the cap each of a worker's threads that finds the allocator busy gets an arena of its
own and keeps what it freed there: after the benchmark's concurrent uploads and lists the
workers held tens of MiB more than at start (bench/RESULTS.md)."""

from __future__ import annotations

import configparser
import gc
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "fixtures"))

import glance_procs  # noqa: E402

from glance_service.common import wsgi_server  # noqa: E402


@pytest.mark.parametrize("unit", ["glance-api.service.j2", "glance-registry.service.j2"])
def test_units_cap_malloc_arenas(unit: str) -> None:
    parser = configparser.ConfigParser(interpolation=None, strict=False)
    parser.read_string(glance_procs.render(unit, {"glance_venv": "/opt/glance"}))
    assert parser["Service"]["Environment"] == "MALLOC_ARENA_MAX=2"


class _Trims:
    def __init__(self) -> None:
        self.calls: list[int] = []

    def __call__(self, pad: int) -> int:
        self.calls.append(pad)
        return 1


def test_idle_worker_is_trimmed_once() -> None:
    trims = _Trims()
    trimmer = wsgi_server.IdleMemoryTrimmer(2.0, trims)
    assert not trimmer.trim_if_idle()  # nothing served yet: nothing to give back
    trimmer.request_started()
    trimmer.request_finished()
    assert trimmer.trim_if_idle()
    assert not trimmer.trim_if_idle()  # still idle, nothing served since: no second trim
    assert trims.calls == [0]


def test_busy_worker_is_not_trimmed() -> None:
    trims = _Trims()
    trimmer = wsgi_server.IdleMemoryTrimmer(2.0, trims)
    trimmer.request_started()
    trimmer.request_started()
    trimmer.request_finished()
    assert not trimmer.trim_if_idle()  # one request still in flight
    trimmer.request_finished()
    assert trimmer.trim_if_idle()
    assert trims.calls == [0]


@pytest.mark.parametrize(("interval", "trim"), [(0.0, _Trims()), (2.0, None)])
def test_disabled_trimmer_installs_no_hooks(interval: float, trim) -> None:
    trimmer = wsgi_server.IdleMemoryTrimmer(interval, trim)
    assert not trimmer.enabled
    assert trimmer.gunicorn_hooks() == {}


def test_gunicorn_hooks_count_requests() -> None:
    trims = _Trims()
    trimmer = wsgi_server.IdleMemoryTrimmer(2.0, trims)
    hooks = trimmer.gunicorn_hooks()
    hooks["pre_request"](None, None)
    assert not trimmer.trim_if_idle()
    hooks["post_request"](None, None, {}, None)
    assert trimmer.trim_if_idle()
    assert trims.calls == [0]


def test_glibc_malloc_trim_is_found() -> None:
    # Debian's glibc, where the services run: the trimmer is on by default there.
    trim = wsgi_server._libc_malloc_trim()
    assert trim is not None
    assert trim(0) in (0, 1)


@pytest.mark.parametrize("trim_interval", [0.0, 2.0])
def test_each_worker_freezes_what_it_built_before_its_first_request(trim_interval):
    """gc.freeze() once the app is built: the full collections that every few thousand
    requests' allocations trigger no longer walk the modules, config and app objects (25-28%
    of the CPU of a 1000-image listing, issue 17); with or without the memory trimmer."""
    hooks = wsgi_server.worker_hooks(trim_interval, lambda pad: 0)
    before = gc.get_freeze_count()
    try:
        hooks["post_worker_init"](None)
        assert gc.get_freeze_count() > before
    finally:
        gc.unfreeze()
