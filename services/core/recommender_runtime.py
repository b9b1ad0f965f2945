"""The recommender as serving uses it: load registry files, score a liked list, save to files.

Files of a recommender version (no pickle: JSON, and a torch state_dict of tensors read back with
``weights_only=True``):

- ``config.json``: ``{"format": 1, "algorithm": ..., "model": {...}}``;
- ``items.json``: tmdb ids in internal-index order (internal index i + 1 is ``items[i]``; 0 is padding);
- ``popularity.json``: ``[[tmdb_id, training interactions], ...]``, most popular first (cold start);
- ``model.pt``: the weights (``sasrec``) or the neighbour table (``item_knn``); absent for ``popularity``.

Every algorithm scores the same way (``score_indices``), so training evaluates exactly what serves.
"""

from __future__ import annotations

import io
import json
import logging
import threading
from collections.abc import Iterable, Sequence
from typing import Any, Literal

import numpy as np
import torch

from services.core.new_pool import NewPoolBlend, blend
from services.core.sasrec import SASRec
from services.core.sasrec_config import PADDING_INDEX, SASRecConfig
from services.core.sasrec_numpy import NumpySASRec

log = logging.getLogger(__name__)

FORMAT = 1
ALGORITHMS = ("sasrec", "item_knn", "popularity")
# Which movies a request ranks: the whole catalog, or only those with no training interactions.
Pool = Literal["all", "new"]
POOLS: tuple[str, ...] = ("all", "new")


class SequentialRecommender:
    """Next-movie recommendations from a user's liked movies (tmdb ids, most recent last)."""

    def __init__(
        self,
        algorithm: str,
        item_ids: Sequence[int],
        popularity: np.ndarray,
        *,
        model: SASRec | None = None,
        neighbours: dict[str, torch.Tensor] | None = None,
        max_seq_length: int | None = None,
        num_threads: int | None = None,
        fast: NumpySASRec | None = None,
        new_pool: NewPoolBlend | None = None,
    ) -> None:
        if algorithm not in ALGORITHMS:
            raise ValueError(f"unknown recommender algorithm {algorithm!r}")
        if (algorithm == "sasrec" and model is None) or (algorithm == "item_knn" and neighbours is None):
            raise ValueError(f"{algorithm} needs its model state")
        self.algorithm = algorithm
        self.item_ids = np.asarray(item_ids, dtype=np.int64)
        self.index = {int(t): i + 1 for i, t in enumerate(self.item_ids)}
        self.popularity = np.asarray(popularity, dtype=np.float64)  # per internal index, [0] = 0
        if len(self.popularity) != len(self.item_ids) + 1:
            raise ValueError("popularity must have one entry per item plus padding")
        self.model = model.eval() if model is not None else None
        self.neighbours = neighbours
        self.max_seq_length = model.max_seq_length if model is not None else max_seq_length
        self._by_popularity = np.argsort(-self.popularity[1:], kind="stable") + 1
        # "New" items had no training interaction (cold items, scored from content features alone).
        self._new_mask = self.popularity == 0
        self._new_mask[PADDING_INDEX] = False
        self._new_indices = np.flatnonzero(self._new_mask)
        # The new shelf's ranking (services/core/new_pool.py); None: the model's scores alone.
        self.new_pool = new_pool if model is not None and model.config.feature_nnz else None
        self._new_prior = (
            self.new_pool.prior(model) if self.new_pool is not None and model is not None else None
        )
        if self._new_prior is not None:  # no interactions to rank by without a liked movie: votes
            self._new_indices = self._new_indices[
                np.argsort(-self._new_prior[self._new_indices], kind="stable")
            ]
        self.num_threads = num_threads  # torch threads for scoring; None leaves torch alone
        # A numpy copy of the weights for single requests, given when loaded for serving (the
        # weights no longer change); None: recommend runs the torch module.
        self.fast = fast
        self._threads_set = threading.local()

    @property
    def n_items(self) -> int:
        """Items the recommender can rank."""
        return len(self.item_ids)

    def knows(self, tmdb_id: int) -> bool:
        """Whether the movie is in the recommender's item index."""
        return int(tmdb_id) in self.index

    def is_new(self, tmdb_id: int) -> bool:
        """Whether the movie had no training interactions (True for a movie outside the item index too)."""
        i = self.index.get(int(tmdb_id))
        return i is None or bool(self._new_mask[i])

    def encode(self, liked: Iterable[int]) -> list[int]:
        """Internal indices of the known liked movies, repeats dropped (latest kept), truncated."""
        seen: dict[int, None] = {}
        for t in liked:
            i = self.index.get(int(t))
            if i is not None:
                seen.pop(i, None)
                seen[i] = None
        out = list(seen)
        return out[-self.max_seq_length :] if self.max_seq_length else out

    @torch.inference_mode()
    def score_indices(self, sequences: Sequence[Sequence[int]]) -> np.ndarray:
        """Scores (batch, n_items + 1) for sequences of internal indices; nothing is masked here."""
        self._use_threads()
        batch = len(sequences)
        if self.algorithm == "popularity":
            return np.tile(self.popularity, (batch, 1))
        if self.algorithm == "item_knn":
            assert self.neighbours is not None
            cols, weights = self.neighbours["neighbours"], self.neighbours["weights"]
            scores = torch.zeros(batch, self.n_items + 1, dtype=torch.float64)
            for row, seq in enumerate(sequences):
                idx = torch.as_tensor(list(seq), dtype=torch.long)
                scores[row].index_add_(0, cols[idx].flatten(), weights[idx].flatten().double())
            return scores.numpy()
        assert self.model is not None and self.max_seq_length is not None
        length = max(1, min(self.max_seq_length, max((len(s) for s in sequences), default=1)))
        padded = np.zeros((batch, length), dtype=np.int64)
        for row, seq in enumerate(sequences):
            tail = list(seq)[-length:]
            if tail:
                padded[row, length - len(tail) :] = tail
        return self.model.full_sort_predict(torch.from_numpy(padded)).double().numpy()

    def _use_threads(self) -> None:
        # torch's intra-op thread count belongs to each OS thread (OpenMP), so setting it where the
        # model was loaded (a worker thread) leaves the thread that serves requests at the default.
        if self.num_threads is not None and not getattr(self._threads_set, "done", False):
            torch.set_num_threads(self.num_threads)
            self._threads_set.done = True

    def recommend(self, liked: list[int], k: int, pool: Pool = "all") -> list[tuple[int, float]]:
        """Top-k (tmdb_id, score) of the pool after the liked movies, liked excluded; popular when none known."""
        _check_pool(pool)
        seq = self.encode(liked)
        if not seq:
            return self.popular(k, exclude=liked, pool=pool)
        scores = self.fast.scores(seq) if self.fast is not None else self.score_indices([seq])[0]
        scores[PADDING_INDEX] = -np.inf
        scores[seq] = -np.inf
        if pool == "new":
            # Only new items are candidates (NaN and liked ones dropped), sorted in full: they are a
            # small share of the catalog, and their scores often tie (0 from popularity or item-kNN),
            # which a partition would break arbitrarily.
            new = self._new_indices[scores[self._new_indices] > -np.inf]
            if self.new_pool is not None and self._new_prior is not None and len(new):
                ranked = blend(scores[new], self._new_prior[new], self.new_pool.weight)[0]
            else:
                ranked = scores[new]
            order = np.lexsort((new, -ranked))[: max(k, 0)]
            return [(int(self.item_ids[new[j] - 1]), float(ranked[j])) for j in order]
        k = min(k, self.n_items - len(seq))
        if k <= 0:
            return []
        top = np.argpartition(-scores, k - 1)[:k]
        top = top[np.lexsort((top, -scores[top]))]  # best first, ties by lower index
        return [(int(self.item_ids[i - 1]), float(scores[i])) for i in top]

    def popular(self, k: int, exclude: Iterable[int] = (), pool: Pool = "all") -> list[tuple[int, float]]:
        """The k movies of the pool with most training interactions, skipping excluded tmdb ids.

        The new pool has no interactions to rank by: its movies come by the new shelf's vote prior
        when the model has one (most TMDB votes first), else in item-index order; score 0.
        """
        _check_pool(pool)
        skip = {int(t) for t in exclude}
        out: list[tuple[int, float]] = []
        for i in self._by_popularity if pool == "all" else self._new_indices:
            tmdb_id = int(self.item_ids[i - 1])
            if tmdb_id not in skip:
                out.append((tmdb_id, float(self.popularity[i])))
                if len(out) == k:
                    break
        return out

    def save(self) -> dict[str, bytes]:
        """The registry files of this recommender (catalog.json is added by the training task)."""
        model_params: dict[str, Any] = {"n_items": self.n_items, "max_seq_length": self.max_seq_length}
        files: dict[str, bytes] = {}
        if self.model is not None:
            model_params = self.model.config.to_dict()
            files["model.pt"] = _tensor_bytes(self.model.state_dict())
        elif self.neighbours is not None:
            files["model.pt"] = _tensor_bytes(self.neighbours)
        order = self._by_popularity
        popular = [[int(self.item_ids[i - 1]), int(self.popularity[i])] for i in order]
        config: dict[str, Any] = {"format": FORMAT, "algorithm": self.algorithm, "model": model_params}
        if self.new_pool is not None:
            config["new_pool"] = self.new_pool.to_dict()
        files["config.json"] = _json(config)
        files["items.json"] = _json([int(t) for t in self.item_ids])
        files["popularity.json"] = _json(popular)
        return files


def _check_pool(pool: str) -> None:
    if pool not in POOLS:
        raise ValueError(f"unknown recommendation pool {pool!r}; expected one of {POOLS}")


def _json(obj: Any) -> bytes:
    return json.dumps(obj, separators=(",", ":")).encode()


def _tensor_bytes(tensors: dict[str, torch.Tensor]) -> bytes:
    buf = io.BytesIO()
    torch.save({k: v.detach().cpu().contiguous() for k, v in tensors.items()}, buf)
    return buf.getvalue()


def load_recommender(files: dict[str, bytes], *, num_threads: int | None = 1) -> SequentialRecommender:
    """A recommender from its registry files that scores with num_threads torch threads (None: as is).

    One thread by default: a batch of one gains nothing from threads and loses to their hand-offs
    when many requests run at once.
    """
    config = json.loads(files["config.json"])
    if config.get("format") != FORMAT:
        raise ValueError(f"unsupported recommender format {config.get('format')!r}")
    algorithm, params = config["algorithm"], config["model"]
    item_ids = json.loads(files["items.json"])
    if len(item_ids) != params["n_items"]:
        raise ValueError("items.json does not match the config's n_items")
    index = {int(t): i + 1 for i, t in enumerate(item_ids)}
    popularity = np.zeros(len(item_ids) + 1)
    for tmdb_id, count in json.loads(files["popularity.json"]):
        popularity[index[int(tmdb_id)]] = count
    state = None
    if algorithm in ("sasrec", "item_knn"):
        state = torch.load(io.BytesIO(files["model.pt"]), weights_only=True, map_location="cpu")
    if algorithm == "sasrec":
        model = SASRec(SASRecConfig.from_dict(params))
        model.load_state_dict(state)
        blend_settings = NewPoolBlend.from_dict(config["new_pool"]) if "new_pool" in config else None
        rec = SequentialRecommender(
            algorithm, item_ids, popularity, model=model, num_threads=num_threads, fast=NumpySASRec(model),
            new_pool=blend_settings,
        )  # fmt: skip
    else:
        rec = SequentialRecommender(
            algorithm,
            item_ids,
            popularity,
            neighbours=state,
            max_seq_length=params.get("max_seq_length"),
            num_threads=num_threads,
        )
    log.info("loaded %s recommender over %d items", algorithm, rec.n_items)
    return rec
