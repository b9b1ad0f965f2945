"""How the "new" shelf ranks movies nobody has rated: the model's taste score plus a vote prior.

A new movie's model score comes from its content features alone. On the item-cold-start
validation protocol (docs/recommender.md) that score ranked the withheld movies below their
TMDB vote counts, yet the two disagree in useful ways: the blend, with each score standardised
over the movies being ranked, beat both. The weight is chosen on that validation protocol and
stored with the model (``config.json``'s ``new_pool``); the prior is the model's own log-votes
feature, so serving needs no other data.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from services.core.sasrec import SASRec


@dataclass(frozen=True)
class NewPoolBlend:
    """The blend of the new shelf: the weight of the vote prior and the feature column it reads."""

    weight: float
    column: int  # index of the log-votes feature in the model's item features

    def to_dict(self) -> dict[str, Any]:
        """The settings as stored in config.json."""
        return {"weight": self.weight, "column": self.column, "prior": "log1p(vote_count) feature"}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> NewPoolBlend:
        """Settings read back from config.json."""
        return cls(weight=float(data["weight"]), column=int(data["column"]))

    def prior(self, model: SASRec) -> np.ndarray:
        """Each internal index's prior (n_items + 1,): its log-votes feature value, 0 when it has none."""
        crow = model.feature_crow.numpy()
        col, val = model.feature_col.numpy(), model.feature_val.numpy()
        rows = np.repeat(np.arange(len(crow) - 1), np.diff(crow))
        out = np.zeros(len(crow) - 1)
        hit = col == self.column
        out[rows[hit]] = val[hit]
        return out


def _standardised(x: np.ndarray, axis: int) -> np.ndarray:
    std = x.std(axis=axis, keepdims=True)
    # A single candidate, or all equal: nothing to spread, every candidate gets 0.
    return (x - x.mean(axis=axis, keepdims=True)) / np.where(std > 0, std, 1.0)


def blend(scores: np.ndarray, prior: np.ndarray, weight: float) -> np.ndarray:
    """Blended scores of candidates: per row, the standardised model score plus weight times the standardised prior.

    ``scores`` is (rows, candidates) or (candidates,); ``prior`` is (candidates,). Non-finite
    model scores stay -inf (they were excluded).
    """
    scores = np.atleast_2d(np.asarray(scores, dtype=np.float64))
    finite = np.isfinite(scores)
    filled = np.where(finite, scores, 0.0)
    mean = (filled * finite).sum(1, keepdims=True) / np.maximum(finite.sum(1, keepdims=True), 1)
    var = (((filled - mean) * finite) ** 2).sum(1, keepdims=True) / np.maximum(
        finite.sum(1, keepdims=True), 1
    )
    z = (filled - mean) / np.where(var > 0, np.sqrt(var), 1.0)
    out = z + weight * _standardised(np.asarray(prior, dtype=np.float64)[None, :], axis=1)
    return np.where(finite, out, -np.inf)
