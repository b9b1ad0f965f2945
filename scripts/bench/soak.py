"""A soak under steady load: p99, throughput, server memory and spool size per window, and their trends.

Used by scripts/bench/serve.py --soak SECONDS (one /predict load at the top concurrency, cut into
windows of --soak-window seconds, default 60). The trend is a least-squares line through the windows:
its rise over the whole soak is what "no upward trend" is judged on.
"""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

log = logging.getLogger("bench_soak")

P99_RISE_OK = 0.20  # the fitted p99 may rise at most this share of its median over the soak
RSS_RISE_OK = 0.05  # and the server's memory at most this share
SPOOL_GROWTH_OK = 1.5  # the spool's last size at most this many times the first half's largest


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


def _rise(xs: list[float], ys: list[float]) -> tuple[float, float]:
    """(slope per minute, fitted rise over the whole span) of a least-squares line."""
    if len(xs) < 2:
        return 0.0, 0.0
    slope = float(np.polyfit(np.array(xs), np.array(ys), 1)[0])
    return slope, slope * (xs[-1] - xs[0])


def report(windows: list[Window], concurrency: int, path: str) -> list[str]:
    """The per-window table and the trend verdicts, as markdown lines."""
    out = [
        f"soak: {path} at concurrency {concurrency}, {windows[-1].minute:.1f} min"
        if windows
        else "soak: empty",
        "",
        "| minute | req/s | p50 ms | p99 ms | errors | server RSS MB | spool MB |",
        "|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for w in windows:
        out.append(f"| {w.minute:.1f} | {w.rps:.0f} | {w.p50_ms:.2f} | {w.p99_ms:.2f} | {w.errors} "
                   f"| {_fmt(w.rss_mb)} | {_fmt(w.spool_mb)} |")  # fmt: skip
    if len(windows) < 2:
        return out
    xs = [w.minute for w in windows]
    out.append("")
    p99 = [w.p99_ms for w in windows]
    slope, rise = _rise(xs, p99)
    median = float(np.median(p99))
    out.append(f"- p99 trend: {slope:+.2f} ms/min (fitted {rise:+.1f} ms over the soak, median {median:.1f} ms): "
               f"{'no upward trend' if rise <= max(P99_RISE_OK * median, 1.0) else 'RISING'} "
               f"(rise <= {P99_RISE_OK:.0%} of the median)")  # fmt: skip
    rss = [w.rss_mb for w in windows if w.rss_mb is not None]
    if len(rss) == len(windows):
        slope, rise = _rise(xs, rss)  # type: ignore[arg-type]
        out.append(f"- server RSS trend: {slope:+.2f} MB/min (fitted {rise:+.1f} MB, from {rss[0]:.0f} MB): "
                   f"{'no upward trend' if rise <= max(RSS_RISE_OK * rss[0], 5.0) else 'RISING'} "
                   f"(rise <= {RSS_RISE_OK:.0%})")  # fmt: skip
    spool = [w.spool_mb for w in windows if w.spool_mb is not None]
    if len(spool) == len(windows):
        slope, _ = _rise(xs, spool)  # type: ignore[arg-type]
        bounded = spool[-1] <= SPOOL_GROWTH_OK * max(max(spool[: max(len(spool) // 2, 1)]), 32.0)
        out.append(f"- spool size: max {max(spool):.1f} MB, last {spool[-1]:.1f} MB, trend {slope:+.2f} MB/min: "
                   f"{'bounded' if bounded else 'GROWING'}")  # fmt: skip
    out.append(
        f"- load average at the end: {os.getloadavg()[0]:.2f} (other work on the machine shows in p99)"
    )
    return out
