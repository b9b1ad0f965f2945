"""Protocol facts of the recommender data on the real snapshot, and the rules on hand-made rows."""

from __future__ import annotations

import hashlib

import numpy as np
import pandas as pd
import pytest

from services.train.movies.snapshot import load_links, load_movies, load_ratings
from services.train.recommender.data import (
    SequenceSplits,
    build_interactions,
    build_splits,
    fingerprint,
    load_snapshot_data,
    tie_key,
)
from tests.conftest import SNAPSHOT

# The peers' split_fingerprint (../shared/peers/results.json) of the bundled snapshot: the same
# users, sequences and hence targets as RecBole's harness; and the dataset fingerprint it gives.
PEER_SPLIT_FINGERPRINT = "0a3477df09ab123e536f8de8870615ece45d8ac4e3afd330cc5d7f80a932d7ce"
DATA_FINGERPRINT = "d32bcaf09383e88a3067eedc73c85fdfa940c06c2f2628df04c78e8b0ba3b1f4"


@pytest.fixture(scope="module")
def table() -> pd.DataFrame:
    movies = load_movies(SNAPSHOT)
    return build_interactions(load_ratings(SNAPSHOT), load_links(SNAPSHOT), (m["id"] for m in movies))


@pytest.fixture(scope="module")
def splits(table: pd.DataFrame) -> SequenceSplits:
    return build_splits(table)


def test_snapshot_protocol_counts(splits: SequenceSplits) -> None:
    assert splits.stats() == {
        "users": 670,
        "items": 3956,
        "interactions": 73837,
        "train_interactions": 72497,
        "train_targets": 71827,
    }


def test_leave_one_out_holds_out_the_last_two_movies(splits: SequenceSplits) -> None:
    valid_in, test_in = splits.inputs("valid"), splits.inputs("test")
    valid_t, test_t = splits.targets("valid"), splits.targets("test")
    for u, seq in enumerate(splits.sequences):
        assert test_t[u] == seq[-1] and valid_t[u] == seq[-2]
        np.testing.assert_array_equal(test_in[u], np.r_[valid_in[u], valid_t[u]])
        train = splits.train_sequences()[u]
        assert test_t[u] not in train and test_t[u] not in test_in[u]
        assert valid_t[u] not in train


def test_sequences_follow_time_then_the_tie_hash(table: pd.DataFrame, splits: SequenceSplits) -> None:
    for u, (user_id, rows) in enumerate(table.groupby("user_id", sort=True)):
        assert splits.user_ids[u] == user_id
        keys = [(ts, tie_key(user_id, m)) for ts, m in zip(rows["timestamp"], rows["tmdb_id"], strict=True)]
        assert keys == sorted(keys)
        np.testing.assert_array_equal(splits.item_ids[splits.sequences[u] - 1], rows["tmdb_id"])
    assert not table.duplicated(["user_id", "tmdb_id"]).any()


def test_snapshot_split_equals_the_peers_split(splits: SequenceSplits) -> None:
    assert splits.sequence_fingerprint() == PEER_SPLIT_FINGERPRINT
    assert splits.fingerprint == DATA_FINGERPRINT


def test_training_popularity_ignores_held_out_movies(splits: SequenceSplits) -> None:
    counts = splits.training_popularity()
    assert counts.sum() == splits.stats()["train_interactions"]
    assert counts[0] == 0


def test_load_snapshot_data_matches_the_parts(splits: SequenceSplits) -> None:
    loaded = load_snapshot_data(SNAPSHOT)
    assert loaded.splits.fingerprint == splits.fingerprint
    assert len(loaded.movies) == 4999


def _ratings(rows: list[tuple[int, int, int]]) -> pd.DataFrame:
    return pd.DataFrame(
        [(u, m, 4.0, ts) for u, m, ts in rows], columns=["userId", "movieId", "rating", "timestamp"]
    )


def test_interaction_rules_on_hand_made_rows() -> None:
    links = pd.DataFrame({"movieId": [1, 2, 3, 4, 5, 6, 7], "tmdbId": [10, 10, 30, 40, 50, 60, None]})
    links["tmdbId"] = links["tmdbId"].astype("Int64")
    rows = [(1, m, ts) for m, ts in [(1, 5), (2, 1), (3, 2), (4, 3), (5, 4), (6, 6), (7, 7)]]
    rows += [(2, 3, 1), (2, 4, 2), (2, 5, 3), (2, 6, 4)]  # 4 movies: dropped (fewer than 5)
    table = build_interactions(_ratings(rows), links, catalog_ids=[10, 30, 40, 50, 60, 99])
    assert table["user_id"].unique().tolist() == [1]
    # movieId 1 and 2 are both TMDB 10: the earliest rating (timestamp 1) is kept; 7 has no TMDB id.
    assert table["tmdb_id"].tolist() == [10, 30, 40, 50, 60]
    assert table["timestamp"].tolist() == [1, 2, 3, 4, 6]
    outside = build_interactions(_ratings(rows), links, catalog_ids=[30, 40, 50, 60])
    assert outside.empty  # without TMDB 10 in the catalog user 1 has only 4 movies


def test_three_same_second_ratings_follow_the_hash_not_the_tmdb_id() -> None:
    links = pd.DataFrame({"movieId": [1, 2, 3, 4, 5], "tmdbId": [10, 20, 30, 40, 50]})
    links["tmdbId"] = links["tmdbId"].astype("Int64")
    # Users 7 and 8 rate 40 and 50 first, then movies 10, 20 and 30 in the same second (listed in
    # reverse). sha256("7:10")[:16] = a62e…, "7:20" = 119e…, "7:30" = 3a07…: 20, 30, 10 for user 7;
    # user 8's hashes give 30, 20, 10. Same second, same movies, another order per user.
    rows = [(u, m, ts) for u in (7, 8) for m, ts in [(4, 1), (5, 2), (3, 9), (2, 9), (1, 9)]]
    table = build_interactions(_ratings(rows), links, [10, 20, 30, 40, 50])
    assert table[table["user_id"] == 7]["tmdb_id"].tolist() == [40, 50, 20, 30, 10]
    assert table[table["user_id"] == 8]["tmdb_id"].tolist() == [40, 50, 30, 20, 10]
    splits = build_splits(table)
    assert splits.item_ids[splits.targets("valid") - 1].tolist() == [30, 20]
    assert splits.item_ids[splits.targets("test") - 1].tolist() == [10, 10]
    # The order does not depend on how the rows arrive, and hand-made tables get it too.
    shuffled = build_splits(table.iloc[::-1].reset_index(drop=True))
    assert shuffled.sequence_fingerprint() == splits.sequence_fingerprint()
    assert shuffled.fingerprint == splits.fingerprint
    assert (
        splits.sequence_fingerprint() == hashlib.sha256(b"7:40 50 20 30 10\n8:40 50 30 20 10\n").hexdigest()
    )


def test_fingerprint_changes_with_any_interaction(table: pd.DataFrame) -> None:
    assert fingerprint(table) == fingerprint(table.copy())
    changed = table.copy()
    changed.loc[0, "timestamp"] += 1
    assert fingerprint(changed) != fingerprint(table)
