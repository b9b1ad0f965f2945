"""The report of the serving benches (serve.py, feedback.py): the table of repeated cells and the claims,
each judged on its interval by scripts/bench/intervals.py.

A claim is judged on every round of an interleaved run: a ratio on the per-round pairs (ours and the
baseline measured in the same round), a p99 on the per-round p99s. Error answers never help a claim: a
cell with errors has an infinite p99, its throughput counts successful answers only, and as a baseline
(the reference, logging off, /health) it drops its pair, since fewer successes there would flatter us.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass, field
from typing import Any

from scripts.bench.intervals import Interval, judge, line, median_interval, ratio_interval
from scripts.bench.serve_load import UNIQUE_LABEL, Cell


@dataclass
class Report:
    """What a bench prints and records: summary lines, verdict records, figures."""

    lines: list[str] = field(default_factory=list)
    verdicts: list[dict[str, Any]] = field(default_factory=list)
    figures: dict[str, Any] = field(default_factory=dict)

    def claim(self, key: str, claim: str, interval: Interval, target: float, higher_is_better: bool,
              fmt: str = "{:.2f}", unit: str = "") -> None:  # fmt: skip
        """Judge one claim on its interval; print, record and keep its figure."""
        record = judge(claim, interval, target, higher_is_better, fmt, unit)
        self.verdicts.append(record)
        self.figures[key] = interval.figure()
        self.lines.append(line(record))

    def figure(self, key: str, what: str, interval: Interval, fmt: str = "{:.2f}", unit: str = "") -> None:
        """A figure with its interval and no target."""
        self.figures[key] = interval.figure()
        self.lines.append(f"- {what}: {interval.text(fmt, unit)}")


def slug(cell: Cell) -> str:
    """A figure key for a cell's target and concurrency, like "post_predict_c16"."""
    return re.sub(r"[^a-z0-9]+", "_", cell.target.name.lower()).strip("_") + f"_c{cell.concurrency}"


def series(cells: list[Cell], name: str, concurrency: int) -> list[Cell]:
    """The repeats of one target at one concurrency, in round order."""
    return sorted((c for c in cells if c.target.name == name and c.concurrency == concurrency),
                  key=lambda c: c.repeat)  # fmt: skip


def rps(cells: list[Cell], baseline: bool = False) -> list[float]:
    """Throughput of successful answers per repeat; a baseline cell with errors is NaN (dropped)."""
    return [c.rps if c.valid or not baseline else math.nan for c in cells]


def p99s(cells: list[Cell]) -> list[float]:
    """p99 per repeat; a cell with errors is infinitely slow (its p99 counted error answers)."""
    return [c.p99_ms if c.valid else math.inf for c in cells]


def cpu(cells: list[Cell]) -> list[float]:
    """Server CPU per request per repeat; NaN where unmeasured or with errors (cheap errors flatter it)."""
    return [c.server_cpu_ms if c.valid and c.server_cpu_ms is not None else math.nan for c in cells]


def _cell_text(values: list[float], fmt: str) -> str:
    i = median_interval(values)
    if i.n == 0:
        return "n/a"
    return i.text(fmt).split(" (")[0] if i.n > 1 else _fmtv(fmt, i.estimate)


def _fmtv(fmt: str, value: float) -> str:
    return fmt.format(value) if math.isfinite(value) else "inf"


def table(cells: list[Cell]) -> str:
    """The cells as a markdown table: one row per target and concurrency, medians [interval] over repeats."""
    lines = [
        "| server | endpoint | concurrency | repeats | requests | errors | req/s | p50 ms | p99 ms "
        "| server CPU ms/req |",
        "|---|---|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    seen: list[tuple[str, int]] = []
    for c in cells:
        if (c.target.name, c.concurrency) not in seen:
            seen.append((c.target.name, c.concurrency))
    for name, level in seen:
        s = series(cells, name, level)
        p50 = median_interval([c.p50_ms if c.valid else math.inf for c in s]).estimate
        lines.append(
            f"| {s[0].target.server} | {name} | {level} | {len(s)} | {sum(c.sent for c in s)} "
            f"| {sum(c.errors for c in s)} | {_cell_text(rps(s), '{:.0f}')} | {_fmtv('{:.2f}', p50)} "
            f"| {_cell_text(p99s(s), '{:.2f}')} | {_cell_text(cpu(s), '{:.3f}')} |"
        )
    return "\n".join(lines)


def cell_figures(cells: list[Cell]) -> dict[str, Any]:
    """Every target and concurrency's throughput, p99 and server CPU per request, as intervals."""
    out: dict[str, Any] = {}
    for c in cells:
        key = slug(c)
        if f"{key}_rps" in out:
            continue
        s = series(cells, c.target.name, c.concurrency)
        out[f"{key}_rps"] = median_interval(rps(s)).figure()
        out[f"{key}_p99_ms"] = median_interval(p99s(s)).figure()
        out[f"{key}_cpu_ms_per_req"] = median_interval(cpu(s)).figure()
        out[f"{key}_errors"] = sum(x.errors for x in s)
    return out


def summary(cells: list[Cell], ready_s: list[float], top: int) -> Report:
    """The serving claims judged on their intervals: time to ready, p99s, throughput and CPU ratios."""
    report = Report(figures=cell_figures(cells))
    if ready_s:
        report.claim("time_to_ready_s", f"time to ready (serve.sh started -> /ready 200), {len(ready_s)} starts",
                     median_interval(ready_s), 5.0, False, "{:.2f}", " s")  # fmt: skip
    health, predict = series(cells, "GET /health", top), series(cells, "POST /predict", top)
    fresh = series(cells, f"POST /predict{UNIQUE_LABEL}", top)
    recommend = series(cells, "POST /recommend", top)
    reference = series(cells, "GET /predict (reference)", top)
    if predict:
        report.claim(f"predict_p99_ms_c{top}", f"/predict p99 at concurrency {top}",
                     median_interval(p99s(predict)), 15.0, False, "{:.1f}", " ms")  # fmt: skip
    if predict and reference:
        report.claim(f"predict_vs_reference_rps_ratio_c{top}",
                     f"/predict throughput / the reference pattern's at concurrency {top}",
                     ratio_interval(rps(predict), rps(reference, True)), 10.0, True, "{:.1f}", "x")  # fmt: skip
        report.claim(f"reference_vs_predict_cpu_ratio_c{top}",
                     f"server CPU per prediction, the reference's / ours at concurrency {top}",
                     ratio_interval(cpu(reference), cpu(predict)), 10.0, True, "{:.1f}", "x")  # fmt: skip
        report.figure(f"reference_vs_predict_p99_ratio_c{top}", f"p99, the reference's / ours at concurrency {top}",
                      ratio_interval([c.p99_ms if c.valid else math.nan for c in reference],
                                     [c.p99_ms for c in predict]), "{:.1f}", "x")  # fmt: skip
    if fresh and reference:
        report.claim(f"predict_fresh_vs_reference_rps_ratio_c{top}",
                     f"/predict with a new overview each request / the reference at concurrency {top}",
                     ratio_interval(rps(fresh), rps(reference, True)), 10.0, True, "{:.1f}", "x")  # fmt: skip
    if predict and health:
        report.claim(f"predict_vs_health_rps_ratio_c{top}", f"/predict throughput / /health's at concurrency {top}",
                     ratio_interval(rps(predict), rps(health, True)), 0.5, True, "{:.2f}", "x")  # fmt: skip
        report.figure(f"predict_cpu_ms_c{top}", f"server CPU per /predict at concurrency {top}",
                      median_interval(cpu(predict)), "{:.3f}", " ms")  # fmt: skip
        report.figure(f"health_cpu_ms_c{top}", f"server CPU per /health at concurrency {top}",
                      median_interval(cpu(health)), "{:.3f}", " ms")  # fmt: skip
    if recommend:
        report.claim(f"recommend_p99_ms_c{top}", f"/recommend p99 at concurrency {top}",
                     median_interval(p99s(recommend)), 30.0, False, "{:.1f}", " ms")  # fmt: skip
    _log_cost(report, cells, top)
    return report


def _log_cost(report: Report, cells: list[Cell], top: int) -> None:
    """/predict with every answer logged against the same code with logging off, paired per round."""
    on, off = series(cells, "POST /predict", top), series(cells, "POST /predict (logging off)", top)
    if not (on and off):
        return
    report.claim(f"predict_logged_vs_off_rps_ratio_c{top}",
                 f"/predict throughput logged / logging off at concurrency {top}",
                 ratio_interval(rps(on), rps(off, True)), 0.9, True, "{:.2f}", "x")  # fmt: skip
    costs = [a - b for a, b in zip(cpu(on), cpu(off), strict=True)]
    report.figure(f"predict_logging_cpu_ms_c{top}", "server CPU logging adds per prediction (logged - off)",
                  median_interval(costs), "{:+.3f}", " ms")  # fmt: skip
