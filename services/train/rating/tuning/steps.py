"""The search's steps, shared by the weekly DAG (dags/rating_tune.py) and ./scripts/tune.sh."""

from __future__ import annotations

import logging
import time
from typing import Any

from services.train.context import Context
from services.train.rating.tuning import store as tuning_store

log = logging.getLogger(__name__)


def algorithms_from(value: str | list[str] | tuple[str, ...]) -> list[str]:
    """A comma-separated list (TUNE_ALGORITHMS, --algorithms) as tunable algorithm names."""
    from services.train.rating.tuning.search import TUNABLE

    names = [a.strip() for a in value.split(",")] if isinstance(value, str) else list(value)
    names = [a for a in names if a]
    unknown = sorted(set(names) - set(TUNABLE))
    if unknown or not names:
        raise ValueError(f"unknown algorithms {unknown or names} (tunable: {', '.join(TUNABLE)})")
    return names


def pick_split(ctx: Context) -> str:
    """The data day whose stored split every task of one search tunes on (the most recent one)."""
    day, meta = tuning_store.latest_features(ctx.store)
    log.info("tuning on features/dt=%s: split sizes %s", day, meta.get("sizes"))
    return day


def tune_algorithm(
    ctx: Context, data_day: str, algorithm: str, n_trials: int | None = None, timeout_s: float | None = None
) -> dict[str, Any]:
    """Search one algorithm on data_day's train/val split; its result to tuning/rating/dt=<day>/<alg>.json."""
    from services.train.rating.tuning.search import load_train_val, search

    meta = ctx.store.get_json(f"features/dt={data_day}/meta.json")
    data = load_train_val(ctx.store, data_day, meta)
    result = search(
        ctx, algorithm, data,
        n_trials=n_trials or ctx.settings.tune_trials,
        timeout_s=timeout_s or ctx.settings.tune_timeout_s / len(algorithms_from(ctx.settings.tune_algorithms)),
    )  # fmt: skip
    key = tuning_store.day_key(data_day, f"{algorithm}.json")
    ctx.store.put_json(key, result)
    return {"algorithm": algorithm, "key": key, "best_value": result["best_value"],
            "default_value": result["default_value"], "trials_run": result["trials_run"]}  # fmt: skip


def publish_tuned(ctx: Context, data_day: str, tuned: list[dict[str, Any]]) -> dict[str, Any]:
    """best.json of the data day from the tune tasks' results, then the latest.json pointer."""
    results = [ctx.store.get_json(t["key"]) for t in tuned]
    best = tuning_store.publish(ctx.store, data_day, results)
    return {"key": best["key"], "algorithms": {a: e["best_value"] for a, e in best["algorithms"].items()}}


def tune_all(
    ctx: Context, algorithms: list[str], n_trials: int | None = None, timeout_s: float | None = None
) -> dict[str, Any]:
    """Every algorithm in turn within one total time budget (what an unused share leaves goes on)."""
    total = timeout_s or ctx.settings.tune_timeout_s
    deadline = time.monotonic() + total
    day = pick_split(ctx)
    tuned = []
    for i, algorithm in enumerate(algorithms):
        share = max(1.0, (deadline - time.monotonic()) / (len(algorithms) - i))
        tuned.append(tune_algorithm(ctx, day, algorithm, n_trials, share))
    return publish_tuned(ctx, day, tuned)
