"""Print what a pipeline run decided, from the objects it wrote to S3."""

from __future__ import annotations

import argparse
import logging
import sys

from services.core.registry import MODEL_NAMES
from services.core.storage import ObjectNotFound
from services.train.context import Context

log = logging.getLogger(__name__)


def main(argv: list[str] | None = None) -> int:
    """CLI: report on one logical date."""
    parser = argparse.ArgumentParser(description="Summarise a pipeline run's decisions.")
    parser.add_argument("date", help="the logical date, YYYY-MM-DD")
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
    return 0


if __name__ == "__main__":
    sys.exit(main())
