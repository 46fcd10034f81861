"""The harness's pure logic: wrk output parsing, percentiles, summaries and the table."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from glancebench import measures, report  # noqa: E402

WRK_OUTPUT = """Running 2s test @ http://127.0.0.1:4000
  2 threads and 16 connections
  Thread Stats   Avg      Stdev     Max   +/- Stdev
    Latency    12.31ms    3.10ms  48.02ms   80.00%
    Req/Sec   650.12     40.33   720.00     70.00%
  Latency Distribution
     50%   11.90ms
     75%   13.40ms
     90%   16.00ms
     99%    1.20s
  2601 requests in 2.00s, 3.10MB read
  Socket errors: connect 0, read 2, write 0, timeout 1
  Non-2xx or 3xx responses: 4
Requests/sec:   1300.50
Transfer/sec:      1.55MB
"""


def test_parse_wrk_counts_non_2xx_and_socket_errors():
    result = measures.parse_wrk(WRK_OUTPUT)
    assert result == {"rps": 1300.5, "p99_ms": 1200.0, "errors": 7, "requests": 2601}


def test_parse_wrk_clean_run_has_no_errors():
    clean = "\n".join(
        line for line in WRK_OUTPUT.splitlines() if "errors" not in line and "Non-2xx" not in line
    )
    clean = clean.replace("1.20s", "850.00us")
    result = measures.parse_wrk(clean)
    assert result["errors"] == 0
    assert result["p99_ms"] == pytest.approx(0.85)


def test_percentile_nearest_rank():
    values = [float(v) for v in range(1, 11)]
    assert measures._percentile(values, 90) == 9.0
    assert measures._percentile(values, 50) == 5.0
    assert measures._percentile([3.0], 90) == 3.0


def test_summarise_ratio_and_fraction_of_machine_limit():
    rounds = {
        "ours": [{"upload_curl_MBps": 300.0}, {"upload_curl_MBps": 360.0}, {"upload_curl_MBps": 330.0}],
        "upstream": [{"upload_curl_MBps": 100.0}, {"upload_curl_MBps": 90.0}, {"upload_curl_MBps": 110.0}],
    }
    summary = report.summarise(rounds, {"disk_write_MBps": 400.0})
    upload = summary["upload_curl_MBps"]
    assert upload["ours"] == {"median": 330.0, "min": 300.0, "max": 360.0, "n": 3}
    assert upload["ratio"] == pytest.approx(3.3)
    assert upload["ours_of_limit"] == pytest.approx(0.825)
    assert upload["upstream_of_limit"] == pytest.approx(0.25)


def test_summarise_marks_a_failed_service_and_gives_no_ratio():
    summary = report.summarise({"ours": [{"small_create_per_s": 50.0}], "upstream": []}, {})
    assert summary["small_create_per_s"]["upstream"] is None
    assert "ratio" not in summary["small_create_per_s"]
    table = report.table(summary, {}, "title")
    assert "failed" in table


def test_error_counts_get_no_ratio():
    rounds = {"ours": [{"parallel_upload_errors": 0}], "upstream": [{"parallel_upload_errors": 6}]}
    assert "ratio" not in report.summarise(rounds, {})["parallel_upload_errors"]


def test_a_partial_run_leaves_out_what_it_did_not_measure():
    rounds = {"ours": [{"small_create_per_s": 50.0}], "upstream": [{"small_create_per_s": 10.0}]}
    summary = report.summarise(rounds, {})
    partial = report.table(summary, {}, "title", omit_missing=True)
    assert "create small images" in partial and "5.00x" in partial
    assert "upload, curl -T" not in partial and "failed" not in partial
    assert "upload, curl -T" in report.table(summary, {}, "title")
