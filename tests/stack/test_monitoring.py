"""Monitoring in the real DAG on real SeaweedFS: live error, drift of shifted requests, the failed alert task."""

from __future__ import annotations

import json
import math
from datetime import date

import numpy as np
import pytest

from services.core.events import report_key
from services.core.features import Encoders, featurize
from services.core.movie import normalize_movie
from services.core.rating_model import load_rating_model
from services.core.registry import Registry
from services.core.storage import ObjectStore
from services.train import raw_store
from services.train.monitoring.drift import DRIFT_FEATURES
from services.train.movies.validate import validate
from services.train.rating.data import labelled
from tests.pipeline_run import PipelineRun

pytestmark = [pytest.mark.integration, pytest.mark.slow]


@pytest.fixture(scope="module")
def store(pipeline_run: PipelineRun) -> ObjectStore:
    return ObjectStore.from_settings(pipeline_run.settings)


def test_day_two_records_live_error_of_day_one_model_on_the_movies_that_arrived(
    pipeline_run: PipelineRun, store: ObjectStore
) -> None:
    day1, day2 = pipeline_run.dates[:2]
    serving = store.get_json(f"runs/dt={day1}/rating_decision.json")["production"]
    live = store.get_json(report_key("rating", day2, "live.json"))
    assert live["model_version"] == serving and live["built_on"] == day1

    # Independently: day 2's partition, minus every movie of day 1's data set, scored by day 1's files.
    registry = Registry(store)
    manifest = registry.manifest("rating", serving)
    files = {n: registry.read_file(manifest, n) for n in manifest.files}
    model = load_rating_model(manifest.algorithm, files)
    encoders = Encoders.from_json(json.loads(files["encoders.json"]))
    seen = {i for ids in store.get_json(f"features/dt={day1}/meta.json")["ids"].values() for i in ids}
    records = [normalize_movie(m) for m in raw_store.read_partition(store, day2)]
    good = validate(records, today=date.fromisoformat(day2)).good
    new = {m["id"]: m for m in labelled(good, pipeline_run.settings.min_vote_count) if m["id"] not in seen}
    movies = list(new.values())
    assert movies, "the snapshot feed's second day brings labelled movies the first model never saw"
    y = np.asarray([m["vote_average"] for m in movies])
    rmse = math.sqrt(float(np.mean((model.predict(featurize(movies, encoders)) - y) ** 2)))

    assert live["model"]["count"] == len(movies)
    assert live["model"]["rmse"] == pytest.approx(rmse, abs=1e-3)
    assert sorted(live["movies"]) == sorted(new)
    assert live["reference_recipe"]["count"] == len(movies) and live["reference_recipe"]["rmse"] > 0
    assert live["validation_rmse"] == pytest.approx(manifest.metrics["val_rmse"])


def test_shifted_requests_flag_their_features_and_fail_the_alert_task_but_still_publish(
    pipeline_run: PipelineRun, store: ObjectStore
) -> None:
    day2 = pipeline_run.dates[1]
    states = pipeline_run.states[day2]
    assert states["alert"] == "failed"
    assert states["select_and_publish"] == "success" and states["train_recommender"] == "success"
    assert store.get_json(f"runs/dt={day2}/rating_decision.json")["version"]

    drift = store.get_json(report_key("drift", day2, "summary.json"))
    requests = drift["comparisons"]["requests"]
    assert requests["rows_current"] == pipeline_run.app["shifted_predictions"]
    assert {"runtime", "main_genre", "n_genres", "is_english"} <= set(requests["drifted"])
    assert set(requests["features"]) == set(DRIFT_FEATURES)
    assert b"<html" in store.get_bytes(requests["report"])[:2000].lower()

    verdict = store.get_json(report_key("alerts", day2, "alert.json"))
    assert verdict["alert"] and "drift_requests" in [r["reason"] for r in verdict["reasons"]]
    posted = [p["body"] for p in pipeline_run.webhook if day2 in p["body"]["text"]]
    assert posted and "features drifted in requests" in posted[0]["text"]


def test_a_day_without_requests_says_so(pipeline_run: PipelineRun, store: ObjectStore) -> None:
    first, _, last = pipeline_run.dates
    assert store.get_json(report_key("drift", first, "summary.json"))["status"].startswith("no production")
    requests = store.get_json(report_key("drift", last, "summary.json"))["comparisons"]["requests"]
    assert requests == {"status": "no /predict requests were logged that day", "rows_current": 0}
    assert pipeline_run.states[last]["monitor"] == "success"
