"""Pure logic of the new measurements: CPU accounting, the deep listing's records and marker,
the CPU table and the labels of the main table."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from glancebench import measures, procs, report, seed  # noqa: E402


def test_cpu_delta_sums_by_kind_and_counts_new_processes_from_zero():
    before = {10: ("api master", 100), 11: ("api workers", 500), 12: ("api workers", 700)}
    # 12 exited (its parent reaped it: cutime in the master's figure); 13 started meanwhile.
    after = {10: ("api master", 150), 11: ("api workers", 800), 13: ("api workers", 40)}
    seconds = procs.cpu_delta(before, after, clk_tck=100)
    assert seconds == pytest.approx({"api master": 0.5, "api workers": 3.4})


def test_cpu_delta_keeps_idle_kinds_at_zero():
    before = {1: ("memcached", 5), 2: ("uwsgi master", 9)}
    after = {1: ("memcached", 5)}
    assert procs.cpu_delta(before, after, clk_tck=100) == {"memcached": 0.0, "uwsgi master": 0.0}


def test_cpu_snapshot_of_this_process_splits_master_from_workers():
    import os
    import subprocess

    child = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(5)"])
    try:
        snap = procs.cpu_snapshot({"me": (os.getpid(), True)})
        assert snap[os.getpid()][0] == "me master"
        assert snap[child.pid][0] == "me workers"
        lumped = procs.cpu_snapshot({"me": (os.getpid(), False)})
        assert {kind for kind, _ in lumped.values()} == {"me"}
    finally:
        child.kill()
        child.wait()


def test_cpu_profile_service_total_leaves_out_the_shared_servers():
    seconds = {
        "api master": 0.1,
        "api workers": 2.0,
        "registry workers": 1.0,
        "keystone": 0.5,
        "mariadb": 4.0,
    }
    profile = measures.cpu_profile(seconds, 1000, ["api", "registry"])
    assert profile["ms_per_request"]["api workers"] == pytest.approx(2.0)
    assert profile["ms_per_request"]["mariadb"] == pytest.approx(4.0)
    assert profile["service_ms_per_request"] == pytest.approx(3.1)
    assert measures.cpu_profile(seconds, 0, ["api"])["service_ms_per_request"] == 0


def test_cpu_summary_and_table_give_medians_per_service_and_kind():
    def rnd(workers_ms: float) -> dict:
        return {
            "cpu_get": measures.cpu_profile({"uwsgi workers": workers_ms, "keystone": 0.0}, 1000, ["uwsgi"]),
            "cpu_create": measures.cpu_profile({"uwsgi workers": 10 * workers_ms}, 1000, ["uwsgi"]),
        }

    cpu = report.cpu_summary({"upstream": [rnd(3.0), rnd(5.0), rnd(4.0)], "ours": []})
    assert "ours" not in cpu
    assert cpu["upstream"]["get"]["uwsgi workers"] == pytest.approx(4.0)
    assert cpu["upstream"]["create"]["service total"] == pytest.approx(40.0)
    text = report.cpu_table(cpu, "title")
    assert "| upstream | uwsgi workers | 4.00" in text
    assert "| upstream | keystone      | 0.00           | -" in text
    assert text.splitlines()[-1].startswith("| upstream | service total | 4.00")


def test_seeded_visibility_mix_and_rows():
    kinds = [seed.visibility(i) for i in range(10)]
    assert [k[0] for k in kinds].count("private") == 5
    assert sum(1 for k in kinds if k[2]) == 9  # listed for the benchmark's project
    rows = seed.records(4, "proj", "other", Path("/store"))
    image = rows["images"][0]
    assert image["visibility"] == "shared" and image["owner"] == "proj" and image["status"] == "active"
    assert rows["image_members"][0]["member"] == "other"
    assert len(rows["image_properties"]) == 2
    assert rows["image_locations"][0]["value"] == f"file:///store/{image['id']}"
    assert seed.records(9, "proj", "other", Path("/s"))["images"][0]["owner"] == "other"


def test_marker_half_way_down_the_default_order_and_the_page_after_it():
    seeded = [seed.Seeded(f"id{i}", i, seed.visibility(i)[2]) for i in range(100)]
    marker, after = seed.marker_and_next(seeded, 25)
    listed = [s.id for s in sorted(seeded, key=lambda s: -s.index) if s.visible]
    assert len(listed) == 90
    assert marker == listed[45]
    assert after == listed[46:71]
    assert "id99" not in after and "id9" not in listed  # index 9: another project's private image


def test_labels_follow_the_sizes():
    assert report.labels({"storm": 4, "deep": (1000, 2000)}) == {
        "storm": "4",
        "deep_small": "1k",
        "deep_big": "2k",
    }
    assert report.count_label(100_000) == "100k" and report.count_label(20) == "20"
    rounds = {"ours": [{"deep_big_first_ms": 5.0}], "upstream": [{"deep_big_first_ms": 100.0}]}
    text = report.table(report.summarise(rounds, {}), {}, "t", True, report.labels({"deep": (1000, 100_000)}))
    assert "list 100k records, first page" in text and "0.05x" in text and "<=0.1x" in text


def test_py_spy_raw_output_gives_self_and_total_percentages():
    from glancebench import spy

    raw = "\n".join(
        [
            'process 10:"gunicorn";thread (0x1);run (/v/lib/python3.11/site-packages/gunicorn/a.py:10);'
            "handle (glance_service/api/images.py:120);loads (/usr/lib/python3.11/json/__init__.py:346) 30",
            'process 10:"gunicorn: worker";run (/v/lib/python3.11/site-packages/gunicorn/a.py:11);'
            "handle (glance_service/api/images.py:121) 10",
            "run (/v/lib/python3.11/site-packages/gunicorn/a.py:12) 60",
            "not a stack line",
        ]
    )
    top = spy.top_functions(raw, count=2)
    assert top["samples"] == 100
    assert top["self"] == [("run (gunicorn/a.py)", 60.0), ("loads (json/__init__.py)", 30.0)]
    assert top["total"][0] == ("run (gunicorn/a.py)", 100.0)
    assert top["total"][1] == ("handle (glance_service/api/images.py)", 40.0)
    assert "handle (glance_service/api/images.py)" in report.spy_table(top, "t")
    threads = spy.top_functions("_bootstrap (/usr/lib/python3.11/threading.py:1);work (a.py:3) 5")
    assert threads["total"] == [("work (a.py)", 100.0)]
    assert threads["self"] == [("work (a.py)", 100.0)]
