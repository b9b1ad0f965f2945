"""scripts/bench/soak.py: trends are slopes per hour with an interval, judged against a target per hour."""

from __future__ import annotations

import numpy as np
import pytest

from scripts.bench import soak
from scripts.bench.intervals import INCONCLUSIVE, MET, NOT_MET
from scripts.bench.soak import Window


def _windows(minutes: int, rss_mb_per_min: float, seed: int = 0, errors: int = 0) -> list[Window]:
    """One-minute windows: RSS rising at the given rate with ~1 MB of noise, flat p99 and spool."""
    rng = np.random.default_rng(seed)
    return [
        Window(float(m), 4000.0, 4.0, 9.0 + rng.normal(0, 0.3), errors, 520.0 + rss_mb_per_min * m + rng.normal(0, 1.0),
               45.0 + rng.normal(0, 0.5))
        for m in range(1, minutes + 1)
    ]  # fmt: skip


def _verdict(report: soak.Report, claim: str) -> str:
    return next(v["verdict"] for v in report.verdicts if v["claim"] == claim)


@pytest.mark.parametrize("minutes", [10, 60, 600])
def test_a_leak_of_2_1_mb_per_minute_fails_whatever_the_soak_length(minutes: int) -> None:
    windows = _windows(minutes, 2.1)
    rise = windows[-1].rss_mb - windows[0].rss_mb  # type: ignore[operator]
    if minutes == 10:
        assert rise < 0.05 * 520  # the old rule (a 5% rise over the soak) passed this one
    assert _verdict(soak.trends(windows), "server RSS slope") == NOT_MET


def test_a_flat_hour_is_no_trend_and_a_short_soak_cannot_claim_it() -> None:
    assert _verdict(soak.trends(_windows(60, 0.0)), "server RSS slope") == MET
    assert _verdict(soak.trends(_windows(60, 0.0)), "/predict p99 slope") == MET
    assert _verdict(soak.trends(_windows(3, 0.0, seed=1)), "server RSS slope") == INCONCLUSIVE
    # Ten flat minutes: a falling p99 or a flat RSS this short says nothing about the next hours.
    short = [Window(float(m), 4000.0, 4.0, 20.0 - m, 0, 520.0, 45.0) for m in range(1, 11)]
    assert {v["verdict"] for v in soak.trends(short).verdicts[:3]} == {INCONCLUSIVE}


def test_a_slow_leak_under_the_rss_target_per_hour_is_not_called_a_trend_on_an_hour() -> None:
    assert _verdict(soak.trends(_windows(60, 2.1 / 60)), "server RSS slope") == MET  # 2.1 MB/h


def test_error_answers_fail_the_soak_and_leave_the_p99_slope() -> None:
    report = soak.trends(_windows(60, 0.0, errors=3))
    assert _verdict(report, "error answers over the soak") == NOT_MET
    assert _verdict(report, "/predict p99 slope") != MET  # every window had errors: no p99 to judge
    assert report.figures["errors"] == 180
