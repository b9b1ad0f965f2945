"""The Models page's error analysis: where the rating model errs, by band, production against the challenger.

Reads GET /model/errors (the report select_and_publish writes each run) into small frozen types and turns
them into a frame and a chart; Streamlit calls stay in views/model.py.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import altair as alt
import pandas as pd

METRICS = {"bias": "Bias (predicted − actual)", "rmse": "RMSE"}
MODEL_NAMES = {"production": "production", "challenger": "challenger (this run)"}
# The report's JSON has its keys sorted; the page offers the dimensions in the order the analysis reads.
DIMENSION_ORDER = ("vote_count", "release_period", "main_genre", "original_language", "overview_length")


@dataclass(frozen=True)
class Band:
    """One band of one dimension: its rows, and per model its bias, RMSE and MAE."""

    band: str
    count: int
    stats: Mapping[str, Mapping[str, float | None]]  # model -> {"bias", "rmse", "mae"}


@dataclass(frozen=True)
class ErrorReport:
    """A run's error analysis: which rows, which models, and every dimension's bands."""

    date: str
    split: str
    rows: int
    models: Mapping[str, str]  # model -> version (or algorithm for the challenger)
    dimensions: Mapping[str, tuple[str, tuple[Band, ...]]]  # key -> (title, bands)
    window: tuple[str, str] | None


def _num(value: Any) -> float | None:
    return None if value is None else float(value)


def _dimension_rank(item: tuple[str, Any]) -> tuple[int, str]:
    key = item[0]
    return (DIMENSION_ORDER.index(key) if key in DIMENSION_ORDER else len(DIMENSION_ORDER), key)


def read_errors(body: Any) -> ErrorReport:
    """Parse /model/errors' answer (KeyError/TypeError/ValueError when it has another shape)."""
    if not isinstance(body, Mapping):
        raise TypeError("expected an object")
    models = {
        str(name): str(m.get("version") or m.get("algorithm") or name)
        for name, m in (body.get("models") or {}).items()
    }
    dimensions = {
        str(key): (
            str(d.get("title") or key),
            tuple(
                Band(
                    band=str(b["band"]),
                    count=int(b["count"]),
                    stats={
                        n: {k: _num(b[n].get(k)) for k in ("bias", "rmse", "mae")} for n in models if n in b
                    },
                )
                for b in d["bands"]
            ),
        )
        for key, d in sorted(body["dimensions"].items(), key=_dimension_rank)
    }
    window = body.get("window")
    return ErrorReport(
        date=str(body["date"]),
        split=str(body.get("split") or "test"),
        rows=int(body.get("rows") or 0),
        models=models,
        dimensions=dimensions,
        window=(str(window[0]), str(window[1])) if window else None,
    )


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
