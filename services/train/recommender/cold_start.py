"""The item-cold-start protocol: rank movies nobody in training has rated (docs/recommender.md).

Every interaction with a fixed ~12% of the catalog (tmdb ids whose sha256 starts with 0 or 1)
is withheld. Models train on the rest (``ColdSplit.train``, ordinary leave-one-out splits, so
early stopping never reads a cold target). Each user with withheld movies then gives their
other movies in time order as input, and the model ranks only the withheld movies; the user's
withheld movies are the targets. Metrics come from ``metrics.per_user_multi_target``.

Pure logic, no I/O: the bench reads the snapshot and calls ``build_cold_split`` and
``baseline_table``.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from services.train.recommender.data import SequenceSplits, build_splits, order_interactions
from services.train.recommender.item_features import rows_for
from services.train.recommender.metrics import mean_and_se, per_user_multi_target

WITHHELD_PREFIXES = ("0", "1")
# Model choices for cold start are made on a validation protocol built the same way inside the
# test protocol's training data: with the withheld movies gone, those whose hash starts with 2
# (~6%) are withheld in turn. The test movies are never read while choosing.
VALIDATION_PREFIXES = ("2",)
# build_splits needs a training movie plus the validation and test targets.
MIN_TRAIN_INTERACTIONS = 3
K = 10

ItemFeatures = Mapping[int, np.ndarray]  # tmdb id -> content feature vector


def is_withheld(tmdb_id: int, prefixes: Sequence[str] = WITHHELD_PREFIXES) -> bool:
    """Whether a movie belongs to the withheld (cold) part of the catalog: sha256 of its id starts with 0 or 1."""
    # A hash of the id carries no information about the movie, so the cold items are a fair
    # sample of the catalog, and the rule needs no list to be shipped with the data.
    return hashlib.sha256(str(int(tmdb_id)).encode()).hexdigest()[0] in prefixes


@dataclass(frozen=True)
class ColdSplit:
    """Warm training splits, the withheld candidates, and each evaluated user's inputs and targets (tmdb ids)."""

    train: SequenceSplits  # non-withheld interactions only
    withheld: np.ndarray  # sorted tmdb ids of withheld movies with an interaction: the candidates
    user_ids: np.ndarray  # evaluated users, ascending
    inputs: tuple[np.ndarray, ...]  # each user's non-withheld movies, time order
    targets: tuple[np.ndarray, ...]  # each user's withheld movies, time order

    @property
    def n_users(self) -> int:
        """Users evaluated."""
        return len(self.user_ids)

    def target_columns(self) -> list[np.ndarray]:
        """Each user's targets as column indices of ``withheld``."""
        return [np.searchsorted(self.withheld, t) for t in self.targets]

    def stats(self) -> dict[str, float]:
        """Counts that identify the protocol (evaluated users, candidates, targets, mean targets per user)."""
        n_targets = int(sum(len(t) for t in self.targets))
        return {
            "users": self.n_users,
            "candidates": len(self.withheld),
            "targets": n_targets,
            "mean_targets": n_targets / self.n_users if self.n_users else 0.0,
            "train_users": self.train.n_users,
            "train_items": self.train.n_items,
        }

    def fingerprint(self) -> str:
        """sha256 of "candidates: <ids>\\n" then "<userId>: <inputs> | <targets>\\n" per user, ascending user id."""
        lines = ["candidates: " + " ".join(str(int(t)) for t in self.withheld) + "\n"]
        for user, inp, tgt in zip(self.user_ids, self.inputs, self.targets, strict=True):
            lines.append(
                f"{int(user)}: "
                + " ".join(map(str, inp.tolist()))
                + " | "
                + " ".join(map(str, tgt.tolist()))
                + "\n"
            )
        return hashlib.sha256("".join(lines).encode()).hexdigest()


def build_cold_split(table: pd.DataFrame, prefixes: Sequence[str] = WITHHELD_PREFIXES) -> ColdSplit:
    """The cold-start split of an interaction table (user_id, tmdb_id, timestamp; data.build_interactions)."""
    # A no-op on build_interactions' output; hand-made tables get the protocol's order.
    table = order_interactions(table).reset_index(drop=True)
    ids = table["tmdb_id"].to_numpy()
    unique = np.unique(ids)
    cold_ids = unique[np.fromiter((is_withheld(t, prefixes) for t in unique), dtype=bool, count=len(unique))]
    cold = np.isin(ids, cold_ids)

    warm = table[~cold]
    keep = warm.groupby("user_id")["tmdb_id"].transform("size") >= MIN_TRAIN_INTERACTIONS
    train = build_splits(warm[keep])

    user_ids, inputs, targets = [], [], []
    for user, rows in table.groupby("user_id", sort=True):
        rows_cold = cold[rows.index.to_numpy()]
        if rows_cold.any() and not rows_cold.all():
            movies = rows["tmdb_id"].to_numpy(dtype=np.int64)
            user_ids.append(int(user))
            inputs.append(movies[~rows_cold])
            targets.append(movies[rows_cold])
    return ColdSplit(
        train=train,
        withheld=cold_ids.astype(np.int64),
        user_ids=np.array(user_ids, dtype=np.int64),
        inputs=tuple(inputs),
        targets=tuple(targets),
    )


def validation_split(table: pd.DataFrame) -> ColdSplit:
    """The cold-start validation protocol: the test's withheld movies removed, then VALIDATION_PREFIXES withheld."""
    test_cold = np.fromiter((is_withheld(t) for t in table["tmdb_id"]), dtype=bool, count=len(table))
    return build_cold_split(table[~test_cold], VALIDATION_PREFIXES)


def evaluate_cold(candidate_scores: np.ndarray, split: ColdSplit, k: int = K) -> dict[str, Any]:
    """Per-user Recall@k and NDCG@k of a (users, candidates) score matrix, their means and standard errors."""
    if candidate_scores.shape != (split.n_users, len(split.withheld)):
        raise ValueError(
            f"scores are {candidate_scores.shape}, expected ({split.n_users}, {len(split.withheld)}) "
            "in split.withheld column order"
        )
    per_user = per_user_multi_target(candidate_scores, split.target_columns(), k)
    out: dict[str, Any] = {"users": split.n_users, "per_user": per_user}
    for name, values in per_user.items():
        out[f"{name}_mean"], out[f"{name}_se"] = mean_and_se(values)
    return out


def random_scores(split: ColdSplit, seed: int = 0) -> np.ndarray:
    """Uniform random scores (the chance level; continuous, so no ties)."""
    return np.random.default_rng(seed).random((split.n_users, len(split.withheld)))


def votes_scores(split: ColdSplit, vote_count: Mapping[int, float]) -> np.ndarray:
    """Each candidate's TMDB vote count, the same for every user (a movie without one ranks last)."""
    # Vote counts come from TMDB, not from the withheld ratings, so they are fair to use.
    row = np.array([float(vote_count.get(int(t), -np.inf)) for t in split.withheld])
    return np.tile(row, (split.n_users, 1))


def _normalised(vectors: np.ndarray) -> np.ndarray:
    norms = np.linalg.norm(vectors, axis=1, keepdims=True)
    # An all-zero vector stays zero (cosine 0 with everything) instead of dividing by zero.
    return np.divide(vectors, norms, out=np.zeros_like(vectors), where=norms > 0)


def content_knn_scores(split: ColdSplit, features: ItemFeatures) -> np.ndarray:
    """Mean cosine between each candidate's features and those of the user's input movies (no features: skipped)."""
    some = next(iter(features.values()), None)
    if some is None:
        raise ValueError("features is empty")
    dim = len(some)
    cand = np.stack(
        [np.asarray(features.get(int(t), np.zeros(dim)), dtype=np.float64) for t in split.withheld]
    )
    cand_missing = np.array([int(t) not in features for t in split.withheld])
    cand = _normalised(cand)
    scores = np.zeros((split.n_users, len(split.withheld)))
    for u, inp in enumerate(split.inputs):
        known = [features[int(t)] for t in inp if int(t) in features]
        if not known:
            continue  # no profile: every candidate scores 0, a pessimistic all-tie
        # The mean of the cosines is the dot product with the mean of the normalised history vectors.
        profile = _normalised(np.asarray(known, dtype=np.float64)).mean(axis=0)
        scores[u] = cand @ profile
    # A candidate with no features cannot be placed by content: it ranks last.
    scores[:, cand_missing] = -np.inf
    return scores


def content_vectors(
    tmdb_ids: Sequence[int], movies: Mapping[int, Mapping[str, Any]], names: Sequence[str]
) -> dict[int, np.ndarray]:
    """tmdb id -> dense content feature vector: the k-NN's view of the features the model reads."""
    dense = rows_for(tmdb_ids, movies, names).dense()
    # Row 0 is padding; row i + 1 is tmdb_ids[i].
    return {int(t): dense[i + 1].astype(np.float64) for i, t in enumerate(tmdb_ids)}


def baseline_table(split: ColdSplit, movies: list[dict], features: ItemFeatures) -> dict[str, dict[str, Any]]:
    """Random, TMDB-votes and content-kNN results on the split (means, SEs and per-user arrays for pairing)."""
    votes = {int(m["id"]): float(m["vote_count"]) for m in movies if m.get("vote_count") is not None}
    return {
        "random": evaluate_cold(random_scores(split), split),
        "votes": evaluate_cold(votes_scores(split, votes), split),
        "content_knn": evaluate_cold(content_knn_scores(split, features), split),
    }
