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
        ">=3x, >=85% disk",
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
    Metric("list_median_ms", "list 1000, median", "ms", False, None, "<=0.2x"),
    Metric("list_p90_ms", "list 1000, p90", "ms", False, None, "<=0.2x"),
    Metric("get_c16_rps", "GET image, 16 clients", "req/s", True, None, ">=5x"),
    Metric("get_c16_p99_ms", "GET image, 16 clients, p99", "ms", False, None, "<=1x"),
    Metric("get_c16_errors", "GET image, 16 clients, errors", "", False, None, "0"),
    Metric("get_c64_rps", "GET image, 64 clients", "req/s", True, None, ">=5x"),
    Metric("get_c64_p99_ms", "GET image, 64 clients, p99", "ms", False, None, "<=1x"),
    Metric("get_c64_errors", "GET image, 64 clients, errors", "", False, None, "0"),
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
]


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


def table(summary: dict, limits: dict[str, float], title: str, omit_missing: bool = False) -> str:
    """``omit_missing``: leave out metrics neither service has a figure for (a run of only some
    groups, ``--only``); otherwise they show as "failed"."""
    head = ("measurement", "unit", "ours med [min-max]", "upstream med [min-max]", "ours/up",
            "ours % limit", "up % limit", "target")  # fmt: skip
    rows = [head]
    for m in METRICS:
        e = summary[m.key]
        if omit_missing and not e["ours"] and not e["upstream"]:
            continue
        rows.append((
            m.label, m.unit, _cell(e["ours"]), _cell(e["upstream"]),
            f"{e['ratio']:.2f}x" if "ratio" in e else "-",
            f"{e['ours_of_limit']:.0%}" if "ours_of_limit" in e else "",
            f"{e['upstream_of_limit']:.0%}" if "upstream_of_limit" in e else "",
            m.target,
        ))  # fmt: skip
    widths = [max(len(r[i]) for r in rows) for i in range(len(head))]
    lines = [title, ""]
    for i, r in enumerate(rows):
        lines.append("| " + " | ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)) + " |")
        if i == 0:
            lines.append("|" + "|".join("-" * (w + 2) for w in widths) + "|")
    return "\n".join(lines)


def limits_table(limits: dict[str, float]) -> str:
    names = {
        "disk_write_MBps": "durable disk write (dd bs=4M conv=fdatasync)",
        "md5_MBps": "md5 (hashlib, one thread)",
        "sha512_MBps": "sha512 (hashlib, one thread)",
        "sendfile_MBps": "raw sendfile over loopback to curl",
    }
    lines = ["Machine limits (same run)", "", "| limit | MB/s |", "|---|---|"]
    lines += [f"| {names.get(k, k)} | {v:.0f} |" for k, v in limits.items()]
    return "\n".join(lines)


def write_json(path: Path, document: dict) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(document, indent=2, sort_keys=True))


def plot(path: Path, summaries: dict[str, dict]) -> bool:
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
    ax.set_xticklabels([m.label for m in metrics], rotation=35, ha="right", fontsize=8)
    ax.set_ylabel("ours vs upstream (x better)")
    ax.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return True
