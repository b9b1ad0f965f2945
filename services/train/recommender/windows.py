"""Training windows of SASRec: what each step reads, cut from the users' training sequences.

Long histories become overlapping left-padded windows so every next-item target keeps a long
context; each epoch takes at most a few windows per user (always the newest); batches group
windows of similar length so little padding is computed; and each position's "seen" mask marks
the movies to leave out of its softmax.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch


def training_windows(
    sequences: Sequence[np.ndarray], max_len: int, stride: int | None = None
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Left-padded (inputs, next-item targets) windows; every next-item target appears exactly once.

    Targets are cut into chunks of ``stride`` steps from the end; each chunk is predicted from a
    window of up to ``max_len`` items ending at it, so with stride < max_len every target sees at
    least max_len - stride items of context (as at evaluation time) instead of restarting at
    each window boundary (stride None: half of max_len). Earlier targets in a window are zeroed
    (no loss), not repeated.
    Also returns each window's user (row of sequences; a user's windows come newest first) and
    where in that sequence the window starts. A sequence shorter than 2 has no target and no window.
    """
    stride = stride or max(1, max_len // 2)
    if not 0 < stride <= max_len:
        raise ValueError("stride must be in 1..max_len")
    inputs, targets, owners, starts = [], [], [], []
    for user, seq in enumerate(sequences):
        for end in range(len(seq) - 1, 0, -stride):
            start = max(0, end - max_len)
            x, y = np.zeros(max_len, np.int64), np.zeros(max_len, np.int64)
            x[max_len - (end - start) :] = seq[start:end]
            y[max_len - (end - start) :] = seq[start + 1 : end + 1]
            inputs.append(x)
            targets.append(y)
            owners.append(user)
            starts.append(start)
            if start == 0:  # this window already holds every earlier target with its full context
                break
            y[: max_len - stride] = 0  # earlier targets belong to the next (earlier) window
    if not inputs:
        empty = np.zeros((0, max_len), np.int64)
        return empty, empty.copy(), np.zeros(0, np.int64), np.zeros(0, np.int64)
    return np.stack(inputs), np.stack(targets), np.array(owners, dtype=np.int64), np.array(starts)


def epoch_windows(owners: np.ndarray, cap: int | None, rng: np.random.Generator) -> np.ndarray:
    """Window indices for one epoch: all, or per user the newest window plus random older ones."""
    if cap is None:
        return np.arange(len(owners))
    keys = rng.random(len(owners))
    newest = np.r_[True, owners[1:] != owners[:-1]]
    keys[newest] = -1.0  # the window ending at the user's latest movie is always trained on
    order = np.lexsort((keys, owners))
    starts = np.searchsorted(owners[order], owners[order], side="left")
    return np.sort(order[np.arange(len(order)) - starts < cap])


def seen_mask(
    x: torch.Tensor,
    batch: torch.Tensor,
    sequences: Sequence[np.ndarray],
    owners: np.ndarray,
    starts: np.ndarray,
    n_items: int,
) -> torch.Tensor:
    """(batch, width, n_items + 1) True where an item was watched at or before each input position."""
    b, width = x.shape
    # uint8 is enough: an item occurs at most once in a user's sequence (duplicates were dropped).
    seen = torch.zeros(b, width, n_items + 1, dtype=torch.uint8)
    seen.scatter_(2, x[:, :, None], 1)
    seen = seen.cumsum(dim=1, dtype=torch.uint8)
    for row, w in enumerate(batch.tolist()):  # movies older than the window
        seen[row, :, torch.from_numpy(sequences[owners[w]][: starts[w]])] = 1
    return seen > 0


def length_buckets(lengths: torch.Tensor, batch_size: int, rng: np.random.Generator) -> list[torch.Tensor]:
    """Batches of windows of similar length, in random order (random within equal lengths too)."""
    order = np.lexsort((rng.random(len(lengths)), lengths.numpy()))
    batches = [torch.from_numpy(order[i : i + batch_size]) for i in range(0, len(order), batch_size)]
    return [batches[i] for i in rng.permutation(len(batches))]
