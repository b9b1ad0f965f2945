"""The recommender's evaluation module on small hand-made rankings."""

from __future__ import annotations

import math

import numpy as np
import pytest

from services.core.recommender_runtime import SequentialRecommender
from services.train.recommender.data import build_splits
from services.train.recommender.metrics import evaluate, evaluate_recommender, split_scores

N_ITEMS = 20


def _ranking(order: list[int]) -> np.ndarray:
    """One user's scores where order[0] is ranked first; column 0 is padding."""
    scores = np.zeros(N_ITEMS + 1)
    for rank, item in enumerate(order):
        scores[item] = N_ITEMS - rank
    return scores[None, :]


def _no_inputs(users: int = 1) -> list[np.ndarray]:
    return [np.array([], dtype=np.int64)] * users


def test_hit_at_rank_one_scores_one() -> None:
    scores = _ranking(list(range(1, N_ITEMS + 1)))
    m = evaluate(scores, np.array([1]), _no_inputs())
    assert (m["hr"], m["ndcg"], m["mrr"]) == (1.0, 1.0, 1.0)


def test_hit_at_rank_ten_is_still_a_hit() -> None:
    scores = _ranking(list(range(1, N_ITEMS + 1)))
    m = evaluate(scores, np.array([10]), _no_inputs())
    assert m["hr"] == 1.0
    assert m["ndcg"] == pytest.approx(1 / math.log2(11))
    assert m["mrr"] == pytest.approx(0.1)


def test_rank_eleven_is_a_miss() -> None:
    scores = _ranking(list(range(1, N_ITEMS + 1)))
    m = evaluate(scores, np.array([11]), _no_inputs())
    assert (m["hr"], m["ndcg"], m["mrr"]) == (0.0, 0.0, 0.0)


def test_input_items_are_masked_so_the_target_moves_up() -> None:
    scores = _ranking(list(range(1, N_ITEMS + 1)))
    # Item 11 is at rank 11 (a miss) until the user's own items 1 and 2 are taken out.
    m = evaluate(scores, np.array([11]), [np.array([1, 2])])
    assert m["hr"] == 1.0
    assert m["mrr"] == pytest.approx(1 / 9)


def test_padding_column_is_never_ranked() -> None:
    scores = _ranking(list(range(1, N_ITEMS + 1)))
    scores[0, 0] = 1e9  # a model that scores padding highest must not push the target down
    assert evaluate(scores, np.array([1]), _no_inputs())["hr"] == 1.0


def test_ties_are_pessimistic() -> None:
    constant = np.ones((1, N_ITEMS + 1))
    assert evaluate(constant, np.array([1]), _no_inputs())["hr"] == 0.0
    # Target tied with two others at the top: it ranks 3rd, not 1st.
    scores = _ranking(list(range(1, N_ITEMS + 1)))
    scores[0, [1, 2, 3]] = 100.0
    m = evaluate(scores, np.array([1]), _no_inputs())
    assert m["mrr"] == pytest.approx(1 / 3)


def test_nan_scores_never_hit() -> None:
    scores = np.full((1, N_ITEMS + 1), np.nan)
    assert evaluate(scores, np.array([5]), _no_inputs())["hr"] == 0.0


def test_metrics_are_averaged_over_users_and_coverage_counts_distinct_items() -> None:
    first = _ranking(list(range(1, N_ITEMS + 1)))
    second = _ranking(list(range(N_ITEMS, 0, -1)))
    scores = np.vstack([first, second])
    m = evaluate(scores, np.array([1, 1]), _no_inputs(2))  # user 1 hits at rank 1, user 2 misses
    assert m["hr"] == 0.5
    assert m["coverage"] == 1.0  # items 1-10 and 11-20: the whole catalog of 20
    same = evaluate(np.vstack([first, first]), np.array([1, 1]), _no_inputs(2))
    assert same["coverage"] == 0.5


def test_a_recommender_with_another_item_index_is_scored_the_same() -> None:
    import pandas as pd

    rng = np.random.default_rng(0)
    rows = [(u, int(t), ts) for u in range(30) for ts, t in enumerate(rng.choice(40, 8, replace=False) + 100)]
    splits = build_splits(pd.DataFrame(rows, columns=["user_id", "tmdb_id", "timestamp"]))
    pop = splits.training_popularity()
    ours = SequentialRecommender("popularity", splits.item_ids, pop)
    # The same model stored with its items in reverse order, and one item it never heard of.
    reverse = np.r_[0, pop[1:][::-1]]
    foreign = SequentialRecommender("popularity", splits.item_ids[::-1], reverse)
    assert evaluate_recommender(foreign, splits, "valid") == evaluate_recommender(ours, splits, "valid")
    # A model that does not know the first catalog item ranks it last; other scores are unchanged.
    partial = SequentialRecommender("popularity", splits.item_ids[1:], np.r_[0, pop[2:]])
    scored = split_scores(partial, splits, "valid")
    assert np.isneginf(scored[:, 1]).all()
    np.testing.assert_array_equal(scored[:, 2:], split_scores(ours, splits, "valid")[:, 2:])
