"""The recommender trains on the app's feedback without touching the offline evaluation, and skips stale data."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest

from services.core.registry import Registry
from services.core.settings import Settings
from services.train.recommender.baselines import fit_popularity
from services.train.recommender.data import SequenceSplits, build_splits, fingerprint
from services.train.recommender.feedback_data import with_feedback
from services.train.recommender.task import run_recommender_task
from services.train.recommender.windows import training_windows
from services.train.tracking import Tracker
from tests.train.recommender.test_model import FIRST_TMDB, _write_snapshot

# Three MovieLens users (ids 1..3) over movies 10..60.
TABLE = pd.DataFrame(
    [(1, 10, 1), (1, 20, 2), (1, 30, 3), (1, 40, 4), (2, 20, 1), (2, 30, 2), (2, 50, 3),
     (3, 40, 1), (3, 50, 2), (3, 60, 3), (3, 10, 4)],
    columns=["user_id", "tmdb_id", "timestamp"],
)  # fmt: skip


def fb(event_id: str, user: str, tmdb_id: int, minute: int, kind: str = "like",
       value: float | None = None) -> dict[str, Any]:  # fmt: skip
    """A curated feedback interaction, as load_curated_feedback returns it."""
    return {"event_id": event_id, "ts": f"2026-12-01T10:{minute:02d}:00.000Z", "user_id": user,
            "tmdb_id": tmdb_id, "kind": kind, "value": value, "positive": None}  # fmt: skip


@pytest.fixture(scope="module")
def base() -> SequenceSplits:
    return build_splits(TABLE)


def test_feedback_users_are_training_only(base: SequenceSplits) -> None:
    # App user "1" is not MovieLens user 1: their likes form a sequence of their own.
    splits, info = with_feedback(base, [fb("a", "1", 60, 2), fb("b", "1", 20, 1), fb("c", "zoe", 30, 5)])
    assert splits.extra_user_ids == ("fb:1", "fb:zoe")
    tmdb = [splits.item_ids[s - 1].tolist() for s in splits.extra_train]
    assert tmdb == [[20, 60], [30]]  # in time order
    assert info == {"feedback_interactions": 3, "feedback_users": 2, "feedback_unknown_items": 0,
                    "feedback_new_items": 0, "feedback_train_targets": 1}  # fmt: skip
    for split in ("valid", "test"):
        np.testing.assert_array_equal(splits.targets(split), base.targets(split))
        assert [s.tolist() for s in splits.inputs(split)] == [s.tolist() for s in base.inputs(split)]
    assert splits.n_users == base.n_users == 3 and splits.stats() == base.stats()
    assert len(splits.train_sequences()) == 5
    gained = splits.training_popularity() - base.training_popularity()
    assert {int(splits.item_ids[i - 1]): int(n) for i, n in enumerate(gained) if n} == {20: 1, 30: 1, 60: 1}
    # The popularity baseline counts them: 20 leads by one more, 60 was never trained on before.
    assert dict(fit_popularity(base).popular(6))[20] == 2 and 60 not in dict(fit_popularity(base).popular(4))
    assert (
        dict(fit_popularity(splits).popular(6))[20] == 3 and dict(fit_popularity(splits).popular(6))[60] == 1
    )


def test_dislikes_and_low_ratings_never_become_positives(base: SequenceSplits) -> None:
    negatives = [fb("a", "ana", 10, 1, "dislike"), fb("b", "ana", 20, 2, "rating", 3.0),
                 fb("c", "ana", 30, 3, "rating", 0.5)]  # fmt: skip
    splits, info = with_feedback(base, negatives)
    assert splits.extra_train == () and info["feedback_interactions"] == 0
    assert splits.fingerprint == base.fingerprint
    rated, _ = with_feedback(
        base, [*negatives, fb("d", "ana", 40, 4, "rating", 3.5), fb("e", "ana", 50, 5, "watched")]
    )
    assert [rated.item_ids[s - 1].tolist() for s in rated.extra_train] == [[40, 50]]


def test_repeats_and_unknown_movies_are_dropped_and_counted(base: SequenceSplits) -> None:
    feedback = [
        fb("a", "ana", 10, 1),
        fb("b", "ana", 999, 2),
        fb("c", "ana", 10, 3, "watched"),
        fb("d", "ana", 20, 4),
    ]
    splits, info = with_feedback(base, feedback)
    assert [splits.item_ids[s - 1].tolist() for s in splits.extra_train] == [[10, 20]]
    assert (info["feedback_interactions"], info["feedback_unknown_items"]) == (2, 1)


def test_fingerprint_is_movielens_alone_without_feedback_and_changes_with_it(base: SequenceSplits) -> None:
    assert with_feedback(base, [])[0].fingerprint == base.fingerprint == fingerprint(TABLE)
    one = with_feedback(base, [fb("a", "ana", 10, 1)])[0].fingerprint
    assert one != base.fingerprint
    assert with_feedback(base, [fb("z", "ana", 10, 1)])[0].fingerprint == one  # same interaction, new id
    assert with_feedback(base, [fb("a", "ana", 20, 1)])[0].fingerprint != one
    # Only movies the recommender can rank go in, so a like of an unknown movie changes nothing.
    assert with_feedback(base, [fb("a", "ana", 999, 1)])[0].fingerprint == base.fingerprint


def test_a_one_movie_sequence_gives_no_training_window() -> None:
    x, y, owners, _ = training_windows([np.array([5]), np.array([1, 2, 3])], max_len=4)
    assert owners.tolist() == [1] and y[y > 0].tolist() == [2, 3]
    empty = training_windows([np.array([5])], max_len=4)
    assert [a.shape[0] for a in empty] == [0, 0, 0, 0]


def test_task_trains_on_feedback_then_skips_until_new_interactions(
    s3_settings: Settings, registry: Registry, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    _write_snapshot(tmp_path / "snap")
    settings = s3_settings.model_copy(update={"snapshot_dir": tmp_path / "snap"})
    # One app user with three likes and one with a single like (a sequence too short for a target).
    feedback = [fb("a", "ana", FIRST_TMDB + 3, 1), fb("b", "ana", FIRST_TMDB + 4, 2),
                fb("c", "ana", FIRST_TMDB + 5, 3), fb("d", "bo", FIRST_TMDB, 4),
                fb("e", "bo", FIRST_TMDB + 1, 5, "dislike"), fb("f", "cy", 5, 6)]  # fmt: skip

    def run(day: str, rows: list[dict[str, Any]]) -> dict[str, Any]:
        return run_recommender_task(
            settings, registry, Tracker(settings), logical_date=day, max_epochs=1, feedback=rows
        )

    first = run("2024-01-01", feedback)
    assert not first["skipped"]
    manifest = registry.manifest("recommender", first["version"])
    data = manifest.notes["data"]
    assert (data["feedback_interactions"], data["feedback_users"], data["feedback_unknown_items"]) == (
        4,
        2,
        1,
    )
    assert data["users"] == 60  # the evaluation still covers the MovieLens users only

    caplog.set_level(logging.INFO, logger="services.train.recommender.task")
    second = run("2024-01-02", list(reversed(feedback)))
    assert f"no new interactions since version {first['version']}" in caplog.text
    assert (second["skipped"], second["promoted"], second["version"]) == (True, False, first["version"])
    assert registry.store.get_json("runs/dt=2024-01-02/recommender_decision.json") == second
    assert registry.versions("recommender") == [first["version"]]

    third = run("2024-01-03", [*feedback, fb("g", "bo", FIRST_TMDB + 2, 7)])
    assert not third["skipped"] and third["version"] != first["version"]
    assert len(registry.versions("recommender")) == 2
    assert registry.manifest("recommender", third["version"]).notes["data"]["feedback_interactions"] == 5
