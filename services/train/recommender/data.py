"""Interactions and leave-one-out splits: the data half of the recommender evaluation protocol.

Protocol (docs/recommender.md): every MovieLens rating is an interaction, mapped to a TMDB id
through links.csv and kept only when the movie has metadata in the snapshot; a (user, movie)
pair keeps its earliest rating; users need at least 5 interactions. A user's movies are ordered
by timestamp, then by a hash of (user id, tmdb id) that carries no information (``tie_key``); the
last one is the test target, the one before it the validation target, the rest the training
sequence.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from services.core.catalog import Catalog
from services.core.movie import normalize_movie
from services.train.movies.snapshot import load_links, load_movies, load_ratings

MIN_INTERACTIONS = 5
SPLITS = ("valid", "test")


def tie_key(user_id: int, tmdb_id: int) -> int:
    """The protocol's order among one user's same-second ratings: a 64-bit hash of both ids."""
    # Within a second the true order is unknowable; ordering by tmdb id made the last movie of a
    # bulk session the highest id, a pattern a model learns and that says nothing about taste.
    return int(hashlib.sha256(f"{int(user_id)}:{int(tmdb_id)}".encode()).hexdigest()[:16], 16)


def order_interactions(table: pd.DataFrame) -> pd.DataFrame:
    """The table sorted by user, timestamp, then tie_key (stable: equal keys keep their order)."""
    pairs = zip(table["user_id"].to_numpy(), table["tmdb_id"].to_numpy(), strict=True)
    ties = np.fromiter((tie_key(u, m) for u, m in pairs), dtype=np.uint64, count=len(table))
    ordered = table.assign(_tie=ties).sort_values(["user_id", "timestamp", "_tie"], kind="stable")
    return ordered.drop(columns="_tie")


def build_interactions(
    ratings: pd.DataFrame,
    links: pd.DataFrame,
    catalog_ids: Iterable[int],
    min_interactions: int = MIN_INTERACTIONS,
) -> pd.DataFrame:
    """The interaction table (user_id, tmdb_id, timestamp), in the protocol's order (order_interactions)."""
    joined = ratings.merge(links[["movieId", "tmdbId"]], on="movieId", how="inner")
    joined = joined.dropna(subset=["tmdbId"])
    table = pd.DataFrame(
        {
            "user_id": joined["userId"].astype("int64"),
            "tmdb_id": joined["tmdbId"].astype("int64"),
            "timestamp": joined["timestamp"].astype("int64"),
        }
    )
    table = table[table["tmdb_id"].isin(set(int(i) for i in catalog_ids))]
    table = order_interactions(table)
    # Two MovieLens ids can map to one TMDB id; the earliest rating is the interaction (both
    # ratings share a tie key, so the earlier timestamp comes first).
    table = table.drop_duplicates(["user_id", "tmdb_id"], keep="first")
    counts = table.groupby("user_id")["tmdb_id"].transform("size")
    return table[counts >= min_interactions].reset_index(drop=True)


def fingerprint(table: pd.DataFrame) -> str:
    """sha256 of the interaction table as CSV (columns user_id, tmdb_id, timestamp, in order)."""
    csv = table[["user_id", "tmdb_id", "timestamp"]].to_csv(index=False, lineterminator="\n")
    return hashlib.sha256(csv.encode()).hexdigest()


@dataclass(frozen=True)
class SequenceSplits:
    """Per-user item sequences in internal indices (1..n_items; 0 is padding), time ordered."""

    item_ids: np.ndarray  # tmdb id of internal index i + 1
    user_ids: np.ndarray
    sequences: tuple[np.ndarray, ...]
    fingerprint: str
    # Training-only sequences (the app's feedback users, see feedback_data.py): trained on and
    # counted in popularity, never held out, so the evaluation above stays comparable.
    extra_train: tuple[np.ndarray, ...] = ()
    extra_user_ids: tuple[str, ...] = ()
    # Movies only the app's feedback has interactions with (new releases liked in the app), after
    # the protocol's items: trained on, never ranked by the evaluation, which stays comparable.
    extra_items: int = 0

    @property
    def n_ranked(self) -> int:
        """Items the evaluation ranks: the protocol's catalog, without the feedback-only movies."""
        return len(self.item_ids) - self.extra_items

    @property
    def n_items(self) -> int:
        """Items in the ranked catalog (padding excluded)."""
        return len(self.item_ids)

    @property
    def n_users(self) -> int:
        """Users in the protocol."""
        return len(self.sequences)

    def train_sequences(self) -> list[np.ndarray]:
        """Each user's training sequence (everything before the validation target), then the extra ones."""
        return [s[:-2] for s in self.sequences] + list(self.extra_train)

    def inputs(self, split: str) -> list[np.ndarray]:
        """What a model sees when predicting a split's target: everything before it."""
        _check(split)
        cut = 2 if split == "valid" else 1
        return [s[:-cut] for s in self.sequences]

    def targets(self, split: str) -> np.ndarray:
        """The held-out item of each user for a split."""
        _check(split)
        pos = -2 if split == "valid" else -1
        return np.array([s[pos] for s in self.sequences], dtype=np.int64)

    def stats(self) -> dict[str, int]:
        """Counts that identify the protocol (checked by tests and printed by the bench); extras excluded."""
        train = [s[:-2] for s in self.sequences]
        return {
            "users": self.n_users,
            "items": self.n_items,
            "interactions": int(sum(len(s) for s in self.sequences)),
            "train_interactions": int(sum(len(s) for s in train)),
            # Next-item targets inside the training sequences (RecBole's count of training rows).
            "train_targets": int(sum(len(s) - 1 for s in train)),
        }

    def sequence_fingerprint(self) -> str:
        """sha256 of the lines "<userId>:<tmdbId> <tmdbId> ...\\n", ascending user id (the peers' split_fingerprint)."""
        order = sorted(range(self.n_users), key=lambda u: int(self.user_ids[u]))
        lines = (
            f"{int(self.user_ids[u])}:"
            + " ".join(str(int(t)) for t in self.item_ids[self.sequences[u] - 1])
            + "\n"
            for u in order
        )
        return hashlib.sha256("".join(lines).encode()).hexdigest()

    def training_popularity(self) -> np.ndarray:
        """Interaction count of every internal index in the training sequences, extras included (index 0 stays 0)."""
        counts = np.zeros(self.n_items + 1, dtype=np.int64)
        for s in self.train_sequences():
            np.add.at(counts, s, 1)
        return counts


def _check(split: str) -> None:
    if split not in SPLITS:
        raise ValueError(f"unknown split {split!r}; expected one of {SPLITS}")


def build_splits(table: pd.DataFrame) -> SequenceSplits:
    """Leave-one-out splits from an interaction table (user_id, tmdb_id, timestamp), in the protocol's order."""
    # A no-op on build_interactions' output; hand-made tables get the same order rule.
    table = order_interactions(table)
    item_ids = np.array(sorted(table["tmdb_id"].unique()), dtype=np.int64)
    index = pd.Series(np.arange(1, len(item_ids) + 1), index=item_ids)
    internal = index.loc[table["tmdb_id"].to_numpy()].to_numpy()
    users = table["user_id"].to_numpy()
    starts = np.flatnonzero(np.r_[True, users[1:] != users[:-1]])
    sequences = tuple(np.split(internal.astype(np.int64), starts[1:]))
    if min(len(s) for s in sequences) < 3:
        raise ValueError("every user needs at least 3 interactions for leave-one-out")
    return SequenceSplits(
        item_ids=item_ids, user_ids=users[starts], sequences=sequences, fingerprint=fingerprint(table)
    )


@dataclass(frozen=True)
class SnapshotData:
    """Everything the recommender pipeline reads from the snapshot."""

    splits: SequenceSplits
    movies: list[dict]  # TMDB movie-details JSON of the snapshot

    def records(self) -> dict[int, dict]:
        """Every snapshot movie as a normalised record, by tmdb id (rated or not)."""
        return {int(m["id"]): normalize_movie(m) for m in self.movies}

    def catalog(self) -> Catalog:
        """The catalog of the movies the recommender ranks (published as its catalog.json)."""
        known = {int(t) for t in self.splits.item_ids}
        return Catalog.from_movies([normalize_movie(m) for m in self.movies if int(m["id"]) in known])


def load_snapshot_data(snapshot_dir: Path) -> SnapshotData:
    """Read the snapshot and build the protocol's splits."""
    movies = load_movies(snapshot_dir)
    table = build_interactions(
        load_ratings(snapshot_dir), load_links(snapshot_dir), (m["id"] for m in movies)
    )
    return SnapshotData(splits=build_splits(table), movies=movies)
