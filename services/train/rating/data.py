"""The rating data set: labelled rows, a split that respects release time, and feature matrices."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path
from typing import Any

import numpy as np

from services.core.features import Encoders, feature_names, featurize, featurize_training
from services.core.movie import normalize_movie
from services.train.movies.snapshot import load_movies
from services.train.movies.snapshot_feed import next_batch
from services.train.movies.validate import validate

SPLITS = ("train", "val", "test")


@dataclass
class Split:
    """Movies of each split; val and test are released strictly after everything before them."""

    train: list[dict[str, Any]]
    val: list[dict[str, Any]]
    test: list[dict[str, Any]]

    def sizes(self) -> dict[str, int]:
        """Rows per split."""
        return {name: len(getattr(self, name)) for name in SPLITS}

    def ids(self) -> dict[str, list[int]]:
        """TMDB ids per split."""
        return {name: [int(m["id"]) for m in getattr(self, name)] for name in SPLITS}


def labelled(movies: Sequence[dict[str, Any]], min_vote_count: int) -> list[dict[str, Any]]:
    """Movies whose vote_average rests on enough votes to be a label."""
    return [
        m
        for m in movies
        if m.get("vote_average") is not None and (m.get("vote_count") or 0) >= min_vote_count
    ]


def first_run_rows(snapshot_dir: Path, holdback: int, min_vote_count: int) -> list[dict[str, Any]]:
    """The labelled rows the pipeline's first run trains on, straight from the snapshot (bench, tests).

    Same path as collect -> validate -> build_features: the feed's backfill (all but the `holdback`
    most recent releases; 0 for the whole snapshot), normalize_movie, validate, labelled.
    """
    batch = next_batch(load_movies(snapshot_dir), set(), holdback=holdback, daily=0)
    report = validate([normalize_movie(m) for m in batch], today=date.today())
    return labelled(report.good, min_vote_count)


def time_split(movies: Sequence[dict[str, Any]], val_frac: float = 0.1, test_frac: float = 0.1) -> Split:
    """Oldest releases train, the next ones validate, the most recent test.

    Cut points are release dates, and a date never straddles two splits, so every hold-out movie
    was released after every movie the model learned from.
    """
    ordered = sorted(movies, key=lambda m: (m["release_date"], int(m["id"])))
    n = len(ordered)
    if n < 20:
        raise ValueError(f"only {n} labelled movies: too few to train and hold out")
    test_date = ordered[n - max(1, round(n * test_frac))]["release_date"]
    val_date = ordered[n - max(1, round(n * test_frac)) - max(1, round(n * val_frac))]["release_date"]
    return Split(
        train=[m for m in ordered if m["release_date"] < val_date],
        val=[m for m in ordered if val_date <= m["release_date"] < test_date],
        test=[m for m in ordered if m["release_date"] >= test_date],
    )


def refit_split(split: Split) -> Split:
    """Training and validation rows together as the training split, the test rows unchanged.

    The published model is refitted here once validation has chosen its rounds: the most recent
    labelled releases before the test window are the ones most like the movies it will be asked about.
    """
    return Split(train=[*split.train, *split.val], val=[], test=split.test)


def targets(movies: Sequence[dict[str, Any]]) -> np.ndarray:
    """vote_average of each movie."""
    return np.asarray([float(m["vote_average"]) for m in movies])


@dataclass
class Matrices:
    """Feature matrices and targets of every split, with the encoders that made them."""

    encoders: Encoders
    names: list[str]
    x: dict[str, np.ndarray]
    y: dict[str, np.ndarray]
    # Optional per-row weights of the training split (scripts/bench/rating_fixes.py measures label-noise
    # weights with them; the pipeline trains unweighted).
    w: dict[str, np.ndarray] = field(default_factory=dict)


def split_matrix(split: Split, name: str, encoders: Encoders) -> np.ndarray:
    """One split's feature matrix: out-of-fold learned features for train, plain featurize otherwise.

    `encoders` must be fitted on split.train; its label-derived features would otherwise carry each
    training row's own label into the trees.
    """
    rows = getattr(split, name)
    return featurize_training(rows, encoders) if name == "train" else featurize(rows, encoders)


def build_matrices(split: Split, encoders: Encoders) -> Matrices:
    """Featurize every split with encoders fitted on the training split only."""
    return Matrices(
        encoders=encoders,
        names=feature_names(encoders),
        x={s: split_matrix(split, s, encoders) for s in SPLITS},
        y={s: targets(getattr(split, s)) for s in SPLITS},
    )


def fingerprint(movies: Sequence[dict[str, Any]]) -> str:
    """A short sha256 of the (id, label) pairs: the data version a model was trained on."""
    pairs = sorted((int(m["id"]), m.get("vote_average"), m.get("release_date")) for m in movies)
    return hashlib.sha256(json.dumps(pairs).encode()).hexdigest()[:16]
