"""A rating shadow is scored beside production on the day's new labelled movies (real steps, real S3)."""

from __future__ import annotations

import json
import math
from datetime import UTC, datetime, timedelta
from functools import cache
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from services.core import experiments
from services.core.events import report_key
from services.core.features import Encoders, featurize
from services.core.movie import normalize_movie
from services.core.rating_model import load_rating_model
from services.core.settings import Settings
from services.train import raw_store
from services.train.context import Context
from services.train.monitoring.live_eval import evaluate_live
from services.train.movies.snapshot import load_movies
from services.train.rating import steps
from services.train.rating.data import first_run_rows, labelled, targets

ROOT = Path(__file__).resolve().parents[3]


@cache
def _rows() -> list[dict[str, Any]]:
    # Every 8th labelled movie of the snapshot: ~500 rows, quick to train on (as tests/train/rating/test_tuning.py).
    return first_run_rows(ROOT / "data" / "snapshot", holdback=0, min_vote_count=10)[::8]


def _days() -> tuple[str, str]:
    """Yesterday and today (UTC), read when the test runs: a shadow starts now, so its first day is today."""
    today = datetime.now(UTC).date()
    return (today - timedelta(days=1)).isoformat(), today.isoformat()


def _day_one(ctx: Context, day1: str) -> tuple[str, str]:
    """Day 1 publishes XGBoost to production and the mean baseline beside it (not promoted: worse)."""
    key = f"curated/dt={day1}/movies.jsonl.gz"
    raw_store.write_jsonl(ctx.store, key, _rows())
    features = steps.build_features(ctx, day1, key, [f"raw/tmdb/dt={day1}"])
    first = steps.select_and_publish(
        ctx, day1, features, [steps.train_rating(ctx, day1, features, "xgboost")]
    )
    second = steps.select_and_publish(ctx, day1, features, [steps.train_rating(ctx, day1, features, "mean")])
    # By the decisions, not by sorting version ids: two published in the same second sort by their suffix.
    production, mean = first["version"], second["version"]
    assert (first["promoted"], second["promoted"]) == (True, False)
    assert ctx.registry.production_version("rating") == production
    return production, mean


def _day_two_movies(ctx: Context, day2: str) -> list[dict[str, Any]]:
    """Day 2's partition: 60 labelled snapshot movies day 1 never saw."""
    seen = {m["id"] for m in _rows()}
    fresh = [m for m in load_movies(ROOT / "data" / "snapshot") if m["id"] not in seen]
    movies = [m for m in fresh if labelled([normalize_movie(m)], ctx.settings.min_vote_count)][:60]
    raw_store.write_partition(ctx.store, day2, movies, {"source": "test"})
    return [normalize_movie(m) for m in movies]


def _predict(ctx: Context, version: str, movies: list[dict[str, Any]]) -> np.ndarray:
    manifest = ctx.registry.manifest("rating", version)
    files = {n: ctx.registry.read_file(manifest, n) for n in manifest.files}
    encoders = Encoders.from_json(json.loads(files["encoders.json"]))
    return load_rating_model(manifest.algorithm, files).predict(featurize(movies, encoders))


@pytest.mark.integration
def test_the_shadow_is_scored_beside_production_on_the_same_new_movies(s3_settings: Settings) -> None:
    ctx = Context.from_settings(s3_settings.model_copy(update={"experiment_bootstrap": 500}))
    day1, day2 = _days()
    production, mean = _day_one(ctx, day1)
    movies = _day_two_movies(ctx, day2)

    evaluate_live(ctx, day2)  # no shadow yet: nothing about one
    assert ctx.store.get_json(report_key("rating", day2, "live.json"))["shadow"] is None
    assert not ctx.store.list(report_key("experiments", day2, ""))

    exp = experiments.start(ctx.registry, "rating", mean, share=0.0, started_by="test")
    if (
        exp.started_at[:10] != day2
    ):  # midnight UTC passed since _days(): the shadow's first day is the new one
        day2 = exp.started_at[:10]
        movies = _day_two_movies(ctx, day2)
    evaluate_live(ctx, day2)
    live = ctx.store.get_json(report_key("rating", day2, "live.json"))
    record = live["shadow"]
    y = targets(movies)
    expected = {v: float(np.sqrt(np.mean((_predict(ctx, v, movies) - y) ** 2))) for v in (production, mean)}
    assert (record["experiment_id"], record["shadow_version"], record["production_version"]) == (
        exp.experiment_id, mean, production,
    )  # fmt: skip
    assert record["movies"] == live["model"]["count"] == len(movies)
    assert (
        record["production"]["rmse"] == pytest.approx(expected[production], abs=1e-3) == live["model"]["rmse"]
    )
    assert record["shadow"]["rmse"] == pytest.approx(expected[mean], abs=1e-3)
    diff = record["difference"]["rmse"]
    assert diff["estimate"] == pytest.approx(expected[mean] - expected[production], abs=1e-3)
    assert diff["low"] < diff["estimate"] < diff["high"] and diff["confidence"] == 0.95
    daily = ctx.store.get_json(report_key("experiments", day2, "rating.json"))
    assert (
        daily["experiment_id"] == exp.experiment_id and daily["mode"] == "shadow" and daily["live"] == record
    )
    assert daily["window"]["shadow"]["rmse"] == pytest.approx(expected[mean], abs=1e-3)
    assert not math.isnan(daily["window"]["production"]["rmse"])
