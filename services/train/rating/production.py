"""The production rating model as monitoring sees it: its files, the data it was built from, and new movies.

Monitoring judges the model users are served, so everything here starts from the registry's production
pointer and the pipeline day that built that version, never from the run in progress.
"""

from __future__ import annotations

import io
import json
import logging
from dataclasses import dataclass
from datetime import date
from typing import Any

import numpy as np
import pandas as pd

from services.core.features import Encoders, featurize
from services.core.movie import normalize_movie
from services.core.rating_model import RatingPredictor, load_rating_model
from services.core.registry import ChecksumError, Manifest, RegistryError
from services.core.storage import ObjectNotFound
from services.train import raw_store
from services.train.context import Context
from services.train.movies.validate import validate

log = logging.getLogger(__name__)


@dataclass
class Production:
    """The production rating version, loaded, with the ids of every movie its data set held."""

    manifest: Manifest
    model: RatingPredictor
    encoders: Encoders
    built_on: str  # the logical date of the pipeline run that trained it
    ids: dict[str, list[int]]  # train / val / test ids of that run

    @property
    def version(self) -> str:
        """The version id."""
        return self.manifest.version

    @property
    def seen(self) -> set[int]:
        """Every movie of its data set: none of these can tell how it does on new ones."""
        return {i for split in self.ids.values() for i in split}

    def features(self, movies: list[dict[str, Any]]) -> np.ndarray:
        """Feature matrix of normalised movies, with this version's own encoders."""
        return featurize(movies, self.encoders)

    def predict(self, movies: list[dict[str, Any]]) -> np.ndarray:
        """Predicted ratings of normalised movies."""
        return self.model.predict(self.features(movies))


def load_production(ctx: Context, version: str | None = None) -> Production | None:
    """The production rating model (or `version`, a shadow), or None (logged) when none or it cannot be used."""
    try:
        manifest = ctx.registry.manifest("rating", version)
    except RegistryError:
        return None
    built_on = manifest.notes.get("logical_date")
    try:
        files = {n: ctx.registry.read_file(manifest, n) for n in manifest.files}
        model = load_rating_model(manifest.algorithm or "xgboost", files)
        encoders = Encoders.from_json(json.loads(files["encoders.json"]))
        meta = ctx.store.get_json(f"features/dt={built_on}/meta.json")
    except (ChecksumError, ObjectNotFound, ValueError, KeyError) as exc:
        log.warning("production rating %s cannot be monitored: %s", manifest.version, exc)
        return None
    return Production(manifest, model, encoders, str(built_on), meta["ids"])


def new_movies(ctx: Context, logical_date: str, seen: set[int]) -> list[dict[str, Any]]:
    """The day's collected movies that pass validation and were not in the data set `seen`, by id."""
    try:
        raw = raw_store.read_partition(ctx.store, logical_date)
    except ObjectNotFound:
        return []
    records = []
    for movie in raw:
        try:
            records.append(normalize_movie(movie))
        except (KeyError, TypeError, ValueError):
            continue  # validate_step quarantined it with its reason already
    good = validate(records, today=date.fromisoformat(logical_date)).good
    unique = {int(m["id"]): m for m in good if int(m["id"]) not in seen}
    return list(unique.values())


def training_frame(ctx: Context, prod: Production) -> pd.DataFrame:
    """The training features of the production version (what drift is measured against)."""
    data = ctx.store.get_bytes(f"features/dt={prod.built_on}/train.parquet")
    return pd.read_parquet(io.BytesIO(data))


def training_movies(ctx: Context, prod: Production) -> list[dict[str, Any]]:
    """The curated movies of the production version's training split."""
    curated = raw_store.read_jsonl(ctx.store, f"curated/dt={prod.built_on}/movies.jsonl.gz")
    train = set(prod.ids["train"])
    return [m for m in curated if int(m["id"]) in train]
