"""A production rating model and days of /predict logs at volume, for the drift tests and bench/drift.py.

The snapshot's labelled movies are dealt at random (fixed seed) into a training half, which the
published model and its train.parquet come from as the pipeline writes them (out-of-fold learned
features), and a request half: the same population, other movies. A day's log draws requests from the
request half with replacement, as records in the serving host's format (RatingService._log_events),
uploaded as gzipped JSON-lines batches under the names the flusher uses (events.batch_key).
"""

from __future__ import annotations

import io
import json
import random
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

import numpy as np
import pandas as pd

from services.core import events
from services.core.features import Encoders, feature_names, featurize, featurize_training, fit_encoders
from services.core.rating_model import save_rating_model
from services.core.registry import Registry
from services.core.storage import ObjectStore
from services.train.rating.data import first_run_rows
from tests.serve_fixtures import SNAPSHOT

BUILT_ON = "2026-11-30"
TRAIN_ROWS = 2000
ROWS_PER_BATCH = 5000  # the flusher's SPOOL_FLUSH_ROWS default
REPLICAS = ("api-a", "api-b")
# A genuine shift in what users ask about: overviews cut to a few words, a third of the requests in
# languages the catalogue barely has, and dramas and comedies asked about as horror and documentaries.
GENRE_SWAP = {"Drama": "Horror", "Comedy": "Documentary", "Thriller": "Family"}
NEW_LANGUAGES = ("ko", "hi", "tr")


@dataclass(frozen=True)
class World:
    """The training half, the request half and what was fitted on the training half."""

    train: tuple[dict[str, Any], ...]
    requests: tuple[dict[str, Any], ...]
    encoders: Encoders
    names: tuple[str, ...]
    booster: Any


@lru_cache(maxsize=1)
def world() -> World:
    """The two halves of the snapshot's labelled movies and the model trained on the first."""
    import xgboost as xgb

    rows = first_run_rows(SNAPSHOT, holdback=0, min_vote_count=10)
    random.Random(0).shuffle(rows)
    train, requests = rows[:TRAIN_ROWS], rows[TRAIN_ROWS:]
    enc = fit_encoders(train)
    x = featurize_training(train, enc)
    y = np.array([m["vote_average"] for m in train])
    params = {"max_depth": 4, "eta": 0.1, "seed": 0, "nthread": 1}
    booster = xgb.train(params, xgb.DMatrix(x, label=y), num_boost_round=30)
    return World(tuple(train), tuple(requests), enc, tuple(feature_names(enc)), booster)


def publish_production(store: ObjectStore) -> str:
    """Publish and promote the model, with its training features where monitoring reads them; its version."""
    w = world()
    files = {
        **save_rating_model(w.booster, "xgboost"),
        "encoders.json": json.dumps(w.encoders.to_json()).encode(),
    }
    meta = {"algorithm": "xgboost", "features": list(w.names), "metrics": {"val_rmse": 0.9},
            "notes": {"logical_date": BUILT_ON}}  # fmt: skip
    manifest = Registry(store).publish("rating", files, meta, promote=True, reason="drift test")
    buf = io.BytesIO()
    pd.DataFrame(featurize_training(list(w.train), w.encoders), columns=list(w.names)).to_parquet(
        buf, index=False
    )
    store.put_bytes(f"features/dt={BUILT_ON}/train.parquet", buf.getvalue(), "application/vnd.apache.parquet")
    ids = [int(m["id"]) for m in w.train]
    store.put_json(f"features/dt={BUILT_ON}/meta.json", {"ids": {"train": ids, "val": [], "test": []}})
    return manifest.version


def shifted(movie: dict[str, Any], i: int) -> dict[str, Any]:
    """The same movie as the shifted population asks about it."""
    words = (movie.get("overview") or "").split()
    out = {
        **movie,
        "overview": " ".join(words[:6]) or "A film.",
        "genres": [GENRE_SWAP.get(g, g) for g in movie["genres"]],
    }
    if i % 3 == 0:
        out["original_language"] = NEW_LANGUAGES[i % len(NEW_LANGUAGES)]
    return out


def log_lines(version: str, shift: bool = False) -> list[str]:
    """One serving-format log record per request-half movie, as JSON text without its event_id and ts."""
    w = world()
    movies = [shifted(m, i) for i, m in enumerate(w.requests)] if shift else list(w.requests)
    x = featurize(movies, w.encoders)
    import xgboost as xgb

    predictions = w.booster.predict(xgb.DMatrix(x))
    lines = []
    for movie, row, prediction in zip(movies, x, predictions, strict=True):
        fields = {
            k: movie.get(k) for k in ("runtime", "genres", "original_language", "title", "release_date")
        }
        fields["overview_length"] = len(movie.get("overview") or "")
        record = {
            "model_version": version,
            "prediction": round(float(prediction), 4),
            "translated": False,
            "input": fields,
            "features": {n: (None if np.isnan(v) else float(v)) for n, v in zip(w.names, row, strict=True)},
        }
        lines.append(json.dumps(record, ensure_ascii=False, sort_keys=True)[1:-1])
    return lines


def write_day(store: ObjectStore, day: str, lines: list[str], n: int, seed: int = 0) -> int:
    """Upload n requests drawn from `lines` (with replacement) as the day's batches; how many objects."""
    rng = np.random.default_rng(seed)
    objects = 0
    for first in range(0, n, ROWS_PER_BATCH):
        size = min(ROWS_PER_BATCH, n - first)
        replica = REPLICAS[(first // ROWS_PER_BATCH) % len(REPLICAS)]
        ts = f"{day}T{(first * 86_399 // n) // 3600:02d}:00:00.000Z"
        text = "\n".join(
            f'{{"event_id": "{replica}-{first + j:09d}", "ts": "{ts}", {lines[k]}}}'
            for j, k in enumerate(rng.integers(0, len(lines), size))
        )
        store.put_bytes(
            events.batch_key("predictions", day, replica, first),
            events.encode_jsonl(text),
            "application/gzip",
        )
        objects += 1
    return objects
