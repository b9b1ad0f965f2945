"""Startup load and hot reload: build new models off to the side, then swap one reference."""

from __future__ import annotations

import gc
import logging
from time import perf_counter

from services.serve.loader import LoadOutcome, ModelLoader, ReloadError
from services.serve.metrics import ServeMetrics
from services.serve.schemas import ReloadOut
from services.serve.state import LoadedModels, ModelState

log = logging.getLogger(__name__)


def initial_load(state: ModelState, loader: ModelLoader, metrics: ServeMetrics) -> None:
    """Load at startup: S3 first, the local cache when S3 cannot be read, nothing as a last resort."""
    try:
        outcome = loader.load(None, allow_cache=True)
    except Exception as exc:  # noqa: BLE001 - a loader bug must leave a live, not-ready server, not a crash
        log.exception("loading models at startup failed")
        outcome = LoadOutcome(None, f"loading models at startup failed ({type(exc).__name__}: {exc})")
    _apply(state, outcome, metrics)
    current = state.current
    if current is None or not current.ready:
        log.warning("not ready: %s", state.detail)
        return
    log.info(
        "ready in %.2f s: rating %s, recommender %s, source %s, experiments %s",
        current.load_seconds, current.version("rating"), current.version("recommender"), current.source,
        _experiments(current) or "none",
    )  # fmt: skip
    if current.source == "cache":
        log.warning("%s", state.detail)


def settle_heap() -> None:
    """Collect once, then move what is alive out of the collector's sight (it lives as long as the models).

    A full collection walks every object: ~220 ms once the models are loaded, a stall for every request
    in flight (measured: it was /feedback's p99). After a reload the old models' frozen objects are
    unfrozen first, so what the swap released (cycles included) is freed rather than kept forever.
    """
    gc.unfreeze()
    gc.collect()
    gc.freeze()


def reload(state: ModelState, loader: ModelLoader, metrics: ServeMetrics) -> ReloadOut:
    """Load the production versions (and the candidates of running experiments) from S3 and swap them
    in; on failure keep serving (ReloadError). A candidate that fails only leaves its experiment out."""
    with state.reload_lock:
        start = perf_counter()
        before = state.current
        try:
            outcome = loader.load(before, allow_cache=False)
        except ReloadError:
            metrics.reloads.labels("failed").inc()
            raise
        if outcome.models is None and before is not None:
            metrics.reloads.labels("failed").inc()
            raise ReloadError("nothing is published in the registry any more; keeping the served models")
        _apply(state, outcome, metrics)
        after = state.current
        previous, current = _versions(before), _versions(after)
        was, now = _served(before), _served(after)
        # Starting or ending an experiment changes what is served even when production stays.
        changed = previous != current or was != now
        if changed:
            del before  # the old models: free once no request holds them any more
            settle_heap()
        metrics.reloads.labels("changed" if changed else "unchanged").inc()
        log.info("reload: %s -> %s, candidates and experiments %s -> %s", previous, current, was, now)
        return ReloadOut(
            changed=changed,
            rating_version=current[0],
            recommender_version=current[1],
            previous_rating_version=previous[0],
            previous_recommender_version=previous[1],
            source=after.source if after else None,
            seconds=round(perf_counter() - start, 3),
            recommender_candidate_version=after.candidate_version("recommender") if after else None,
            rating_shadow_version=after.candidate_version("rating") if after else None,
            experiments=_experiments(after),
        )


def _apply(state: ModelState, outcome: LoadOutcome, metrics: ServeMetrics) -> None:
    # One assignment is the swap: a request that already took state.current keeps its snapshot.
    state.current = outcome.models
    state.detail = outcome.detail
    metrics.set_models(_infos(outcome.models))


def _versions(models: LoadedModels | None) -> tuple[str | None, str | None]:
    return (models.version("rating"), models.version("recommender")) if models else (None, None)


def _served(models: LoadedModels | None) -> tuple[tuple[str | None, ...], dict[str, str]]:
    if models is None:
        return (None, None), {}
    return (models.candidate_version("rating"), models.candidate_version("recommender")), _experiments(models)


def _experiments(models: LoadedModels | None) -> dict[str, str]:
    return {m: e.experiment_id for m, e in models.experiments.items()} if models else {}


def _infos(models: LoadedModels | None) -> list[dict[str, str]]:
    if models is None:
        return []
    return [
        {
            "model": b.manifest.model,
            "version": b.manifest.version,
            "algorithm": b.manifest.algorithm or "",
            "source": b.source,
        }
        for b in (models.rating, models.recommender)
        if b is not None
    ]
