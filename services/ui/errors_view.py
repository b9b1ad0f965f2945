"""The Models page's error analysis: where the rating model errs, by band, production against the challenger.

Turns the ErrorReport the client read from GET /model/errors (services/ui/api/error_report.py) into a frame
and a chart; Streamlit calls stay in views/model.py.
"""

from __future__ import annotations

import altair as alt
import pandas as pd

from services.ui.api.error_report import ErrorReport

METRICS = {"bias": "Bias (predicted − actual)", "rmse": "RMSE"}
MODEL_NAMES = {"production": "production", "challenger": "challenger (this run)"}


def band_frame(report: ErrorReport, dimension: str) -> pd.DataFrame:
    """One row per band, model and metric (bias, RMSE) of a dimension, in the report's band order."""
    _, bands = report.dimensions[dimension]
    rows = [
        {"band": b.band, "order": i, "rows": b.count, "model": MODEL_NAMES.get(m, m),
         "version": report.models.get(m, m), "metric": metric, "value": s[metric]}
        for i, b in enumerate(bands)
        for m, s in b.stats.items()
        for metric in METRICS
        if s.get(metric) is not None
    ]  # fmt: skip
    return pd.DataFrame(rows, columns=["band", "order", "rows", "model", "version", "metric", "value"])


def band_chart(frame: pd.DataFrame, metric: str, title: str) -> alt.Chart:
    """Bars per band, production and the challenger side by side, for one metric."""
    order = list(dict.fromkeys(frame.sort_values("order")["band"]))
    models = [m for m in MODEL_NAMES.values() if m in set(frame["model"])]
    return (
        alt.Chart(frame[frame["metric"] == metric], title=f"{METRICS[metric]} by {title.lower()}", height=260)
        .mark_bar()
        .encode(
            x=alt.X("band:N", title=None, sort=order, axis=alt.Axis(labelAngle=-30)),
            xOffset=alt.XOffset("model:N", sort=models),
            y=alt.Y("value:Q", title=f"{METRICS[metric]} (rating points)"),
            color=alt.Color("model:N", title=None, sort=models, legend=alt.Legend(orient="bottom")),
            tooltip=["band:N", "model:N", "version:N", "rows:Q", alt.Tooltip("value:Q", format="+.3f")],
        )
    )


def summary_text(report: ErrorReport) -> str:
    """Which rows the figures are on, and why those."""
    window = f", released {report.window[0]} to {report.window[1]}" if report.window else ""
    return (
        f"Run of {report.date}: {report.rows} movies of the {report.split} split{window}: the newest releases, "
        "which neither model trained on and the challenger was not chosen on. Bias is the mean of predicted "
        "minus actual: above zero, the model rates that band too high."
    )


def empty_text() -> str:
    """What writes the error report, for when there is none yet."""
    return (
        "**No error analysis yet.** Each pipeline run scores its test movies with the production model and "
        "the day's challenger, band by band; run the pipeline (`./scripts/pipeline.sh`) to see it here."
    )
