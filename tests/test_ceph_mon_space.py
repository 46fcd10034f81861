"""The lab Ceph's monitor starts on the deploy host's disk (roles/ceph). ceph-mon takes the
blocks an unprivileged user may write (statfs f_bavail) out of all blocks, truncated to an
integer percent, and exits with status 28 at or below `mon data avail crit` (Ceph's default 5):
on this machine's disk, whose reserved blocks count as used, that was 4 % with 11 GiB free, and
the role's wait for the quorum timed out 30 times (molecule backend-switch, sessions 7 and 8).
The rendered ceph.conf must let the monitor start and stay healthy there, and the role's check
before starting the monitor must apply Ceph's rule."""

from __future__ import annotations

import configparser

import jinja2
import pytest
import yaml
from test_templates import ROOT

CEPH = ROOT / "roles" / "ceph"
DEFAULTS = yaml.safe_load((CEPH / "defaults" / "main.yml").read_text())
# statfs of the lab hosts' filesystem when the monitor did not start (stat -f in switch-ceph):
# 66053021 blocks of 4 KiB, 3078022 available to unprivileged users, 42533315 free.
LAB_DISK = {"blocks": 66053021, "bavail": 3078022}
# Ceph's defaults where ceph.conf sets nothing (src/common/options.cc, pacific).
CEPH_DEFAULTS = {"mon data avail crit": 5, "mon data avail warn": 30}


def ceph_avail_percent(bavail: int, blocks: int) -> int:
    """ceph_data_stats_t.avail_percent: an int, from f_bavail over f_blocks."""
    return int(bavail * 100 / blocks)


def rendered_global(**variables) -> configparser.SectionProxy:
    env = jinja2.Environment(
        loader=jinja2.FileSystemLoader(CEPH / "templates"),
        undefined=jinja2.StrictUndefined,
        keep_trailing_newline=True,
    )
    values = {
        **DEFAULTS,
        "ansible_managed": "Ansible managed",
        "ceph_fsid": "601cbd63-2d47-5fbe-a1a4-1d26c2b1f3d5",
        "ceph_public_address": "198.51.100.71",
        "ceph_daemon_name": "switch-ceph",
        **variables,
    }
    parser = configparser.ConfigParser(strict=False, interpolation=None)
    parser.read_string(env.get_template("ceph.conf.j2").render(**values))
    return parser["global"]


def mon_option(conf: configparser.SectionProxy, name: str) -> int:
    return int(conf.get(name, CEPH_DEFAULTS[name]))


def test_monitor_starts_and_is_healthy_on_the_lab_disk() -> None:
    conf = rendered_global()
    percent = ceph_avail_percent(**LAB_DISK)
    assert percent == 4
    # ceph-mon refuses to start at or below crit, and reports MON_DISK_LOW at or below warn
    # (molecule backends-ceph waits for HEALTH_OK).
    assert percent > mon_option(conf, "mon data avail crit")
    assert percent > mon_option(conf, "mon data avail warn")


def test_warning_comes_before_the_stop() -> None:
    conf = rendered_global()
    assert mon_option(conf, "mon data avail crit") < mon_option(conf, "mon data avail warn")
    assert mon_option(conf, "mon data avail crit") >= 1, "0 would let the monitor fill the disk"


def test_thresholds_follow_the_role_variables() -> None:
    conf = rendered_global(ceph_mon_data_avail_warn=7, ceph_mon_data_avail_crit=3)
    assert mon_option(conf, "mon data avail warn") == 7
    assert mon_option(conf, "mon data avail crit") == 3


def _start_check() -> tuple[dict, str]:
    tasks = yaml.safe_load((CEPH / "tasks" / "mon.yml").read_text())
    names = [task["name"] for task in tasks]
    check = names.index("Check that the monitor may start with that free space")
    assert check < names.index("Run the monitor"), "the check must come before the start"
    task = tasks[check]
    (that,) = task["ansible.builtin.assert"]["that"]
    return task, that


@pytest.mark.parametrize(
    ("stat_f", "crit", "starts"),
    [
        (f"{LAB_DISK['bavail']} {LAB_DISK['blocks']} 4096", 1, True),  # 4 %
        (f"{LAB_DISK['bavail']} {LAB_DISK['blocks']} 4096", 5, False),  # Ceph's default
        ("1000 50000 4096", 2, False),  # exactly 2 %: Ceph stops at crit too
        ("1001 50000 4096", 1, True),  # 2.002 % -> 2
        ("999 50000 4096", 1, False),  # 1.998 % -> 1
        ("999 50000 4096", "1", False),  # -e ceph_mon_data_avail_crit=1 is a string
    ],
)
def test_start_check_applies_cephs_rule(stat_f: str, crit: int | str, starts: bool) -> None:
    task, that = _start_check()
    env = jinja2.Environment(undefined=jinja2.StrictUndefined)
    # The task's own vars, resolved the way Ansible templates them (strings from stdout).
    variables = {"_ceph_mon_fs": {"stdout": stat_f}, "ceph_mon_data_avail_crit": crit}
    for name, expression in task["vars"].items():
        variables[name] = env.from_string(expression).render(**variables)
    assert bool(env.compile_expression(that)(**variables)) is starts
    bavail, blocks, _ = (int(v) for v in stat_f.split())
    assert (ceph_avail_percent(bavail, blocks) > int(crit)) is starts
