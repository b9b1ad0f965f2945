"""Intervals and verdicts for the benches: a claim is "met" only when its whole interval clears the target.

Pure functions, no I/O. Each bench figure comes from repeated cells, so it is reported as a median with
a distribution-free interval, the order-statistics interval of the median: for sorted samples
x(1) <= ... <= x(n), [x(k), x(n+1-k)] holds the true median with probability 1 - 2 P(Binomial(n, 1/2) < k),
whatever the distribution. No resampling, no seed, exact for the small n a bench can afford (with 5
repeats it is [min, max] at 93.75%; with 3 repeats 75%). The coverage actually reached is printed beside
every interval, so a short run says how little it can claim.

Ratios come from paired cells (A and B measured in the same round of an interleaved run): the interval is
over the per-pair ratios, so one slow reference cell moves one ratio, not every one. Trends (a soak) are
Theil-Sen slopes with their interval (scipy.stats.theilslopes).

verdict() says "met" when the whole interval clears the target, "not met" when the whole interval misses
it, and "inconclusive" otherwise, or when fewer than MIN_SAMPLES samples stand behind it: a single
measurement never makes a verdict.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
from scipy import stats

MIN_SAMPLES = 3  # fewer repeats than this give an interval of no useful coverage (2 samples: 50%)
# theilslopes' interval (a normal approximation to Kendall's tau) under-covers on few points: by
# simulation (noise-only series, 4,000 draws) 66% at 3 points, 92% at 4, 98% at 5. Below this, unbounded.
MIN_SLOPE_POINTS = 5
CONFIDENCE = 0.95  # asked of every interval; small n reach less, and say so

MET, NOT_MET, INCONCLUSIVE = "met", "not met", "inconclusive"


@dataclass(frozen=True)
class Interval:
    """A point estimate (a median, or a slope) with its interval, sample count and coverage."""

    estimate: float
    low: float
    high: float
    n: int
    coverage: float
    kind: str = "median"  # "median" or "slope": the key the estimate is recorded under

    def figure(self) -> dict[str, Any]:
        """A flat JSON-able record of the interval (infinities and NaN as None)."""
        return {
            self.kind: _json(self.estimate), "low": _json(self.low), "high": _json(self.high),
            "n": self.n, "coverage": round(self.coverage, 4),
        }  # fmt: skip

    def text(self, fmt: str = "{:.2f}", unit: str = "") -> str:
        """Like "11.2x [9.8, 12.5] (n=5, 94%)"."""
        if self.n == 0:
            return "n/a (no valid samples)"
        return (
            f"{_fmt(fmt, self.estimate)}{unit} [{_fmt(fmt, self.low)}, {_fmt(fmt, self.high)}] "
            f"(n={self.n}, {self.coverage:.0%})"
        )


def _fmt(fmt: str, value: float) -> str:
    return fmt.format(value) if math.isfinite(value) else ("inf" if value > 0 else str(value))


def _json(value: float) -> float | None:
    return float(value) if math.isfinite(value) else None


def median_interval(values: Sequence[float], confidence: float = CONFIDENCE) -> Interval:
    """The median of the samples with its order-statistics interval (NaN samples are left out)."""
    x = np.sort(np.asarray([v for v in values if not math.isnan(v)], dtype=float))
    n = len(x)
    if n == 0:
        return Interval(math.nan, math.nan, math.nan, 0, 0.0)
    # P(the median lies outside [x(k), x(n+1-k)]) = 2 * P(Binomial(n, 1/2) <= k - 1): take the
    # narrowest k that still reaches `confidence`, else the widest one there is, [min, max].
    k = 1
    for candidate in range(1, n // 2 + 1):
        if 1 - 2 * stats.binom.cdf(candidate - 1, n, 0.5) >= confidence:
            k = candidate
    coverage = 1 - 2 * stats.binom.cdf(k - 1, n, 0.5) if n > 1 else 0.0
    return Interval(float(np.median(x)), float(x[k - 1]), float(x[n - k]), n, float(coverage))


def paired_ratios(subject: Sequence[float], baseline: Sequence[float]) -> list[float]:
    """subject[i] / baseline[i] per pair; NaN where the baseline is NaN (an invalid cell) or zero."""
    if len(subject) != len(baseline):
        raise ValueError(f"unpaired series: {len(subject)} subject cells, {len(baseline)} baseline cells")
    out = []
    for a, b in zip(subject, baseline, strict=True):
        out.append(a / b if b and not math.isnan(b) else math.nan)
    return out


def ratio_interval(subject: Sequence[float], baseline: Sequence[float],
                   confidence: float = CONFIDENCE) -> Interval:  # fmt: skip
    """The median of the per-pair ratios subject/baseline with its interval; invalid pairs left out."""
    return median_interval(paired_ratios(subject, baseline), confidence)


def slope_per_hour(minutes: Sequence[float], values: Sequence[float], confidence: float = CONFIDENCE,
                   min_span_h: float = 0.0) -> Interval:  # fmt: skip
    """The Theil-Sen slope of values over time, per hour, with its interval (scipy.stats.theilslopes).

    Over a span shorter than min_span_h the upper bound is unbounded: a short look can show a rise, but
    not the absence of one that starts later (a cache or an arena filling up after the first minutes).
    """
    pairs = [(t, v) for t, v in zip(minutes, values, strict=True) if math.isfinite(v)]
    if len(pairs) < 2:
        return Interval(math.nan, math.nan, math.nan, len(pairs), 0.0, "slope")
    t, v = np.array(pairs, dtype=float).T
    fit = stats.theilslopes(v, t / 60.0, alpha=confidence)
    if len(pairs) < MIN_SLOPE_POINTS:
        return Interval(float(fit.slope), -math.inf, math.inf, len(pairs), 1.0, "slope")
    high = float(fit.high_slope) if (t[-1] - t[0]) / 60.0 >= min_span_h else math.inf
    return Interval(float(fit.slope), float(fit.low_slope), high, len(pairs), confidence, "slope")


def verdict(interval: Interval, target: float, higher_is_better: bool) -> str:
    """ "met" if the whole interval clears the target, "not met" if it all misses, else "inconclusive"."""
    if interval.n < MIN_SAMPLES or math.isnan(interval.low) or math.isnan(interval.high):
        return INCONCLUSIVE
    if higher_is_better:
        if interval.low >= target:
            return MET
        return NOT_MET if interval.high < target else INCONCLUSIVE
    if interval.high <= target:
        return MET
    return NOT_MET if interval.low > target else INCONCLUSIVE


def judge(claim: str, interval: Interval, target: float, higher_is_better: bool,
          fmt: str = "{:.2f}", unit: str = "") -> dict[str, Any]:  # fmt: skip
    """The verdict record of one claim (as the bench records keep it), from its interval and target."""
    sign = ">=" if higher_is_better else "<="
    return {
        "claim": claim,
        "target": f"{sign} {_fmt(fmt, target)}{unit}",
        "value": interval.text(fmt, unit),
        "low": _json(interval.low),
        "high": _json(interval.high),
        "verdict": verdict(interval, target, higher_is_better),
    }


def judge_count(claim: str, count: int, allowed: int = 0) -> dict[str, Any]:
    """The verdict record of a count over a whole run (error answers in a soak): exact, no interval."""
    return {
        "claim": claim, "target": f"<= {allowed}", "value": str(count), "low": float(count),
        "high": float(count), "verdict": MET if count <= allowed else NOT_MET,
    }  # fmt: skip


def line(record: dict[str, Any]) -> str:
    """One printed verdict line: "- claim: value: verdict (target)"."""
    return f"- {record['claim']}: {record['value']}: {record['verdict']} (target {record['target']})"


def table(records: list[dict[str, Any]]) -> str:
    """The verdict records as a markdown table."""
    rows = ["| claim | value [interval] (n, coverage) | target | verdict |", "|---|---|---|---|"]
    rows += [f"| {r['claim']} | {r['value']} | {r['target']} | {r['verdict']} |" for r in records]
    return "\n".join(rows)
