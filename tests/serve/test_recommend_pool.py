"""The "new" pool of POST /recommend: movies the recommender had no training interactions with."""

from __future__ import annotations

import json
import math
from collections.abc import Callable, Iterator

import numpy as np
import pytest
import torch
from fastapi.testclient import TestClient

from services.core import events
from services.core.recommender_runtime import SequentialRecommender
from services.core.registry import Manifest, Registry
from services.core.sasrec import SASRec
from services.core.sasrec_config import SASRecConfig
from services.core.sasrec_numpy import NumpySASRec
from services.core.settings import Settings
from services.core.storage import ObjectStore
from services.serve.app import create_app
from services.train.feedback.impressions import usable_impressions
from services.train.feedback.online_eval import version_metrics
from tests.serve_fixtures import (
    FakeTranslator,
    catalog_json,
    publish_rating,
    publish_runtime_recommender,
    recommender_ids,
)

N_COLD = 10  # the last recommender_ids() have no training interactions: cold items


def _tiny_sasrec(n_items: int, seed: int = 0) -> SASRec:
    torch.manual_seed(seed)
    config = SASRecConfig(
        n_items=n_items, max_seq_length=10, hidden_size=16, n_layers=1, n_heads=1, inner_size=32
    )
    return SASRec(config)


def _popularity(n_items: int, n_cold: int) -> np.ndarray:
    """Training counts per internal index (padding first): n_items - n for the warm ones, then n_cold zeros."""
    warm = [float(n_items - n) for n in range(n_items - n_cold)]
    return np.array([0.0, *warm, *([0.0] * n_cold)])


def _publish(registry: Registry, rec: SequentialRecommender) -> Manifest:
    files = {**rec.save(), "catalog.json": catalog_json()}
    return registry.publish("recommender", files, {"algorithm": rec.algorithm}, promote=True)


@pytest.fixture
def cold_ids() -> set[int]:
    return set(recommender_ids()[-N_COLD:])


Publisher = Callable[[Registry], Manifest]
AppWith = Callable[[Publisher], TestClient]


@pytest.fixture
def app_with(s3_settings: Settings, registry: Registry) -> AppWith:
    """A factory: publish a recommender (and a rating model), then serve the real app on them."""
    publish_rating(registry)

    def start(publish: Publisher) -> TestClient:
        publish(registry)
        return TestClient(create_app(s3_settings, translator=FakeTranslator()))

    return start


@pytest.fixture
def cold(app_with: AppWith) -> Iterator[TestClient]:
    """The app on a small SASRec over recommender_ids() whose last N_COLD items have no interactions."""
    ids = recommender_ids()
    rec = SequentialRecommender("sasrec", ids, _popularity(len(ids), N_COLD), model=_tiny_sasrec(len(ids)))
    with app_with(lambda registry: _publish(registry, rec)) as c:
        yield c


def _ids(out: dict) -> list[int]:
    return [i["tmdb_id"] for i in out["items"]]


# ---- the runtime ----------------------------------------------------------------------------------
@pytest.mark.parametrize("algorithm", ["sasrec", "sasrec-numpy", "popularity"])
def test_the_new_pool_holds_only_zero_count_items_with_finite_scores(algorithm: str) -> None:
    n, n_cold = 30, 8
    ids = list(range(101, 101 + n))
    popularity = _popularity(n, n_cold)
    kwargs: dict = {}
    if algorithm.startswith("sasrec"):
        model = _tiny_sasrec(n)
        kwargs = {"model": model, "fast": NumpySASRec(model) if algorithm == "sasrec-numpy" else None}
    rec = SequentialRecommender(algorithm.split("-")[0], ids, popularity, max_seq_length=10, **kwargs)
    cold = set(ids[-n_cold:])
    liked = [ids[0], ids[-1], ids[3]]  # one liked movie is cold: it is masked like any liked one
    got = rec.recommend(liked, 100, pool="new")
    assert {t for t, _ in got} == cold - set(liked)  # every candidate, and nothing that had interactions
    assert all(math.isfinite(s) for _, s in got)
    assert [s for _, s in got] == sorted((s for _, s in got), reverse=True)
    top = rec.recommend(liked, 3, pool="new")
    assert top == got[:3]
    assert all(rec.is_new(t) for t in cold) and not any(rec.is_new(t) for t in ids[:-n_cold])
    assert rec.is_new(999_999)  # unknown to the model: no interactions either


def test_the_new_pool_without_a_known_like_is_the_new_items_in_index_order() -> None:
    ids = list(range(1, 21))
    rec = SequentialRecommender("popularity", ids, _popularity(20, 5), max_seq_length=10)
    assert rec.popular(3, exclude=[17], pool="new") == [(16, 0.0), (18, 0.0), (19, 0.0)]
    assert rec.recommend([424242], 10, pool="new") == [(t, 0.0) for t in range(16, 21)]
    assert [t for t, _ in rec.recommend([], 3)] == [1, 2, 3]  # the whole catalog: most popular first


def test_a_model_without_new_items_returns_nothing_new() -> None:
    ids = list(range(1, 21))
    rec = SequentialRecommender("sasrec", ids, _popularity(20, 0), model=_tiny_sasrec(20))
    assert rec.recommend([1, 2], 5, pool="new") == []
    assert rec.recommend([], 5, pool="new") == rec.popular(5, pool="new") == []
    assert len(rec.recommend([1, 2], 5)) == 5
    with pytest.raises(ValueError, match="pool"):
        rec.recommend([1], 5, pool="bogus")  # type: ignore[arg-type]


# ---- the API --------------------------------------------------------------------------------------
def test_new_pool_never_returns_a_movie_that_had_interactions(cold: TestClient, cold_ids: set[int]) -> None:
    ids = recommender_ids()
    warm = set(ids) - cold_ids
    liked = [ids[0], ids[-1], ids[5]]
    out = cold.post("/recommend", json={"liked": liked, "k": 20, "pool": "new"}).json()
    assert out["pool"] == "new" and out["strategy"] == "sequential" and out["cold_start"] is False
    got = _ids(out)
    assert len(got) == 20 and not (set(got) & (warm | set(liked)))
    assert all(i["new"] for i in out["items"])
    # The model's own cold items come first (scored from the sequence), then the catalog movies it
    # never saw, by TMDB popularity.
    assert set(got[: N_COLD - 1]) == cold_ids - set(liked)
    scores = [i["score"] for i in out["items"]]
    assert all(math.isfinite(s) for s in scores)
    cold_start = cold.post("/recommend", json={"liked": [], "k": 5, "pool": "new"}).json()
    assert cold_start["strategy"] == "popularity" and cold_start["cold_start"] is True
    assert all(i["new"] for i in cold_start["items"]) and not set(_ids(cold_start)) & warm
    assert [i["score"] for i in cold_start["items"]] == sorted(
        (i["score"] for i in cold_start["items"]), reverse=True
    )


def test_every_item_of_the_whole_pool_says_whether_it_is_new(cold: TestClient, cold_ids: set[int]) -> None:
    ids = recommender_ids()
    for liked in ([ids[0], ids[1]], []):
        out = cold.post("/recommend", json={"liked": liked, "k": 60}).json()
        assert out["pool"] == "all"
        got = {i["tmdb_id"]: i["new"] for i in out["items"]}
        assert len(got) == 60
        assert got == {t: t in cold_ids or t not in ids for t in got}
    # All the model knows, the cold items included, comes before the top-up of movies it never saw.
    assert set(_ids(cold.post("/recommend", json={"liked": [ids[0]], "k": 39}).json())) == set(ids[1:])


def test_an_old_model_answers_the_new_pool_with_only_new_movies(app_with: AppWith) -> None:
    ids = recommender_ids()
    # Every published model so far: no cold items, in a serving catalog with movies it never saw.
    with app_with(publish_runtime_recommender) as c:
        r = c.post("/recommend", json={"liked": ids[:2], "k": 5, "pool": "new"})
        assert r.status_code == 200
        out = r.json()
        assert out["pool"] == "new" and len(out["items"]) == 5
        assert all(i["new"] for i in out["items"]) and not set(_ids(out)) & set(ids)
        catalog = {e["tmdb_id"]: e["popularity"] for e in json.loads(catalog_json())}
        assert _ids(out) == sorted(set(catalog) - set(ids), key=lambda t: (-catalog[t], t))[:5]


def test_an_old_model_that_saw_the_whole_catalog_has_nothing_new(app_with: AppWith) -> None:
    every = [e["tmdb_id"] for e in json.loads(catalog_json())]
    rec = SequentialRecommender("popularity", every, _popularity(len(every), 0), max_seq_length=50)
    with app_with(lambda registry: _publish(registry, rec)) as c:
        for liked in ([every[0]], []):
            r = c.post("/recommend", json={"liked": liked, "k": 5, "pool": "new"})
            assert r.status_code == 200 and r.json()["items"] == [] and r.json()["pool"] == "new"
        assert not any(i["new"] for i in c.post("/recommend", json={"k": 5}).json()["items"])


def test_an_unknown_pool_is_a_422_naming_the_field(cold: TestClient) -> None:
    for pool in ("bogus", "", None, 1, "NEW"):
        r = cold.post("/recommend", json={"liked": [], "pool": pool})
        assert r.status_code == 422
        assert r.json()["detail"][0]["loc"][-1] == "pool"


def test_the_impression_says_which_pool_was_ranked(cold: TestClient, store: ObjectStore) -> None:
    shown = {
        pool: cold.post("/recommend", json={"liked": recommender_ids()[:2], "k": 4, "pool": pool}).json()
        for pool in ("all", "new")
    }
    cold.app.state.events.flush()  # type: ignore[attr-defined]
    logged = [
        r for day in events.days(store, "impressions") for r in events.read_day(store, "impressions", day)
    ]
    by_request = {r["request_id"]: r for r in logged}
    for pool, out in shown.items():
        impression = by_request[out["request_id"]]
        assert impression["pool"] == pool and impression["items"] == _ids(out)
    # Online evaluation reads them, and judges each pool apart: pool is data on the event, the stream
    # stays "impressions".
    usable, dropped = usable_impressions(logged)
    assert dropped == 0
    rows = version_metrics(usable, [])
    assert [(r["pool"], r["responses"]) for r in rows] == [("all", 1), ("new", 1)]
