"""Train SASRec with all-position full-softmax cross-entropy and early stopping on validation NDCG@10.

Every position predicts its next movie against the full catalog (Klenitskiy & Vasilev 2023),
with the user's earlier movies left out of the softmax as evaluation masks them out. Long
histories are cut into overlapping windows so each target keeps a long context; heavy raters
contribute at most a few windows per epoch (always their newest). The learning rate follows a
half cosine. Selection only ever looks at validation targets; test targets are never read here.
"""

from __future__ import annotations

import copy
import logging
import math
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field, replace

import numpy as np
import torch

from services.core.recommender_runtime import SequentialRecommender
from services.core.sasrec import SASRec
from services.core.sasrec_config import SASRecConfig
from services.train.recommender.data import SequenceSplits
from services.train.recommender.item_features import FeatureRows
from services.train.recommender.metrics import evaluate_recommender
from services.train.recommender.side_data import transition_csr
from services.train.recommender.windows import epoch_windows, length_buckets, seen_mask, training_windows

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class TrainConfig:
    """Optimisation settings (logged to W&B and the manifest)."""

    max_epochs: int = 40
    batch_size: int = 16  # windows per step; small batches learn faster per epoch on this data
    learning_rate: float = 5e-3
    weight_decay: float = 0.1
    patience: int = 20  # epochs without a better validation NDCG@10 before stopping
    seed: int = 0
    # One thread: on the shared 2-core host, 2 threads made every op ~20x slower (each parallel
    # region waits for a thread another process has descheduled); 1 thread ran 5.5 s per epoch.
    threads: int = 1
    # Wall-clock budget: when the epochs so far project past it, fewer epochs are planned and the
    # cosine schedule is shortened to end within it.
    time_budget_s: float | None = 280.0
    window_stride: int | None = None  # None: half of max_seq_length
    cosine_decay: bool = True  # learning rate follows a half cosine to 0 over max_epochs
    # Heavy raters hold most targets but every user counts once in the metric: cap their windows.
    max_windows_per_user: int | None = 4
    # Leave each target's earlier movies out of its softmax, as evaluation masks them out.
    mask_seen: bool = True
    # Add content features (genres, era, language, countries, companies, collection, runtime,
    # votes, overview words) to the item embeddings (needs the items' feature rows).
    item_features: bool = True
    # DropoutNet (Volkovs et al., NeurIPS 2017): each step leaves out the id embedding of this
    # share of the movies, so their vectors are their features alone, as a new movie's is.
    id_dropout: float = 0.5
    # A per-item score offset learned from the features alone (SASRecConfig.feature_bias).
    feature_bias: bool = False
    # The "new" shelf's weight of the vote prior against the model's score (core/new_pool.py);
    # chosen on the cold-start validation protocol, applied after training.
    new_pool_weight: float = 1.0
    # Add a learned first-order Markov prior from the training sequences' transition counts.
    transition_prior: bool = True

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
    stopped_by: str = "max_epochs"  # or "patience", or "time_budget" (then the run is timing-dependent)


def _epochs_in_budget(elapsed: float, durations: list[float], budget: float | None) -> int | None:
    """Epochs done plus those of median duration that still fit in the budget (None: no budget).

    The median, over at least 3 epochs, keeps one slow epoch (another process busy for a moment)
    from cutting the whole run short.
    """
    if budget is None or len(durations) < 3 and elapsed < budget:
        return None
    return len(durations) + int(max(0.0, budget - elapsed) / float(np.median(durations)))


def build_model(
    splits: SequenceSplits,
    model_config: SASRecConfig,
    train_config: TrainConfig,
    features: FeatureRows | None = None,
) -> SASRec:
    """A fresh SASRec with the side data the train config asks for (features, transition counts)."""
    crow = None
    if train_config.item_features:
        if features is None or features.n_rows != splits.n_items + 1:
            raise ValueError("item_features needs one feature row per item (plus padding)")
        model_config = replace(
            model_config,
            n_item_features=len(features.names),
            feature_nnz=len(features.col),
            feature_bias=train_config.feature_bias,
        )
    else:
        features = None
    if train_config.transition_prior:
        crow, col, count = transition_csr(splits.train_sequences(), splits.n_items)
        model_config = replace(model_config, transition_nnz=len(col))
    model = SASRec(model_config)
    if features is not None:
        model.set_feature_rows(*(torch.from_numpy(a) for a in (features.crow, features.col, features.val)))
    if crow is not None:
        model.set_transitions(torch.from_numpy(crow), torch.from_numpy(col), torch.from_numpy(count))
    return model


def train_sasrec(
    splits: SequenceSplits,
    model_config: SASRecConfig,
    train_config: TrainConfig = TrainConfig(),
    on_epoch: Callable[[EpochLog], None] | None = None,
    features: FeatureRows | None = None,
) -> TrainResult:
    """Train on the training sequences, keep the epoch with the best validation NDCG@10."""
    torch.set_num_threads(train_config.threads)
    torch.manual_seed(train_config.seed)
    rng = np.random.default_rng(train_config.seed)
    model = build_model(splits, model_config, train_config, features)
    popularity = splits.training_popularity()
    rec = SequentialRecommender("sasrec", splits.item_ids, popularity, model=model)
    # The prior's weight is one scalar: decaying it toward 0 would only switch the prior off.
    scalar = [p for n, p in model.named_parameters() if n == "transition_weight"]
    rest = [p for n, p in model.named_parameters() if n != "transition_weight"]
    optimizer = torch.optim.AdamW(
        [{"params": rest}, {"params": scalar, "weight_decay": 0.0}],
        lr=train_config.learning_rate,
        weight_decay=train_config.weight_decay,
    )
    train_sequences = splits.train_sequences()
    x_all, y_all, owners, starts = training_windows(
        train_sequences, model_config.max_seq_length, train_config.window_stride
    )
    lengths = torch.from_numpy((x_all > 0).sum(axis=1))
    x_all, y_all = torch.from_numpy(x_all), torch.from_numpy(y_all)
    log.info("sasrec: %d windows, %d next-item targets", len(x_all), int((y_all > 0).sum()))
    per_epoch = len(epoch_windows(owners, train_config.max_windows_per_user, np.random.default_rng(0)))
    steps_per_epoch = -(-per_epoch // train_config.batch_size)
    # The schedule's horizon; it shrinks only when the time budget would be exceeded, so a run
    # that fits its budget does not depend on timing at all (deterministic).
    planned = train_config.max_epochs
    step, epoch = 0, 0
    best_state, best_epoch, best_valid = copy.deepcopy(model.state_dict()), 0, {"ndcg": -1.0}
    history: list[EpochLog] = []
    stopped_by = "max_epochs"
    started = time.perf_counter()
    while epoch < planned:
        epoch += 1
        t0, c0 = time.perf_counter(), time.process_time()
        model.train()
        total, count = 0.0, 0
        chosen = torch.from_numpy(epoch_windows(owners, train_config.max_windows_per_user, rng))
        for part in length_buckets(lengths[chosen], train_config.batch_size, rng):
            batch = chosen[part]
            # Windows are left-padded and batched by length, so the shared padding is cut off.
            width = int(lengths[batch].max())
            x, y = x_all[batch, -width:], y_all[batch, -width:]
            seen = (
                seen_mask(x, batch, train_sequences, owners, starts, splits.n_items)
                if train_config.mask_seen
                else None
            )
            id_keep = None
            if train_config.id_dropout and model.config.n_item_features:
                id_keep = torch.from_numpy((rng.random(splits.n_items + 1) >= train_config.id_dropout)
                                           .astype(np.float32))  # fmt: skip
            loss = model.calculate_loss(x, y, seen, id_keep)
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            step += 1
            if train_config.cosine_decay:
                done = min(1.0, step / (steps_per_epoch * planned))
                for group in optimizer.param_groups:
                    group["lr"] = train_config.learning_rate * 0.5 * (1.0 + math.cos(math.pi * done))
            n = int((y > 0).sum())
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
        if epoch - best_epoch >= train_config.patience:
            log.info("sasrec: no better validation NDCG@10 for %d epochs, stopping", train_config.patience)
            stopped_by = "patience"
            break
        durations = [e.seconds for e in history]
        fits = _epochs_in_budget(time.perf_counter() - started, durations, train_config.time_budget_s)
        if fits is not None and fits < planned:
            # Fewer epochs fit than planned: end the run sooner, still on an annealed schedule.
            planned, stopped_by = max(epoch, fits), "time_budget"
            log.info("sasrec: %.0fs budget allows %d epochs in all", train_config.time_budget_s, planned)
    model.load_state_dict(best_state)
    model.eval()
    return TrainResult(rec, best_epoch, best_valid, time.perf_counter() - started, history, stopped_by)
