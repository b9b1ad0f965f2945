"""Rating models in their native formats: save to bytes, load from bytes, predict, explain.

Training writes these files; serving reads them. No pickle anywhere: XGBoost JSON (also for the
random forest, trained by XGBoost's random-forest mode), LightGBM text, and JSON for the baseline.
"""

from __future__ import annotations

import json
from typing import Any, Protocol

import numpy as np

ALGORITHMS = ("xgboost", "lightgbm", "random_forest", "mean")
MODEL_FILE = {
    "xgboost": "model.json",
    "random_forest": "model.json",
    "lightgbm": "model.txt",
    "mean": "model.json",
}
RATING_MIN, RATING_MAX = 0.0, 10.0


class RatingPredictor(Protocol):
    """What serving needs of a rating model."""

    algorithm: str

    def predict(self, x: np.ndarray) -> np.ndarray:
        """Ratings (0-10) for feature rows."""
        ...

    def contributions(self, x: np.ndarray) -> np.ndarray:
        """Per-feature contributions plus a last column for the bias; rows sum to the prediction."""
        ...


class MeanModel:
    """The baseline: predict the training mean."""

    algorithm = "mean"

    def __init__(self, mean: float, n_features: int) -> None:
        self.mean = float(mean)
        self.n_features = n_features

    def predict(self, x: np.ndarray) -> np.ndarray:
        return np.full(len(x), self.mean)

    def contributions(self, x: np.ndarray) -> np.ndarray:
        out = np.zeros((len(x), self.n_features + 1))
        out[:, -1] = self.mean
        return out


class XGBoostModel:
    """An xgboost Booster (gradient boosting or random forest mode)."""

    def __init__(self, booster: Any, algorithm: str = "xgboost") -> None:
        self.booster = booster
        self.algorithm = algorithm
        # Single-threaded inference: a one-row request gains nothing from threads and loses to
        # their start-up cost under concurrent load.
        self.booster.set_param({"nthread": 1})

    def predict(self, x: np.ndarray) -> np.ndarray:
        return np.clip(self.booster.inplace_predict(x), RATING_MIN, RATING_MAX)

    def contributions(self, x: np.ndarray) -> np.ndarray:
        import xgboost as xgb

        return self.booster.predict(xgb.DMatrix(x), pred_contribs=True)


class LightGBMModel:
    """A LightGBM Booster."""

    algorithm = "lightgbm"

    def __init__(self, booster: Any) -> None:
        self.booster = booster

    def predict(self, x: np.ndarray) -> np.ndarray:
        return np.clip(self.booster.predict(x, num_threads=1), RATING_MIN, RATING_MAX)

    def contributions(self, x: np.ndarray) -> np.ndarray:
        return self.booster.predict(x, pred_contrib=True, num_threads=1)


def save_rating_model(model: Any, algorithm: str) -> dict[str, bytes]:
    """Native-format files of a trained model (a MeanModel, xgboost Booster or lightgbm Booster)."""
    if algorithm == "mean":
        payload = {"mean": model.mean, "n_features": model.n_features}
        return {MODEL_FILE["mean"]: json.dumps(payload).encode()}
    if algorithm in ("xgboost", "random_forest"):
        booster = model.get_booster() if hasattr(model, "get_booster") else model
        return {MODEL_FILE[algorithm]: bytes(booster.save_raw(raw_format="json"))}
    if algorithm == "lightgbm":
        booster = model.booster_ if hasattr(model, "booster_") else model
        return {MODEL_FILE["lightgbm"]: booster.model_to_string().encode()}
    raise ValueError(f"unknown algorithm {algorithm!r}")


def load_rating_model(algorithm: str, files: dict[str, bytes]) -> RatingPredictor:
    """Load a model saved by save_rating_model."""
    data = files[MODEL_FILE[algorithm]]
    if algorithm == "mean":
        payload = json.loads(data)
        return MeanModel(payload["mean"], payload["n_features"])
    if algorithm in ("xgboost", "random_forest"):
        import xgboost as xgb

        booster = xgb.Booster()
        booster.load_model(bytearray(data))
        return XGBoostModel(booster, algorithm)
    if algorithm == "lightgbm":
        import lightgbm as lgb

        return LightGBMModel(lgb.Booster(model_str=data.decode()))
    raise ValueError(f"unknown algorithm {algorithm!r}")
