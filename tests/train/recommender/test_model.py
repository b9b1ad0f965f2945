"""SASRec and the serving runtime: it learns a sequential pattern, survives save/load, refuses tampering."""

from __future__ import annotations

import csv
import gzip
import json
import threading
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch

from services.core.recommender_runtime import SequentialRecommender, load_recommender
from services.core.registry import ChecksumError, Registry
from services.core.sasrec_config import SASRecConfig
from services.core.settings import Settings
from services.core.storage import ObjectStore
from services.train.recommender.data import SequenceSplits, build_splits
from services.train.recommender.metrics import evaluate_recommender
from services.train.recommender.task import run_recommender_task
from services.train.recommender.train_sasrec import TrainConfig, train_sasrec
from services.train.recommender.windows import training_windows
from services.train.tracking import Tracker

N_ITEMS, CHAIN, FIRST_TMDB = 40, 12, 1000


def _chain_rows(users: int = 120, seed: int = 0) -> list[tuple[int, int, int]]:
    """Each user watches a run of consecutive movies: the next movie always follows the last one."""
    rng = np.random.default_rng(seed)
    rows = []
    for u in range(users):
        start = int(rng.integers(N_ITEMS))
        rows += [(u, FIRST_TMDB + (start + t) % N_ITEMS, t) for t in range(CHAIN)]
    return rows


@pytest.fixture(scope="module")
def chain_splits() -> SequenceSplits:
    return build_splits(pd.DataFrame(_chain_rows(), columns=["user_id", "tmdb_id", "timestamp"]))


@pytest.fixture(scope="module")
def trained(chain_splits: SequenceSplits) -> SequentialRecommender:
    config = SASRecConfig(
        n_items=chain_splits.n_items, max_seq_length=16, hidden_size=32, n_layers=1, n_heads=2,
        inner_size=64, hidden_dropout=0.1, attn_dropout=0.1,
    )  # fmt: skip
    # The transformer alone (no side data): the transition prior would solve chains by itself.
    train = TrainConfig(
        max_epochs=40, batch_size=16, learning_rate=5e-3, patience=40, seed=0,
        item_features=False, transition_prior=False,
    )  # fmt: skip
    return train_sasrec(chain_splits, config, train).recommender


def test_sasrec_learns_next_movie_chains(
    chain_splits: SequenceSplits, trained: SequentialRecommender
) -> None:
    test = evaluate_recommender(trained, chain_splits, "test")
    assert test["hr"] >= 0.95
    assert test["mrr"] >= 0.8  # mostly at rank 1, not just somewhere in the top 10
    first, second = FIRST_TMDB + 5, FIRST_TMDB + 6
    assert trained.recommend([first, second], k=1)[0][0] == FIRST_TMDB + 7


def test_training_is_reproducible_for_a_seed(chain_splits: SequenceSplits) -> None:
    config = SASRecConfig(n_items=chain_splits.n_items, max_seq_length=16, hidden_size=16, n_layers=1)
    inputs = chain_splits.inputs("valid")

    def scores(seed: int) -> np.ndarray:
        train = TrainConfig(max_epochs=2, seed=seed, time_budget_s=None, item_features=False)
        return train_sasrec(chain_splits, config, train).recommender.score_indices(inputs)

    first = scores(0)
    np.testing.assert_array_equal(first, scores(0))
    assert not np.array_equal(first, scores(1))


def test_training_windows_use_every_target_once_with_long_context() -> None:
    seq = np.arange(1, 121)
    x, y, owners, _ = training_windows([seq], max_len=50, stride=25)
    targets = y[y > 0]
    assert sorted(targets.tolist()) == list(range(2, 121))
    assert (owners == 0).all()
    for row_x, row_y in zip(x, y, strict=True):
        for pos in np.flatnonzero(row_y):
            assert row_y[pos] == row_x[pos] + 1  # the target is the movie after the input
            context = np.count_nonzero(row_x[: pos + 1])
            assert context >= min(25, row_x[pos])  # at least max_len - stride movies, when they exist


def test_recommend_masks_liked_ignores_unknown_and_truncates(trained: SequentialRecommender) -> None:
    liked = [FIRST_TMDB + i for i in range(3)]
    recs = trained.recommend([*liked, 999_999], k=10)
    assert len(recs) == 10
    assert not {t for t, _ in recs} & set(liked)
    assert [s for _, s in recs] == sorted((s for _, s in recs), reverse=True)
    assert recs == trained.recommend(liked, k=10)
    long = [FIRST_TMDB + (i % N_ITEMS) for i in range(60)]
    assert trained.recommend(long, k=5) == trained.recommend(long[-16:], k=5)


def test_recommend_is_one_forward_pass(
    trained: SequentialRecommender, monkeypatch: pytest.MonkeyPatch
) -> None:
    calls = []
    original = trained.model.forward  # type: ignore[union-attr]
    monkeypatch.setattr(trained.model, "forward", lambda seq: calls.append(seq.shape) or original(seq))
    trained.recommend([FIRST_TMDB, FIRST_TMDB + 1], k=10)
    assert calls == [(1, 2)]


def test_cold_start_falls_back_to_popular(trained: SequentialRecommender) -> None:
    assert trained.recommend([123_456], k=3) == trained.popular(3)
    top = trained.popular(2)[0][0]
    assert top not in [t for t, _ in trained.popular(2, exclude=[top])]


def test_save_and_load_give_identical_scores(
    chain_splits: SequenceSplits, trained: SequentialRecommender
) -> None:
    files = trained.save()
    assert set(files) == {"model.pt", "config.json", "items.json", "popularity.json"}
    loaded = load_recommender(files, num_threads=None)
    inputs = chain_splits.inputs("test")
    np.testing.assert_array_equal(loaded.score_indices(inputs), trained.score_indices(inputs))
    assert loaded.knows(FIRST_TMDB) and not loaded.knows(5)


def test_registry_refuses_a_tampered_model_file(
    registry: Registry, store: ObjectStore, trained: SequentialRecommender
) -> None:
    manifest = registry.publish("recommender", trained.save(), {"algorithm": "sasrec"}, promote=True)
    files = {name: registry.read_file(manifest, name) for name in manifest.files}
    loaded = load_recommender(files, num_threads=None).recommend([FIRST_TMDB], 5)
    assert [t for t, _ in loaded] == [t for t, _ in trained.recommend([FIRST_TMDB], 5)]
    store.put_bytes(f"registry/recommender/versions/{manifest.version}/model.pt", b"not the weights")
    with pytest.raises(ChecksumError):
        registry.read_file(manifest, "model.pt")


def _write_snapshot(folder: Path) -> None:
    """A tiny snapshot in the bundled files' formats: chain users, links and movie titles."""
    folder.mkdir()
    with gzip.open(folder / "ratings.csv.gz", "wt", newline="") as fh:
        w = csv.writer(fh)
        w.writerow(["userId", "movieId", "rating", "timestamp"])
        w.writerows((u + 1, tmdb - FIRST_TMDB + 1, 4.0, ts) for u, tmdb, ts in _chain_rows(users=60))
    with open(folder / "links.csv", "w", newline="") as fh:
        w = csv.writer(fh)
        w.writerow(["movieId", "imdbId", "tmdbId"])
        w.writerows((i + 1, f"{i:07d}", FIRST_TMDB + i) for i in range(N_ITEMS))
    with gzip.open(folder / "movies.csv.gz", "wt", newline="") as fh:
        w = csv.writer(fh)
        w.writerow(["id", "title", "release_date", "overview", "popularity"])
        w.writerows((FIRST_TMDB + i, f"Movie {i}", "2001-01-01", "", "1.0") for i in range(N_ITEMS))


def test_task_publishes_then_keeps_production_when_not_better(
    s3_settings: Settings, registry: Registry, tmp_path: Path
) -> None:
    _write_snapshot(tmp_path / "snap")
    settings = s3_settings.model_copy(update={"snapshot_dir": tmp_path / "snap"})
    first = run_recommender_task(
        settings, registry, Tracker(settings), logical_date="2024-01-01", max_epochs=3
    )
    assert first["promoted"] and first["reason"] == "no production recommender yet"
    assert set(first["metrics"]) == {"popularity", "item_knn", "sasrec"}
    manifest = registry.manifest("recommender")
    assert manifest.version == first["version"] and manifest.data_fingerprint == first["data_fingerprint"]
    titles = {e["tmdb_id"]: e["title"] for e in json.loads(registry.read_file(manifest, "catalog.json"))}
    assert len(titles) == N_ITEMS and titles[FIRST_TMDB + 7] == "Movie 7"
    # New data that cannot change SASRec (one app user with one like: popularity only, no next-movie
    # target), same seeds: the challenger only ties production, so production stays.
    like = {"event_id": "e1", "ts": "2024-01-02T10:00:00.000Z", "user_id": "ana", "tmdb_id": FIRST_TMDB,
            "kind": "like", "value": None}  # fmt: skip
    second = run_recommender_task(
        settings, registry, Tracker(settings), logical_date="2024-01-02", max_epochs=3, feedback=[like]
    )
    assert not second["skipped"] and second["data_fingerprint"] != first["data_fingerprint"]
    assert not second["promoted"] and "production" in second["reason"]
    assert registry.production_version("recommender") == first["version"]


def test_each_serving_thread_scores_with_one_torch_thread(trained: SequentialRecommender) -> None:
    # The API loads models in a worker thread and serves on another; torch's thread count is per
    # OS thread, so the scoring thread must get its own setting (2 threads were slower per request).
    rec = load_recommender(trained.save())
    counts = []

    def serve() -> None:
        torch.set_num_threads(2)
        rec.score_indices([[1, 2]])
        counts.append(torch.get_num_threads())

    thread = threading.Thread(target=serve)
    thread.start()
    thread.join()
    assert counts == [1]
