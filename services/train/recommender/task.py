"""The recommender pipeline step: train baselines and SASRec, track them, publish the winner.

The winner is chosen on validation NDCG@10 only; test metrics are reported, never used to
choose. It goes to production only when it beats the current production recommender on the same
validation split (or when there is none, or production cannot be read). With EXPERIMENTS=1 a version
that beats production is not promoted but becomes the candidate of an online experiment
(recommender/canary.py); users decide. When the data (MovieLens plus the app's feedback) is exactly
what the latest published version was trained on, nothing is trained: the same data would give the
same model.
"""

from __future__ import annotations

import logging
import platform
from dataclasses import replace
from typing import Any

import numpy as np
import scipy
import torch

from services.core.recommender_runtime import SequentialRecommender, load_recommender
from services.core.registry import Manifest, Registry, RegistryError
from services.core.sasrec_config import SASRecConfig
from services.core.settings import Settings
from services.core.storage import ObjectNotFound
from services.train.experiments.canary import running_canary, start_or_wait
from services.train.recommender.baselines import KNN_NEIGHBOURS, fit_item_knn, fit_popularity
from services.train.recommender.catalog_growth import (
    FEATURES_FILE,
    can_grow,
    catalog_bytes,
    features_file,
    growth_base,
    reexport,
    with_new_items,
)
from services.train.recommender.data import SequenceSplits, load_snapshot_data
from services.train.recommender.feedback_data import with_feedback
from services.train.recommender.item_features import catalog_movies, fit_vocabulary, rows_for
from services.train.recommender.metrics import evaluate_recommender, prefixed
from services.train.recommender.train_sasrec import EpochLog, TrainConfig, train_sasrec
from services.train.tracking import TrackedRun, Tracker

log = logging.getLogger(__name__)

MODEL_NAME = "recommender"
SELECTION_METRIC = "valid_ndcg@10"


def _metrics(rec: SequentialRecommender, splits: SequenceSplits) -> dict[str, float]:
    return {
        **prefixed(evaluate_recommender(rec, splits, "valid"), "valid"),
        **prefixed(evaluate_recommender(rec, splits, "test"), "test"),
    }


def _curve_figure(history: list[EpochLog]) -> Any:
    """Training loss and validation NDCG@10 per epoch, one figure."""
    # Imported only when a W&B run will receive the figure; wandb.Image needs pyplot loaded, and a
    # bare Figure (not pyplot.figure) is never kept in pyplot's global list, so nothing leaks.
    import matplotlib.pyplot  # noqa: F401
    from matplotlib.figure import Figure

    fig = Figure(figsize=(8, 3.2))
    loss_ax, ndcg_ax = fig.subplots(1, 2)
    epochs = [e.epoch for e in history]
    loss_ax.plot(epochs, [e.loss for e in history])
    loss_ax.set(xlabel="epoch", ylabel="train loss (CE)")
    ndcg_ax.plot(epochs, [e.valid["ndcg"] for e in history])
    ndcg_ax.set(xlabel="epoch", ylabel="valid NDCG@10")
    fig.tight_layout()
    return fig


def _production_check(
    registry: Registry, splits: SequenceSplits, challenger_ndcg: float
) -> tuple[bool, str, dict[str, Any]]:
    """Whether to promote, why, and what production scored on this validation split."""
    try:
        manifest = registry.manifest(MODEL_NAME)
    except RegistryError:
        return True, "no production recommender yet", {"version": None}
    try:
        files = {name: registry.read_file(manifest, name) for name in manifest.files}
        current = load_recommender(files, num_threads=None)  # keep the training thread count
    except (RuntimeError, ObjectNotFound, KeyError, ValueError) as exc:  # ChecksumError is a RuntimeError
        log.warning("production recommender %s unreadable: %s", manifest.version, exc)
        return True, f"production {manifest.version} unreadable ({exc})", {"version": manifest.version}
    # Movies appended after the ranked catalog (new ones) are not ranked by the protocol.
    n = splits.n_ranked
    same_index = bool(np.array_equal(current.item_ids[:n], splits.item_ids[:n]))
    shared = int(sum(current.knows(int(t)) for t in splits.item_ids[:n]))
    ndcg = evaluate_recommender(current, splits, "valid")["ndcg"]
    note = (
        "same item index"
        if same_index
        else f"item index differs: production knows {shared} of {n} catalog items, the others rank last"
    )
    info = {"version": manifest.version, "valid_ndcg@10": ndcg, "same_item_index": same_index, "note": note}
    if challenger_ndcg > ndcg:
        return True, f"valid NDCG@10 {challenger_ndcg:.4f} > production {ndcg:.4f} ({note})", info
    return False, f"valid NDCG@10 {challenger_ndcg:.4f} <= production {ndcg:.4f} ({note})", info


def _latest_published(registry: Registry) -> Manifest | None:
    """The most recently published recommender version, promoted or not (None when there is none)."""
    versions = registry.versions(MODEL_NAME)  # version ids sort by publication time
    return registry.manifest(MODEL_NAME, versions[-1]) if versions else None


def _decision_key(logical_date: str) -> str:
    return f"runs/dt={logical_date}/recommender_decision.json"


def _skip(registry: Registry, latest: Manifest, fingerprint: str, logical_date: str, note: str = "") -> dict:
    """The decision record of a run that found no new data: nothing trained, nothing published."""
    reason = f"no new interactions since version {latest.version}{note}"
    log.info("recommender: %s (data fingerprint %s); not training", reason, fingerprint)
    result = {
        "version": latest.version,
        "algorithm": latest.algorithm,
        "promoted": False,
        "candidate": False,
        "skipped": True,
        "reason": reason,
        "data_fingerprint": fingerprint,
        "metrics": latest.notes.get("candidates", {}),
    }
    registry.store.put_json(_decision_key(logical_date), result)
    return result


def run_recommender_task(
    settings: Settings,
    registry: Registry,
    tracker: Tracker,
    *,
    logical_date: str,
    max_epochs: int | None = None,
    feedback: list[dict[str, Any]] | None = None,
    collected: list[dict[str, Any]] | None = None,
) -> dict:
    """Train, evaluate and track every recommender on MovieLens plus curated feedback; publish the best.

    The catalog is every movie with metadata: the snapshot's and the collected ones (normalised
    records). When the interactions are unchanged but the catalog grew, the production version
    is re-exported with the new movies appended instead of retrained.
    """
    data = load_snapshot_data(settings.snapshot_dir)
    movies = catalog_movies(data.records().values(), collected or [])
    splits, fed = with_feedback(data.splits, feedback or [], movies)
    stats = {**splits.stats(), **fed, "catalog": len(movies)}
    log.info("recommender data %s fingerprint %s", stats, splits.fingerprint)
    latest = _latest_published(registry)
    if latest is not None and latest.data_fingerprint == splits.fingerprint:
        live = running_canary(registry)
        if live is not None:  # a re-exported production would move the experiment's control arm
            note = f"; experiment {live.experiment_id} is running, new movies wait for its end"
            return _skip(registry, latest, splits.fingerprint, logical_date, note)
        grown = reexport(
            registry, growth_base(registry, latest, MODEL_NAME), movies, logical_date=logical_date
        )
        if grown is None:
            return _skip(registry, latest, splits.fingerprint, logical_date)
        registry.store.put_json(_decision_key(logical_date), grown)
        return grown
    group = f"recommender-{logical_date}"
    common = {"data_fingerprint": splits.fingerprint, "logical_date": logical_date, **stats}
    candidates: dict[str, dict[str, Any]] = {}

    for name, fit, params in (
        ("popularity", fit_popularity, {}),
        ("item_knn", fit_item_knn, {"neighbours": KNN_NEIGHBOURS, "similarity": "cosine"}),
    ):
        with tracker.run(name, {**common, **params}, group=group) as run:
            rec = fit(splits)
            metrics = _metrics(rec, splits)
            run.summary(metrics)
            candidates[name] = {"rec": rec, "metrics": metrics, "params": params, "run": run.ref}
            log.info("%s: %s", name, metrics)

    # The vocabulary comes from metadata only (every catalog movie's), never from interactions.
    names = fit_vocabulary(movies.values())
    model_config = SASRecConfig(n_items=splits.n_items)
    train_config = TrainConfig() if max_epochs is None else replace(TrainConfig(), max_epochs=max_epochs)
    params = {**model_config.to_dict(), **train_config.to_dict()}
    with tracker.run("sasrec", {**common, **params}, group=group) as run:
        result = train_sasrec(
            splits, model_config, train_config, on_epoch=_epoch_logger(run),
            features=rows_for(splits.item_ids, movies, names),
        )  # fmt: skip
        metrics = {**_metrics(result.recommender, splits), "train_seconds": result.train_seconds}
        run.summary({**metrics, "best_epoch": result.best_epoch})
        if run.run is not None:
            run.log_figure("curves", _curve_figure(result.history))
        params = {
            **params,
            **result.recommender.model.config.to_dict(),  # with the side data's sizes filled in
            "best_epoch": result.best_epoch,
            "epochs_run": len(result.history),
            "stopped_by": result.stopped_by,
        }
        candidates["sasrec"] = {
            "rec": result.recommender,
            "metrics": metrics,
            "params": params,
            "run": run.ref,
        }
    log.info("sasrec: %s", metrics)

    winner = max(candidates, key=lambda n: candidates[n]["metrics"][SELECTION_METRIC])
    chosen = candidates[winner]
    better, reason, production = _production_check(registry, splits, chosen["metrics"][SELECTION_METRIC])
    # Better on the same validation split than a readable production: users decide (recommender/canary.py).
    experiment = better and settings.experiments and "valid_ndcg@10" in production
    promote = better and not experiment
    # The winner takes every catalog movie it was not trained on, scored from its features alone.
    served, new = with_new_items(chosen["rec"], movies, names, train_config.new_pool_weight)
    files = served.save()
    if can_grow(served):
        files[FEATURES_FILE] = features_file(names)
    files["catalog.json"] = catalog_bytes(served, movies)
    table = {name: c["metrics"] for name, c in candidates.items()}
    manifest = registry.publish(
        MODEL_NAME,
        files,
        {
            "algorithm": winner,
            "metrics": chosen["metrics"],
            "params": chosen["params"],
            "data_fingerprint": splits.fingerprint,
            "wandb_run": chosen["run"],
            "library_versions": {
                "python": platform.python_version(),
                "torch": torch.__version__,
                "numpy": np.__version__,
                "scipy": scipy.__version__,
            },
            "features": [],
            "notes": {
                "logical_date": logical_date,
                "selection": f"highest {SELECTION_METRIC}; test metrics never used to choose",
                "data": stats,
                "new_items": len(new),
                "candidates": table,
                "production_before": production,
            },
        },
        promote=promote,
        reason=reason,
        expected_production=production["version"],  # refused if production moved since the comparison
    )
    canary = {"candidate": False, "experiment_id": None, "waiting_for": None}
    if experiment:
        canary = start_or_wait(settings, registry, manifest.version, reason)
        reason = canary.pop("reason")
    log.info("recommender %s published (%s), promoted=%s: %s", manifest.version, winner, promote, reason)
    result = {
        "version": manifest.version,
        "algorithm": winner,
        "promoted": promote,
        **canary,
        "skipped": False,
        "reason": reason,
        "data_fingerprint": splits.fingerprint,
        "metrics": table,
    }
    # Same record as the rating step's, so `pipeline.sh` reports both decisions.
    registry.store.put_json(_decision_key(logical_date), result)
    return result


def _epoch_logger(run: TrackedRun) -> Any:
    def on_epoch(entry: EpochLog) -> None:
        run.log(
            {"epoch": entry.epoch, "train/loss": entry.loss, "epoch_seconds": entry.seconds,
             **{f"valid/{k}@10": v for k, v in entry.valid.items()}},
            step=entry.epoch,
        )  # fmt: skip

    return on_epoch
