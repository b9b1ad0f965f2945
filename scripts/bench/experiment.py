"""Figures of the canary's statistics (services/train/experiments/stats.py), on simulated users.

    .venv/bin/python -m scripts.bench.experiment [--reps 300] [--seed 0]

1. Cost: the bootstrap of 10^5 users (80/20 split) with 2000 resamples, time and peak memory.
2. Peeking: experiments whose candidate is exactly delta worse (the margin: a promotion is wrong),
   looked at daily for max_days, users arriving every day. How often a plain 95% interval read daily
   promotes it, against the Bonferroni interval the rule uses.
3. Users needed: for true differences from -5 to +5 points of hit rate, the share of experiments
   promoted, rolled back or inconclusive, and the median day of the decision.
"""

from __future__ import annotations

import argparse
import logging
import resource
import sys
import time
from typing import Any

import numpy as np

from scripts.bench.record import write_record
from services.core.experiments import ExperimentRule
from services.train.experiments.stats import Comparison, arm_sample, compare, decide

RULE = ExperimentRule()  # delta 0.01, 200 users per arm, 7 days, 95%
BASE_HIT = 0.30  # per response, production
USERS_PER_DAY = 1000  # new users a day, both arms
SHARE = 0.2


def _users(rng: np.random.Generator, n: int, p_hit: float, start: int) -> tuple[np.ndarray, np.ndarray]:
    """n users (codes from start) with 1-5 responses each; each user's own taste varies around p_hit."""
    counts = rng.integers(1, 6, n)
    taste = np.clip(rng.normal(p_hit, 0.1, n), 0.0, 1.0)  # users differ: that is why the unit is the user
    codes = np.repeat(np.arange(start, start + n), counts)
    hit = rng.random(len(codes)) < np.repeat(taste, counts)
    return codes, np.where(hit, rng.integers(0, 10, len(codes)), -1)


def experiment(rng: np.random.Generator, diff: float, resamples: int) -> tuple[str, int, str, int]:
    """One experiment looked at daily: (rule's verdict, its day, a naive 95% daily rule's verdict, its day)."""
    arms = {"production": ([], []), "candidate": ([], [])}
    ruled = naive = None
    for day in range(1, RULE.max_days + 1):
        n_cand = rng.binomial(USERS_PER_DAY, SHARE)
        for arm, n, p in (
            ("candidate", n_cand, BASE_HIT + diff),
            ("production", USERS_PER_DAY - n_cand, BASE_HIT),
        ):
            codes, best = _users(rng, n, p, day * USERS_PER_DAY)
            arms[arm][0].append(codes)
            arms[arm][1].append(best)
        sample = {a: arm_sample(np.concatenate(c), np.concatenate(b)) for a, (c, b) in arms.items()}
        comparison = compare(sample["production"], sample["candidate"], RULE, resamples=resamples,
                             seed=int(rng.integers(2**32)))  # fmt: skip
        plain = Comparison(comparison.production, comparison.candidate, comparison.difference,
                           comparison.difference)  # fmt: skip
        for which, c in (("ruled", comparison), ("naive", plain)):
            if (ruled if which == "ruled" else naive) is not None:
                continue
            d = decide(c, RULE, guards_ok=True, guard_detail="", days_running=day)
            if d.verdict != "continue":
                verdict = "inconclusive" if d.outcome == "inconclusive" else d.verdict
                if which == "ruled":
                    ruled = (verdict, day)
                else:
                    naive = (verdict, day)
        if ruled is not None and naive is not None:
            break
    assert ruled is not None and naive is not None
    return ruled[0], ruled[1], naive[0], naive[1]


def cost() -> dict[str, float]:
    """Time and peak-RSS growth of one bootstrap of 10^5 users; printed, and returned as figures."""
    rng = np.random.default_rng(0)
    prod = arm_sample(*_users(rng, 80_000, BASE_HIT, 0))
    cand = arm_sample(*_users(rng, 20_000, BASE_HIT, 0))
    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    start = time.perf_counter()
    compare(prod, cand, RULE, resamples=2000, seed=1)
    seconds = time.perf_counter() - start
    grown = (resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - before) / 1024
    print(f"bootstrap, 80,000 + 20,000 users x 2000 resamples: {seconds:.2f} s, "
          f"peak RSS +{grown:.0f} MB")  # fmt: skip
    return {"bootstrap_s": round(seconds, 2), "bootstrap_peak_rss_growth_mb": round(grown)}


def main() -> None:
    parser = argparse.ArgumentParser(
        prog="python -m scripts.bench.experiment",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--reps", type=int, default=300)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--resamples", type=int, default=1000)
    args = parser.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(message)s", stream=sys.stderr)
    figures: dict[str, Any] = {"cost": cost(), "reps": args.reps, "resamples": args.resamples, "rows": []}
    rng = np.random.default_rng(args.seed)
    print(f"\n{USERS_PER_DAY} new users a day, share {SHARE}, production hit rate {BASE_HIT} per response, "
          f"{args.reps} experiments per row, {args.resamples} resamples")  # fmt: skip
    print(f"{'true diff':>9} | {'rule: promote':>13} {'rollback':>8} {'inconcl.':>8} {'median day':>10} | "
          f"{'naive 95%: promote':>18} {'rollback':>8}")  # fmt: skip
    table = ["| true difference | rule: promote | rollback | inconclusive | median day | naive 95%: promote "
             "| naive: rollback |", "|---:|---:|---:|---:|---:|---:|---:|"]  # fmt: skip
    for diff in (-0.05, -0.02, -RULE.delta, 0.0, 0.02, 0.05):
        runs = [experiment(rng, diff, args.resamples) for _ in range(args.reps)]
        share = {k: np.mean([r[0] == k for r in runs]) for k in ("promote", "rollback", "inconclusive")}
        naive = {k: np.mean([r[2] == k for r in runs]) for k in ("promote", "rollback")}
        decided = [r[1] for r in runs if r[0] != "inconclusive"]
        day = f"{np.median(decided):.0f}" if decided else "-"
        print(f"{diff:+9.2f} | {share['promote']:13.1%} {share['rollback']:8.1%} {share['inconclusive']:8.1%} "
              f"{day:>10} | {naive['promote']:18.1%} {naive['rollback']:8.1%}")  # fmt: skip
        table.append(f"| {diff:+.2f} | {share['promote']:.1%} | {share['rollback']:.1%} | "
                     f"{share['inconclusive']:.1%} | {day} | {naive['promote']:.1%} | {naive['rollback']:.1%} |")  # fmt: skip
        figures["rows"].append({"true_difference": diff, **{f"rule_{k}": v for k, v in share.items()},
                                "median_decision_day": float(np.median(decided)) if decided else None,
                                **{f"naive_{k}": v for k, v in naive.items()}})  # fmt: skip
    write_record("experiment", sys.argv[1:], figures, [], {"decisions": "\n".join(table)})


if __name__ == "__main__":
    main()
