"""The bounded hyperparameter search: budgets, what it reads, what it writes, and daily training using it."""

from __future__ import annotations

import json
import logging
from collections.abc import Iterator
from functools import cache
from pathlib import Path
from typing import Any

import pytest
from pydantic import SecretStr

from services.core.settings import Settings
from services.train import raw_store
from services.train.context import Context
from services.train.rating import steps
from services.train.rating.data import first_run_rows
from services.train.rating.models import DEFAULT_PARAMS
from services.train.rating.tuning import search as tuning
from services.train.rating.tuning import store as tuning_store
from services.train.rating.tuning.steps import tune_all
from tests.pg_cluster import throwaway_postgres

ROOT = Path(__file__).resolve().parents[3]
DAY = "2026-11-30"


@cache
def _rows() -> list[dict[str, Any]]:
    # Every 8th labelled movie of the snapshot: ~500 rows, enough for a real split, quick to train on.
    return first_run_rows(ROOT / "data" / "snapshot", holdback=0, min_vote_count=10)[::8]


def _context(settings: Settings, tmp_path: Path, **overrides: Any) -> Context:
    values = {"tune_sqlite_path": tmp_path / "optuna" / "optuna.db", **overrides}
    return Context.from_settings(settings.model_copy(update=values))


def _features(ctx: Context) -> dict[str, Any]:
    key = f"curated/dt={DAY}/movies.jsonl.gz"
    raw_store.write_jsonl(ctx.store, key, _rows())
    return steps.build_features(ctx, DAY, key, [f"raw/tmdb/dt={DAY}"])


@pytest.fixture(scope="module")
def postgres_url() -> Iterator[str]:
    """A throw-away PostgreSQL cluster on loopback (tests/pg_cluster.py)."""
    with throwaway_postgres() as url:
        yield url


class _Spy:
    """Records what the real objective is handed (and still runs it)."""

    def __init__(self) -> None:
        self.calls: list[tuple[str, tuning.TrainVal]] = []
        self.real = tuning.objective

    def __call__(self, trial: Any, algorithm: str, data: tuning.TrainVal) -> float:
        self.calls.append((algorithm, data))
        return self.real(trial, algorithm, data)


@pytest.mark.integration
def test_search_writes_best_params_and_daily_training_uses_them(
    s3_settings: Settings, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    ctx = _context(s3_settings, tmp_path)
    features = _features(ctx)
    meta = ctx.store.get_json(f"features/dt={DAY}/meta.json")
    read: list[str] = []
    get_bytes = ctx.store.get_bytes
    monkeypatch.setattr(ctx.store, "get_bytes", lambda key: read.append(key) or get_bytes(key))
    spy = _Spy()
    monkeypatch.setattr(tuning, "objective", spy)

    # No search yet: daily training keeps today's defaults and says so.
    assert tuning_store.tuned_params(ctx.store, "xgboost") is None

    published = tune_all(ctx, ["xgboost", "lightgbm"], n_trials=4, timeout_s=120)

    # The objective saw exactly the stored train and val rows, never a test (holdout) row or file.
    assert [a for a, _ in spy.calls] == ["xgboost"] * 4 + ["lightgbm"] * 4
    for _, data in spy.calls:
        assert data.ids["train"] == meta["ids"]["train"] and data.ids["val"] == meta["ids"]["val"]
        assert set(data.matrices.x) == {"train", "val"}
        assert not set(data.ids["train"] + data.ids["val"]) & set(meta["ids"]["test"])
    assert meta["keys"]["test"] not in read and meta["keys"]["train"] in read, read

    latest = ctx.store.get_json(tuning_store.LATEST_KEY)
    assert latest["key"] == published["key"] == f"tuning/rating/dt={DAY}/best.json"
    assert ctx.store.get_json(latest["key"])["algorithms"] == latest["algorithms"]
    for algorithm in ("xgboost", "lightgbm"):
        entry = latest["algorithms"][algorithm]
        assert entry["trials_run"] == 4 == entry["trials_total"]
        assert entry["storage"] == "sqlite" and entry["study"].startswith(f"rating-{algorithm}-dt={DAY}-")
        # Today's defaults are trial 0, so the best is never worse than them on validation.
        assert entry["best_value"] <= entry["default_value"]
    # The studies live in the SQLite file of the embedded default.
    import optuna

    stored = optuna.load_study(
        study_name=latest["algorithms"]["xgboost"]["study"], storage=f"sqlite:///{tmp_path}/optuna/optuna.db"
    )
    assert len(stored.trials) == 4

    # Daily training picks them up, and the published manifest records them and their study.
    tuned = latest["algorithms"]["xgboost"]
    # The seeded search beats the defaults on this split, so "uses the tuned parameters" is a real check.
    assert tuned["best_trial"] > 0 and tuned["params"] != DEFAULT_PARAMS["xgboost"]
    candidate = steps.train_rating(ctx, DAY, features, "xgboost")
    info = ctx.store.get_json(candidate["prefix"] + "candidate.json")
    assert info["params"] == tuned["params"]
    assert info["tuning"]["study"] == tuned["study"] and info["tuning"]["best_value"] == tuned["best_value"]
    steps.select_and_publish(ctx, DAY, features, [candidate])
    manifest = ctx.registry.manifest("rating")
    assert manifest.params == tuned["params"]
    assert manifest.notes["tuning"] == {
        "study": tuned["study"], "storage": "sqlite", "best_value": tuned["best_value"],
        "default_value": tuned["default_value"], "data_day": DAY, "trials_total": 4,
    }  # fmt: skip
    # An algorithm never tuned trains with its defaults.
    mean = ctx.store.get_json(steps.train_rating(ctx, DAY, features, "mean")["prefix"] + "candidate.json")
    assert mean["tuning"] is None


@pytest.mark.integration
def test_time_budget_stops_the_search_and_plots_go_to_wandb(s3_settings: Settings, tmp_path: Path) -> None:
    ctx = _context(s3_settings, tmp_path, wandb_mode="offline")
    _features(ctx)
    published = tune_all(ctx, ["random_forest"], n_trials=10_000, timeout_s=4)
    entry = ctx.store.get_json(published["key"])["algorithms"]["random_forest"]
    assert 1 <= entry["trials_run"] < 10_000
    # Optuna checks the budget between trials: it ends within one trial of it.
    assert entry["seconds"] < 4 + 5
    images = {p.name.split("_", 2)[0] + "_" + p.name.split("_", 2)[1] for p in tmp_path.rglob("*.png")}
    assert {"optimization_history", "param_importances"} <= images, images


@pytest.mark.integration
def test_rerun_continues_the_study_within_its_trial_budget(s3_settings: Settings, tmp_path: Path) -> None:
    ctx = _context(s3_settings, tmp_path)
    _features(ctx)
    tune_all(ctx, ["lightgbm"], n_trials=2, timeout_s=60)
    again = ctx.store.get_json(tune_all(ctx, ["lightgbm"], n_trials=3, timeout_s=60)["key"])
    entry = again["algorithms"]["lightgbm"]
    assert (entry["trials_run"], entry["trials_total"]) == (3, 5)


@pytest.mark.integration
def test_postgres_storage(
    s3_settings: Settings, tmp_path: Path, postgres_url: str, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO)
    ctx = _context(s3_settings, tmp_path, optuna_storage_url=SecretStr(postgres_url))
    _features(ctx)
    published = tune_all(ctx, ["lightgbm"], n_trials=2, timeout_s=60)
    best = ctx.store.get_bytes(published["key"]).decode()
    entry = json.loads(best)["algorithms"]["lightgbm"]
    assert entry["storage"] == "postgresql" and entry["trials_run"] == 2
    assert not (tmp_path / "optuna").exists()  # nothing went to the SQLite default
    import optuna

    assert len(optuna.load_study(study_name=entry["study"], storage=postgres_url).trials) == 2
    password = postgres_url.split(":")[2].split("@")[0]
    assert password not in best and password not in caplog.text
