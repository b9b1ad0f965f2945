"""The paired comparison with a peer: per-user metrics of two rankings, the bootstrap, the bench's peer files."""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from services.train.recommender.data import build_splits
from services.train.recommender.metrics import paired_bootstrap, per_user_metrics, scores_from_top_lists

N_ITEMS = 30
ROOT = Path(__file__).resolve().parents[3]


def _empty(users: int) -> list[np.ndarray]:
    return [np.array([], dtype=np.int64)] * users


def test_per_user_metrics_of_two_made_up_rankings_and_their_mean_difference() -> None:
    targets = np.array([5, 6, 7, 8])
    ours = scores_from_top_lists(
        [[5, 1, 2], [1, 2, 6], [1, 2, 3], [1, 2, 3, 4, 9, 10, 11, 12, 13, 8]], N_ITEMS
    )
    peer = scores_from_top_lists([[1, 5, 2], [6, 1, 2], [1, 7, 3], [1, 2, 3]], N_ITEMS)
    a = per_user_metrics(ours, targets, _empty(4))
    b = per_user_metrics(peer, targets, _empty(4))
    # Ours: ranks 1, 3, miss, 10. The peer's: ranks 2, 1, 2, miss (8 is not in its list).
    np.testing.assert_allclose(a["ndcg"], [1.0, 1 / math.log2(4), 0.0, 1 / math.log2(11)])
    np.testing.assert_allclose(b["ndcg"], [1 / math.log2(3), 1.0, 1 / math.log2(3), 0.0])
    np.testing.assert_array_equal(a["hr"], [1, 1, 0, 1])
    np.testing.assert_array_equal(b["hr"], [1, 1, 1, 0])
    diff, _, _ = paired_bootstrap(a["ndcg"], b["ndcg"], resamples=100)
    hand = (1 + 0.5 + 0 + 1 / math.log2(11)) / 4 - (1 / math.log2(3) + 1 + 1 / math.log2(3) + 0) / 4
    assert diff == pytest.approx(hand)
    assert paired_bootstrap(a["hr"], b["hr"], resamples=100)[0] == 0.0


def test_a_masked_input_item_lets_the_target_move_up() -> None:
    # The peer listed an item the user had already seen; the protocol masks it, as for our model.
    peer = scores_from_top_lists([[3, 4, 5]], N_ITEMS)
    m = per_user_metrics(peer, np.array([5]), [np.array([3])])
    assert m["ndcg"][0] == pytest.approx(1 / math.log2(3))


def test_bootstrap_of_two_users_spans_exactly_their_two_differences() -> None:
    # With two users a resample's mean is d0, (d0 + d1) / 2 or d1, the extremes each with
    # probability 1/4: the 2.5% and 97.5% percentiles are the smaller and larger difference.
    diff, low, high = paired_bootstrap(np.array([0.5, 0.0]), np.array([0.2, 0.1]))
    assert diff == pytest.approx(0.1)
    assert (low, high) == (pytest.approx(-0.1), pytest.approx(0.3))


def test_bootstrap_matches_a_direct_numpy_computation_and_is_reproducible() -> None:
    rng = np.random.default_rng(42)
    a, b = rng.random(50), rng.random(50)
    diff, low, high = paired_bootstrap(a, b, resamples=2000, seed=7)
    picks = np.random.default_rng(7).integers(0, 50, size=(2000, 50))
    means = (a - b)[picks].mean(axis=1)
    assert (low, high) == (
        pytest.approx(np.percentile(means, 2.5)),
        pytest.approx(np.percentile(means, 97.5)),
    )
    assert low < diff < high
    assert paired_bootstrap(a, b, resamples=2000, seed=7) == (diff, low, high)
    assert paired_bootstrap(a, b, resamples=2000, seed=8)[1:] != (low, high)


def test_interval_lies_above_zero_only_when_the_gain_is_clear() -> None:
    base = np.zeros(200)
    assert paired_bootstrap(base + 0.01, base)[1] > 0  # every user gains
    noisy = np.tile([0.3, -0.29], 100)  # a tiny mean gain in large noise
    diff, low, high = paired_bootstrap(noisy, base)
    assert diff > 0 and low < 0 < high


def test_bench_skips_without_peers_and_scores_their_lists_by_user(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from scripts.bench import recommend as bench  # torch and SASRec: imported by this test only

    rows = [(u, 100 + 5 * u + t, t) for u in (3, 5) for t in range(6)]  # 12 movies: more than 10
    splits = build_splits(pd.DataFrame(rows, columns=["user_id", "tmdb_id", "timestamp"]))
    monkeypatch.setattr(bench, "PEERS", tmp_path / "absent")
    assert bench.load_peers(splits) == (
        {},
        f"peer comparison skipped: no {tmp_path / 'absent' / bench.PEER_FILES[0][0]}",
    )

    monkeypatch.setattr(bench, "PEERS", tmp_path)
    test_tmdb = splits.item_ids[splits.targets("test") - 1]  # user 3's, then user 5's
    # User 5 gets its target first; user 3 gets an unknown id and misses.
    lines = ["user_key,rank,tmdb_id", f"5,2,{test_tmdb[0]}", f"5,1,{test_tmdb[1]}", "3,1,999"]
    (tmp_path / bench.PEER_FILES[0][0]).write_text("\n".join(lines) + "\n")
    (tmp_path / "results.json").write_text(json.dumps({"split_fingerprint": "another split"}))
    assert bench.load_peers(splits)[0] == {}
    (tmp_path / "results.json").write_text(json.dumps({"split_fingerprint": splits.sequence_fingerprint()}))
    scores, note = bench.load_peers(splits)
    assert "1 unknown ids" in note and "same split fingerprint" in note
    metrics = per_user_metrics(scores[bench.PEER_FILES[0][1]], splits.targets("test"), splits.inputs("test"))
    np.testing.assert_array_equal(metrics["hr"], [0, 1])
