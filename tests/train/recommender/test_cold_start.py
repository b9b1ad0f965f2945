"""The item-cold-start protocol: multi-target metrics, the split and its baselines, on hand-made data."""

from __future__ import annotations

import hashlib
import math

import numpy as np
import pandas as pd
import pytest

from services.train.movies.snapshot import load_links, load_movies, load_ratings
from services.train.recommender.cold_start import (
    ColdSplit,
    baseline_table,
    build_cold_split,
    content_knn_scores,
    evaluate_cold,
    is_withheld,
    random_scores,
    votes_scores,
)
from services.train.recommender.data import build_interactions
from services.train.recommender.metrics import mean_and_se, per_user_multi_target
from tests.conftest import SNAPSHOT

# sha256 of these ids starts with 0 or 1 (withheld); 1..8 do not.
COLD = (9, 39, 49, 50)


def _targets(*cols: int) -> list[np.ndarray]:
    return [np.array(cols, dtype=np.int64)]


def test_two_targets_at_ranks_one_and_three() -> None:
    scores = np.array([[5.0, 4.0, 3.0, 2.0]])  # column 0 ranks first, column 2 third
    m = per_user_multi_target(scores, _targets(0, 2), k=2)
    assert m["recall"][0] == pytest.approx(0.5)
    assert m["ndcg"][0] == pytest.approx(1.0 / (1.0 + 1.0 / math.log2(3)))
    m = per_user_multi_target(scores, _targets(0, 2), k=3)
    assert m["recall"][0] == pytest.approx(1.0)
    assert m["ndcg"][0] == pytest.approx((1 + 1 / math.log2(4)) / (1 + 1 / math.log2(3)))


def test_a_perfect_list_scores_one_whatever_the_number_of_targets() -> None:
    scores = -np.arange(30, dtype=np.float64)[None, :]
    for n in (1, 10, 15):
        m = per_user_multi_target(scores, _targets(*range(n)), k=10)
        assert (m["recall"][0], m["ndcg"][0]) == (pytest.approx(1.0), pytest.approx(1.0))


def test_constant_scores_give_zero_with_pessimistic_ties() -> None:
    m = per_user_multi_target(np.zeros((1, 20)), _targets(0, 1, 2), k=10)
    assert (m["recall"][0], m["ndcg"][0]) == (0.0, 0.0)
    # A target tied with one non-target ranks after it: second, not first.
    m = per_user_multi_target(np.array([[1.0, 1.0, 0.0]]), _targets(1), k=1)
    assert m["recall"][0] == 0.0
    m = per_user_multi_target(np.array([[1.0, 1.0, 0.0]]), _targets(1), k=2)
    assert m["ndcg"][0] == pytest.approx(1 / math.log2(3))


def test_nan_scores_count_as_minus_infinity() -> None:
    scores = np.array([[np.nan, 1.0, -np.inf]])
    assert per_user_multi_target(scores, _targets(0), k=2)["recall"][0] == 0.0
    # NaN ties with -inf and ranks after it: third.
    assert per_user_multi_target(scores, _targets(0), k=3)["ndcg"][0] == pytest.approx(0.5)


def test_bad_targets_are_refused() -> None:
    with pytest.raises(ValueError):
        per_user_multi_target(np.zeros((1, 3)), _targets(), k=2)
    with pytest.raises(ValueError):
        per_user_multi_target(np.zeros((1, 3)), _targets(3), k=2)
    with pytest.raises(ValueError):
        per_user_multi_target(np.zeros((1, 3)), _targets(1, 1), k=2)


def test_mean_and_standard_error() -> None:
    mean, se = mean_and_se(np.array([0.0, 1.0, 1.0, 0.0]))
    assert mean == pytest.approx(0.5)
    assert se == pytest.approx(math.sqrt(1 / 3) / 2)


def test_withholding_rule_is_the_sha256_prefix() -> None:
    for tmdb_id in range(1, 60):
        expected = hashlib.sha256(str(tmdb_id).encode()).hexdigest()[0] in "01"
        assert is_withheld(tmdb_id) == expected
    assert [t for t in range(1, 60) if is_withheld(t)] == [9, 39, 49, 50, 51, 55]


@pytest.fixture()
def split() -> ColdSplit:
    rows = [
        # user 1: warm 3, 1, 2, 4 and cold 39, 9 in time order; rows deliberately shuffled
        (1, 2, 40), (1, 9, 20), (1, 3, 10), (1, 39, 5), (1, 4, 50), (1, 1, 30),
        (2, 1, 1), (2, 49, 2), (2, 2, 3),  # only 2 warm movies: evaluated, not trained on
        (3, 5, 1), (3, 6, 2), (3, 7, 3),  # nothing withheld: trained on, not evaluated
        (4, 50, 1), (4, 9, 2),  # nothing warm: neither
    ]  # fmt: skip
    return build_cold_split(pd.DataFrame(rows, columns=["user_id", "tmdb_id", "timestamp"]))


def test_split_users_inputs_and_targets(split: ColdSplit) -> None:
    assert split.withheld.tolist() == list(COLD)
    assert split.user_ids.tolist() == [1, 2]
    assert [i.tolist() for i in split.inputs] == [[3, 1, 2, 4], [1, 2]]
    assert [t.tolist() for t in split.targets] == [[39, 9], [49]]
    assert [c.tolist() for c in split.target_columns()] == [[1, 0], [2]]
    assert split.stats() == {
        "users": 2,
        "candidates": 4,
        "targets": 3,
        "mean_targets": 1.5,
        "train_users": 2,
        "train_items": 7,
    }


def test_withheld_items_never_reach_training(split: ColdSplit) -> None:
    train = split.train
    assert train.user_ids.tolist() == [1, 3]
    assert not any(is_withheld(t) for t in train.item_ids)
    assert [train.item_ids[s - 1].tolist() for s in train.sequences] == [[3, 1, 2, 4], [5, 6, 7]]


def test_fingerprint_changes_with_the_split(split: ColdSplit) -> None:
    other = build_cold_split(
        pd.DataFrame(
            [(1, 1, 1), (1, 2, 2), (1, 3, 3), (1, 9, 4)], columns=["user_id", "tmdb_id", "timestamp"]
        )
    )
    assert len(split.fingerprint()) == 64
    assert split.fingerprint() != other.fingerprint()


def test_votes_baseline(split: ColdSplit) -> None:
    scores = votes_scores(split, {9: 100, 39: 5, 49: 50, 50: 1000})
    assert scores.shape == (2, 4)
    result = evaluate_cold(scores, split, k=2)
    # Order 50, 9, 49, 39: user 1 finds 9 second of their two targets, user 2's 49 is third.
    expected = (1 / math.log2(3)) / (1 + 1 / math.log2(3))
    assert result["per_user"]["recall"].tolist() == pytest.approx([0.5, 0.0])
    assert result["per_user"]["ndcg"].tolist() == pytest.approx([expected, 0.0])
    assert result["recall_mean"] == pytest.approx(0.25)
    assert result["recall_se"] == pytest.approx(0.25)  # std (ddof=1) of [0.5, 0] over sqrt(2)
    # A candidate without a vote count ranks last.
    assert np.isneginf(votes_scores(split, {9: 1})[:, 1:]).all()


def test_content_knn_ranks_first_the_candidate_like_the_history(split: ColdSplit) -> None:
    features = {
        1: np.array([1.0, 0.0, 0.0]),
        2: np.array([3.0, 0.0, 0.0]),
        4: np.array([0.0, 2.0, 0.0]),
        9: np.array([1.0, 0.0, 0.0]),
        39: np.array([0.0, 1.0, 0.0]),
        49: np.array([1.0, 1.0, 0.0]),
    }  # 3 (an input) and 50 (a candidate) have no features
    scores = content_knn_scores(split, features)
    # User 2's history (1, 2) points along the first axis, like candidate 9.
    assert int(np.argmax(scores[1])) == 0
    assert scores[1, 0] == pytest.approx(1.0)
    # User 1: mean of the normalised vectors of 1, 2, 4 (3 skipped) is (2/3, 1/3, 0).
    assert scores[0, :3].tolist() == pytest.approx([2 / 3, 1 / 3, 1 / math.sqrt(2)])
    assert np.isneginf(scores[:, 3]).all()


def test_evaluate_cold_checks_the_shape(split: ColdSplit) -> None:
    with pytest.raises(ValueError):
        evaluate_cold(np.zeros((2, 3)), split)
    assert evaluate_cold(random_scores(split), split)["users"] == 2


def test_baseline_table_has_the_three_baselines(split: ColdSplit) -> None:
    movies = [{"id": 9, "vote_count": 10}, {"id": 39, "vote_count": 20}, {"id": 49, "vote_count": None}]
    features = {t: np.ones(2) for t in (1, 2, 3, 4, 9, 39, 49, 50)}
    table = baseline_table(split, movies, features)
    assert set(table) == {"random", "votes", "content_knn"}
    # Votes rank 39 then 9 first (49 and 50 have none): user 1 finds both targets in the top 2.
    assert table["votes"]["per_user"]["recall"].tolist()[0] == pytest.approx(1.0)
    # Equal features tie every candidate: pessimistic ties put the targets last of the 4.
    ndcg = table["content_knn"]["per_user"]["ndcg"].tolist()
    ideal = 1 + 1 / math.log2(3)
    assert ndcg == pytest.approx([(1 / math.log2(4) + 1 / math.log2(5)) / ideal, 1 / math.log2(5)])


def test_snapshot_cold_split_counts() -> None:
    movies = load_movies(SNAPSHOT)
    table = build_interactions(load_ratings(SNAPSHOT), load_links(SNAPSHOT), (m["id"] for m in movies))
    split = build_cold_split(table)
    stats = split.stats()
    assert (stats["users"], stats["candidates"], stats["targets"]) == (649, 460, 8343)
    assert (stats["train_users"], stats["train_items"]) == (670, 3496)
    assert split.train.stats()["interactions"] + stats["targets"] == len(table)
    assert split.fingerprint().startswith("57760dd8bf38fd84")
