"""Live error: the production rating model scored on the day's new, labelled movies it never saw.

Runs before the day's training, so "production" is the version users were served yesterday. The
reference recipe (five features, XGBoost), trained on the same rows, is scored on the same movies: when
both get worse together the day's movies are harder; when only ours does, the model is the problem.
A rating shadow, when one runs, is scored beside production on the same movies (services/train/experiments/shadow.py).
"""

from __future__ import annotations

import logging
from datetime import date, timedelta
from typing import Any

import numpy as np

from services.core.events import report_key
from services.core.storage import ObjectNotFound
from services.train.context import Context
from services.train.experiments.shadow import shadow_record
from services.train.rating.data import labelled, targets
from services.train.rating.production import load_production, new_movies, training_movies
from services.train.rating.reference_recipe import train_recipe
from services.train.rating.scores import errors, pooled

log = logging.getLogger(__name__)

WINDOW_DAYS = 7


def _earlier_days(ctx: Context, logical_date: str, version: str) -> list[dict[str, Any]]:
    day = date.fromisoformat(logical_date)
    found = []
    for back in range(1, WINDOW_DAYS):
        key = report_key("rating", (day - timedelta(days=back)).isoformat(), "live.json")
        try:
            report = ctx.store.get_json(key)
        except ObjectNotFound:
            continue
        if report.get("model_version") == version and report.get("model", {}).get("count"):
            found.append(report["model"])
    return found


def evaluate_live(ctx: Context, logical_date: str) -> dict[str, Any]:
    """Score the day's new labelled movies with production and the recipe; write reports/rating/…/live.json."""
    key = report_key("rating", logical_date, "live.json")
    prod = load_production(ctx)
    if prod is None:
        report = {"date": logical_date, "status": "no production rating model yet: nothing to judge"}
        ctx.store.put_json(key, report)
        log.info("live error: %s", report["status"])
        return report
    movies = labelled(new_movies(ctx, logical_date, prod.seen), ctx.settings.min_vote_count)
    y = targets(movies)
    predicted = prod.predict(movies) if movies else np.zeros(0)
    model = errors(y, predicted)
    recipe = errors(y, train_recipe(training_movies(ctx, prod)).predict(movies) if movies else np.zeros(0))
    window = pooled([model, *_earlier_days(ctx, logical_date, prod.version)])
    report = {
        "date": logical_date,
        "status": "ok" if movies else "no new labelled movies today",
        "model_version": prod.version,
        "algorithm": prod.manifest.algorithm,
        "built_on": prod.built_on,
        "validation_rmse": prod.manifest.metrics.get("val_rmse"),
        "model": model,
        "reference_recipe": recipe,
        "window": {"days_back": WINDOW_DAYS, **window},
        "movies": [int(m["id"]) for m in movies],
        "shadow": shadow_record(ctx, logical_date, prod, movies, y, predicted),
    }
    ctx.store.put_json(key, report)
    log.info(
        "live error of %s on %d new movies: RMSE %s (recipe %s); %d-day RMSE %s vs validation %s",
        prod.version, model["count"], model["rmse"], recipe["rmse"], WINDOW_DAYS, window["rmse"],
        report["validation_rmse"],
    )  # fmt: skip
    config = {"model_version": prod.version, "date": logical_date}
    with ctx.tracker.run(
        f"rating-live-{logical_date}", config, group="monitoring", job_type="monitor"
    ) as run:
        run.summary(
            {
                "live_count": model["count"],
                "live_rmse": _nan(model["rmse"]),
                "live_mae": _nan(model["mae"]),
                "recipe_live_rmse": _nan(recipe["rmse"]),
                "window_rmse": _nan(window["rmse"]),
                "validation_rmse": _nan(report["validation_rmse"]),
                **_shadow_summary(report["shadow"]),
            }
        )
    return {k: report[k] for k in ("date", "status", "model_version")} | {"rmse": model["rmse"]}


def _shadow_summary(record: dict[str, Any] | None) -> dict[str, float]:
    """The shadow's figures for W&B, beside production's."""
    if not record or not record.get("movies"):
        return {}
    diff = (record.get("difference") or {}).get("rmse") or {}
    return {"shadow_live_rmse": _nan(record["shadow"]["rmse"]), "shadow_live_mae": _nan(record["shadow"]["mae"]),
            "shadow_rmse_difference": _nan(diff.get("estimate"))}  # fmt: skip


def _nan(value: float | None) -> float:
    return float("nan") if value is None else float(value)
