"""The RabbitMQ fixture follows tests/fixtures/availability.py: a broker that cannot start fails
the run under CI and is a skip elsewhere; a broker that exits at once is reported, not waited for."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.fixtures import rabbitmq


def test_missing_server_fails_under_ci(monkeypatch, tmp_path) -> None:
    monkeypatch.setattr(rabbitmq, "SERVER", Path("/nonexistent/rabbitmq-server"))
    monkeypatch.setenv("CI", "1")
    with pytest.raises(pytest.fail.Exception, match="rabbitmq-server is not installed"):
        rabbitmq.start_rabbitmq(tmp_path)
    monkeypatch.setenv("CI", "")
    with pytest.raises(pytest.skip.Exception):
        rabbitmq.start_rabbitmq(tmp_path)


def test_a_server_that_exits_fails_under_ci_and_leaves_no_epmd(monkeypatch, tmp_path) -> None:
    fake = tmp_path / "rabbitmq-server"
    fake.write_text("#!/bin/sh\necho broken config >&2\nexit 3\n")
    fake.chmod(0o755)
    monkeypatch.setattr(rabbitmq, "SERVER", fake)
    monkeypatch.setenv("CI", "1")
    started = []
    real_popen = rabbitmq.subprocess.Popen

    def popen(*args, **kwargs):
        proc = real_popen(*args, **kwargs)
        started.append(proc)
        return proc

    monkeypatch.setattr(rabbitmq.subprocess, "Popen", popen)
    with pytest.raises(pytest.fail.Exception, match="exited with 3"):
        rabbitmq.start_rabbitmq(tmp_path / "broker")
    assert started and all(proc.poll() is not None for proc in started)  # epmd stopped too
