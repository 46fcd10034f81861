"""The machine probes that run without services (the round trip between two processes)."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from glancebench import machine, report  # noqa: E402


def test_round_trip_times_a_real_echo_process_and_reaps_it():
    probe = machine.round_trip(500)
    assert set(probe) == {"wall_us", "cpu_us", "system_share"}
    assert probe["wall_us"] > 0 and probe["cpu_us"] > 0
    assert 0 < probe["system_share"] <= 1  # sends and receives are system calls
    with pytest.raises(ChildProcessError):  # the echo process is gone, not a zombie
        os.waitpid(-1, os.WNOHANG)


def test_round_trip_line_names_both_probes():
    line = report.round_trip_line(
        [
            {"wall_us": 61.6, "cpu_us": 49.5, "system_share": 0.84},
            {"wall_us": 30.2, "cpu_us": 25.0, "system_share": 0.9},
        ]
    )
    assert line.endswith("62 us wall, 50 us CPU (84% system); 30 us wall, 25 us CPU (90% system)")
