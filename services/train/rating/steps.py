"""The rating model's steps: build features, train one candidate, select and publish; each returns S3 keys.

The Airflow DAG (dags/movie_pipeline.py) only wires these together; they run just as well from a
test or a notebook. Every step is idempotent for its logical date: a rerun overwrites its own
objects and never duplicates.
"""

from __future__ import annotations

import io
import json
import logging
from typing import Any

import numpy as np
import pandas as pd

from services.core.catalog import Catalog
from services.core.features import Encoders, check_leakage, feature_names, featurize, fit_encoders
from services.core.rating_model import load_rating_model
from services.core.registry import ChecksumError, RegistryError
from services.train import raw_store
from services.train.context import Context
from services.train.provenance import git_commit, library_versions
from services.train.rating.data import (
    SPLITS,
    Matrices,
    fingerprint,
    labelled,
    split_matrix,
    targets,
    time_split,
)
from services.train.rating.error_report import errors_key, write_error_report
from services.train.rating.models import ALGORITHMS, DEFAULT_PARAMS, rmse, train_candidate
from services.train.rating.plots import importance_figure
from services.train.rating.production import Production, load_production
from services.train.rating.select import choose_challenger, decide
from services.train.rating.tuning.store import tuned_params
from services.train.raw_store import day_key

log = logging.getLogger(__name__)


def _put_frame(
    ctx: Context, key: str, x: np.ndarray, y: np.ndarray, names: list[str], ids: list[int]
) -> None:
    frame = pd.DataFrame(x, columns=names)
    frame.insert(0, "tmdb_id", ids)
    frame["target"] = y
    buf = io.BytesIO()
    frame.to_parquet(buf, index=False)
    ctx.store.put_bytes(key, buf.getvalue(), "application/vnd.apache.parquet")


def _get_frame(ctx: Context, key: str) -> pd.DataFrame:
    return pd.read_parquet(io.BytesIO(ctx.store.get_bytes(key)))


def build_features(
    ctx: Context, logical_date: str, curated_key: str, partitions: list[str]
) -> dict[str, Any]:
    """Time split, encoders fitted on train only, feature matrices per split (parquet in S3)."""
    movies = raw_store.read_jsonl(ctx.store, curated_key)
    rows = labelled(movies, ctx.settings.min_vote_count)
    split = time_split(rows)
    encoders = fit_encoders(split.train)
    check_leakage(split.train, encoders)
    names = feature_names(encoders)
    keys = {}
    for s in SPLITS:
        part = getattr(split, s)
        keys[s] = day_key("features", logical_date, f"{s}.parquet")
        _put_frame(
            ctx, keys[s], split_matrix(split, s, encoders), targets(part), names, [p["id"] for p in part]
        )
    ctx.store.put_json(day_key("features", logical_date, "encoders.json"), encoders.to_json())
    meta = {
        "date": logical_date,
        "keys": keys,
        "encoders": day_key("features", logical_date, "encoders.json"),
        "curated": curated_key,
        "partitions": partitions,
        "sizes": split.sizes(),
        "fingerprint": fingerprint(rows),
        "val_window": [split.val[0]["release_date"], split.val[-1]["release_date"]],
        "test_window": [split.test[0]["release_date"], split.test[-1]["release_date"]],
        "ids": split.ids(),
        "features": names,
    }
    ctx.store.put_json(day_key("features", logical_date, "meta.json"), meta)
    log.info("features: %d columns; split sizes %s; test window %s", len(names), split.sizes(),
             meta["test_window"])  # fmt: skip
    return {k: meta[k] for k in ("date", "keys", "encoders", "curated", "partitions", "sizes", "fingerprint")}


def load_matrices(ctx: Context, features: dict[str, Any]) -> Matrices:
    """The feature matrices written by build_features."""
    encoders = Encoders.from_json(ctx.store.get_json(features["encoders"]))
    frames = {s: _get_frame(ctx, features["keys"][s]) for s in SPLITS}
    names = [c for c in frames["train"].columns if c not in ("tmdb_id", "target")]
    return Matrices(
        encoders=encoders,
        names=names,
        x={s: frames[s][names].to_numpy(dtype=np.float64) for s in SPLITS},
        y={s: frames[s]["target"].to_numpy(dtype=np.float64) for s in SPLITS},
    )


def train_rating(ctx: Context, logical_date: str, features: dict[str, Any], algorithm: str) -> dict[str, Any]:
    """Train one candidate, track it in W&B, store its files under candidates/dt=<date>/<algorithm>/."""
    if algorithm not in ALGORITHMS:
        raise ValueError(f"unknown algorithm {algorithm!r}")
    m = load_matrices(ctx, features)
    data_version = {"partitions": features["partitions"], "fingerprint": features["fingerprint"]}
    # The weekly search's parameters when there are any (dags/rating_tune.py), else today's defaults.
    tuned = tuned_params(ctx.store, algorithm)
    params = {**DEFAULT_PARAMS[algorithm], **tuned["params"]} if tuned else None
    tuning = tuned["study"] if tuned else None
    config = {"algorithm": algorithm, "n_features": len(m.names), **data_version, "sizes": features["sizes"],
              "params": params or DEFAULT_PARAMS[algorithm], "tuning": tuning}  # fmt: skip
    with ctx.tracker.run(f"rating-{algorithm}-{logical_date}", config, group=f"rating-{logical_date}") as run:
        cand = train_candidate(algorithm, m, params)
        run.summary({**cand.metrics, "params": cand.params})
        if cand.importance:
            run.log_figure("feature_importance", importance_figure(cand.importance, algorithm))
        wandb_ref = run.ref
    prefix = day_key("candidates", logical_date, f"{algorithm}/")
    for name, data in cand.files.items():
        ctx.store.put_bytes(prefix + name, data)
    info = {
        "algorithm": algorithm,
        "metrics": cand.metrics,
        "params": cand.params,
        "files": sorted(cand.files),
        "prefix": prefix,
        "wandb_run": wandb_ref,
        "importance": dict(list(cand.importance.items())[:20]),
        "tuning": tuning,
    }
    ctx.store.put_json(prefix + "candidate.json", info)
    return {k: info[k] for k in ("algorithm", "metrics", "prefix", "wandb_run")}


def _production_val_rmse(
    ctx: Context, val: list[dict[str, Any]], prod: Production | None
) -> tuple[float | None, str]:
    """Production's RMSE on this run's validation rows, featurised with production's own encoders."""
    if prod is not None:  # loaded once for this step (the error report judges the same model)
        return rmse(targets(val), prod.predict(val)), prod.version
    # No production, or one load_production cannot use (its build day's metadata may be gone): say which.
    try:
        manifest = ctx.registry.manifest("rating")
    except RegistryError:
        return None, "none"
    try:
        files = {n: ctx.registry.read_file(manifest, n) for n in manifest.files}
        encoders = Encoders.from_json(json.loads(files["encoders.json"]))
        model = load_rating_model(manifest.algorithm or "xgboost", files)
    except (ChecksumError, ValueError, KeyError) as exc:
        log.warning("production rating %s unusable (%s): treating as absent", manifest.version, exc)
        return None, f"{manifest.version} (unusable: {exc})"
    return rmse(targets(val), model.predict(featurize(val, encoders))), manifest.version


def _error_report(ctx: Context, logical_date: str, test_rows: list[dict[str, Any]],
                  challenger: dict[str, Any], files: dict[str, bytes], prod: Production | None) -> str | None:  # fmt: skip
    """Write the day's error analysis (production before this run vs the challenger); its key, or None."""
    try:
        report = write_error_report(ctx, logical_date, test_rows, challenger["algorithm"], files, prod)
    except Exception:  # a report must never stop a model from being published; the log keeps the trace
        log.exception("error analysis for %s failed; publishing without it", logical_date)
        return None
    return errors_key(report["date"])


def select_and_publish(ctx: Context, logical_date: str, features: dict[str, Any],
                       candidates: list[dict[str, Any]]) -> dict[str, Any]:  # fmt: skip
    """Pick the challenger, compare it with production on the same rows, publish, maybe promote."""
    challenger = choose_challenger(candidates, ctx.settings.max_generalization_gap)
    curated = raw_store.read_jsonl(ctx.store, features["curated"])
    meta = ctx.store.get_json(day_key("features", logical_date, "meta.json"))
    by_id = {m["id"]: m for m in curated}
    prod = load_production(ctx)
    prod_rmse, prod_version = _production_val_rmse(ctx, [by_id[i] for i in meta["ids"]["val"]], prod)
    decision = decide(challenger["metrics"]["val_rmse"], prod_rmse)
    reason = f"{challenger['algorithm']} ({challenger['why']}); {decision.reason}"
    log.info("rating decision: %s -> %s", "PROMOTE" if decision.promote else "KEEP", reason)
    info = ctx.store.get_json(challenger["prefix"] + "candidate.json")
    files = {name: ctx.store.get_bytes(challenger["prefix"] + name) for name in info["files"]}
    files["encoders.json"] = ctx.store.get_bytes(features["encoders"])
    files["catalog.json"] = json.dumps(Catalog.from_movies(curated).to_json()).encode()
    test_rows = [by_id[i] for i in meta["ids"]["test"]]
    errors_report = _error_report(ctx, logical_date, test_rows, challenger, files, prod)
    manifest = {
        "algorithm": challenger["algorithm"],
        "git_commit": git_commit(),
        "wandb_run": challenger.get("wandb_run"),
        "data_partitions": features["partitions"],
        "data_fingerprint": features["fingerprint"],
        "metrics": challenger["metrics"],
        "features": meta["features"],
        "params": info["params"],
        "library_versions": library_versions(),
        "notes": {
            "logical_date": logical_date,
            "split_sizes": features["sizes"],
            "candidates": {c["algorithm"]: c["metrics"] for c in candidates},
            "production_before": prod_version,
            "production_val_rmse": prod_rmse,
            "decision": reason,
            "importance": info.get("importance", {}),
            "tuning": info.get("tuning"),  # the study the parameters came from (None: defaults)
        },
    }
    # The decision holds only against the production it was compared with (prod_version is "none", the
    # version, or "<version> (unusable: ...)"): the registry refuses the promote if production moved since.
    baseline = None if prod_version == "none" else prod_version.split(" ", 1)[0]
    published = ctx.registry.publish("rating", files, manifest, promote=decision.promote, reason=reason,
                                     expected_production=baseline)  # fmt: skip
    result = {
        "version": published.version,
        "promoted": decision.promote,
        "reason": reason,
        "algorithm": challenger["algorithm"],
        "val_rmse": challenger["metrics"]["val_rmse"],
        "test_rmse": challenger["metrics"]["test_rmse"],
        "production": ctx.registry.production_version("rating"),
        "errors_report": errors_report,
    }
    ctx.store.put_json(day_key("runs", logical_date, "rating_decision.json"), result)
    with ctx.tracker.run(f"rating-select-{logical_date}", result, group=f"rating-{logical_date}",
                         job_type="select") as run:  # fmt: skip
        run.summary({"promoted": int(decision.promote), "challenger_val_rmse": result["val_rmse"],
                     "production_val_rmse": prod_rmse if prod_rmse is not None else float("nan")})  # fmt: skip
    return result
