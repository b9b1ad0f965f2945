"""The daily drift check: what users asked about, and what arrived, against the production model's training data.

Two comparisons, each an Evidently report (HTML) plus its summary, under reports/drift/dt=YYYY-MM-DD/:
  requests   the day's logged /predict inputs (events/predictions) and their predictions
  collected  the day's newly collected movies, featurised with production's encoders, and its predictions
"""

from __future__ import annotations

import logging
from collections import Counter
from typing import Any

import numpy as np
import pandas as pd

from services.core.events import read_day, report_key
from services.train.context import Context
from services.train.monitoring.drift import PREDICTION, drift_report
from services.train.monitoring.production import Production, load_production, new_movies, training_frame

log = logging.getLogger(__name__)


def request_frame(events: list[dict[str, Any]], names: list[str]) -> tuple[pd.DataFrame, Counter]:
    """Logged prediction inputs as a frame (missing features NaN), and how many each model version served."""
    rows, versions = [], Counter()
    for e in events:
        features = e.get("features")
        if not isinstance(features, dict) or e.get("prediction") is None:
            continue  # not a prediction log this code can read: skipped, never a failed run
        rows.append([_float(features.get(n)) for n in names] + [_float(e["prediction"])])
        versions[str(e.get("model_version"))] += 1
    return pd.DataFrame(np.asarray(rows, dtype=np.float64).reshape(-1, len(names) + 1),
                        columns=[*names, PREDICTION]), versions  # fmt: skip


def collected_frame(prod: Production, movies: list[dict[str, Any]]) -> pd.DataFrame:
    """New movies' features under production's encoders, with production's predictions."""
    names = list(prod.manifest.features)
    x = prod.features(movies) if movies else np.zeros((0, len(names)))
    frame = pd.DataFrame(x, columns=names)
    frame[PREDICTION] = prod.model.predict(x) if movies else []
    return frame


def _compare(
    ctx: Context, logical_date: str, name: str, reference: pd.DataFrame, current: pd.DataFrame, empty: str
) -> dict[str, Any]:
    n = len(current)
    if n == 0:
        return {"status": empty, "rows_current": 0}
    if n < ctx.settings.drift_min_rows:
        return {"status": f"only {n} rows: too few to compare (DRIFT_MIN_ROWS={ctx.settings.drift_min_rows})",
                "rows_current": n}  # fmt: skip
    summary, html = drift_report(reference, current, drift_share=ctx.settings.alert_drift_share)
    key = report_key("drift", logical_date, f"{name}.html")
    ctx.store.put_bytes(key, html.encode(), "text/html; charset=utf-8")
    log.info("drift of %s: %d of %d features drifted %s; prediction drifted: %s", name, len(summary["drifted"]),
             len(summary["features"]), summary["drifted"], (summary["prediction"] or {}).get("drifted"))  # fmt: skip
    return {"status": "ok", **summary, "report": key}


def monitor(ctx: Context, logical_date: str) -> dict[str, Any]:
    """Run both drift comparisons for a day and write their reports and summary.json."""
    key = report_key("drift", logical_date, "summary.json")
    prod = load_production(ctx)
    if prod is None:
        summary = {"date": logical_date, "status": "no production rating model yet: nothing to compare with"}
        ctx.store.put_json(key, summary)
        return summary
    names = list(prod.manifest.features)
    reference = training_frame(ctx, prod)[names].astype(np.float64)
    reference[PREDICTION] = prod.model.predict(reference[names].to_numpy())
    requests, versions = request_frame(read_day(ctx.store, "predictions", logical_date), names)
    collected = collected_frame(prod, new_movies(ctx, logical_date, prod.seen))
    summary = {
        "date": logical_date,
        "status": "ok",
        "model_version": prod.version,
        "reference_rows": len(reference),
        "request_versions": dict(versions),
        "comparisons": {
            "requests": _compare(
                ctx,
                logical_date,
                "requests",
                reference,
                requests,
                "no /predict requests were logged that day",
            ),  # fmt: skip
            "collected": _compare(
                ctx, logical_date, "collected", reference, collected, "no new movies were collected that day"
            ),  # fmt: skip
        },
    }
    ctx.store.put_json(key, summary)
    with ctx.tracker.run(f"drift-{logical_date}", {"model_version": prod.version, "date": logical_date},
                         group="monitoring", job_type="monitor") as run:  # fmt: skip
        run.summary({f"{name}_{k}": c.get(k) for name, c in summary["comparisons"].items()
                     for k in ("share", "rows_current") if c.get(k) is not None})  # fmt: skip
    return {
        "date": logical_date,
        "model_version": prod.version,
        **{f"{name}_share": c.get("share") for name, c in summary["comparisons"].items()},
    }


def _float(value: Any) -> float:
    try:
        return float(value) if value is not None else np.nan
    except (TypeError, ValueError):
        return np.nan
