"""common.after_worker_exit: the master's recovery child after worker exits (real forks)."""

from __future__ import annotations

import os
import signal
import time
from pathlib import Path

from glance_service.common.after_worker_exit import AfterWorkerExit


def _settle(runner: AfterWorkerExit, timeout: float = 10.0) -> None:
    """Poll as the arbiter's loop does until nothing runs and nothing is due."""
    deadline = time.monotonic() + timeout
    while True:
        runner.poll()
        if not runner.running:
            return
        assert time.monotonic() < deadline, "the child did not finish"
        time.sleep(0.01)


def _recording(path: Path, result: bool = True):
    def task() -> bool:
        with open(path, "a") as out:
            out.write(f"{os.getpid()}\n")
        return result

    return task


def test_nothing_runs_until_a_worker_exits(tmp_path):
    runner = AfterWorkerExit(_recording(tmp_path / "runs"), "test")
    runner.poll()
    assert runner.runs == 0 and not (tmp_path / "runs").exists()


def test_one_exit_one_run_in_a_child(tmp_path):
    runner = AfterWorkerExit(_recording(tmp_path / "runs"), "test")
    runner.worker_exited(None, None)
    _settle(runner)
    runner.poll()
    pids = (tmp_path / "runs").read_text().split()
    assert runner.runs == 1 and len(pids) == 1 and int(pids[0]) != os.getpid()


def test_exits_during_a_run_ask_for_one_more_run_after_it(tmp_path):
    started, release = tmp_path / "started", tmp_path / "release"

    def slow() -> bool:
        started.touch()
        while not release.exists():
            time.sleep(0.01)
        return _recording(tmp_path / "runs")()

    runner = AfterWorkerExit(slow, "test")
    runner.worker_exited(None, None)
    runner.poll()
    while not started.exists():
        time.sleep(0.01)
    for _ in range(3):  # three more workers exit while the first run is under way
        runner.worker_exited(None, None)
        runner.poll()
    assert runner.runs == 1  # never two children at once
    release.touch()
    _settle(runner)
    _settle(runner)
    assert runner.runs == 2
    assert len((tmp_path / "runs").read_text().split()) == 2


def test_a_failed_run_is_tried_again_after_the_retry_interval(tmp_path):
    now = [100.0]
    runner = AfterWorkerExit(
        _recording(tmp_path / "runs", result=False), "test", retry_seconds=30, clock=lambda: now[0]
    )
    runner.worker_exited(None, None)
    _settle(runner)
    runner.poll()
    assert runner.runs == 1
    now[0] += 29
    runner.poll()
    assert runner.runs == 1
    now[0] += 2
    _settle(runner)
    assert runner.runs == 2


def test_a_child_that_dies_without_answering_counts_as_failed(tmp_path):
    now = [0.0]
    runner = AfterWorkerExit(
        lambda: os.kill(os.getpid(), signal.SIGKILL), "test", retry_seconds=5, clock=lambda: now[0]
    )
    runner.worker_exited(None, None)
    _settle(runner)
    now[0] += 5
    _settle(runner)
    assert runner.runs == 2


def test_the_child_stops_on_sigterm_as_a_plain_process(tmp_path):
    # The arbiter's handlers only queue signals for its loop: a child keeping them would
    # outlive a stop of the service.
    survived = tmp_path / "survived"

    def task() -> bool:
        os.kill(os.getpid(), signal.SIGTERM)
        time.sleep(0.5)
        survived.touch()
        return True

    signal.signal(signal.SIGTERM, lambda *_: None)  # as the arbiter's handler: ignores it here
    try:
        runner = AfterWorkerExit(task, "test")
        runner.worker_exited(None, None)
        _settle(runner)
    finally:
        signal.signal(signal.SIGTERM, signal.SIG_DFL)
    assert runner.runs == 1 and not survived.exists()
