"""The one evaluation module: full-ranking HR@k, NDCG@k, MRR@k and catalog coverage@k.

Every model of the recommender is scored here, on a score matrix over the whole catalog
(no sampled negatives). Conventions:

- column 0 is the padding index and is never ranked; the catalog is columns 1..n;
- NaN scores count as -inf;
- each user's input items (what the model saw) are masked out before ranking;
- ties are pessimistic: the target's rank is 1 + the number of other items scoring at least
  as high, so a model that gives every item the same score gets zero, not a lucky hit;
- coverage@k counts the distinct items in all top-k lists (ties there broken by lower index)
  divided by the catalog size.

With one target per user, HR@k equals Recall@k. Two models are compared on the same users with
``paired_bootstrap`` over their per-user values (``per_user_metrics``).

A second protocol, item cold start (``cold_start.py``), ranks only a candidate set (the withheld
movies) and gives each user several targets. ``per_user_multi_target`` scores it on a matrix
over the candidate columns only (no padding column, nothing masked): Recall@k is the hits in the
top k over min(k, number of targets), NDCG@k the DCG of the top k (binary gains) over the ideal
DCG of min(k, number of targets) hits. NaN scores count as -inf and ties stay pessimistic: among
equal scores every non-target ranks before the targets. ``mean_and_se`` gives each mean with its
standard error, and ``paired_bootstrap`` compares two models on the same users.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:
    from services.core.recommender_runtime import SequentialRecommender
    from services.train.recommender.data import SequenceSplits

METRIC_NAMES = ("hr", "ndcg", "mrr", "coverage")


def mask_inputs(scores: np.ndarray, inputs: Sequence[np.ndarray]) -> np.ndarray:
    """A float64 copy of scores with padding and each user's input items set to -inf."""
    if len(inputs) != len(scores):
        raise ValueError(f"{len(scores)} score rows but {len(inputs)} input sequences")
    out = np.array(scores, dtype=np.float64, copy=True)
    # A NaN score must never win: a NaN target would otherwise rank first (NaN >= x is False).
    out[np.isnan(out)] = -np.inf
    out[:, 0] = -np.inf
    rows = np.repeat(np.arange(len(inputs)), [len(s) for s in inputs])
    if len(rows):
        out[rows, np.concatenate(inputs)] = -np.inf
    return out


def target_ranks(masked: np.ndarray, targets: np.ndarray) -> np.ndarray:
    """1-based pessimistic rank of each user's target in a masked score matrix."""
    target_scores = masked[np.arange(len(masked)), targets][:, None]
    at_least = (masked >= target_scores).sum(axis=1)  # includes the target itself
    return at_least.astype(np.int64)


def top_k(masked: np.ndarray, k: int) -> np.ndarray:
    """Indices of the k best items per row, best first, ties by lower index."""
    # Sorting on (-score, index) with a stable sort keeps lower indices first among equals.
    return np.argsort(-masked, axis=1, kind="stable")[:, :k]


def evaluate(
    scores: np.ndarray, targets: np.ndarray, inputs: Sequence[np.ndarray], k: int = 10
) -> dict[str, float]:
    """HR@k, NDCG@k, MRR@k and coverage@k, averaged over users (one target each)."""
    targets = np.asarray(targets, dtype=np.int64)
    _check_shapes(scores, targets)
    masked = mask_inputs(scores, inputs)
    per_user = _per_user(masked, targets, k)
    return {
        **{name: float(values.mean()) for name, values in per_user.items()},
        "coverage": float(len(np.unique(top_k(masked, k))) / (scores.shape[1] - 1)),
    }


def per_user_metrics(
    scores: np.ndarray, targets: np.ndarray, inputs: Sequence[np.ndarray], k: int = 10
) -> dict[str, np.ndarray]:
    """Each user's HR@k, NDCG@k and MRR@k (what evaluate averages), for paired comparisons."""
    targets = np.asarray(targets, dtype=np.int64)
    _check_shapes(scores, targets)
    return _per_user(mask_inputs(scores, inputs), targets, k)


def _check_shapes(scores: np.ndarray, targets: np.ndarray) -> None:
    if scores.ndim != 2 or len(targets) != len(scores):
        raise ValueError("scores must be (users, items + 1) with one target per user")
    if (targets < 1).any() or (targets >= scores.shape[1]).any():
        raise ValueError("targets must be catalog indices 1..n_items")


def _per_user(masked: np.ndarray, targets: np.ndarray, k: int) -> dict[str, np.ndarray]:
    ranks = target_ranks(masked, targets)
    hit = ranks <= k
    return {
        "hr": hit.astype(np.float64),
        "ndcg": np.where(hit, 1.0 / np.log2(ranks + 1.0), 0.0),
        "mrr": np.where(hit, 1.0 / ranks, 0.0),
    }


def scores_from_top_lists(top_lists: Sequence[Sequence[int]], n_items: int) -> np.ndarray:
    """A score matrix that ranks each user's given list (catalog indices, best first) first, the rest tied last."""
    # -inf for unlisted items: with pessimistic ties a target outside the list never counts as a hit.
    scores = np.full((len(top_lists), n_items + 1), -np.inf)
    for u, items in enumerate(top_lists):
        items = np.asarray(items, dtype=np.int64)
        scores[u, items] = np.arange(len(items), 0, -1, dtype=np.float64)
    return scores


def paired_bootstrap(
    a: np.ndarray, b: np.ndarray, resamples: int = 10_000, seed: int = 0, level: float = 0.95
) -> tuple[float, float, float]:
    """Mean of a - b over users and its percentile bootstrap interval (users resampled with replacement)."""
    a, b = np.asarray(a, dtype=np.float64), np.asarray(b, dtype=np.float64)
    if a.shape != b.shape or a.ndim != 1 or len(a) == 0:
        raise ValueError("a and b must be equal-length, non-empty vectors of per-user values")
    diff = a - b
    # One (resamples, users) draw: 10,000 x 670 indices is about 54 MB, and the draw is one stream.
    picks = np.random.default_rng(seed).integers(0, len(diff), size=(resamples, len(diff)))
    means = diff[picks].mean(axis=1)
    tail = (1.0 - level) / 2.0 * 100.0
    low, high = np.percentile(means, [tail, 100.0 - tail])
    return float(diff.mean()), float(low), float(high)


def prefixed(metrics: dict[str, float], split: str, k: int = 10) -> dict[str, float]:
    """Metric names as logged and published, e.g. valid_ndcg@10."""
    return {f"{split}_{name}@{k}": value for name, value in metrics.items()}


def split_scores(rec: SequentialRecommender, splits: SequenceSplits, split: str) -> np.ndarray:
    """A recommender's scores for a split's inputs, as columns of the splits' item index.

    A recommender with another item index (an older production version) sees its inputs as
    tmdb ids; catalog items it does not know score -inf, so they rank last (pessimistically).
    """
    inputs = splits.inputs(split)
    n = splits.n_ranked
    if np.array_equal(rec.item_ids[:n], splits.item_ids[:n]):
        # The same index, perhaps followed by movies the protocol does not rank (feedback-only
        # movies, movies without interactions): those columns are left out.
        return rec.score_indices(inputs)[:, : n + 1]
    foreign = rec.score_indices([rec.encode(splits.item_ids[s - 1]) for s in inputs])
    out = np.full((len(inputs), n + 1), -np.inf)
    columns = np.array([rec.index.get(int(t), 0) for t in splits.item_ids[:n]])
    known = columns > 0
    out[:, 1:][:, known] = foreign[:, columns[known]]
    return out


def evaluate_recommender(
    rec: SequentialRecommender, splits: SequenceSplits, split: str, k: int = 10
) -> dict[str, float]:
    """Full-ranking metrics of a recommender on the valid or test split (inputs masked)."""
    return evaluate(split_scores(rec, splits, split), splits.targets(split), splits.inputs(split), k)


def per_user_multi_target(
    scores: np.ndarray, targets: Sequence[np.ndarray], k: int = 10
) -> dict[str, np.ndarray]:
    """Each user's Recall@k and NDCG@k with several targets among candidate columns (a perfect list scores 1).

    ``scores`` is (users, candidates) over the candidate columns only and ``targets[u]`` holds
    column indices. Recall@k is hits in the top k divided by min(k, |targets|), as in Liang et
    al. 2018 (VAE-CF), so a perfect list scores 1 whatever the number of targets; NDCG@k is the
    DCG of the top k (binary gains) over the ideal DCG of min(k, |targets|) hits. NaN scores
    count as -inf; among equal scores every non-target ranks before the targets (pessimistic).
    """
    scores = np.asarray(scores, dtype=np.float64)
    if scores.ndim != 2 or len(targets) != len(scores):
        raise ValueError("scores must be (users, candidates) with one target array per user")
    if k < 1:
        raise ValueError("k must be at least 1")
    n_candidates = scores.shape[1]
    discounts = 1.0 / np.log2(np.arange(2, k + 2, dtype=np.float64))  # rank r -> 1/log2(r + 1)
    recall = np.zeros(len(scores))
    ndcg = np.zeros(len(scores))
    for u, cols in enumerate(targets):
        cols = np.asarray(cols, dtype=np.int64)
        if len(cols) == 0 or len(np.unique(cols)) != len(cols):
            raise ValueError(f"user {u} needs distinct, non-empty targets")
        if (cols < 0).any() or (cols >= n_candidates).any():
            raise ValueError(f"user {u} has a target outside the {n_candidates} candidate columns")
        row = np.where(np.isnan(scores[u]), -np.inf, scores[u])
        is_target = np.zeros(n_candidates, dtype=bool)
        is_target[cols] = True
        others = np.sort(row[~is_target])
        target_scores = np.sort(row[cols])[::-1]
        # The j-th best target (0-based) sits after the j better-or-tied targets and after
        # every non-target scoring at least as high: the pessimistic rank.
        at_least = len(others) - np.searchsorted(others, target_scores, side="left")
        ranks = np.arange(1, len(cols) + 1) + at_least
        hits = ranks[ranks <= k]
        ideal = min(k, len(cols))
        recall[u] = len(hits) / ideal
        ndcg[u] = discounts[hits - 1].sum() / discounts[:ideal].sum()
    return {"recall": recall, "ndcg": ndcg}


def mean_and_se(values: np.ndarray) -> tuple[float, float]:
    """Mean over users and its standard error (sample std with ddof=1 over sqrt(n); NaN for one user)."""
    values = np.asarray(values, dtype=np.float64)
    if values.ndim != 1 or len(values) == 0:
        raise ValueError("values must be a non-empty vector of per-user values")
    if len(values) == 1:
        return float(values[0]), float("nan")
    return float(values.mean()), float(values.std(ddof=1) / np.sqrt(len(values)))
