"""Test helpers for serving: publish real rating models and real (small) recommenders to a real S3.

The rating model is what the training pipeline publishes: an XGBoost booster trained on featurize()
of the bundled snapshot, its encoders, and the catalog, in their native formats.
"""

from __future__ import annotations

import json
import threading
import time
from functools import lru_cache
from pathlib import Path
from typing import Any

import numpy as np

from services.core.catalog import Catalog
from services.core.features import Encoders, feature_names, featurize, fit_encoders
from services.core.movie import normalize_movie
from services.core.rating_model import save_rating_model
from services.core.registry import Manifest, Registry
from services.train.movies.snapshot import load_movies

SNAPSHOT = Path(__file__).resolve().parents[1] / "data" / "snapshot"
N_TRAIN = 1500


@lru_cache(maxsize=1)
def snapshot_movies() -> tuple[dict[str, Any], ...]:
    """Every snapshot movie, normalised (read once per test session)."""
    return tuple(normalize_movie(m) for m in load_movies(SNAPSHOT))


@lru_cache(maxsize=1)
def training_data() -> tuple[Encoders, np.ndarray, np.ndarray]:
    """Encoders, features and vote_average labels of the first well-voted snapshot movies."""
    rows = [m for m in snapshot_movies() if m["vote_average"] is not None and (m["vote_count"] or 0) >= 10]
    rows = rows[:N_TRAIN]
    enc = fit_encoders(rows)
    return enc, featurize(rows, enc), np.array([m["vote_average"] for m in rows])


@lru_cache(maxsize=1)
def catalog_json() -> bytes:
    """The catalog of the whole snapshot, as the pipeline publishes it."""
    movies = [m for m in snapshot_movies() if m["id"] is not None]
    return json.dumps(Catalog.from_movies(movies).to_json()).encode()


def train_booster(rounds: int = 30, seed: int = 0) -> Any:
    """A small XGBoost regressor on the snapshot (different rounds/seed: a different model)."""
    import xgboost as xgb

    enc, x, y = training_data()
    params = {"max_depth": 4, "eta": 0.1, "subsample": 0.8, "seed": seed, "nthread": 1}
    return xgb.train(params, xgb.DMatrix(x, label=y, feature_names=None), num_boost_round=rounds)


def rating_files(rounds: int = 30, seed: int = 0) -> tuple[dict[str, bytes], dict[str, Any]]:
    """The files and manifest fields of one rating model version."""
    enc, _, _ = training_data()
    files = {
        **save_rating_model(train_booster(rounds, seed), "xgboost"),
        "encoders.json": json.dumps(enc.to_json()).encode(),
        "catalog.json": catalog_json(),
    }
    meta = {
        "algorithm": "xgboost",
        "features": feature_names(enc),
        "metrics": {"rmse": 0.9, "mae": 0.7},
        "wandb_run": "test-run-" + str(seed),
        "notes": {"rounds": rounds},
    }
    return files, meta


def publish_rating(registry: Registry, *, rounds: int = 30, seed: int = 0, promote: bool = True) -> Manifest:
    """Publish (and by default promote) a rating model version."""
    files, meta = rating_files(rounds, seed)
    return registry.publish("rating", files, meta, promote=promote, reason="test")


# ---- recommenders: the real runtime (services.core.recommender_runtime), small -----------------------
def recommender_ids() -> list[int]:
    """The 40 catalog ids the test recommenders know (the least popular ones, so results differ)."""
    entries = json.loads(catalog_json())
    return [e["tmdb_id"] for e in sorted(entries, key=lambda e: (e["popularity"], e["tmdb_id"]))[:40]]


def neighbour_files(step: int = 1) -> dict[str, bytes]:
    """The files of a real item-kNN recommender over recommender_ids(): each movie's neighbours are the
    movies step, 2*step and 3*step on in that list (weights 1, 1/2, 1/3); popularity follows the list."""
    import torch

    from services.core.recommender_runtime import SequentialRecommender

    ids = recommender_ids()
    n = len(ids)
    # Internal index i + 1 is ids[i]; row 0 is padding (its neighbours weigh nothing).
    cols = [[0, 0, 0]] + [[(i + step * j) % n + 1 for j in (1, 2, 3)] for i in range(n)]
    weights = [[0.0, 0.0, 0.0]] + [[1.0, 1 / 2, 1 / 3] for _ in range(n)]
    neighbours = {"neighbours": torch.tensor(cols), "weights": torch.tensor(weights, dtype=torch.float32)}
    popularity = np.array([0.0, *(float(n - i) for i in range(n))])
    rec = SequentialRecommender("item_knn", ids, popularity, neighbours=neighbours, max_seq_length=50)
    return {**rec.save(), "catalog.json": catalog_json()}


def publish_recommender(registry: Registry, step: int = 1, promote: bool = True) -> Manifest:
    """Publish (and by default promote) the item-kNN recommender of neighbour_files(step)."""
    return registry.publish("recommender", neighbour_files(step), {"algorithm": "item_knn"}, promote=promote)


def publish_runtime_recommender(registry: Registry) -> Manifest:
    """Publish a recommender in the real runtime's format (popularity algorithm over recommender_ids())."""
    from services.core.recommender_runtime import SequentialRecommender

    ids = recommender_ids()
    popularity = np.array([0.0, *(float(len(ids) - n) for n in range(len(ids)))])
    rec = SequentialRecommender("popularity", ids, popularity, max_seq_length=50)
    files = {**rec.save(), "catalog.json": catalog_json()}
    return registry.publish("recommender", files, {"algorithm": "popularity"}, promote=True)


def publish_sasrec_recommender(registry: Registry, seed: int = 0) -> Manifest:
    """Publish an untrained SASRec (default architecture) over the whole catalog: what a pipeline run
    serves, minus the training, so /recommend can be timed without one.

    Side data of the production size: 40 item features and ~70,000 transition pairs (random).
    """
    import torch

    from services.core.recommender_runtime import SequentialRecommender
    from services.core.sasrec import SASRec
    from services.core.sasrec_config import SASRecConfig
    from services.train.recommender.side_data import transition_csr

    ids = [e["tmdb_id"] for e in json.loads(catalog_json())]
    torch.manual_seed(seed)
    rng = np.random.default_rng(seed)
    sequences = [rng.integers(1, len(ids) + 1, 108) for _ in range(670)]
    crow, col, count = transition_csr(sequences, len(ids))
    model = SASRec(SASRecConfig(n_items=len(ids), n_item_features=40, transition_nnz=len(col)))
    model.set_item_features(torch.from_numpy((rng.random((len(ids) + 1, 40)) < 0.1).astype(np.float32)))
    model.set_transitions(torch.from_numpy(crow), torch.from_numpy(col), torch.from_numpy(count))
    popularity = np.array([0.0, *(float(len(ids) - n) for n in range(len(ids)))])
    rec = SequentialRecommender("sasrec", ids, popularity, model=model)
    files = {**rec.save(), "catalog.json": catalog_json()}
    return registry.publish("recommender", files, {"algorithm": "sasrec"}, promote=True)


# ---- translators ---------------------------------------------------------------------------------
class FakeTranslator:
    """A translator that answers from a dict (or fails, or hangs), recording what it was asked."""

    def __init__(self, answers: dict[str, str] | None = None, fail: bool = False, delay_s: float = 0.0):
        self.answers = answers or {}
        self.fail = fail
        self.delay_s = delay_s
        self.calls: list[str] = []
        self._lock = threading.Lock()

    def translate(self, text: str) -> str:
        with self._lock:
            self.calls.append(text)
        if self.delay_s:
            time.sleep(self.delay_s)
        if self.fail:
            raise ConnectionError("translator unreachable")
        return self.answers.get(text, text)


# ---- movies --------------------------------------------------------------------------------------
def movie_payload(**overrides: Any) -> dict[str, Any]:
    """A valid /predict body (TMDB field names)."""
    body = {
        "title": "The Long Night Shift",
        "overview": "A tired nurse and a stubborn old patient uncover a conspiracy in the hospital over one "
        "long night, and learn to trust each other.",
        "runtime": 104,
        "genres": ["Drama", "Thriller"],
        "original_language": "en",
        "release_date": "2015-03-15",
        "budget": 12000000,
        "production_countries": ["US"],
        "spoken_languages": ["en"],
    }
    body.update(overrides)
    return body
