"""Transition counts: what the sequential model's Markov prior reads besides the sequences.

Computed from the training sequences only, never from validation or test targets, and stored
inside the model's state_dict so serving needs nothing else. Item features: item_features.py.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np


def transition_csr(
    sequences: Sequence[np.ndarray], n_items: int
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Counts of each (movie, next movie) pair in the sequences as CSR arrays (crow, col, count).

    Rows and columns are internal indices 0..n_items (row 0, padding, is empty).
    """
    pairs = [np.stack([s[:-1], s[1:]], axis=1) for s in sequences if len(s) > 1]
    if pairs:
        both = np.concatenate(pairs)
        keys, counts = np.unique(both[:, 0] * (n_items + 1) + both[:, 1], return_counts=True)
        rows, cols = keys // (n_items + 1), keys % (n_items + 1)
    else:
        rows = cols = counts = np.zeros(0, dtype=np.int64)
    crow = np.zeros(n_items + 2, dtype=np.int64)
    np.add.at(crow, rows + 1, 1)
    return np.cumsum(crow), cols.astype(np.int64), counts.astype(np.float32)
