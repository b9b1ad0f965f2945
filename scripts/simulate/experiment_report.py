"""What a simulated experiment prints: each judged day in a few lines, and how it ended."""

from __future__ import annotations

import argparse
import logging
from typing import Any

from scripts.simulate.arms import MODEL

log = logging.getLogger("simulate")


def _pts(d: dict[str, float] | None) -> str:
    if not d:
        return "n/a"
    return f"{100 * d['estimate']:+.1f} pts [{100 * d['low']:+.1f}, {100 * d['high']:+.1f}]" if "estimate" in d \
        else f"[{100 * d['low']:+.1f}, {100 * d['high']:+.1f}]"  # fmt: skip


def print_day(report: dict[str, Any]) -> None:
    """The judge's figures of one simulated day, in a few lines."""
    arms = report["arms"]
    diff, decision = report.get("difference") or {}, report.get("decision_interval") or {}
    rate = {a: "n/a" if arms[a]["hit_rate"] is None else f"{arms[a]['hit_rate']:.3f}" for a in arms}
    log.info("    judged as data day %s (day %d): users production %d / candidate %d; hit rate %s / %s",
             report["date"], report["days_running"], arms["production"]["users"], arms["candidate"]["users"],
             rate["production"], rate["candidate"])  # fmt: skip
    log.info("    difference of hit rate %s (95%%), decision interval %s; MRR %s",
             _pts(diff.get("hit_rate")), _pts(decision.get("hit_rate")), _pts(diff.get("mrr")))  # fmt: skip
    log.info("    guards: %s", report["guards"].get("detail") or report["guards"].get("ok"))
    log.info("    verdict: %s (%s)", report["verdict"].upper(), report["reason"])


def summary(ctx: Any, args: argparse.Namespace, report: dict[str, Any] | None, production: str,
            candidate: str, seconds: float) -> int:  # fmt: skip
    """How it ended, the production pointer, and how many users it took."""
    pointer = ctx.registry.pointer(MODEL)
    print()
    if report is None:
        print("No day was judged.")
        return 1
    arms = report["arms"]
    outcome = report.get("outcome") or "still running"
    print(f"Candidate {candidate} ({args.candidate}) against production {production}: {outcome.upper()} "
          f"after {report['days_running']} simulated days, {seconds:.0f} s")  # fmt: skip
    print(f"  reason: {report['reason']}")
    print(f"  difference of hit rate (candidate - production): {_pts((report.get('difference') or {}).get('hit_rate'))}"
          f" 95% interval; decision interval {_pts((report.get('decision_interval') or {}).get('hit_rate'))}")  # fmt: skip
    needed = "the decision needed" if report.get("outcome") else "so far"
    print(f"  users {needed}: {arms['production']['users']} in production and {arms['candidate']['users']} "
          f"in the candidate arm ({arms['production']['users'] + arms['candidate']['users']} in all)")  # fmt: skip
    print(
        f"  production pointer: {pointer.version if pointer else None} ({pointer.reason if pointer else ''})"
    )
    if report.get("outcome") is None:
        print("  the experiment still runs: ./scripts/registry.sh rollback recommender ends it")
    elif args.candidate == "better" and pointer is not None and pointer.version == production:
        print(
            f"  production is still the popularity baseline: ./scripts/registry.sh promote recommender {candidate}"
        )
    print("  the UI's Model page shows it under Experiments (./scripts/serve.sh, then ./scripts/ui.sh)")
    return 0
