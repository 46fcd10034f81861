"""This process's marker (common/process.py) is read from /proc once per process, not on
every upload: /proc/<pid>/stat of a process with dozens of threads sums every thread's
counters in the kernel (issue 17: it showed in the upload's profile)."""

from __future__ import annotations

from glance_service.common import process


def test_the_own_marker_reads_proc_once_per_process(monkeypatch):
    reads = []
    real = process.start_time

    def counting(pid):
        reads.append(pid)
        return real(pid)

    monkeypatch.setattr(process, "start_time", counting)
    monkeypatch.setattr(process, "_own", None, raising=False)
    first = process.local_marker()
    assert process.local_marker() == first and process.host_marker().endswith(":" + first)
    assert len(reads) == 1
    assert process.local_alive(first)
    # A forked worker has another pid: its own marker, read again.
    monkeypatch.setattr(process.os, "getpid", lambda: 1)
    assert process.local_marker().startswith("1:") and process.local_marker() != first
    assert reads[-1] == 1
