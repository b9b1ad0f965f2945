"""The rating model on releases it never saw: better than the reference recipe and the mean,
and nothing it learns from labels comes from rows outside the training split."""

from __future__ import annotations

import io
import json

import numpy as np
import pandas as pd
import pytest

from services.core.features import LEARNED_FEATURES, Encoders, featurize_one, featurize_training, fit_encoders
from services.core.settings import Settings
from services.train import raw_store
from services.train.context import Context
from services.train.rating import steps
from services.train.rating.data import Matrices, Split, build_matrices, first_run_rows, targets, time_split
from services.train.rating.models import rmse, train_candidate
from services.train.rating.reference_recipe import train_recipe
from tests.conftest import SNAPSHOT

HOLDBACK, MIN_VOTES = 500, 10  # the pipeline's defaults for its first run
SPLITS_HELD_OUT = ("val", "test")


@pytest.fixture(scope="module")
def rows() -> list[dict]:
    """The labelled rows of the pipeline's first run on the snapshot."""
    return first_run_rows(SNAPSHOT, HOLDBACK, MIN_VOTES)


@pytest.fixture(scope="module")
def split(rows: list[dict]) -> Split:
    """Their time split: the test rows are the latest releases."""
    return time_split(rows)


@pytest.fixture(scope="module")
def matrices(split: Split) -> Matrices:
    """The training pipeline's matrices of that split."""
    return build_matrices(split, fit_encoders(split.train))


@pytest.mark.slow
@pytest.mark.parametrize("algorithm", ["xgboost", "lightgbm"])
def test_model_beats_the_recipe_by_ten_percent_on_later_releases(
    split: Split, matrices: Matrices, algorithm: str
) -> None:
    ours = train_candidate(algorithm, matrices).metrics["test_rmse"]
    y = matrices.y
    mean = rmse(y["test"], np.full(len(y["test"]), y["train"].mean()))
    recipe = rmse(targets(split.test), train_recipe(split.train).predict(split.test))
    assert ours <= 0.90 * recipe < recipe < mean


def _flip_after(rows: list[dict], cut: str) -> list[dict]:
    return [{**m, "vote_average": 10 - m["vote_average"]} if m["release_date"] >= cut else m for m in rows]


def test_hold_out_labels_never_reach_the_model_inputs(rows: list[dict]) -> None:
    recent = rows[-1200:]  # the last 1,200 rows keep the test fast; same code path
    split = time_split(recent)
    before = build_matrices(split, fit_encoders(split.train))
    flipped = time_split(_flip_after(recent, split.val[0]["release_date"]))
    after = build_matrices(flipped, fit_encoders(flipped.train))
    assert after.encoders.to_json() == before.encoders.to_json()
    assert not np.array_equal(after.y["test"], before.y["test"])
    for s in SPLITS_HELD_OUT:
        assert np.array_equal(after.x[s], before.x[s], equal_nan=True)


def test_serving_features_match_the_hold_out_matrix(split: Split, matrices: Matrices) -> None:
    served = Encoders.from_json(json.loads(json.dumps(matrices.encoders.to_json())))
    one_by_one = np.vstack([featurize_one(m, served) for m in split.test])
    assert np.array_equal(one_by_one, matrices.x["test"], equal_nan=True)


# --- the pipeline's build_features step, on a real S3 server --------------------------------------------------
def _build(
    settings: Settings, records: list[dict], day: str
) -> tuple[dict, Encoders, dict[str, pd.DataFrame]]:
    ctx = Context.from_settings(settings)
    key = f"curated/dt={day}/movies.jsonl.gz"
    raw_store.write_jsonl(ctx.store, key, records)
    out = steps.build_features(ctx, day, key, [day])
    encoders = Encoders.from_json(ctx.store.get_json(out["encoders"]))
    frames = {s: pd.read_parquet(io.BytesIO(ctx.store.get_bytes(k))) for s, k in out["keys"].items()}
    return out, encoders, frames


@pytest.mark.integration
def test_pipeline_learns_from_training_rows_only(s3_settings: Settings, rows: list[dict]) -> None:
    recent = rows[-800:]
    out, enc, frames = _build(s3_settings, recent, "2026-01-01")
    assert enc.label_rows == out["sizes"]["train"]
    cut = time_split(recent).val[0]["release_date"]
    _, enc_flipped, frames_flipped = _build(s3_settings, _flip_after(recent, cut), "2026-01-02")
    assert enc_flipped.to_json() == enc.to_json()
    for s in SPLITS_HELD_OUT:
        cols = [c for c in frames[s].columns if c != "target"]
        pd.testing.assert_frame_equal(frames[s][cols], frames_flipped[s][cols])


@pytest.mark.integration
def test_pipeline_training_rows_get_out_of_fold_learned_features(
    s3_settings: Settings, rows: list[dict]
) -> None:
    recent = rows[-800:]
    _, enc, frames = _build(s3_settings, recent, "2026-01-03")
    train = time_split(recent).train
    expected = featurize_training(train, enc)[:, -len(LEARNED_FEATURES) :]
    # In-fold values let each row's own label into the trees: measured, that model is worse than the recipe.
    assert np.allclose(frames["train"][list(LEARNED_FEATURES)].to_numpy(), expected, equal_nan=True), (
        "steps.build_features must featurize the train split with rating_data.split_matrix "
        "(featurize_training: out-of-fold learned features), not featurize()"
    )
