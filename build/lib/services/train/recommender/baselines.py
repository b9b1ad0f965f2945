"""The baselines every recommender must beat: most-popular and item-kNN (cosine, 10 neighbours).

Both are fitted on the training sequences only and returned as SequentialRecommender objects,
so they are evaluated, published and served through exactly the same code as the torch model.
"""

from __future__ import annotations

import numpy as np
import scipy.sparse as sp
import torch

from services.core.recommender_runtime import SequentialRecommender
from services.train.recommender.data import SequenceSplits

KNN_NEIGHBOURS = 10


def fit_popularity(splits: SequenceSplits) -> SequentialRecommender:
    """Scores every item by its number of training interactions."""
    return SequentialRecommender("popularity", splits.item_ids, splits.training_popularity())


def cosine_neighbours(matrix: sp.csr_matrix, k: int) -> tuple[np.ndarray, np.ndarray]:
    """For each item (column), its k most cosine-similar other items and their similarities."""
    binary = (matrix > 0).astype(np.float64)
    norms = np.sqrt(np.asarray(binary.sum(axis=0)).ravel())
    overlap = (binary.T @ binary).toarray()
    np.fill_diagonal(overlap, 0.0)
    # The 1e-6 keeps never-seen items (norm 0) at similarity 0, as RecBole's ComputeSimilarity does.
    sim = overlap / (norms[:, None] * norms[None, :] + 1e-6)
    # Stable sort of -sim: higher similarity first, ties by lower index (deterministic).
    order = np.argsort(-sim, axis=1, kind="stable")[:, :k]
    weights = np.take_along_axis(sim, order, axis=1)
    # Zero-similarity slots point at padding with weight 0, so they add nothing to any score.
    cols = np.where(weights > 0, order, 0)
    weights = np.where(weights > 0, weights, 0.0)
    return cols, weights


def fit_item_knn(splits: SequenceSplits, k: int = KNN_NEIGHBOURS) -> SequentialRecommender:
    """Item-kNN: a user's score for item j sums sim(i, j) over input items i whose top-k holds j."""
    train = splits.train_sequences()
    rows = np.repeat(np.arange(len(train)), [len(s) for s in train])
    data = np.ones(len(rows))
    matrix = sp.csr_matrix((data, (rows, np.concatenate(train))), shape=(len(train), splits.n_items + 1))
    cols, weights = cosine_neighbours(matrix, k)
    neighbours = {
        "neighbours": torch.from_numpy(cols),
        "weights": torch.from_numpy(weights.astype(np.float32)),
    }
    # No history truncation: item-kNN uses every input item, as in the reference harness.
    return SequentialRecommender(
        "item_knn", splits.item_ids, splits.training_popularity(), neighbours=neighbours, max_seq_length=None
    )
