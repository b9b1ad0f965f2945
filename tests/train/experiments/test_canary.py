"""With EXPERIMENTS=1 a recommender that beats production offline becomes a canary, not production.

Real training (one epoch on the chain snapshot) against a deliberately weak production, on a real
SeaweedFS registry. A first version, with no production, is still promoted (tests/train/recommender/test_model.py).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pytest

from services.core.experiments import read_candidates
from services.core.recommender_runtime import SequentialRecommender
from services.core.registry import Registry
from services.core.settings import Settings
from services.train.recommender.task import run_recommender_task
from services.train.tracking import Tracker
from tests.train.recommender.test_catalog_growth import movie
from tests.train.recommender.test_feedback_data import fb
from tests.train.recommender.test_model import FIRST_TMDB, N_ITEMS, _write_snapshot


def _weak_production(registry: Registry) -> str:
    """A "popularity" recommender over the snapshot's movies with random scores: easy to beat."""
    ids = np.arange(FIRST_TMDB, FIRST_TMDB + N_ITEMS)
    scores = np.r_[0.0, np.random.default_rng(0).random(N_ITEMS)]
    rec = SequentialRecommender("popularity", ids, scores, max_seq_length=50)
    return registry.publish("recommender", rec.save(), {"algorithm": "popularity"}, promote=True).version


@pytest.fixture
def settings(s3_settings: Settings, tmp_path: Path) -> Settings:
    _write_snapshot(tmp_path / "snap")
    return s3_settings.model_copy(
        update={"snapshot_dir": tmp_path / "snap", "experiment_share": 0.3, "experiment_min_users": 50}
    )


def _run(settings: Settings, registry: Registry, day: str, **kwargs: Any) -> dict[str, Any]:
    return run_recommender_task(
        settings, registry, Tracker(settings), logical_date=day, max_epochs=1, **kwargs
    )


def test_a_better_version_becomes_the_canary_and_the_next_better_one_waits(
    settings: Settings, registry: Registry
) -> None:
    weak = _weak_production(registry)
    first = _run(settings, registry, "2024-01-01")
    assert (first["promoted"], first["candidate"], first["waiting_for"]) == (False, True, None)
    assert registry.production_version("recommender") == weak  # users decide, not the validation split
    running = read_candidates(registry, "recommender").running
    assert running is not None and running.experiment_id == first["experiment_id"]
    assert (running.version, running.production_version, running.share) == (first["version"], weak, 0.3)
    assert running.started_by == "pipeline" and running.reason.startswith("valid NDCG@10")
    assert running.rule.min_users == 50 and running.rule.delta == settings.experiment_delta
    assert f"candidate of experiment {running.experiment_id} for 30% of users" in first["reason"]
    assert registry.store.get_json("runs/dt=2024-01-01/recommender_decision.json") == first

    # Same interactions, a grown catalog: no re-export of production while it is the control arm.
    second = _run(settings, registry, "2024-01-02", collected=[movie(7001, "Drama")])
    assert second["skipped"] and f"experiment {running.experiment_id} is running" in second["reason"]
    assert registry.production_version("recommender") == weak and len(registry.versions("recommender")) == 2

    # New feedback, a better version again: published, not promoted, waiting for the running experiment.
    third = _run(settings, registry, "2024-01-03", feedback=[fb("a", "ana", FIRST_TMDB + 3, 1)])
    assert (third["promoted"], third["candidate"], third["waiting_for"]) == (
        False,
        False,
        running.experiment_id,
    )
    assert "this version waits" in third["reason"] and third["version"] in registry.versions("recommender")
    assert registry.production_version("recommender") == weak
    assert read_candidates(registry, "recommender").running == running


def test_with_experiments_off_a_better_version_goes_straight_to_production(
    settings: Settings, registry: Registry
) -> None:
    _weak_production(registry)
    result = _run(settings.model_copy(update={"experiments": False}), registry, "2024-01-01")
    assert (result["promoted"], result["candidate"], result["experiment_id"]) == (True, False, None)
    assert registry.production_version("recommender") == result["version"]
    assert read_candidates(registry, "recommender").running is None
