"""The rating shadow's live record: the shadow version scored beside production on the day's new movies.

A rating challenger in shadow (`registry.sh canary rating <version>`) scores every /predict beside
production without being returned. Its live record is what evaluate_live measures for production:
RMSE and MAE on the day's new, labelled movies, here on the movies neither version was built from,
both models on the same movies, so the difference is paired: a bootstrap over movies (at least
MIN_PAIRED movies) gives its 95% interval.

The rule: the rating model is still promoted by select_and_publish's offline comparison on the time
holdout. The shadow record is evidence for a person, who ends the shadow by hand (`registry.sh
promote rating` or `rollback rating`): about a hundred new labelled movies a day are too few and too
noisy to promote on by themselves. The record goes into the day's live report and into
reports/experiments/dt=D/rating.json, the shadow's daily report, beside the canary's.
"""

from __future__ import annotations

import hashlib
import logging
from typing import Any

import numpy as np

from services.core import experiments
from services.core.events import report_key
from services.core.experiments import Experiment
from services.core.storage import ObjectNotFound
from services.train.context import Context
from services.train.experiments.steps import experiment_days
from services.train.rating.production import Production, load_production
from services.train.rating.scores import errors, pooled

log = logging.getLogger(__name__)

MIN_PAIRED = 20  # fewer movies: the figures, but no interval
CONFIDENCE = 0.95


def running_shadow(ctx: Context) -> Experiment | None:
    """The rating experiment in shadow now (None when none, or its candidate already is production)."""
    doc = experiments.read_candidates(ctx.registry, "rating")
    running = experiments.effective_candidate(doc, ctx.registry.production_version("rating"))
    return running if running is not None and running.mode == "shadow" else None


def paired_difference(
    y: np.ndarray, prod: np.ndarray, shadow: np.ndarray, resamples: int, seed: int
) -> dict[str, dict[str, float]] | None:
    """Shadow minus production RMSE and MAE on the same movies, with a bootstrap interval over movies."""
    n = len(y)
    if n < MIN_PAIRED:
        return None
    err_p, err_s = prod - y, shadow - y
    idx = np.random.default_rng(seed).integers(0, n, size=(resamples, n))

    def rmse(e: np.ndarray) -> np.ndarray:
        return np.sqrt(np.mean(e**2, axis=-1))

    def mae(e: np.ndarray) -> np.ndarray:
        return np.mean(np.abs(e), axis=-1)

    tail = (1 - CONFIDENCE) / 2
    out = {}
    for name, f in (("rmse", rmse), ("mae", mae)):
        boot = f(err_s[idx]) - f(err_p[idx])
        low, high = np.quantile(boot, [tail, 1 - tail])
        out[name] = {"estimate": float(f(err_s) - f(err_p)), "low": float(low), "high": float(high),
                     "confidence": CONFIDENCE}  # fmt: skip
    return out


def shadow_record(
    ctx: Context, day: str, prod: Production, movies: list[dict[str, Any]], y: np.ndarray,
    prod_predicted: np.ndarray,
) -> dict[str, Any] | None:  # fmt: skip
    """Score the running shadow beside production on the day's movies; write its daily report; None if none."""
    running = running_shadow(ctx)
    if running is None:
        return None
    days = experiment_days(running.started_at, day)
    if not days:
        return None
    base = {"experiment_id": running.experiment_id, "shadow_version": running.version,
            "production_version": prod.version}  # fmt: skip
    shadow = load_production(ctx, running.version)
    if shadow is None:
        record = {**base, "status": f"shadow {running.version} cannot be loaded (see the log)"}
    else:
        both = np.array([int(m["id"]) not in shadow.seen for m in movies], dtype=bool)
        fresh = [m for m, keep in zip(movies, both, strict=True) if keep]
        y_k, prod_k = y[both], np.asarray(prod_predicted)[both]
        shadow_k = shadow.predict(fresh) if fresh else np.zeros(0)
        seed = int.from_bytes(
            hashlib.blake2b(f"{running.experiment_id}/{day}".encode(), digest_size=8).digest()
        )
        record = {
            **base, "status": "ok" if fresh else "no new labelled movies both versions never saw",
            "movies": len(fresh), "excluded_seen_by_shadow": int((~both).sum()),
            "production": errors(y_k, prod_k), "shadow": errors(y_k, shadow_k),
            "difference": paired_difference(y_k, prod_k, shadow_k, ctx.settings.experiment_bootstrap, seed),
        }  # fmt: skip
    report = {
        "date": day, "experiment_id": running.experiment_id, "model": "rating", "mode": "shadow",
        "candidate_version": running.version, "production_version": running.production_version,
        "share": 0.0, "started_at": running.started_at, "days_running": len(days), "live": record,
        "window": _window(ctx, running, days, record), "rule": running.rule.model_dump(), "verdict": "continue",
        "outcome": None,
        "reason": "shadow: its live record is evidence; it is promoted or rolled back by hand (registry.sh)",
    }  # fmt: skip
    ctx.store.put_json(report_key("experiments", day, "rating.json"), report)
    log.info("rating shadow %s on %s: %s", running.version, day, record)
    return record


def _window(ctx: Context, running: Experiment, days: list[str], today: dict[str, Any]) -> dict[str, Any]:
    """Both versions' errors pooled over the shadow's days so far (sums, not a mean of daily figures)."""
    records = [today]
    for day in days[:-1]:
        try:
            old = ctx.store.get_json(report_key("experiments", day, "rating.json"))
        except ObjectNotFound:
            continue
        if old.get("experiment_id") == running.experiment_id and old.get("live", {}).get("movies"):
            records.append(old["live"])
    out: dict[str, Any] = {"days": len([r for r in records if r.get("movies")])}
    for arm in ("production", "shadow"):
        figures = pooled([r[arm] for r in records if r.get("movies")])
        out[arm] = {k: figures[k] for k in ("count", "rmse", "mae")}
    return out
