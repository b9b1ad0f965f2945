"""XGBoost tree ensembles evaluated with numpy: every tree walks one level per step, all at once.

For one row, Booster.inplace_predict costs ~170 us for 30 trees and ~1 ms for a 300-tree random forest
(Python wrapper, then a per-call set-up in the library); the same trees as flat arrays cost 20-60 us,
whatever their number. The walk reproduces XGBoost exactly: float32 features, `x < threshold` goes left,
a missing value takes the node's default branch, and leaf values are added in float32, in tree order,
onto base_score. build_fast() checks the numbers are bit-identical to the library's on sample rows and
keeps the library otherwise (or when the model uses anything this does not implement).
"""

from __future__ import annotations

import json
import logging
from typing import Any

import numpy as np

from services.core.rating_model import RATING_MAX, RATING_MIN, RatingPredictor

log = logging.getLogger(__name__)

# Objectives whose prediction is the raw margin (anything with a link function stays with the library).
IDENTITY_OBJECTIVES = frozenset({"reg:squarederror", "reg:absoluteerror", "reg:pseudohubererror"})
MAX_CELLS = 1 << 16  # rows x trees walked at once: bounds memory
# Above this many rows the library's own loop is faster (1000 rows x 1000 trees: 12 ms against 30 ms).
WALK_MAX_ROWS = 8


class UnsupportedModel(ValueError):
    """The model uses something the numpy walk does not implement."""


class CompiledTrees:
    """The trees of one XGBoost regressor as flat node arrays (node ids global across trees).

    A leaf points to itself, so walking `depth` levels from every root ends on every tree's leaf.
    """

    def __init__(self, model_json: dict[str, Any]) -> None:
        learner = model_json["learner"]
        params = learner["learner_model_param"]
        booster = learner["gradient_booster"]
        if booster.get("name") != "gbtree":
            raise UnsupportedModel(f"booster {booster.get('name')!r}")
        if learner["objective"]["name"] not in IDENTITY_OBJECTIVES:
            raise UnsupportedModel(f"objective {learner['objective']['name']!r}")
        if int(params.get("num_class", 0)) > 0 or int(params.get("num_target", 1)) != 1:
            raise UnsupportedModel("more than one output")
        self.n_features = int(params["num_feature"])
        self.base_score = np.float32(str(params["base_score"]).strip("[]"))
        trees = booster["model"]["trees"]
        if not trees:
            raise UnsupportedModel("no trees")
        feature, threshold, left, right, value, roots = [], [], [], [], [], []
        offset = 0
        for tree in trees:
            if any(tree.get("split_type") or []):
                raise UnsupportedModel("categorical splits")
            lc, rc = np.asarray(tree["left_children"]), np.asarray(tree["right_children"])
            leaf = lc == -1
            ids = np.arange(len(lc))
            # The feature index is shifted by n_features when missing values go left: see _spread().
            split = np.asarray(tree["split_indices"]) + self.n_features * np.asarray(tree["default_left"])
            conditions = np.asarray(tree["split_conditions"], dtype=np.float32)  # a leaf's holds its value
            feature.append(np.where(leaf, 0, split))
            threshold.append(conditions)
            left.append(np.where(leaf, ids, lc) + offset)
            right.append(np.where(leaf, ids, rc) + offset)
            value.append(np.where(leaf, conditions, np.float32(0)))
            roots.append(offset)
            offset += len(lc)
        self.feature = np.concatenate(feature).astype(np.intp)
        self.threshold = np.concatenate(threshold)
        self.children = np.empty(2 * offset, dtype=np.intp)  # node n's children at 2n (left), 2n + 1 (right)
        self.children[0::2] = np.concatenate(left)
        self.children[1::2] = np.concatenate(right)
        self.value = np.concatenate(value)
        self.roots = np.asarray(roots, dtype=np.intp)
        self.depth = self._depth()

    def _depth(self) -> int:
        depth, frontier = 0, self.roots
        while True:
            inner = frontier[self.children[2 * frontier] != frontier]
            if not len(inner):
                return depth
            frontier = np.concatenate([self.children[2 * inner], self.children[2 * inner + 1]])
            depth += 1

    def predict(self, x: np.ndarray) -> np.ndarray:
        """float32 predictions for rows of features, as XGBoost computes them."""
        x = np.asarray(x, dtype=np.float32)
        if x.ndim != 2 or x.shape[1] != self.n_features:
            raise ValueError(f"expected rows of {self.n_features} features, got shape {x.shape}")
        if not len(x):
            return np.zeros(0, dtype=np.float32)
        step = max(1, MAX_CELLS // len(self.roots))
        return np.concatenate([self._walk(x[i : i + step]) for i in range(0, len(x), step)])

    def _walk(self, x: np.ndarray) -> np.ndarray:
        if len(x) == 1:  # the /predict case: plain 1-d indexing, no row offsets
            spread = _spread(x)[0]
            node = self.roots
            for _ in range(self.depth):
                node = self.children[2 * node + (spread[self.feature[node]] >= self.threshold[node])]
            return self._total(self.value[node][None, :])
        spread = _spread(x).ravel()
        rows = (np.arange(len(x)) * 2 * self.n_features)[:, None]
        node = np.broadcast_to(self.roots, (len(x), len(self.roots)))
        for _ in range(self.depth):
            go_right = spread[self.feature[node] + rows] >= self.threshold[node]
            node = self.children[2 * node + go_right]
        return self._total(self.value[node])

    def _total(self, leaves: np.ndarray) -> np.ndarray:
        # XGBoost adds each tree's leaf onto base_score in float32, in tree order: cumsum does the same.
        acc = np.empty((len(leaves), leaves.shape[1] + 1), dtype=np.float32)
        acc[:, 0] = self.base_score
        acc[:, 1:] = leaves
        return np.cumsum(acc, axis=1, dtype=np.float32)[:, -1]


def _spread(x: np.ndarray) -> np.ndarray:
    # Each row twice: missing as +inf (fails `x < t`: goes right), then as -inf (goes left). A node whose
    # missing values go left reads its feature from the second half, so one comparison covers both cases.
    missing = np.isnan(x)
    return np.concatenate([np.where(missing, np.inf, x), np.where(missing, -np.inf, x)], axis=1)


class FastXGBoost:
    """A RatingPredictor over an XGBoostModel: a few rows walk CompiledTrees, the rest is the library's."""

    def __init__(self, model: Any, trees: CompiledTrees) -> None:
        self.model = model
        self.trees = trees
        self.algorithm = model.algorithm

    def predict(self, x: np.ndarray) -> np.ndarray:
        """Ratings (0-10) for feature rows, identical to the booster's."""
        if len(x) > WALK_MAX_ROWS:
            return self.model.predict(x)
        return np.clip(self.trees.predict(x).astype(np.float64), RATING_MIN, RATING_MAX)

    def contributions(self, x: np.ndarray) -> np.ndarray:
        """Per-feature contributions plus the bias column (the library's own pred_contribs)."""
        return self.model.contributions(x)


def build_fast(model: RatingPredictor, n_features: int) -> RatingPredictor:
    """A FastXGBoost when the model is an XGBoost one it reproduces bit for bit, else the model itself."""
    booster = getattr(model, "booster", None)
    if booster is None or getattr(model, "algorithm", None) not in ("xgboost", "random_forest"):
        return model
    try:
        trees = CompiledTrees(json.loads(bytes(booster.save_raw(raw_format="json"))))
        sample = _sample_rows(trees, n_features)
        expected = np.asarray(booster.inplace_predict(sample), dtype=np.float32)
        singles = np.concatenate([trees.predict(row[None, :]) for row in sample])
        same = np.array_equal(trees.predict(sample), expected) and np.array_equal(singles, expected)
    except UnsupportedModel as exc:
        log.info("rating model served by the XGBoost library (numpy walk does not support: %s)", exc)
        return model
    except Exception as exc:  # noqa: BLE001 - any surprise means: keep the library's own predict
        log.warning(
            "numpy tree walk unavailable (%s: %s); using the XGBoost library", type(exc).__name__, exc
        )
        return model
    if not same:
        log.warning("numpy tree walk disagrees with the XGBoost library on sample rows; using the library")
        return model
    log.info("rating model: %d trees of depth <= %d walked with numpy", len(trees.roots), trees.depth)
    return FastXGBoost(model, trees)


def _sample_rows(trees: CompiledTrees, n_features: int, n: int = 64) -> np.ndarray:
    # Rows that exercise every branch kind: values right on split thresholds (equal goes right),
    # missing values (default branches), zeros, and random values around the thresholds.
    rng = np.random.default_rng(0)
    inner = trees.children[2 * np.arange(len(trees.feature))] != np.arange(len(trees.feature))
    features = trees.feature[inner] % n_features
    thresholds = trees.threshold[inner]
    rows = np.zeros((n, n_features), dtype=np.float32)
    for i in range(1, n):
        pick = rng.integers(0, len(features), size=n_features) if len(features) else []
        for j in pick:
            rows[i, features[j]] = thresholds[j] + rng.choice([0.0, -1e-3, 1e-3, 0.0])
        rows[i, rng.random(n_features) < 0.1 * (i % 4)] = np.nan
    return rows
