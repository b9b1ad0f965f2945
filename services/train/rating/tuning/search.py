"""The bounded hyperparameter search of the rating model (Optuna, seeded TPE), per algorithm.

The objective is the validation RMSE of a model trained on the stored training split: only the
train and val parquet files of a build_features partition are ever read, so the test (time holdout)
rows that selection and the reports judge by stay unseen. Each search has a trial cap and a time
budget; today's defaults are the first trial of a new study, so the best is never worse than them on
validation. Results go to S3 (services/train/rating/tuning/store.py); the DAG is dags/rating_tune.py and
./scripts/tune.sh runs the same code by hand.
"""

from __future__ import annotations

import logging
import time
import warnings
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np

from services.core.rating_model import LightGBMModel, XGBoostModel
from services.core.storage import ObjectStore
from services.train.context import Context
from services.train.rating.data import Matrices
from services.train.rating.models import DEFAULT_PARAMS, _fit, rmse
from services.train.rating.tuning import store as tuning_store

log = logging.getLogger(__name__)

TUNABLE = ("xgboost", "lightgbm", "random_forest")
SEED = 42


def _xgboost_space(trial: Any) -> dict[str, Any]:
    return {
        "learning_rate": trial.suggest_float("learning_rate", 0.01, 0.2, log=True),
        "max_depth": trial.suggest_int("max_depth", 2, 8),
        "min_child_weight": trial.suggest_float("min_child_weight", 1.0, 30.0, log=True),
        "subsample": trial.suggest_float("subsample", 0.5, 1.0),
        "colsample_bytree": trial.suggest_float("colsample_bytree", 0.3, 1.0),
        "reg_lambda": trial.suggest_float("reg_lambda", 0.1, 30.0, log=True),
    }


def _lightgbm_space(trial: Any) -> dict[str, Any]:
    return {
        "learning_rate": trial.suggest_float("learning_rate", 0.01, 0.2, log=True),
        "num_leaves": trial.suggest_int("num_leaves", 4, 63, log=True),
        "min_child_samples": trial.suggest_int("min_child_samples", 5, 100, log=True),
        "subsample": trial.suggest_float("subsample", 0.5, 1.0),
        "colsample_bytree": trial.suggest_float("colsample_bytree", 0.3, 1.0),
        "reg_lambda": trial.suggest_float("reg_lambda", 0.1, 30.0, log=True),
    }


def _random_forest_space(trial: Any) -> dict[str, Any]:
    return {
        "n_estimators": trial.suggest_int("n_estimators", 100, 500, step=50),
        "max_depth": trial.suggest_int("max_depth", 4, 14),
        "subsample": trial.suggest_float("subsample", 0.5, 1.0),
        "colsample_bynode": trial.suggest_float("colsample_bynode", 0.2, 1.0),
        "min_child_weight": trial.suggest_float("min_child_weight", 1.0, 30.0, log=True),
    }


# The main hyperparameters of each algorithm; the rest (rounds, early stopping) stay at DEFAULT_PARAMS.
SPACES: dict[str, Callable[[Any], dict[str, Any]]] = {
    "xgboost": _xgboost_space,
    "lightgbm": _lightgbm_space,
    "random_forest": _random_forest_space,
}


@dataclass
class TrainVal:
    """The training and validation rows of one stored split (never its test rows)."""

    data_day: str
    fingerprint: str
    matrices: Matrices
    ids: dict[str, list[int]]


def load_train_val(store: ObjectStore, data_day: str, meta: dict[str, Any]) -> TrainVal:
    """Read only the train and val parquet files that build_features wrote for data_day."""
    import io

    import pandas as pd

    frames = {s: pd.read_parquet(io.BytesIO(store.get_bytes(meta["keys"][s]))) for s in ("train", "val")}
    names = [c for c in frames["train"].columns if c not in ("tmdb_id", "target")]
    matrices = Matrices(
        encoders=None,  # type: ignore[arg-type]  # the search trains trees on stored matrices only
        names=names,
        x={s: f[names].to_numpy(dtype=np.float64) for s, f in frames.items()},
        y={s: f["target"].to_numpy(dtype=np.float64) for s, f in frames.items()},
    )
    ids = {s: [int(i) for i in f["tmdb_id"]] for s, f in frames.items()}
    return TrainVal(data_day, meta["fingerprint"], matrices, ids)


def val_rmse(algorithm: str, data: TrainVal, params: dict[str, Any]) -> float:
    """Validation RMSE of `algorithm` with `params`, trained the way daily training trains it."""
    model = _fit(algorithm, data.matrices, params, SEED)
    predictor = LightGBMModel(model) if algorithm == "lightgbm" else XGBoostModel(model, algorithm)
    return rmse(data.matrices.y["val"], predictor.predict(data.matrices.x["val"]))


def objective(trial: Any, algorithm: str, data: TrainVal) -> float:
    """One trial: sample the algorithm's space over today's defaults, return validation RMSE."""
    return val_rmse(algorithm, data, {**DEFAULT_PARAMS[algorithm], **SPACES[algorithm](trial)})


def study_name(algorithm: str, data: TrainVal) -> str:
    """One study per algorithm and data version: values of different data are not comparable."""
    return f"rating-{algorithm}-dt={data.data_day}-{data.fingerprint[:8]}"


def search(ctx: Context, algorithm: str, data: TrainVal, n_trials: int, timeout_s: float) -> dict[str, Any]:
    """Run (or continue) the algorithm's study within its budget; return what was found."""
    import optuna

    if algorithm not in SPACES:
        raise ValueError(f"no search space for {algorithm!r} (tunable: {', '.join(TUNABLE)})")
    optuna.logging.set_verbosity(optuna.logging.WARNING)  # one line per trial is ours, below
    url = tuning_store.storage_url(ctx.settings)
    kind = tuning_store.storage_kind(url)
    storage: Any = url
    if kind == "postgresql":
        from services.train.rating.tuning.postgres import ensure_database

        ensure_database(url)
    elif kind == "sqlite":
        # The DAG's tune tasks may run at once on one machine: wait for SQLite's write lock, do not fail.
        storage = optuna.storages.RDBStorage(url, engine_kwargs={"connect_args": {"timeout": 60}})
    name = study_name(algorithm, data)
    study = optuna.create_study(
        storage=storage, study_name=name, direction="minimize", load_if_exists=True,
        sampler=optuna.samplers.TPESampler(seed=SEED, n_startup_trials=min(10, max(2, n_trials // 3))),
    )  # fmt: skip
    before = len(study.trials)
    if before == 0:
        # Today's defaults first: the search starts from them and the result is never worse on val.
        default = DEFAULT_PARAMS[algorithm]
        study.enqueue_trial({k: default[k] for k in SPACES[algorithm](optuna.trial.FixedTrial(default))})
    log.info("%s: study %s (%s storage, %d earlier trials): up to %d trials in %.0f s",
             algorithm, name, kind, before, n_trials, timeout_s)  # fmt: skip
    config = {"algorithm": algorithm, "study": name, "storage": kind, "data_day": data.data_day,
              "trials": n_trials, "timeout_s": timeout_s, "sizes": {s: len(v) for s, v in data.ids.items()}}  # fmt: skip
    with ctx.tracker.run(f"tune-{algorithm}-{data.data_day}", config, group=f"tune-{data.data_day}",
                         job_type="tune") as run:  # fmt: skip

        def progress(study: Any, trial: Any) -> None:
            best = study.best_trial
            log.info("%s trial %d: val RMSE %.4f (%.1f s); best %.4f (trial %d)", algorithm, trial.number,
                     trial.value, trial.duration.total_seconds(), best.value, best.number)  # fmt: skip
            run.log({"val_rmse": trial.value, "best_val_rmse": best.value}, step=trial.number)

        started = time.monotonic()
        study.optimize(lambda t: objective(t, algorithm, data), n_trials=n_trials, timeout=timeout_s,
                       callbacks=[progress])  # fmt: skip
        seconds = time.monotonic() - started
        result = _result(study, algorithm, kind, data, before, seconds, n_trials, timeout_s)
        run.summary({k: v for k, v in result.items() if isinstance(v, int | float)})
        if run.run is not None:
            for key, fig in study_figures(study).items():
                run.log_figure(key, fig)
        result["wandb_run"] = run.ref
    log.info("%s: %d trials in %.0f s; best val RMSE %.4f (defaults %s)", algorithm, result["trials_run"],
             seconds, result["best_value"], _fmt(result["default_value"]))  # fmt: skip
    return result


def _fmt(value: float | None) -> str:
    return "n/a" if value is None else f"{value:.4f}"


def _result(study: Any, algorithm: str, kind: str, data: TrainVal, before: int, seconds: float,
            n_trials: int, timeout_s: float) -> dict[str, Any]:  # fmt: skip
    from optuna.trial import TrialState

    done = [t for t in study.trials if t.state == TrialState.COMPLETE]
    default = next((t.value for t in done if t.number == 0), None)
    best = study.best_trial
    return {
        "algorithm": algorithm,
        "study": study.study_name,
        "storage": kind,
        "data_day": data.data_day,
        "data_fingerprint": data.fingerprint,
        "params": {**DEFAULT_PARAMS[algorithm], **best.params},
        "best_params": best.params,
        "best_trial": best.number,
        "best_value": float(best.value),
        "default_value": None if default is None else float(default),
        "trials_run": len(study.trials) - before,
        "trials_total": len(study.trials),
        "seconds": round(seconds, 1),
        "budget": {"trials": n_trials, "timeout_s": timeout_s},
    }


def study_figures(study: Any) -> dict[str, Any]:
    """Optimization history and parameter importances as matplotlib figures (plotly not needed)."""
    import matplotlib

    matplotlib.use("Agg")
    from optuna.visualization import matplotlib as vm

    figures: dict[str, Any] = {}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # Optuna marks its matplotlib backend experimental
        figures["optimization_history"] = vm.plot_optimization_history(study).figure
        try:
            figures["param_importances"] = vm.plot_param_importances(study).figure
        except (ValueError, RuntimeError) as exc:  # too few completed trials to judge importance
            log.warning("no parameter-importance plot: %s", exc)
    return figures
