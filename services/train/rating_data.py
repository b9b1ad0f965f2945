"""The rating data set: labelled rows, a split that respects release time, and feature matrices."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from services.core.features import Encoders, feature_names, featurize

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


def build_matrices(split: Split, encoders: Encoders) -> Matrices:
    """Featurize every split with encoders fitted on the training split only."""
    return Matrices(
        encoders=encoders,
        names=feature_names(encoders),
        x={s: featurize(getattr(split, s), encoders) for s in SPLITS},
        y={s: targets(getattr(split, s)) for s in SPLITS},
    )


def fingerprint(movies: Sequence[dict[str, Any]]) -> str:
    """A short sha256 of the (id, label) pairs: the data version a model was trained on."""
    pairs = sorted((int(m["id"]), m.get("vote_average"), m.get("release_date")) for m in movies)
    return hashlib.sha256(json.dumps(pairs).encode()).hexdigest()[:16]
