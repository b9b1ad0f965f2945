"""`python -m services.train.rating.tuning.cli`: the weekly search by hand (./scripts/tune.sh), same code as the DAG."""

from __future__ import annotations

import argparse
import logging
import os

from services.core import embedded_s3
from services.core.settings import get_settings
from services.train.context import Context
from services.train.rating.tuning.steps import algorithms_from, tune_all

log = logging.getLogger("tune")


def main(argv: list[str] | None = None) -> int:
    """Parse the budget, run every algorithm's search, publish, log a summary."""
    settings = get_settings()
    parser = argparse.ArgumentParser(prog="tune.sh", description=__doc__)
    parser.add_argument("--trials", type=int, default=settings.tune_trials, help="trial cap per algorithm")
    parser.add_argument(
        "--timeout", type=float, default=settings.tune_timeout_s, help="seconds, all together"
    )
    parser.add_argument(
        "--algorithms", nargs="+", default=[settings.tune_algorithms], help="names, space- or comma-separated"
    )
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s", datefmt="%H:%M:%S")
    for noisy in ("botocore", "urllib3", "optuna"):
        logging.getLogger(noisy).setLevel(logging.WARNING)
    try:
        algorithms = algorithms_from(",".join(args.algorithms))
    except ValueError as e:
        parser.error(str(e))  # a usage error (exit 2), not a traceback
    # tune.sh leaves the embedded S3 to this point, so a mistyped option starts no server.
    if os.environ.get("S3_EMBEDDED") == "1":
        embedded_s3.main(["start"])
    ctx = Context.from_settings(settings)
    published = tune_all(ctx, algorithms, n_trials=args.trials, timeout_s=args.timeout)
    best = ctx.store.get_json(published["key"])
    log.info(
        "%-14s %8s %12s %12s %8s  %s", "algorithm", "trials", "default RMSE", "best RMSE", "seconds", "study"
    )
    for algorithm in algorithms:
        e = best["algorithms"][algorithm]
        default = "n/a" if e["default_value"] is None else f"{e['default_value']:.4f}"
        log.info("%-14s %8d %12s %12.4f %8.0f  %s (%s)", algorithm, e["trials_run"], default, e["best_value"],
                 e["seconds"], e["study"], e["storage"])  # fmt: skip
    log.info(
        "published %s and tuning/rating/latest.json: the next daily run trains with these", published["key"]
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
