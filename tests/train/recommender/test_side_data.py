"""Side data of the sequential model: item features and the transition prior."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import torch

from services.core.movie import normalize_movie
from services.core.recommender_runtime import load_recommender
from services.core.sasrec import SASRec
from services.core.sasrec_config import SASRecConfig
from services.core.sasrec_numpy import NumpySASRec
from services.train.recommender.data import build_splits
from services.train.recommender.item_features import fit_vocabulary, rows_for
from services.train.recommender.side_data import transition_csr
from services.train.recommender.train_sasrec import TrainConfig, build_model, train_sasrec


def _dense(crow: np.ndarray, col: np.ndarray, count: np.ndarray, n_items: int) -> np.ndarray:
    out = np.zeros((n_items + 1, n_items + 1))
    for row in range(n_items + 1):
        out[row, col[crow[row] : crow[row + 1]]] = count[crow[row] : crow[row + 1]]
    return out


def test_transition_counts_count_each_consecutive_pair() -> None:
    sequences = [np.array([1, 2, 3]), np.array([1, 2]), np.array([3, 1]), np.array([2])]
    crow, col, count = transition_csr(sequences, n_items=3)
    dense = _dense(crow, col, count, 3)
    expected = np.zeros((4, 4))
    expected[1, 2], expected[2, 3], expected[3, 1] = 2, 1, 1
    np.testing.assert_array_equal(dense, expected)

    model = SASRec(SASRecConfig(n_items=3, transition_nnz=len(col), hidden_size=8, n_heads=1))
    model.set_transitions(torch.from_numpy(crow), torch.from_numpy(col), torch.from_numpy(count))
    rows = model.transition_counts(torch.tensor([1, 0, 3, 1]))
    np.testing.assert_array_equal(rows.numpy(), expected[[1, 0, 3, 1]])


def test_training_prior_does_not_count_the_transition_it_predicts() -> None:
    crow, col, count = transition_csr([np.array([1, 2]), np.array([1, 2])], n_items=2)
    model = SASRec(SASRecConfig(n_items=2, transition_nnz=len(col), hidden_size=8, n_heads=1))
    model.set_transitions(torch.from_numpy(crow), torch.from_numpy(col), torch.from_numpy(count))
    with torch.no_grad():
        model.transition_weight.fill_(1.0)
        at_eval = model._prior(torch.tensor([1]))
        in_training = model._prior(torch.tensor([1]), own_targets=torch.tensor([2]))
    assert float(at_eval[0, 2]) == pytest.approx(np.log1p(2.0))  # both users' 1 -> 2
    assert float(in_training[0, 2]) == pytest.approx(np.log1p(1.0))  # only the other user's


def test_item_features_mark_genres_one_era_one_language_and_the_vote_buckets() -> None:
    movies = [
        {"id": 10, "genres": [{"id": 1, "name": "Drama"}], "release_date": "1994-05-01", "original_language": "fr",
         "vote_count": 5},
        {"id": 20, "genres": [], "release_date": "", "original_language": "en", "vote_count": 150},
        {"id": 30, "genres": [{"id": 1, "name": "Drama"}, {"id": 2, "name": "Comedy"}],
         "release_date": "2012-01-01", "original_language": "en"},
    ]  # fmt: skip
    records = {m["id"]: normalize_movie(m) for m in movies}
    names = fit_vocabulary(records.values())
    rows = rows_for([10, 20, 30, 40], records, names)
    dense = rows.dense()
    assert dense.shape == (5, len(names))
    assert not dense[0].any()  # padding
    on = [{names[j] for j in np.flatnonzero(row)} for row in dense[1:]]
    assert on[0] == {"genre:Drama", "era:1990+", "lang:fr", "runtime:unknown", "votes:<10", "votes:log"}
    assert on[1] == {"era:unknown", "lang:en", "runtime:unknown", "votes:100+", "votes:log"}
    assert on[2] == {"genre:Drama", "genre:Comedy", "era:2010+", "lang:en", "runtime:unknown", "votes:<10"}
    assert on[3] == set()  # no metadata: an empty row, the movie is its id alone
    # Two genres share a unit norm, so many genres do not outweigh one.
    assert dense[3, names.index("genre:Drama")] == pytest.approx(2**-0.5)


def test_side_data_is_saved_with_the_weights_and_scores_identically() -> None:
    rows = [(u, 100 + (u + t) % 12, t) for u in range(30) for t in range(8)]
    splits = build_splits(pd.DataFrame(rows, columns=["user_id", "tmdb_id", "timestamp"]))
    movies = [{"id": 100 + i, "genres": [{"id": i % 3, "name": f"g{i % 3}"}], "release_date": f"{1950 + 5 * i}-01-01",
               "original_language": "en"} for i in range(12)]  # fmt: skip
    config = SASRecConfig(n_items=splits.n_items, max_seq_length=8, hidden_size=16, n_heads=1, n_layers=1)
    train = TrainConfig(max_epochs=2, time_budget_s=None, item_features=True, transition_prior=True)
    records = {m["id"]: normalize_movie(m) for m in movies}
    features = rows_for(splits.item_ids, records, fit_vocabulary(records.values()))
    rec = train_sasrec(splits, config, train, features=features).recommender
    assert (
        rec.model is not None and rec.model.config.n_item_features > 0 and rec.model.config.transition_nnz > 0
    )
    loaded = load_recommender(rec.save(), num_threads=None)
    inputs = splits.inputs("test")
    np.testing.assert_array_equal(loaded.score_indices(inputs), rec.score_indices(inputs))
    fresh = build_model(splits, config, TrainConfig(item_features=False))
    assert not np.array_equal(fresh.transition_count.numpy(), np.zeros_like(fresh.transition_count.numpy()))


def test_scores_follow_reloaded_weights() -> None:
    config = SASRecConfig(n_items=6, n_item_features=3, hidden_size=8, n_heads=1, n_layers=1)
    first, second = SASRec(config).eval(), SASRec(config).eval()
    features = torch.eye(7, 3)
    first.set_item_features(features)
    second.set_item_features(features)
    seq = torch.tensor([[1, 2, 3]])
    with torch.inference_mode():
        before = first.full_sort_predict(seq)
        first.load_state_dict(second.state_dict())  # what a model reload does
        after = first.full_sort_predict(seq)
        expected = second.full_sort_predict(seq)
    assert not torch.equal(before, after)
    assert torch.equal(after, expected)


def test_serving_numpy_pass_scores_like_the_torch_module() -> None:
    # /recommend runs a numpy copy of the weights; it must rank exactly as the trained model does.
    rng = np.random.default_rng(0)
    n_items = 300
    crow, col, count = transition_csr([rng.integers(1, n_items + 1, 40) for _ in range(50)], n_items)
    config = SASRecConfig(n_items=n_items, max_seq_length=20, n_item_features=5, transition_nnz=len(col))
    torch.manual_seed(0)
    model = SASRec(config)
    with torch.no_grad():  # weights far from their small init, so every layer matters
        for p in model.parameters():
            p.add_(torch.randn_like(p) * 0.3)
    model.set_item_features(torch.from_numpy((rng.random((n_items + 1, 5)) < 0.3).astype(np.float32)))
    model.set_transitions(torch.from_numpy(crow), torch.from_numpy(col), torch.from_numpy(count))
    model.eval()
    fast = NumpySASRec(model)
    for length in (1, 3, 20, 35):  # 35: longer than max_seq_length, truncated like the torch path
        seq = [int(i) for i in rng.choice(np.arange(1, n_items + 1), length, replace=False)]
        with torch.inference_mode():
            expected = model.full_sort_predict(torch.tensor([seq[-20:]]))[0].numpy()
        got = fast.scores(seq)
        np.testing.assert_allclose(got[1:], expected[1:], rtol=1e-4, atol=1e-4)
        assert got[0] == -np.inf
        assert list(np.argsort(-got)[:10]) == list(np.argsort(-expected)[:10])
