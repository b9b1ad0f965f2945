"""The real DAG, run for three days by `airflow dags test` against a real SeaweedFS server, with the
real API used by a person in between (tests/pipeline_run.py: pipeline_run)."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from services.core import events
from services.core.experiments import read_candidates
from services.core.registry import Registry
from services.core.storage import ObjectStore
from services.train import raw_store
from tests.conftest import ROOT
from tests.pipeline_run import PipelineRun

pytestmark = [pytest.mark.integration, pytest.mark.slow]


def _registry(run: PipelineRun) -> Registry:
    return Registry(ObjectStore.from_settings(run.settings))


def test_each_date_adds_a_raw_partition(pipeline_run: PipelineRun) -> None:
    store = ObjectStore.from_settings(pipeline_run.settings)
    assert raw_store.partitions(store) == pipeline_run.dates
    movies, _ = raw_store.load_union(store)
    assert len(movies) == len({m["id"] for m in movies}) > 4000


def test_a_verified_rating_model_is_in_production(pipeline_run: PipelineRun) -> None:
    registry = _registry(pipeline_run)
    manifest = registry.manifest("rating")
    assert registry.verify("rating") == []
    assert {"encoders.json", "catalog.json"} <= set(manifest.files)
    assert manifest.algorithm in {"xgboost", "lightgbm", "random_forest"}
    assert manifest.metrics["test_rmse"] < manifest.notes["candidates"]["mean"]["test_rmse"]
    assert manifest.data_partitions and manifest.git_commit is not None
    assert not any(f in name for name in manifest.features for f in ("vote", "revenue", "popularity"))


def test_second_run_promotes_or_keeps_with_a_logged_reason(pipeline_run: PipelineRun) -> None:
    store = ObjectStore.from_settings(pipeline_run.settings)
    second = store.get_json(f"runs/dt={pipeline_run.dates[1]}/rating_decision.json")
    assert "production" in second["reason"]
    assert ("beats production" in second["reason"]) == second["promoted"]
    assert "rating decision" in pipeline_run.logs[pipeline_run.dates[1]]
    assert len(_registry(pipeline_run).versions("rating")) == len(pipeline_run.dates)


def test_recommender_is_published_and_verified(pipeline_run: PipelineRun) -> None:
    registry = _registry(pipeline_run)
    assert registry.verify("recommender") == []
    assert "catalog.json" in registry.manifest("recommender").files


def test_runs_are_tracked_in_wandb_offline(pipeline_run: PipelineRun) -> None:
    runs = list((Path(pipeline_run.env["WANDB_DIR"]) / "wandb").glob("offline-run-*"))
    assert len(runs) >= 2 * 5  # four rating candidates + selection, per date


def test_registry_cli_verifies_and_detects_tampering(pipeline_run: PipelineRun) -> None:
    cli = [str(ROOT / ".venv/bin/python"), "-m", "services.core.registry_cli"]
    env = {**pipeline_run.env, "S3_EMBEDDED": "0"}
    ok = subprocess.run([*cli, "verify", "rating"], env=env, capture_output=True, text=True, cwd=ROOT)
    assert ok.returncode == 0, ok.stderr
    assert ok.stdout.startswith("OK rating")
    listing = subprocess.run([*cli, "versions", "rating"], env=env, capture_output=True, text=True, cwd=ROOT)
    assert listing.stdout.count("\n") == len(pipeline_run.dates) and "*" in listing.stdout


def test_feedback_given_through_the_api_is_curated_and_trained_on(pipeline_run: PipelineRun) -> None:
    store = ObjectStore.from_settings(pipeline_run.settings)
    today = pipeline_run.dates[1]
    curated = raw_store.read_jsonl(store, f"curated/feedback/dt={today}/interactions.jsonl.gz")
    assert sorted(r["kind"] for r in curated) == ["dislike", "like", "like", "like", "watched", "watched"]
    decision = store.get_json(f"runs/dt={today}/recommender_decision.json")
    assert decision["skipped"] is False
    manifest = _registry(pipeline_run).manifest("recommender", decision["version"])
    # Five positives (two watched, three likes) of one user; the dislike never becomes an interaction.
    assert manifest.notes["data"]["feedback_interactions"] == 5
    assert manifest.notes["data"]["feedback_users"] == 1
    first = store.get_json(f"runs/dt={pipeline_run.dates[0]}/recommender_decision.json")
    assert manifest.data_fingerprint != first["data_fingerprint"]


def test_a_day_with_nothing_new_skips_the_recommender(pipeline_run: PipelineRun) -> None:
    store = ObjectStore.from_settings(pipeline_run.settings)
    today, tomorrow = pipeline_run.dates[1:]
    decision = store.get_json(f"runs/dt={tomorrow}/recommender_decision.json")
    trained = store.get_json(f"runs/dt={today}/recommender_decision.json")
    assert decision["skipped"] is True and decision["version"] == trained["version"]
    assert f"no new interactions since version {trained['version']}" in pipeline_run.logs[tomorrow]
    assert len(_registry(pipeline_run).versions("recommender")) == 2  # day 1's and today's


def test_a_recommender_better_offline_becomes_a_canary_judged_the_next_day(pipeline_run: PipelineRun) -> None:
    store, registry = ObjectStore.from_settings(pipeline_run.settings), _registry(pipeline_run)
    first, today, tomorrow = pipeline_run.dates
    decisions = [store.get_json(f"runs/dt={d}/recommender_decision.json") for d in (first, today, tomorrow)]
    assert decisions[0]["promoted"] and decisions[0]["reason"] == "no production recommender yet"
    # Day 2's model beats day 1's on validation: it becomes the candidate, production stays (EXPERIMENTS=1).
    assert (decisions[1]["promoted"], decisions[1]["candidate"]) == (False, True)
    assert registry.production_version("recommender") == decisions[0]["version"]
    running = read_candidates(registry, "recommender").running
    assert running is not None and running.started_by == "pipeline"
    assert (running.version, running.experiment_id) == (
        decisions[1]["version"],
        decisions[1]["experiment_id"],
    )
    # Day 3's run judges it: nobody has been served the candidate yet, so it keeps running; and day 3,
    # with nothing new, does not re-export production while it is the control arm.
    report = store.get_json(events.report_key("experiments", tomorrow, "recommender.json"))
    assert (report["experiment_id"], report["verdict"], report["outcome"]) == (
        running.experiment_id,
        "continue",
        None,
    )
    assert report["arms"]["candidate"]["users"] == 0 and "200 needed per arm" in report["reason"]
    assert (
        decisions[2]["skipped"] and f"experiment {running.experiment_id} is running" in decisions[2]["reason"]
    )


def test_the_served_version_is_judged_on_what_it_showed(pipeline_run: PipelineRun) -> None:
    store = ObjectStore.from_settings(pipeline_run.settings)
    report = store.get_json(events.report_key("online", pipeline_run.dates[1], "recommender.json"))
    (row,) = report["versions"]
    assert row["version"] == pipeline_run.app["version"]
    # One response, answered by three likes within the window: a hit, the best at rank 1.
    assert row["responses"] == 1 and row["hit_rate"] == 1.0 and row["mrr"] == 1.0 and row["positives"] == 3
    assert row["distinct_items"] == 10 and row["fallback_share"] == 0.0


def test_each_training_run_writes_an_error_analysis_of_production_and_the_challenger(
    pipeline_run: PipelineRun,
) -> None:
    store = ObjectStore.from_settings(pipeline_run.settings)
    first = store.get_json(f"reports/rating/dt={pipeline_run.dates[0]}/errors.json")
    assert list(first["models"]) == ["challenger"]  # no production model before the first run
    second = store.get_json(f"reports/rating/dt={pipeline_run.dates[1]}/errors.json")
    decision = store.get_json(f"runs/dt={pipeline_run.dates[1]}/rating_decision.json")
    assert decision["errors_report"] == f"reports/rating/dt={pipeline_run.dates[1]}/errors.json"
    assert second["split"] == "test" and second["rows"] > 100
    assert second["models"]["production"]["version"] == _registry(pipeline_run).versions("rating")[0]
    assert set(second["dimensions"]) == {"vote_count", "release_period", "main_genre", "original_language",
                                         "overview_length"}  # fmt: skip
    for dimension in second["dimensions"].values():
        bands = dimension["bands"]
        assert sum(b["count"] for b in bands) == second["rows"]  # every test movie in exactly one band
        assert all(b["production"]["rmse"] >= abs(b["production"]["bias"]) for b in bands)
    assert "error analysis, challenger" in pipeline_run.logs[pipeline_run.dates[1]]
