"""Training the rating candidates: XGBoost, LightGBM, a random forest and the mean baseline."""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from services.core.rating_model import MeanModel, RatingPredictor, load_rating_model, save_rating_model
from services.train.rating.data import Matrices

log = logging.getLogger(__name__)

ALGORITHMS = ("xgboost", "lightgbm", "random_forest", "mean")

DEFAULT_PARAMS: dict[str, dict[str, Any]] = {
    "xgboost": {
        "n_estimators": 2000,
        "learning_rate": 0.03,
        "max_depth": 4,
        "min_child_weight": 5,
        "subsample": 0.8,
        "colsample_bytree": 0.6,
        "reg_lambda": 5.0,
        "early_stopping_rounds": 100,
    },
    "lightgbm": {
        "n_estimators": 2000,
        "learning_rate": 0.03,
        "num_leaves": 15,
        "min_child_samples": 20,
        "subsample": 0.8,
        "subsample_freq": 1,
        "colsample_bytree": 0.6,
        "reg_lambda": 5.0,
        "early_stopping_rounds": 100,
    },
    # XGBoost's random-forest mode: bagged, fully grown trees, saved in XGBoost's JSON format.
    "random_forest": {
        "n_estimators": 300,
        "max_depth": 10,
        "subsample": 0.8,
        "colsample_bynode": 0.5,
        "min_child_weight": 3,
    },
    "mean": {},
}


def rmse(y: np.ndarray, p: np.ndarray) -> float:
    """Root mean squared error."""
    return float(np.sqrt(np.mean((np.asarray(y) - np.asarray(p)) ** 2))) if len(y) else float("nan")


def regression_metrics(y: np.ndarray, p: np.ndarray) -> dict[str, float]:
    """RMSE, MAE and the share of predictions within half a point."""
    if not len(y):
        return {"rmse": float("nan"), "mae": float("nan"), "within_0_5": float("nan")}
    err = np.abs(np.asarray(y) - np.asarray(p))
    return {"rmse": rmse(y, p), "mae": float(err.mean()), "within_0_5": float((err <= 0.5).mean())}


@dataclass
class Candidate:
    """A trained candidate: its files, metrics on every split, and what it learned from."""

    algorithm: str
    files: dict[str, bytes]
    metrics: dict[str, float]
    params: dict[str, Any]
    importance: dict[str, float] = field(default_factory=dict)


def _fit(algorithm: str, m: Matrices, params: dict[str, Any], seed: int) -> Any:
    xt, yt, xv, yv = m.x["train"], m.y["train"], m.x["val"], m.y["val"]
    wt = m.w.get("train")
    if algorithm == "mean":
        return MeanModel(float(np.average(yt, weights=wt)), xt.shape[1])
    if algorithm == "xgboost":
        import xgboost as xgb

        model = xgb.XGBRegressor(**params, random_state=seed, n_jobs=2, tree_method="hist")
        if "early_stopping_rounds" not in params:  # a refit: the rounds were chosen already
            return model.fit(xt, yt, sample_weight=wt, verbose=False).get_booster()
        model.fit(xt, yt, sample_weight=wt, eval_set=[(xv, yv)], verbose=False)
        # Keep only the trees up to the best validation round, so the saved model is the one scored.
        return model.get_booster()[: model.best_iteration + 1]
    if algorithm == "random_forest":
        import xgboost as xgb

        model = xgb.XGBRFRegressor(**params, random_state=seed, n_jobs=2, tree_method="hist")
        model.fit(xt, yt, sample_weight=wt)
        return model.get_booster()
    if algorithm == "lightgbm":
        import lightgbm as lgb

        params = dict(params)
        stop = params.pop("early_stopping_rounds", None)
        rounds = params.pop("n_estimators")
        config = {**params, "objective": "regression", "seed": seed, "num_threads": 2, "verbosity": -1}
        train_set = lgb.Dataset(xt, yt, weight=wt, free_raw_data=False)
        if not stop:  # a refit: the rounds were chosen already
            return lgb.train(config, train_set, num_boost_round=rounds)
        booster = lgb.train(
            config, train_set, num_boost_round=rounds,
            valid_sets=[lgb.Dataset(xv, yv, reference=train_set)],
            callbacks=[lgb.early_stopping(stop, verbose=False)],
        )  # fmt: skip
        return booster
    raise ValueError(f"unknown algorithm {algorithm!r}")


def importance(algorithm: str, model: Any, names: list[str]) -> dict[str, float]:
    """Gain-based feature importance, normalised to sum to 1."""
    if algorithm in ("xgboost", "random_forest"):
        raw = model.get_score(importance_type="total_gain")
        values = {names[int(k[1:])]: v for k, v in raw.items()}
    elif algorithm == "lightgbm":
        gains = model.feature_importance(importance_type="gain")
        values = dict(zip(names, gains, strict=True))
    else:
        return {}
    total = sum(values.values()) or 1.0
    return {k: float(v) / total for k, v in sorted(values.items(), key=lambda kv: -kv[1])}


def evaluate(predictor: RatingPredictor, m: Matrices) -> dict[str, float]:
    """Metrics on every split, plus the train/hold-out gap used by selection."""
    out: dict[str, float] = {}
    for split in ("train", "val", "test"):
        for k, v in regression_metrics(m.y[split], predictor.predict(m.x[split])).items():
            out[f"{split}_{k}"] = v
    out["gap"] = out["val_rmse"] - out["train_rmse"]
    return out


def boosted_rounds(algorithm: str, model: Any) -> int | None:
    """How many boosting rounds a fitted model kept (None for models without rounds to choose)."""
    if algorithm == "xgboost":
        return int(model.num_boosted_rounds())
    if algorithm == "lightgbm":
        return int(model.best_iteration or model.current_iteration())
    return None


def refit_params(algorithm: str, params: dict[str, Any], rounds: int | None, scale: float) -> dict[str, Any]:
    """The parameters of a refit: no early stopping, the validated rounds grown with the rows."""
    out = {k: v for k, v in params.items() if k != "early_stopping_rounds"}
    if rounds is not None and algorithm in ("xgboost", "lightgbm"):
        # More rows support proportionally more rounds at the same learning rate (a common rule).
        out["n_estimators"] = max(1, round(rounds * scale))
    return out


def train_candidate(
    algorithm: str,
    m: Matrices,
    params: dict[str, Any] | None = None,
    seed: int = 42,
    refit: Matrices | None = None,
) -> Candidate:
    """Train one algorithm and score it, through its saved files (what serving will load).

    With `refit` (train + validation rows as its training split, the test rows featurised by its own
    encoders), the model is trained again there with the rounds validation chose, and that model is
    the one returned: train/val metrics and the gap stay those of the validated fit, test metrics are
    the refitted model's.
    """
    params = dict(DEFAULT_PARAMS[algorithm] if params is None else params)
    model = _fit(algorithm, m, params, seed)
    files = save_rating_model(model, algorithm)
    # Score the reloaded model, not the in-memory one: what is measured is what gets published.
    predictor = load_rating_model(algorithm, files)
    metrics = evaluate(predictor, m)
    names = m.names
    if refit is not None:
        rounds = boosted_rounds(algorithm, model)
        final = refit_params(algorithm, params, rounds, len(refit.y["train"]) / max(1, len(m.y["train"])))
        model = _fit(algorithm, refit, final, seed)
        files = save_rating_model(model, algorithm)
        test = regression_metrics(
            refit.y["test"], load_rating_model(algorithm, files).predict(refit.x["test"])
        )
        metrics["test_rmse_before_refit"] = metrics["test_rmse"]
        metrics.update({f"test_{k}": v for k, v in test.items()})
        metrics["refit_rows"] = float(len(refit.y["train"]))
        metrics["refit_rounds"] = float(final.get("n_estimators", 0))
        names = refit.names
    log.info(
        "%s: val RMSE %.4f, test RMSE %.4f, train RMSE %.4f%s",
        algorithm, metrics["val_rmse"], metrics["test_rmse"], metrics["train_rmse"],
        " (refitted on train + val)" if refit is not None else "",
    )  # fmt: skip
    return Candidate(algorithm, files, metrics, params, importance(algorithm, model, names))
