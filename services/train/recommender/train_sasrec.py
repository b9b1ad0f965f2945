"""Train SASRec with all-position full-softmax cross-entropy and early stopping on validation NDCG@10.

Each user's training sequence is cut into windows of max_seq_length next-item steps (newest
window first), so long histories are used whole instead of truncated. Every position predicts
its next movie against the full catalog (Klenitskiy & Vasilev 2023). Selection only ever looks
at the validation targets; test targets are never read here.
"""

from __future__ import annotations

import copy
import logging
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field

import numpy as np
import torch

from services.core.recommender_runtime import SequentialRecommender
from services.core.sasrec import SASRec, SASRecConfig
from services.train.recommender.data import SequenceSplits
from services.train.recommender.metrics import evaluate_recommender

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class TrainConfig:
    """Optimisation settings (logged to W&B and the manifest)."""

    max_epochs: int = 200
    batch_size: int = 64
    learning_rate: float = 1e-3
    weight_decay: float = 0.1
    patience: int = 10  # epochs without a better validation NDCG@10 before stopping
    seed: int = 0
    threads: int = 2
    time_budget_s: float | None = None  # stop after the epoch that crosses it

    def to_dict(self) -> dict:
        """The config as a JSON-ready dict."""
        return asdict(self)


@dataclass
class EpochLog:
    """What one epoch did."""

    epoch: int
    loss: float
    valid: dict[str, float]
    seconds: float  # wall clock
    cpu_seconds: float  # all threads of this process; unlike wall time, not inflated by other load


@dataclass
class TrainResult:
    """The selected model and how it got there."""

    recommender: SequentialRecommender
    best_epoch: int
    best_valid: dict[str, float]
    train_seconds: float
    history: list[EpochLog] = field(default_factory=list)


def training_windows(sequences: Sequence[np.ndarray], max_len: int) -> tuple[np.ndarray, np.ndarray]:
    """Left-padded (inputs, next-item targets) windows of up to max_len steps, covering each sequence."""
    inputs, targets = [], []
    for seq in sequences:
        steps = len(seq) - 1
        for end in range(steps, 0, -max_len):
            start = max(0, end - max_len)
            x, y = np.zeros(max_len, np.int64), np.zeros(max_len, np.int64)
            x[max_len - (end - start) :] = seq[start:end]
            y[max_len - (end - start) :] = seq[start + 1 : end + 1]
            inputs.append(x)
            targets.append(y)
    return np.stack(inputs), np.stack(targets)


def _length_buckets(lengths: torch.Tensor, batch_size: int, rng: np.random.Generator) -> list[torch.Tensor]:
    """Batches of windows of similar length, in random order (random within equal lengths too)."""
    order = np.lexsort((rng.random(len(lengths)), lengths.numpy()))
    batches = [torch.from_numpy(order[i : i + batch_size]) for i in range(0, len(order), batch_size)]
    return [batches[i] for i in rng.permutation(len(batches))]


def train_sasrec(
    splits: SequenceSplits,
    model_config: SASRecConfig,
    train_config: TrainConfig = TrainConfig(),
    on_epoch: Callable[[EpochLog], None] | None = None,
) -> TrainResult:
    """Train on the training sequences, keep the epoch with the best validation NDCG@10."""
    torch.set_num_threads(train_config.threads)
    torch.manual_seed(train_config.seed)
    rng = np.random.default_rng(train_config.seed)
    model = SASRec(model_config)
    popularity = splits.training_popularity()
    rec = SequentialRecommender("sasrec", splits.item_ids, popularity, model=model)
    optimizer = torch.optim.AdamW(
        model.parameters(), lr=train_config.learning_rate, weight_decay=train_config.weight_decay
    )
    x_all, y_all = training_windows(splits.train_sequences(), model_config.max_seq_length)
    lengths = torch.from_numpy((y_all > 0).sum(axis=1))
    x_all, y_all = torch.from_numpy(x_all), torch.from_numpy(y_all)
    log.info("sasrec: %d windows, %d next-item targets", len(x_all), int((y_all > 0).sum()))
    best_state, best_epoch, best_valid = copy.deepcopy(model.state_dict()), 0, {"ndcg": -1.0}
    history: list[EpochLog] = []
    started = time.perf_counter()
    for epoch in range(1, train_config.max_epochs + 1):
        t0, c0 = time.perf_counter(), time.process_time()
        model.train()
        total, count = 0.0, 0
        for batch in _length_buckets(lengths, train_config.batch_size, rng):
            # Windows are left-padded and batched by length, so the shared padding is cut off.
            width = int(lengths[batch].max())
            x, y = x_all[batch, -width:], y_all[batch, -width:]
            loss = model.calculate_loss(x, y)
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            n = int(lengths[batch].sum())
            total, count = total + float(loss.detach()) * n, count + n
        model.eval()
        valid = evaluate_recommender(rec, splits, "valid")
        entry = EpochLog(epoch, total / count, valid, time.perf_counter() - t0, time.process_time() - c0)
        history.append(entry)
        improved = valid["ndcg"] > best_valid["ndcg"]
        if improved:
            best_state, best_epoch, best_valid = copy.deepcopy(model.state_dict()), epoch, valid
        log.info(
            "sasrec epoch %d loss %.4f valid ndcg@10 %.4f hr@10 %.4f (%.1fs, cpu %.1fs)%s",
            epoch, entry.loss, valid["ndcg"], valid["hr"], entry.seconds, entry.cpu_seconds,
            " *" if improved else "",
        )  # fmt: skip
        if on_epoch is not None:
            on_epoch(entry)
        elapsed = time.perf_counter() - started
        if epoch - best_epoch >= train_config.patience:
            log.info("sasrec: no better validation NDCG@10 for %d epochs, stopping", train_config.patience)
            break
        if train_config.time_budget_s is not None and elapsed >= train_config.time_budget_s:
            log.info("sasrec: time budget of %.0fs reached, stopping", train_config.time_budget_s)
            break
    model.load_state_dict(best_state)
    model.eval()
    return TrainResult(rec, best_epoch, best_valid, time.perf_counter() - started, history)
