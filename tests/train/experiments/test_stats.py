"""The canary's statistics on synthetic users: per-user figures, bootstrap intervals, the decision rule."""

from __future__ import annotations

import tracemalloc

import numpy as np
import pytest

from services.core.experiments import ExperimentRule
from services.train.experiments.stats import (
    ArmSample,
    arm_sample,
    compare,
    decide,
    decision_confidence,
    users_needed,
)

RULE = ExperimentRule(delta=0.01, min_users=200, max_days=7, confidence=0.95)


def users(n: int, p_hit: float, seed: int, impressions: int = 3) -> ArmSample:
    """n users with `impressions` responses each, every response answered with probability p_hit."""
    rng = np.random.default_rng(seed)
    codes = np.repeat(np.arange(n), impressions)
    hit = rng.random(len(codes)) < p_hit
    best = np.where(hit, rng.integers(0, 10, len(codes)), -1)
    return arm_sample(codes, best)


def judge(prod: ArmSample, cand: ArmSample, days: int = 1, guards_ok: bool = True):  # noqa: ANN201
    comparison = compare(prod, cand, RULE, resamples=2000, seed=7)
    return comparison, decide(
        comparison, RULE, guards_ok=guards_ok, guard_detail="p99 +40 ms", days_running=days
    )


def test_per_user_figures_are_computed_by_hand() -> None:
    # User 0: two responses, one answered at rank 0 -> hit 1/2, MRR (1 + 0) / 2; user 2: one, rank 1.
    sample = arm_sample(np.array([0, 0, 2]), np.array([0, -1, 1]))
    assert sample.users == 2 and sample.impressions == 3
    assert sample.hit_rate.tolist() == [0.5, 1.0] and sample.mrr.tolist() == [0.5, 0.5]
    assert sample.figures() == {"users": 2, "impressions": 3, "hit_rate": 0.75, "mrr": 0.5}


def test_a_clearly_better_candidate_is_promoted() -> None:
    comparison, decision = judge(users(1500, 0.20, 1), users(600, 0.35, 2))
    assert decision.verdict == "promote" and decision.outcome == "promoted"
    assert comparison.decision["hit_rate"].low > 0
    assert "hit rate +0.1" in decision.reason and "600 candidate and 1500 production users" in decision.reason


def test_a_clearly_worse_candidate_is_rolled_back() -> None:
    comparison, decision = judge(users(1500, 0.30, 3), users(600, 0.15, 4))
    assert (decision.verdict, decision.outcome) == ("rollback", "rolled_back")
    assert comparison.decision["hit_rate"].high < 0 and "candidate worse" in decision.reason


def test_a_tie_runs_on_then_ends_inconclusive_at_max_days() -> None:
    prod, cand = users(900, 0.25, 5), users(250, 0.25, 6)
    for day in range(1, RULE.max_days):
        _, decision = judge(prod, cand, days=day)
        assert decision.verdict == "continue" and f"day {day} of at most 7" in decision.reason
    _, last = judge(prod, cand, days=RULE.max_days)
    assert (last.verdict, last.outcome) == ("rollback", "inconclusive")
    assert last.reason.startswith("no decision after 7 days")


def test_nothing_is_decided_below_the_minimum_users_however_large_the_gap() -> None:
    _, decision = judge(users(150, 0.05, 7), users(150, 0.6, 8))
    assert decision.verdict == "continue" and "200 needed per arm" in decision.reason


def test_a_failed_guard_rolls_back_at_once() -> None:
    _, decision = judge(users(50, 0.2, 9), users(20, 0.4, 10), guards_ok=False)
    assert (decision.verdict, decision.outcome) == ("rollback", "rolled_back")
    assert decision.reason == "guard failed: p99 +40 ms"


def test_the_unit_is_the_user_so_one_heavy_user_cannot_swing_it() -> None:
    # 400 ordinary candidate users do worse than production; one bot-like user answers 20,000 responses.
    rng = np.random.default_rng(11)
    codes = np.r_[np.repeat(np.arange(400), 3), np.full(20_000, 400)]
    hit = np.r_[rng.random(1200) < 0.10, np.ones(20_000, dtype=bool)]
    cand = arm_sample(codes, np.where(hit, 0, -1))
    prod = users(1500, 0.30, 12)
    assert hit.mean() > 0.9  # counted by impression the candidate would look far better
    comparison, decision = judge(prod, cand)
    assert cand.figures()["hit_rate"] == pytest.approx((hit[:1200].reshape(400, 3).mean(1).sum() + 1) / 401)
    assert decision.verdict == "rollback" and comparison.difference["hit_rate"].estimate < -0.15


def test_the_interval_narrows_with_more_users() -> None:
    widths = []
    for n in (300, 3000, 30_000):
        comparison, _ = judge(users(n, 0.25, n), users(n, 0.25, n + 1))
        d = comparison.difference["hit_rate"]
        widths.append(d.high - d.low)
        assert d.low < 0 < d.high  # a true tie is inside its interval
    # ~ 1 / sqrt(n): ten times the users, about a third of the width
    assert widths[1] < widths[0] / 2.5 and widths[2] < widths[1] / 2.5


def test_the_decision_interval_is_wider_than_the_reported_one() -> None:
    comparison, _ = judge(users(800, 0.25, 13), users(300, 0.28, 14))
    assert decision_confidence(RULE) == pytest.approx(1 - 0.05 / 7)
    for metric in ("hit_rate", "mrr"):
        shown, deciding = comparison.difference[metric], comparison.decision[metric]
        assert deciding.low < shown.low <= shown.estimate <= shown.high < deciding.high
        assert shown.confidence == 0.95 and deciding.confidence == pytest.approx(0.992857, abs=1e-6)
    report = comparison.to_report()
    assert set(report["decision_interval"]["mrr"]) == {"low", "high", "confidence"}


def test_the_same_seed_gives_the_same_interval_and_an_empty_arm_gives_none() -> None:
    prod, cand = users(500, 0.2, 15), users(200, 0.2, 16)
    assert judge(prod, cand)[0].difference == judge(prod, cand)[0].difference
    empty = compare(prod, arm_sample(np.zeros(0), np.zeros(0)), RULE, resamples=200, seed=1)
    assert (
        empty.to_report()["difference"] is None and empty.to_report()["arms"]["candidate"]["hit_rate"] is None
    )
    decision = decide(empty, RULE, guards_ok=True, guard_detail="", days_running=2)
    assert decision.verdict == "continue" and "0 candidate" in decision.reason


def test_users_needed_is_what_the_bootstrap_needs_to_clear_the_margin() -> None:
    # Per-user hit rate with 3 responses at p = 0.25: sd ~ 0.25; a true +0.02 with share 0.2.
    # A rough guide, so: three times that many users clear it, a third of them do not yet.
    n = users_needed(0.25, 0.02, RULE, 0.2)
    assert 2500 < n < 4000
    verdicts = []
    for scale in (3, 1 / 3):
        prod, cand = users(int(0.8 * n * scale), 0.25, 17), users(int(0.2 * n * scale), 0.27, 18)
        assert 0.2 < float(np.std(prod.hit_rate)) < 0.3
        verdicts.append(judge(prod, cand)[1].verdict)
    assert verdicts == ["promote", "continue"]


def test_ten_to_the_five_users_bootstrap_in_bounded_memory() -> None:
    # tracemalloc sees numpy's array buffers: its peak is what compare() itself allocated at once, whatever
    # the process held before (ru_maxrss, the process's all-time peak, could read 0 growth).
    prod, cand = users(80_000, 0.25, 19, impressions=2), users(20_000, 0.26, 20, impressions=2)
    tracemalloc.start()
    try:
        comparison = compare(prod, cand, RULE, resamples=2000, seed=3)
        peak_mb = tracemalloc.get_traced_memory()[1] / 2**20
    finally:
        tracemalloc.stop()
    # A chunk gathers CHUNK_VALUES values (int32 index + float64 value, ~25 MB); the gather of every
    # resample at once would be 80,000 x 2,000 x 12 bytes = 1.8 GB.
    assert peak_mb < 64, f"compare() peaked at {peak_mb:.0f} MB: the bootstrap is not chunked"
    assert comparison.difference["hit_rate"].low < 0.01 < comparison.difference["hit_rate"].high
