"""Summaries (median, min, max, ratio ours/upstream, fraction of the machine's limit), the
terminal table, the JSON file and the optional PNG of the ratios."""

from __future__ import annotations

import json
import statistics
from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class Metric:
    key: str
    label: str
    unit: str
    higher_is_better: bool
    limit: str | None = None  # machine-limit key the figure is compared with
    target: str = ""  # what the project aims at, shown next to the ratio (never asserted)


METRICS = [
    Metric(
        "upload_curl_MBps",
        "upload, curl -T",
        "MB/s",
        True,
        "disk_write_MBps",
        ">=90% disk",
    ),
    Metric(
        "upload_glanceclient_MBps",
        "upload, glanceclient (chunked)",
        "MB/s",
        True,
        "disk_write_MBps",
        ">=3x",
    ),
    Metric(
        "download_curl_MBps",
        "download, curl",
        "MB/s",
        True,
        "sendfile_MBps",
        ">=1.3x, >=90% sendfile",
    ),
    Metric(
        "download_glanceclient_MBps",
        "download, glanceclient",
        "MB/s",
        True,
        "sendfile_MBps",
        ">=1.3x",
    ),
    Metric("idle_rss_MiB", "RSS before upload (idle)", "MiB", False),
    Metric("upload_peak_rss_MiB", "peak RSS during upload", "MiB", False, None, "<=0.5x"),
    Metric("upload_peak_pss_MiB", "peak PSS during upload", "MiB", False),
    Metric("small_create_per_s", "create small images", "img/s", True, None, ">=5x"),
    Metric("list_median_ms", "list 1000, median", "ms", False, None, "<=0.1x"),
    Metric("list_p90_ms", "list 1000, p90", "ms", False),
    Metric("get_c16_rps", "GET image, 16 clients", "req/s", True, None, ">=5x"),
    Metric("get_c16_p99_ms", "GET image, 16 clients, p99", "ms", False, None, "<=1x"),
    Metric("get_c16_errors", "GET image, 16 clients, errors", "", False, None, "0"),
    Metric("get_c64_rps", "GET image, 64 clients", "req/s", True, None, ">=5x"),
    Metric("get_c64_p99_ms", "GET image, 64 clients, p99", "ms", False, None, "<=1x"),
    Metric("get_c64_errors", "GET image, 64 clients, errors", "", False, None, "0"),
    Metric("cpu_ms_per_get", "CPU per GET, service processes", "ms", False),
    Metric("cpu_ms_per_create", "CPU per create + 1 KiB, service processes", "ms", False),
    Metric(
        "parallel_upload_MBps",
        "8 parallel uploads, aggregate",
        "MB/s",
        True,
        "disk_write_MBps",
        "",
    ),
    Metric("parallel_upload_errors", "8 parallel uploads, errors", "", False, None, "0"),
    Metric(
        "parallel_sha512_verified",
        "8 parallel uploads, sha512 verified",
        "",
        True,
        None,
        "all",
    ),
    Metric(
        "storm_MBps",
        "boot storm, {storm} downloads, aggregate",
        "MB/s",
        True,
        "sendfile_storm_MBps",
        ">=1.5x",
    ),
    Metric("storm_errors", "boot storm, {storm} downloads, errors", "", False, None, "0"),
    Metric("deep_small_first_ms", "list {deep_small} records, first page", "ms", False),
    Metric("deep_small_marker_ms", "list {deep_small} records, page by marker", "ms", False),
    Metric("deep_big_first_ms", "list {deep_big} records, first page", "ms", False, None, "<=0.1x"),
    Metric("deep_big_marker_ms", "list {deep_big} records, page by marker", "ms", False, None, "<=0.1x"),
    Metric("deep_first_growth", "first page, {deep_big} / {deep_small}", "x", False, None, "ours <=2"),
    Metric("deep_marker_growth", "page by marker, {deep_big} / {deep_small}", "x", False, None, "ours <=2"),
]


def count_label(n: int) -> str:
    """100000 -> "100k", 2000 -> "2k", 20 -> "20"."""
    return f"{n // 1000}k" if n >= 1000 and n % 1000 == 0 else str(n)


def labels(sizes: dict) -> dict[str, str]:
    """What the ``{placeholders}`` of the metric labels read for a run of these sizes."""
    small, big = sizes.get("deep", (1000, 100_000))
    return {
        "storm": str(sizes.get("storm", 32)),
        "deep_small": count_label(small),
        "deep_big": count_label(big),
    }


def _stats(values: list[float]) -> dict | None:
    values = [v for v in values if v is not None]
    if not values:
        return None
    return {
        "median": statistics.median(values),
        "min": min(values),
        "max": max(values),
        "n": len(values),
    }


def summarise(rounds: dict[str, list[dict]], limits: dict[str, float]) -> dict:
    """``rounds``: target name -> one dict of figures per round. Returns metric key -> summary."""
    out = {}
    for m in METRICS:
        per = {name: _stats([r.get(m.key) for r in rs]) for name, rs in rounds.items()}
        ours, up = per.get("ours"), per.get("upstream")
        entry = {
            "ours": ours,
            "upstream": up,
            "unit": m.unit,
            "higher_is_better": m.higher_is_better,
        }
        if ours and up and up["median"] and not m.key.endswith(("errors", "verified")):
            entry["ratio"] = ours["median"] / up["median"]
        if m.limit and limits.get(m.limit):
            for name in ("ours", "upstream"):
                if per.get(name):
                    entry[f"{name}_of_limit"] = per[name]["median"] / limits[m.limit]
        out[m.key] = entry
    return out


def _fmt(x: float | None) -> str:
    if x is None:
        return "-"
    if x == int(x) and abs(x) < 1e6:
        return str(int(x))
    return f"{x:.3g}" if abs(x) < 100 else f"{x:.0f}"


def _cell(s: dict | None) -> str:
    if not s:
        return "failed"
    if s["n"] == 1:
        return _fmt(s["median"])
    return f"{_fmt(s['median'])} [{_fmt(s['min'])}-{_fmt(s['max'])}]"


def table(
    summary: dict,
    limits: dict[str, float],
    title: str,
    omit_missing: bool = False,
    names: dict[str, str] | None = None,
) -> str:
    """``omit_missing``: leave out metrics neither service has a figure for (a run of only some
    groups, ``--only``); otherwise they show as "failed". ``names``: the labels' placeholders
    (``labels()``)."""
    names = names or labels({})
    head = ("measurement", "unit", "ours med [min-max]", "upstream med [min-max]", "ours/up",
            "ours % limit", "up % limit", "target")  # fmt: skip
    rows = [head]
    for m in METRICS:
        e = summary[m.key]
        if omit_missing and not e["ours"] and not e["upstream"]:
            continue
        rows.append((
            m.label.format(**names), m.unit, _cell(e["ours"]), _cell(e["upstream"]),
            f"{e['ratio']:.2f}x" if "ratio" in e else "-",
            f"{e['ours_of_limit']:.0%}" if "ours_of_limit" in e else "",
            f"{e['upstream_of_limit']:.0%}" if "upstream_of_limit" in e else "",
            m.target,
        ))  # fmt: skip
    return _markdown(title, rows)


def _markdown(title: str, rows: list[tuple[str, ...]]) -> str:
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    lines = [title, ""]
    for i, r in enumerate(rows):
        lines.append("| " + " | ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)) + " |")
        if i == 0:
            lines.append("|" + "|".join("-" * (w + 2) for w in widths) + "|")
    return "\n".join(lines)


def cpu_summary(rounds: dict[str, list[dict]]) -> dict:
    """Per service and kind of process: the median over rounds of CPU ms per GET and per create
    (``cpu_get``/``cpu_create`` of each round, measures.cpu_profile)."""
    out: dict = {}
    for name, rs in rounds.items():
        per: dict = {}
        for op in ("get", "create"):
            profiles = [r[f"cpu_{op}"] for r in rs if r.get(f"cpu_{op}", {}).get("requests")]
            if not profiles:
                continue
            kinds = sorted({k for p in profiles for k in p["ms_per_request"]})
            per[op] = {k: statistics.median(p["ms_per_request"].get(k, 0.0) for p in profiles) for k in kinds}
            per[op]["service total"] = statistics.median(p["service_ms_per_request"] for p in profiles)
        if per:
            out[name] = per
    return out


def cpu_table(cpu: dict, title: str) -> str:
    """One row per service and kind of process: CPU ms per GET and per create (+ 1 KiB upload)."""
    rows = [("service", "process", "CPU ms per GET", "CPU ms per create")]
    for name, per in cpu.items():
        kinds = sorted({k for op in per.values() for k in op if k != "service total"}) + ["service total"]
        for kind in kinds:
            cells = [per.get(op, {}).get(kind) for op in ("get", "create")]
            rows.append((name, kind, *("-" if c is None else f"{c:.2f}" for c in cells)))
    return _markdown(title, rows)


def limits_table(limits: dict[str, float]) -> str:
    names = {
        "disk_write_MBps": "durable disk write (dd bs=4M conv=fdatasync)",
        "md5_MBps": "md5 (hashlib, one thread)",
        "sha512_MBps": "sha512 (hashlib, one thread)",
        "sendfile_MBps": "raw sendfile over loopback to curl",
        "sendfile_storm_MBps": "raw sendfile to the boot storm's curls at once",
    }
    lines = ["Machine limits (same run)", "", "| limit | MB/s |", "|---|---|"]
    lines += [f"| {names.get(k, k)} | {v:.0f} |" for k, v in limits.items()]
    return "\n".join(lines)


def round_trip_line(probes: list[dict[str, float]]) -> str:
    """The loopback round-trip probes of the run (start, end) as one line of the report."""
    parts = [
        f"{p['wall_us']:.0f} us wall, {p['cpu_us']:.0f} us CPU ({p['system_share']:.0%} system)"
        for p in probes
    ]
    return "Loopback round trip between two processes (start; end): " + "; ".join(parts)


def write_json(path: Path, document: dict) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(document, indent=2, sort_keys=True))


def plot(path: Path, summaries: dict[str, dict], names: dict[str, str] | None = None) -> bool:
    """Bar chart of ours/upstream per measurement (1 = parity; for lower-is-better figures the
    ratio is inverted so that taller always means better). False when matplotlib is absent."""
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return False
    metrics = [m for m in METRICS if not m.key.endswith(("errors", "verified"))]
    fig, ax = plt.subplots(figsize=(12, 5))
    width = 0.8 / max(1, len(summaries))
    for i, (db, summary) in enumerate(summaries.items()):
        values = []
        for m in metrics:
            r = summary[m.key].get("ratio")
            values.append((r if m.higher_is_better else 1 / r) if r else 0)
        ax.bar([x + i * width for x in range(len(metrics))], values, width, label=db)
    ax.axhline(1.0, color="black", linewidth=0.8)
    ax.set_yscale("log")
    from matplotlib.ticker import FuncFormatter

    ratio_label = FuncFormatter(lambda y, _pos: f"{y:g}x")
    ax.yaxis.set_major_formatter(ratio_label)
    ax.yaxis.set_minor_formatter(ratio_label)
    ax.set_xticks([x + width * (len(summaries) - 1) / 2 for x in range(len(metrics))])
    names = names or labels({})
    ax.set_xticklabels([m.label.format(**names) for m in metrics], rotation=35, ha="right", fontsize=8)
    ax.set_ylabel("ours vs upstream (x better)")
    ax.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return True


def spy_table(top: dict, title: str) -> str:
    """The top functions py-spy saw (spy.top_functions): self and total percent of samples."""
    if top.get("error") or not top.get("samples"):
        return f"{title}: no samples {top.get('error', '')}".rstrip()
    rows = [("function (self)", "self %", "function (total)", "total %")]
    for (own, own_pct), (tot, tot_pct) in zip(top["self"], top["total"], strict=False):
        rows.append((own, f"{own_pct:.1f}", tot, f"{tot_pct:.1f}"))
    return _markdown(f"{title} ({top['samples']} samples)", rows)
