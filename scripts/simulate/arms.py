"""A simulated experiment's arms: the popularity baseline, the trained recommender, which is production."""

from __future__ import annotations

import logging
import sys
from typing import Any

log = logging.getLogger("simulate")
MODEL = "recommender"
SIMULATION_NOTE = "popularity baseline published by simulate.sh --candidate"


def popularity_version(ctx: Any) -> str:
    """The popularity baseline on the snapshot, published unpromoted (reused when already published)."""
    from services.core.registry import RegistryError
    from services.train.recommender.baselines import fit_popularity
    from services.train.recommender.catalog_growth import catalog_bytes
    from services.train.recommender.data import load_snapshot_data
    from services.train.recommender.item_features import catalog_movies
    from services.train.recommender.metrics import evaluate_recommender, prefixed

    data = load_snapshot_data(ctx.settings.snapshot_dir)
    for version in reversed(ctx.registry.versions(MODEL)):
        try:
            manifest = ctx.registry.manifest(MODEL, version)
        except RegistryError:
            continue
        if (
            manifest.notes.get("simulation") == SIMULATION_NOTE
            and manifest.data_fingerprint == data.splits.fingerprint
        ):
            return version
    rec = fit_popularity(data.splits)
    metrics = {**prefixed(evaluate_recommender(rec, data.splits, "valid"), "valid"),
               **prefixed(evaluate_recommender(rec, data.splits, "test"), "test")}  # fmt: skip
    files = {**rec.save(), "catalog.json": catalog_bytes(rec, catalog_movies(data.records().values()))}
    meta = {"algorithm": "popularity", "metrics": metrics, "data_fingerprint": data.splits.fingerprint,
            "notes": {"simulation": SIMULATION_NOTE}}  # fmt: skip
    return ctx.registry.publish(MODEL, files, meta, promote=False).version


def trained_version(registry: Any, popularity: str) -> str:
    """The trained recommender: production, or the newest published version before it when production is
    the simulation's popularity baseline (a --candidate better run that did not finish)."""
    production = registry.production_version(MODEL)
    if production != popularity:
        return production
    for version in reversed(registry.versions(MODEL)):
        if registry.manifest(MODEL, version).notes.get("simulation") != SIMULATION_NOTE:
            return version
    sys.exit("no trained recommender is published: run ./scripts/pipeline.sh first")


def arrange(ctx: Any, candidate: str, share: float) -> tuple[Any, str, str]:
    """End a running experiment, put the right version in production, start the experiment."""
    from services.core import experiments

    running = experiments.read_candidates(ctx.registry, MODEL).running
    if running is not None:
        log.info(
            "==> ending the running experiment %s (aborted) to start the simulated one", running.experiment_id
        )
        experiments.end(ctx.registry, MODEL, "aborted", "simulation: replaced by a simulated experiment",
                        experiment_id=running.experiment_id)  # fmt: skip
    popularity = popularity_version(ctx)
    trained = trained_version(ctx.registry, popularity)
    production, version = (trained, popularity) if candidate == "worse" else (popularity, trained)
    if ctx.registry.production_version(MODEL) != production:
        reason = (
            "simulation: a weak production to beat"
            if candidate == "better"
            else "simulation: back to the trained one"
        )
        ctx.registry.promote(MODEL, production, reason=reason)
    rule = experiments.rule_from_settings(ctx.settings)
    experiment = experiments.start(ctx.registry, MODEL, version, share=share, rule=rule, started_by="simulate",
                                   reason=f"simulation: a {candidate} candidate")  # fmt: skip
    log.info("==> experiment %s: candidate %s (%s) for %.0f%% of users, against production %s (%s)",
             experiment.experiment_id, version, _algorithm(ctx, version), 100 * share, production,
             _algorithm(ctx, production))  # fmt: skip
    log.info("    rule: promote when both lower bounds > -%g with >= %d users per arm, roll back when an upper "
             "bound < 0; at most %d days", rule.delta, rule.min_users, rule.max_days)  # fmt: skip
    return experiment, production, version


def _algorithm(ctx: Any, version: str) -> str:
    return ctx.registry.manifest(MODEL, version).algorithm or "unknown"
