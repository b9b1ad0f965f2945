"""Print what a pipeline run decided, from the objects it wrote to S3."""

from __future__ import annotations

import argparse
import logging
import sys
from typing import Any

from services.core.events import report_key
from services.core.registry import MODEL_NAMES
from services.core.storage import ObjectNotFound, ObjectStore
from services.train.context import Context

log = logging.getLogger(__name__)


def main(argv: list[str] | None = None) -> int:
    """CLI: report on one data day's run."""
    parser = argparse.ArgumentParser(description="Summarise a pipeline run's decisions.")
    parser.add_argument("date", help="the data day the run processed, YYYY-MM-DD")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    ctx = Context.from_env()
    for name in ("rating_decision", "recommender_decision"):
        try:
            d = ctx.store.get_json(f"runs/dt={args.date}/{name}.json")
        except ObjectNotFound:
            continue
        verdict = "skipped" if d.get("skipped") else ("PROMOTED" if d.get("promoted") else "kept production")
        log.info("%s: version %s %s — %s", name.split("_")[0], d.get("version"), verdict, d.get("reason"))
    for model in MODEL_NAMES:
        log.info("production %-12s %s", model, ctx.registry.production_version(model) or "(none)")
    for line in monitoring_lines(ctx.store, args.date):
        log.info("%s", line)
    return 0


def _get(store: ObjectStore, key: str) -> dict[str, Any] | None:
    try:
        return store.get_json(key)
    except ObjectNotFound:
        return None


def monitoring_lines(store: ObjectStore, day: str) -> list[str]:
    """The day's live error, drift and alert verdict, one line each (what the monitoring tasks wrote)."""
    lines = []
    completeness = _get(store, report_key("events", day, "completeness.json"))
    if completeness:
        lines.append(f"events: {completeness['note']}")
    live = _get(store, report_key("rating", day, "live.json"))
    if live and live.get("model", {}).get("count"):
        m, w = live["model"], live["window"]
        lines.append(
            f"live error: {live['model_version']} on {m['count']} new movies: RMSE {m['rmse']:.3f} (reference "
            f"recipe {live['reference_recipe']['rmse']:.3f}); {w['days_back']}-day RMSE {w['rmse']:.3f} vs "
            f"validation {live['validation_rmse']:.3f}"
        )
    elif live:
        lines.append(f"live error: {live.get('status')}")
    drift = _get(store, report_key("drift", day, "summary.json")) or {}
    for name, c in (drift.get("comparisons") or {}).items():
        if c.get("status") == "ok":
            lines.append(f"drift of {name}: {len(c['drifted'])} of {len(c['features'])} features drifted "
                         f"{c['drifted']} (report: {c['report']})")  # fmt: skip
        else:
            lines.append(f"drift of {name}: {c.get('status')}")
    verdict = _get(store, report_key("alerts", day, "alert.json"))
    if verdict:
        reasons = "; ".join(r["message"] for r in verdict.get("reasons", []))
        lines.append(f"alert: {reasons}" if verdict.get("alert") else "alert: none")
    return lines


if __name__ == "__main__":
    sys.exit(main())
