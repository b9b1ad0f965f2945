"""A soak under steady load: p99, throughput, server memory and spool size per window, and their slopes.

Used by scripts/bench/serve.py --soak SECONDS (one /predict load at the top concurrency, cut into
windows of --soak-window seconds, default 60). Each trend is a Theil-Sen slope per hour with its 95%
interval (scipy.stats.theilslopes, robust to a few noisy windows), and "no upward trend" is met only when
the interval's upper bound is under a target per hour, so the rule does not loosen as the soak gets
longer (a rise over the whole soak would: +2.1 MB/min passed a 5% rule over 10 min, and is 3 GB a day):

- server RSS <= 10 MB/h: 240 MB a day; a replica at ~550 MB under docker-compose-serve.yaml's 1 GB
  limit then keeps about two days of headroom between restarts (deploys restart it sooner);
- /predict p99 <= 1 ms/h: the smallest rise a one-hour soak of 60 s windows resolves on a quiet
  machine; at ~9 ms p99 it would reach the 15 ms target in six hours, so anything larger is a defect;
- spool size <= 10 MB/h: the flusher keeps the spool flat; 10 MB/h is 240 MB of disk a day.

A short soak has a wide interval and says "inconclusive"; one under 30 min never says "met" (its upper
bound is unbounded: a leak can start after the first minutes). An hour (--soak 3600) is the length meant.
Windows with error answers are left out of the p99 slope (wrk's p99 includes them) and fail the claim
"no error answers" on their own.
"""

from __future__ import annotations

import logging
import math
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from scripts.bench.intervals import Interval, judge_count, median_interval, slope_per_hour
from scripts.bench.intervals import line as verdict_line
from scripts.bench.serve_report import Report

log = logging.getLogger("bench_soak")


@dataclass(frozen=True)
class Window:
    """One window of the soak."""

    minute: float  # end of the window, minutes from the start
    rps: float
    p50_ms: float
    p99_ms: float
    errors: int
    rss_mb: float | None
    spool_mb: float | None


def group_rss_mb(pgid: int | None) -> float | None:
    """Resident memory (MB) of every live process in a process group (Linux /proc)."""
    if pgid is None:
        return None
    total_kb = 0
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            if int(stat.read_text().rsplit(")", 1)[1].split()[2]) != pgid:
                continue
            status = (stat.parent / "status").read_text()
        except (OSError, IndexError, ValueError):
            continue
        for line in status.splitlines():
            if line.startswith("VmRSS:"):
                total_kb += int(line.split()[1])
    return total_kb / 1024


def folder_mb(folder: Path | None) -> float | None:
    """Bytes on disk under a folder, in MB (the spool: events.db, its WAL and shared memory)."""
    if folder is None or not folder.exists():
        return None
    return sum(p.stat().st_size for p in folder.rglob("*") if p.is_file()) / 1e6


def run(generator: Any, url: str, target: Any, concurrency: int, seconds: float, window_s: float,
        pgid: int | None, spool: Path | None) -> list[Window]:  # fmt: skip
    """Load the target for `seconds`, one generator run per window; log each window as it ends."""
    windows: list[Window] = []
    elapsed = 0.0
    while elapsed < seconds - 1e-6:
        length = min(window_s, seconds - elapsed)
        m = generator.run(url, target, concurrency, length)
        elapsed += length
        w = Window(elapsed / 60, (m.sent - m.errors) / m.seconds if m.seconds else 0.0, m.p50_ms, m.p99_ms,
                   m.errors, group_rss_mb(pgid), folder_mb(spool))  # fmt: skip
        windows.append(w)
        log.info("soak %5.1f min: %.0f req/s, p99 %.1f ms, RSS %s MB, spool %s MB", w.minute, w.rps,
                 w.p99_ms, _fmt(w.rss_mb), _fmt(w.spool_mb))  # fmt: skip
    return windows


def _fmt(value: float | None) -> str:
    return "n/a" if value is None else f"{value:.1f}"


P99_SLOPE_OK = 1.0  # ms/h, see the module docstring
RSS_SLOPE_OK = 10.0  # MB/h
SPOOL_SLOPE_OK = 10.0  # MB/h
MIN_SPAN_H = 0.5  # a shorter soak can show a rise but never "no trend" (its upper bound is unbounded)
TARGETS_HELP = (
    f"slope per hour's 95%% upper bound: RSS <= {RSS_SLOPE_OK:g} MB/h, p99 <= {P99_SLOPE_OK:g} ms/h, "
    f"spool <= {SPOOL_SLOPE_OK:g} MB/h; met needs >= {MIN_SPAN_H * 60:g} min, an hour is meant"
)


def table(windows: list[Window]) -> str:
    """The windows as a markdown table."""
    out = [
        "| minute | req/s | p50 ms | p99 ms | errors | server RSS MB | spool MB |",
        "|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for w in windows:
        out.append(f"| {w.minute:.1f} | {w.rps:.0f} | {w.p50_ms:.2f} | {w.p99_ms:.2f} | {w.errors} "
                   f"| {_fmt(w.rss_mb)} | {_fmt(w.spool_mb)} |")  # fmt: skip
    return "\n".join(out)


def trends(windows: list[Window], path: str = "/predict") -> Report:
    """The slopes per hour, each judged against its target, and the error answers over the soak."""
    report = Report()
    minutes = [w.minute for w in windows]

    def slope(values: list[float]) -> Interval:
        return slope_per_hour(minutes, values, min_span_h=MIN_SPAN_H)

    clean = [w.p99_ms if not w.errors else math.nan for w in windows]
    report.claim("p99_ms_per_h", f"{path} p99 slope", slope(clean), P99_SLOPE_OK, False, "{:+.2f}", " ms/h")
    if all(w.rss_mb is not None for w in windows):
        rss = [float(w.rss_mb or 0) for w in windows]
        report.claim("rss_mb_per_h", "server RSS slope", slope(rss), RSS_SLOPE_OK, False, "{:+.1f}", " MB/h")
    if all(w.spool_mb is not None for w in windows):
        spool = [float(w.spool_mb or 0) for w in windows]
        report.claim(
            "spool_mb_per_h", "spool size slope", slope(spool), SPOOL_SLOPE_OK, False, "{:+.1f}", " MB/h"
        )
    errors = sum(w.errors for w in windows)
    record = judge_count("error answers over the soak", errors)
    report.verdicts.append(record)
    report.figures["errors"] = errors
    report.lines.append(verdict_line(record))
    return report


def report(windows: list[Window], concurrency: int, path: str) -> Report:
    """The per-window table and the trend verdicts, as markdown lines, verdict records and figures."""
    if not windows:
        return Report(lines=["soak: empty"])
    out = trends(windows, path)
    out.figures["rps"] = median_interval([w.rps for w in windows]).figure()
    out.lines[:0] = [f"soak: {path} at concurrency {concurrency}, {windows[-1].minute:.1f} min", "",
                     table(windows), ""]  # fmt: skip
    out.lines.append(
        f"- load average at the end: {os.getloadavg()[0]:.2f} (other work on the machine shows in p99)"
    )
    return out
