"""The daily drift check: what users asked about, and what arrived, against the production model's training data.

Two comparisons, each an Evidently report (HTML) plus its summary, under reports/drift/dt=YYYY-MM-DD/:
  requests   the day's logged /predict inputs (events/predictions) and their predictions
  collected  the day's newly collected movies, featurised with production's encoders, and its predictions

Both sides are capped at DRIFT_SAMPLE_ROWS by a seeded uniform sample (drift.py says why): the reference
once per run, the requests while the day's batches stream in, so cost and meaning do not grow with traffic.
"""

from __future__ import annotations

import logging
from typing import Any

import numpy as np
import pandas as pd

from services.core.events import report_key
from services.train.context import Context
from services.train.monitoring.drift import (
    DRIFT_FEATURES,
    PREDICTION,
    REFERENCE_SEED,
    drift_report,
    sample_rows,
)
from services.train.monitoring.predictions_log import sample_predictions
from services.train.rating.production import Production, load_production, new_movies, training_frame

log = logging.getLogger(__name__)


def collected_frame(prod: Production, movies: list[dict[str, Any]]) -> pd.DataFrame:
    """New movies' features under production's encoders, with production's predictions."""
    names = list(prod.manifest.features)
    x = prod.features(movies) if movies else np.zeros((0, len(names)))
    frame = pd.DataFrame(x, columns=names)
    frame[PREDICTION] = prod.model.predict(x) if movies else []
    return frame


def _compare(
    ctx: Context,
    day: str,
    name: str,
    reference: pd.DataFrame,
    current: pd.DataFrame,
    rows_day: int,
    empty: str,
) -> dict[str, Any]:
    """One comparison's summary; `current` is (a sample of) the day's `rows_day` rows."""
    current = sample_rows(current, ctx.settings.drift_sample_rows, REFERENCE_SEED)  # requests come sampled
    n = len(current)
    if n == 0:
        return {"status": empty, "rows_current": 0}
    if n < ctx.settings.drift_min_rows:
        return {"status": f"only {n} rows: too few to compare (DRIFT_MIN_ROWS={ctx.settings.drift_min_rows})",
                "rows_current": n}  # fmt: skip
    summary, html = drift_report(reference, current, drift_share=ctx.settings.alert_drift_share)
    key = report_key("drift", day, f"{name}.html")
    ctx.store.put_bytes(key, html.encode(), "text/html; charset=utf-8")
    log.info("drift of %s: %d of %d features drifted %s; prediction drifted: %s", name, len(summary["drifted"]),
             len(summary["features"]), summary["drifted"], (summary["prediction"] or {}).get("drifted"))  # fmt: skip
    return {"status": "ok", **summary, "rows_day": rows_day, "report": key}


def monitor(ctx: Context, logical_date: str) -> dict[str, Any]:
    """Run both drift comparisons for a day and write their reports and summary.json."""
    key = report_key("drift", logical_date, "summary.json")
    prod = load_production(ctx)
    if prod is None:
        summary = {"date": logical_date, "status": "no production rating model yet: nothing to compare with"}
        ctx.store.put_json(key, summary)
        return summary
    names, cap = list(prod.manifest.features), ctx.settings.drift_sample_rows
    training = training_frame(ctx, prod)[names].astype(np.float64)
    reference = sample_rows(training, cap, REFERENCE_SEED)
    reference[PREDICTION] = prod.model.predict(reference[names].to_numpy())
    # Only the columns the reports compare: Arrow then builds 12 of the ~80 logged features (half the CPU).
    logged = sample_predictions(ctx.store, logical_date, [n for n in DRIFT_FEATURES if n in names], cap)
    collected = collected_frame(prod, new_movies(ctx, logical_date, prod.seen))
    log.info("drift of %s: %d logged predictions (%d compared), %d training rows (%d compared)",
             logical_date, logged.rows, len(logged.frame), len(training), len(reference))  # fmt: skip
    summary = {
        "date": logical_date,
        "status": "ok",
        "model_version": prod.version,
        "sample_rows": cap,
        "training_rows": len(training),
        "reference_rows": len(reference),
        "request_rows_unreadable": logged.skipped,
        "request_versions": dict(logged.versions),
        "comparisons": {
            "requests": _compare(
                ctx,
                logical_date,
                "requests",
                reference,
                logged.frame,
                logged.rows,
                "no /predict requests were logged that day",
            ),
            "collected": _compare(
                ctx,
                logical_date,
                "collected",
                reference,
                collected,
                len(collected),
                "no new movies were collected that day",
            ),
        },  # fmt: skip
    }
    ctx.store.put_json(key, summary)
    with ctx.tracker.run(f"drift-{logical_date}", {"model_version": prod.version, "date": logical_date},
                         group="monitoring", job_type="monitor") as run:  # fmt: skip
        run.summary({f"{name}_{k}": c.get(k) for name, c in summary["comparisons"].items()
                     for k in ("share", "rows_current", "rows_day") if c.get(k) is not None})  # fmt: skip
    return {
        "date": logical_date,
        "model_version": prod.version,
        **{f"{name}_share": c.get("share") for name, c in summary["comparisons"].items()},
    }
