"""The shipped Prometheus alert rules (roles/glance/files/prometheus/, issue 18) are valid
(`promtool check rules`), and each alert fires on a synthetic series in the unit tests beside
them (`promtool test rules`). promtool comes with Debian's `prometheus` package (`make deps`);
without it these tests skip, and fail under CI=1."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parent.parent
RULES_DIR = ROOT / "roles" / "glance" / "files" / "prometheus"
RULES = RULES_DIR / "glance-alerts.yml"
UNIT_TESTS = RULES_DIR / "glance-alerts.test.yml"


@pytest.fixture(scope="module")
def promtool() -> str:
    path = shutil.which("promtool") or ("/usr/bin/promtool" if os.path.exists("/usr/bin/promtool") else None)
    if path is None:
        if os.environ.get("CI") == "1":
            pytest.fail("promtool is missing: install Debian's prometheus package (make deps)")
        pytest.skip("promtool is missing (Debian's prometheus package)")
    return path


def run(promtool: str, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run([promtool, *args], cwd=RULES_DIR, capture_output=True, text=True, timeout=120)


def test_promtool_checks_the_rules(promtool: str) -> None:
    done = run(promtool, "check", "rules", RULES.name)
    assert done.returncode == 0, done.stdout + done.stderr


def test_each_alert_fires_in_promtools_unit_tests(promtool: str) -> None:
    done = run(promtool, "test", "rules", UNIT_TESTS.name)
    assert done.returncode == 0, done.stdout + done.stderr


def test_every_alert_has_a_unit_test_where_it_fires() -> None:
    alerts = {
        rule["alert"] for group in yaml.safe_load(RULES.read_text())["groups"] for rule in group["rules"]
    }
    assert {"GlanceAPIDown", "GlanceAPIHigh5xxRate", "GlanceStoreErrors", "GlanceImagesStuckSaving",
            "GlanceImagesStuckImporting"} <= alerts  # fmt: skip
    firing = {
        case["alertname"]
        for test in yaml.safe_load(UNIT_TESTS.read_text())["tests"]
        for case in test.get("alert_rule_test", [])
        if case.get("exp_alerts")
    }
    assert alerts == firing


def test_a_broken_threshold_fails_the_unit_tests(promtool: str, tmp_path: Path) -> None:
    # The unit tests prove something: with the 5xx threshold at 50% the 20% series no longer fires.
    text = RULES.read_text().replace(") > 0.05", ") > 0.5")
    assert text != RULES.read_text()
    (tmp_path / RULES.name).write_text(text)
    shutil.copy(UNIT_TESTS, tmp_path / UNIT_TESTS.name)
    done = subprocess.run(
        [promtool, "test", "rules", UNIT_TESTS.name],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode != 0
    assert "GlanceAPIHigh5xxRate" in done.stdout + done.stderr


def test_the_readme_scrape_jobs_are_the_jobs_the_rules_name() -> None:
    readme = (ROOT / "roles" / "glance" / "README.md").read_text()
    jobs = set(re.findall(r'job="([a-z-]+)"', RULES.read_text()))
    assert jobs == {"glance-api", "glance-registry"}
    for job in jobs:
        assert f"job_name: {job}" in readme


def test_the_metrics_ports_stay_off_the_load_balancer() -> None:
    # The metrics sockets bind to the management address and HAProxy forwards none of their
    # ports: nothing on a VIP reaches them, without a firewall rule.
    glance = yaml.safe_load((ROOT / "roles" / "glance" / "defaults" / "main.yml").read_text())
    balanced = yaml.safe_load((ROOT / "roles" / "loadbalancer" / "defaults" / "main.yml").read_text())
    metrics_ports = {glance["glance_metrics_port"], glance["glance_metrics_registry_port"]}
    forwarded = {
        port for svc in balanced["loadbalancer_services"] for port in (svc["port"], svc.get("backend_port"))
    }
    assert not metrics_ports & forwarded
    assert metrics_ports.isdisjoint({glance["glance_api_port"], glance["glance_registry_port"]})
    assert "ansible_host" in glance["glance_metrics_bind_host"]
    assert glance["glance_metrics_enabled"] is False
