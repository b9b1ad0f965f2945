"""scripts/bench/intervals.py: intervals of the median, paired ratios, slopes and the verdicts on them."""

from __future__ import annotations

import math

import pytest
from scipy import stats

from scripts.bench.intervals import (
    INCONCLUSIVE,
    MET,
    NOT_MET,
    Interval,
    judge,
    median_interval,
    paired_ratios,
    ratio_interval,
    slope_per_hour,
    verdict,
)


def _interval(low: float, high: float, n: int = 5) -> Interval:
    return Interval((low + high) / 2, low, high, n, 0.9375)


def test_five_repeats_give_min_and_max_at_their_exact_coverage() -> None:
    i = median_interval([3.0, 1.0, 5.0, 2.0, 4.0])
    assert (i.estimate, i.low, i.high, i.n) == (3.0, 1.0, 5.0, 5)
    assert i.coverage == pytest.approx(1 - 2 * 0.5**5)


def test_more_repeats_narrow_the_interval_to_the_order_statistics_that_keep_95_percent() -> None:
    i = median_interval([float(v) for v in range(1, 21)])
    # P(Binomial(20, 1/2) <= 5) = 0.0207: [x(6), x(15)] holds the median with 95.9%; [x(7), x(14)] only 88.5%
    assert (i.low, i.high) == (6.0, 15.0)
    assert i.coverage == pytest.approx(1 - 2 * stats.binom.cdf(5, 20, 0.5))


def test_nan_samples_are_left_out_and_none_left_is_no_interval() -> None:
    assert median_interval([1.0, math.nan, 2.0, 3.0]).n == 3
    assert median_interval([math.nan]).n == 0


@pytest.mark.parametrize(
    ("low", "high", "target", "higher_is_better", "expected"),
    [
        (11.0, 13.0, 10.0, True, MET),
        (8.0, 9.5, 10.0, True, NOT_MET),
        (9.0, 12.0, 10.0, True, INCONCLUSIVE),  # straddles the target
        (9.0, 14.0, 15.0, False, MET),
        (16.0, 20.0, 15.0, False, NOT_MET),
        (12.0, 18.0, 15.0, False, INCONCLUSIVE),
    ],
)
def test_verdict_is_met_only_when_the_whole_interval_clears_the_target(
    low: float, high: float, target: float, higher_is_better: bool, expected: str
) -> None:
    assert verdict(_interval(low, high), target, higher_is_better) == expected


def test_too_few_samples_are_inconclusive_even_far_past_the_target() -> None:
    assert verdict(median_interval([100.0]), 10.0, True) == INCONCLUSIVE  # a single measurement
    assert verdict(median_interval([100.0, 120.0]), 10.0, True) == INCONCLUSIVE
    assert verdict(median_interval([1.0]), 10.0, True) == INCONCLUSIVE
    assert verdict(median_interval([100.0, 120.0, 110.0]), 10.0, True) == MET


def test_one_slow_reference_cell_cannot_make_met_when_the_other_pairs_say_otherwise() -> None:
    ours = [1000.0] * 5
    reference = [110.0, 105.0, 60.0, 108.0, 112.0]  # the third reference cell ran while the machine was busy
    assert ours[2] / reference[2] >= 10  # the old rule, one reference cell: "16.7x: met"
    assert verdict(ratio_interval(ours, reference), 10.0, True) != MET
    # With more pairs the outlier falls outside the interval, and the verdict is the other pairs'.
    many_ours, many_ref = [1000.0] * 20, [110.0, 105.0, 108.0, 112.0] * 4 + [60.0, 61.0, 109.0, 107.0]
    assert verdict(ratio_interval(many_ours, many_ref), 10.0, True) == NOT_MET


def test_paired_ratios_pair_by_round_and_drop_an_invalid_baseline() -> None:
    assert paired_ratios([10.0, 20.0, 30.0], [5.0, math.nan, 0.0])[0] == 2.0
    assert ratio_interval([10.0, 20.0, 30.0, 40.0], [5.0, math.nan, 10.0, 10.0]).n == 3
    with pytest.raises(ValueError, match="unpaired"):
        paired_ratios([1.0, 2.0], [1.0])


def test_slope_per_hour_recovers_a_linear_rise_with_an_interval_around_it() -> None:
    minutes = [float(m) for m in range(1, 31)]
    i = slope_per_hour(minutes, [500 + 0.5 * m + (0.3 if m % 2 else -0.3) for m in minutes])
    assert i.estimate == pytest.approx(30.0, rel=0.05)
    assert i.low < 30.0 < i.high and i.kind == "slope"


def test_judge_records_the_claim_its_interval_and_target() -> None:
    record = judge("p99", median_interval([9.0, 10.0, 11.0]), 15.0, False, "{:.1f}", " ms")
    assert record == {
        "claim": "p99", "target": "<= 15.0 ms", "value": "10.0 ms [9.0, 11.0] (n=3, 75%)",
        "low": 9.0, "high": 11.0, "verdict": MET,
    }  # fmt: skip
    assert judge("p99", median_interval([9.0, math.inf, 11.0]), 15.0, False)["high"] is None


def test_a_slope_on_too_few_points_has_no_bound() -> None:
    i = slope_per_hour([1.0, 2.0, 3.0], [500.0, 500.5, 500.2])
    assert (i.low, i.high) == (-math.inf, math.inf)
    assert verdict(i, 10.0, False) == INCONCLUSIVE
