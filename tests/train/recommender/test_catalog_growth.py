"""Movies nobody has rated: content features, appending them to a trained model, re-exporting a version."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
import torch

from services.core.new_pool import blend
from services.core.recommender_runtime import SequentialRecommender, load_recommender
from services.core.registry import Registry
from services.core.sasrec import SASRec
from services.core.sasrec_append import append_items
from services.core.sasrec_config import SASRecConfig
from services.core.sasrec_numpy import NumpySASRec
from services.core.settings import Settings
from services.train.recommender.catalog_growth import with_new_items
from services.train.recommender.data import build_splits
from services.train.recommender.item_features import VOTES_LOG, encode_items, fit_vocabulary, rows_for
from services.train.recommender.task import run_recommender_task
from services.train.recommender.train_sasrec import TrainConfig, train_sasrec
from services.train.tracking import Tracker
from tests.train.recommender.test_feedback_data import fb
from tests.train.recommender.test_model import FIRST_TMDB, N_ITEMS, _write_snapshot


def movie(tmdb_id: int, genre: str, **extra: Any) -> dict[str, Any]:
    """A normalised movie record with one genre."""
    return {"id": tmdb_id, "title": f"Movie {tmdb_id}", "genres": [genre], "release_date": "2001-05-01",
            "original_language": "en", "runtime": 100.0, "vote_count": 50.0, "overview": "", **extra}  # fmt: skip


def test_a_movie_collected_later_is_encoded_with_the_stored_vocabulary() -> None:
    catalog = [movie(i, "Drama" if i % 2 else "Comedy", production_countries=["FR"]) for i in range(1, 21)]
    catalog += [movie(30 + i, "Drama", overview="a haunted lighthouse keeper") for i in range(8)]
    names = fit_vocabulary(catalog)
    assert {"genre:Drama", "genre:Comedy", "country:FR", "word:lighthouse", "lang:en", "votes:log"} <= set(
        names
    )
    assert "word:a" not in names  # too short, and a stop word
    later = movie(
        99, "Western", original_language="xx", overview="The lighthouse again", production_countries=["FR"]
    )
    rows = encode_items([later, None], names)
    features = {names[c]: v for c, v in zip(rows.col[rows.crow[1] : rows.crow[2]], rows.val[rows.crow[1] : rows.crow[2]], strict=True)}  # fmt: skip
    # A genre the vocabulary never saw is dropped, an unknown language is "other", known values stay.
    assert "genre:Western" not in features and features["lang:other"] == 1.0
    assert features["word:lighthouse"] == 1.0 and features["country:FR"] == 1.0
    assert features["votes:log"] == pytest.approx(np.log1p(50.0) / np.log1p(10_000))
    assert rows.crow[0] == rows.crow[1] == 0 and rows.crow[3] == rows.crow[2]  # padding and None: empty rows


def _sparse_model(n_items: int, seed: int = 0) -> tuple[SASRec, list[dict[str, Any]], tuple[str, ...]]:
    genres = ["Action", "Romance", "Horror"]
    movies = [movie(FIRST_TMDB + i, genres[i % 3]) for i in range(n_items)]
    names = fit_vocabulary(movies)
    rows = encode_items(movies, names)
    torch.manual_seed(seed)
    config = SASRecConfig(n_items=n_items, max_seq_length=8, hidden_size=16, n_heads=2, n_layers=1,
                          n_item_features=len(names), feature_nnz=len(rows.col))  # fmt: skip
    model = SASRec(config)
    model.set_feature_rows(*(torch.from_numpy(a) for a in (rows.crow, rows.col, rows.val)))
    with torch.no_grad():
        model.item_embedding.weight.normal_(0.0, 0.3)
        model.item_embedding.weight[0] = 0.0
        model.feature_bag.weight.normal_(0.0, 0.3)
    return model.eval(), movies, names


def test_appending_new_movies_keeps_every_known_score_and_scores_them_finitely() -> None:
    model, _, names = _sparse_model(12)
    new = encode_items([movie(5000, "Romance"), movie(5001, "Horror", overview="")], names)
    grown = append_items(model, *(torch.from_numpy(a) for a in (new.crow, new.col, new.val)))
    seq = torch.tensor([[0, 3, 7, 2]])
    with torch.no_grad():
        before, after = model.full_sort_predict(seq), grown.full_sort_predict(seq)
    assert after.shape == (1, 15)
    torch.testing.assert_close(after[:, :13], before, rtol=1e-5, atol=1e-5)
    assert torch.isfinite(after[0, 13:]).all()
    # A new movie is its features alone: its vector is that of a known movie with the same features.
    table = grown.item_table()
    torch.testing.assert_close(table[14] - grown.item_embedding.weight[14], grown.feature_table()[3])
    assert float(grown.item_embedding.weight[13:].detach().abs().sum()) == 0.0
    # Serving's numpy pass sees the grown tables.
    np.testing.assert_allclose(NumpySASRec(grown).scores([3, 7, 2]), after[0].numpy(), rtol=1e-4, atol=1e-4)


def test_a_new_movie_tops_the_new_pool_for_a_user_whose_history_matches_its_features() -> None:
    # Two tastes: half the users watch only Action movies, half only Romance ones.
    rng = np.random.default_rng(0)
    movies = {FIRST_TMDB + i: movie(FIRST_TMDB + i, "Action" if i < 20 else "Romance") for i in range(40)}
    rows = []
    for u in range(80):
        group = np.arange(20) + (0 if u % 2 else 20)
        rows += [(u, FIRST_TMDB + int(i), t) for t, i in enumerate(rng.permutation(group)[:10])]
    splits = build_splits(pd.DataFrame(rows, columns=["user_id", "tmdb_id", "timestamp"]))
    movies[9000], movies[9001] = movie(9000, "Action"), movie(9001, "Romance")  # nobody rated them
    names = fit_vocabulary(movies.values())
    config = SASRecConfig(n_items=splits.n_items, max_seq_length=10, hidden_size=16, n_heads=2, n_layers=1,
                          inner_size=32, hidden_dropout=0.1, attn_dropout=0.1)  # fmt: skip
    train = TrainConfig(
        max_epochs=12, patience=12, time_budget_s=None, transition_prior=False, id_dropout=0.5
    )
    result = train_sasrec(splits, config, train, features=rows_for(splits.item_ids, movies, names))
    grown, new = with_new_items(result.recommender, movies, names)
    assert new == [9000, 9001] and grown.is_new(9000) and not grown.is_new(FIRST_TMDB)

    action_fan = [FIRST_TMDB + i for i in (3, 8, 11, 2)]
    romance_fan = [FIRST_TMDB + i for i in (23, 38, 31, 22)]
    for liked, expected in ((action_fan, 9000), (romance_fan, 9001)):
        top = grown.recommend(liked, 2, pool="new")
        assert [t for t, _ in top][0] == expected
        assert all(np.isfinite(s) for _, s in top)
        assert {t for t, _ in grown.recommend(liked, 10, pool="new")} <= {9000, 9001}


def test_the_task_appends_unrated_movies_then_reexports_when_only_the_catalog_grew(
    s3_settings: Settings, registry: Registry, tmp_path: Path
) -> None:
    _write_snapshot(tmp_path / "snap")
    settings = s3_settings.model_copy(update={"snapshot_dir": tmp_path / "snap"})

    def run(day: str, collected: list[dict[str, Any]]) -> dict[str, Any]:
        return run_recommender_task(
            settings, registry, Tracker(settings), logical_date=day, max_epochs=5, collected=collected
        )

    first = run("2024-01-01", [movie(7001, "Drama")])  # collected, never rated
    manifest = registry.manifest("recommender")
    files = {name: registry.read_file(manifest, name) for name in manifest.files}
    rec = load_recommender(files)
    assert first["algorithm"] == "sasrec" and rec.n_items == N_ITEMS + 1 and rec.is_new(7001)
    names = json.loads(files["item_features.json"])["names"]
    assert manifest.notes["new_items"] == 1
    # The new shelf's blend is stored with the model, reading the vocabulary's log-votes column.
    assert json.loads(files["config.json"])["new_pool"]["column"] == names.index(VOTES_LOG)
    assert 7001 in {e["tmdb_id"] for e in json.loads(files["catalog.json"])}

    # Same interactions, two more collected movies: no training, the version is re-exported.
    second = run("2024-01-02", [movie(7001, "Drama"), movie(7002, "Drama"), movie(7003, "Comedy")])
    assert second["reexported"] and second["promoted"] and second["version"] != first["version"]
    grown_manifest = registry.manifest("recommender")
    assert grown_manifest.version == second["version"]
    assert grown_manifest.notes["reexported_from"] == first["version"]
    assert grown_manifest.metrics == manifest.metrics  # the same model, not a retrained one
    grown = load_recommender({n: registry.read_file(grown_manifest, n) for n in grown_manifest.files})
    assert grown.n_items == N_ITEMS + 3 and grown.is_new(7003)
    liked = [FIRST_TMDB + 1, FIRST_TMDB + 2]
    np.testing.assert_allclose(
        grown.score_indices([rec.encode(liked)])[0, : N_ITEMS + 2],
        rec.score_indices([rec.encode(liked)])[0],
        rtol=1e-5,
        atol=1e-6,
    )

    # Nothing changed: nothing is published.
    third = run("2024-01-03", [movie(7002, "Drama"), movie(7003, "Comedy")])
    assert third["skipped"] and len(registry.versions("recommender")) == 2


def test_a_new_movie_liked_in_the_app_is_trained_on_by_the_next_model(
    s3_settings: Settings, registry: Registry, tmp_path: Path
) -> None:
    _write_snapshot(tmp_path / "snap")
    settings = s3_settings.model_copy(update={"snapshot_dir": tmp_path / "snap"})
    collected = [movie(7001, "Drama"), movie(7002, "Comedy")]
    # Someone liked two MovieLens movies, then the new release 7001 from the "new" shelf.
    likes = [fb("a", "ana", FIRST_TMDB + 3, 1), fb("b", "ana", FIRST_TMDB + 4, 2), fb("c", "ana", 7001, 3),
             fb("d", "ana", 424242, 4)]  # fmt: skip  # 424242: in no catalog, dropped
    result = run_recommender_task(
        settings, registry, Tracker(settings), logical_date="2024-01-01", max_epochs=5,
        feedback=likes, collected=collected,
    )  # fmt: skip
    manifest = registry.manifest("recommender", result["version"])
    data = manifest.notes["data"]
    assert (data["feedback_new_items"], data["feedback_unknown_items"], data["items"]) == (1, 1, N_ITEMS + 1)
    rec = load_recommender({n: registry.read_file(manifest, n) for n in manifest.files})
    # 7001 has an interaction now, so it is a trained item; 7002 is still only its features.
    assert not rec.is_new(7001) and rec.is_new(7002)
    assert rec.index[7001] == N_ITEMS + 1 and rec.index[7002] == N_ITEMS + 2
    # The evaluation still ranks the protocol's catalog only, so figures stay comparable.
    assert set(manifest.metrics) >= {"valid_ndcg@10", "test_ndcg@10"}


def test_the_new_shelf_blends_the_standardised_model_score_with_the_vote_prior() -> None:
    scores = np.array([[1.0, 2.0, 3.0, -np.inf]])
    prior = np.array([3.0, 1.0, 2.0, 9.0])
    out = blend(scores, prior, 0.5)
    z = (np.array([1.0, 2.0, 3.0]) - 2.0) / np.sqrt(2.0 / 3.0)  # over the three finite candidates
    zp = (prior - prior.mean()) / prior.std()
    np.testing.assert_allclose(out[0, :3], z + 0.5 * zp[:3])
    assert out[0, 3] == -np.inf  # an excluded candidate stays excluded
    np.testing.assert_allclose(blend(np.array([[5.0, 5.0]]), np.array([1.0, 1.0]), 2.0), [[0.0, 0.0]])


def test_a_grown_model_ranks_its_new_shelf_with_the_blend_and_keeps_it_when_reloaded() -> None:
    model, movies, names = _sparse_model(12)
    rec = SequentialRecommender("sasrec", [m["id"] for m in movies], np.r_[0.0, np.ones(12)], model=model)
    # Two new movies with the same features but for their votes: 20,000 against 5.
    catalog = {m["id"]: m for m in movies} | {
        8000: movie(8000, "Action", vote_count=5.0),
        8001: movie(8001, "Action", vote_count=20_000.0),
    }
    grown, new = with_new_items(rec, catalog, names, new_pool_weight=1.0)
    assert new == [8000, 8001] and grown.new_pool is not None
    assert grown.new_pool.column == names.index(VOTES_LOG)
    liked = [FIRST_TMDB + 1, FIRST_TMDB + 4]
    assert [t for t, _ in grown.recommend(liked, 2, pool="new")] == [8001, 8000]
    assert [t for t, _ in grown.popular(2, pool="new")] == [8001, 8000]  # no liked movie: by votes
    reloaded = load_recommender(grown.save())
    assert reloaded.new_pool == grown.new_pool
    again, before = reloaded.recommend(liked, 2, pool="new"), grown.recommend(liked, 2, pool="new")
    assert [t for t, _ in again] == [t for t, _ in before]
    np.testing.assert_allclose([s for _, s in again], [s for _, s in before], rtol=1e-5)


def test_the_feature_bias_is_trained_saved_and_served_like_the_rest() -> None:
    rows = [(u, FIRST_TMDB + (u + t) % 12, t) for u in range(30) for t in range(8)]
    splits = build_splits(pd.DataFrame(rows, columns=["user_id", "tmdb_id", "timestamp"]))
    movies = {FIRST_TMDB + i: movie(FIRST_TMDB + i, "Drama", vote_count=10.0 * i) for i in range(12)}
    names = fit_vocabulary(movies.values())
    config = SASRecConfig(n_items=splits.n_items, max_seq_length=8, hidden_size=16, n_heads=1, n_layers=1)
    train = TrainConfig(max_epochs=2, time_budget_s=None, feature_bias=True)
    rec = train_sasrec(splits, config, train, features=rows_for(splits.item_ids, movies, names)).recommender
    assert rec.model is not None and rec.model.config.feature_bias
    assert float(rec.model.bias_bag.weight.detach().abs().sum()) > 0  # it learned something
    loaded = load_recommender(rec.save())
    inputs = splits.inputs("test")
    np.testing.assert_allclose(loaded.score_indices(inputs), rec.score_indices(inputs), rtol=1e-6)
    np.testing.assert_allclose(
        loaded.fast.scores(list(inputs[0]))[1:], rec.score_indices([inputs[0]])[0, 1:], rtol=1e-4, atol=1e-4
    )
