"""The numpy tree walk serves exactly the ratings the XGBoost library computes, or is not used."""

from __future__ import annotations

import numpy as np
import pytest
import xgboost as xgb

from services.core.rating_model import load_rating_model, save_rating_model
from services.serve.fast_xgboost import FastXGBoost, build_fast
from tests.serve_fixtures import train_booster, training_data


def _rows_with_gaps() -> np.ndarray:
    # Real feature rows, some values missing (default branches) and some set to split-like round values.
    _, x, _ = training_data()
    rows = x[:400].copy()
    rows[::3, ::4] = np.nan
    rows[1::5, 0] = 90.0
    return rows


def _served(booster: xgb.Booster, algorithm: str = "xgboost"):
    return load_rating_model(algorithm, save_rating_model(booster, algorithm))


@pytest.mark.parametrize("rounds", [1, 60])
def test_boosted_trees_give_the_librarys_ratings_bit_for_bit(rounds) -> None:
    library = _served(train_booster(rounds))
    fast = build_fast(library, library.booster.num_features())
    assert isinstance(fast, FastXGBoost)
    rows = _rows_with_gaps()
    one_by_one = np.concatenate([fast.predict(row[None, :]) for row in rows])
    assert np.array_equal(one_by_one, library.predict(rows))
    assert np.array_equal(fast.predict(rows[:5]), library.predict(rows[:5]))
    assert np.array_equal(fast.predict(rows), library.predict(rows))  # a big batch: the library itself


def test_random_forest_mode_gives_the_librarys_ratings() -> None:
    _, x, y = training_data()
    forest = xgb.XGBRFRegressor(n_estimators=40, max_depth=8, subsample=0.8, colsample_bynode=0.5, n_jobs=1)
    library = _served(forest.fit(x, y).get_booster(), "random_forest")
    fast = build_fast(library, x.shape[1])
    assert isinstance(fast, FastXGBoost)
    rows = _rows_with_gaps()
    assert np.array_equal(np.concatenate([fast.predict(r[None, :]) for r in rows]), library.predict(rows))


def test_a_model_it_cannot_reproduce_is_served_by_the_library() -> None:
    _, x, y = training_data()
    params = {"objective": "reg:gamma", "max_depth": 3, "nthread": 1}  # log link: not a plain sum of leaves
    library = _served(xgb.train(params, xgb.DMatrix(x, label=y), num_boost_round=5))
    assert build_fast(library, x.shape[1]) is library


def test_explanations_still_come_from_the_library() -> None:
    library = _served(train_booster(20))
    fast = build_fast(library, library.booster.num_features())
    rows = _rows_with_gaps()[:3]
    assert np.array_equal(fast.contributions(rows), library.contributions(rows))
