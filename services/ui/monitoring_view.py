"""The Models page's monitoring section: live RMSE of the production model by day, drift, alerts.

Turns the Monitoring the client read from GET /model/monitoring (services/ui/api/monitoring.py) into frames
and charts; Streamlit calls stay in views/model.py.
"""

from __future__ import annotations

from collections.abc import Sequence

import altair as alt
import pandas as pd

from services.ui.api.monitoring import DriftDay, LiveDay

COMPARISONS = {
    "requests": "what people asked /predict about",
    "collected": "the day's newly collected movies",
}
SERIES = {
    "live": "production model, live",
    "recipe": "reference recipe, live",
    "validation": "production model, validation",
}


def live_frame(days: Sequence[LiveDay]) -> pd.DataFrame:
    """One row per day and series (live, recipe, validation RMSE), with the version that served that day."""
    rows = [
        {"date": pd.Timestamp(d.date), "kind": kind, "series": SERIES[kind], "rmse": value,
         "version": d.version, "movies": d.count}
        for d in days
        for kind, value in (("live", d.rmse), ("recipe", d.recipe_rmse), ("validation", d.validation_rmse))
        if value is not None
    ]  # fmt: skip
    return pd.DataFrame(rows, columns=["date", "kind", "series", "rmse", "version", "movies"])


def live_chart(frame: pd.DataFrame) -> alt.Chart:
    """RMSE on new movies by day: production's live error against its validation RMSE (dashed) and the recipe.

    One line per series, not per version: a version serves a day or a few, so per-version lines would be
    dots; the version of each day is in the tooltip.
    """
    order = list(SERIES.values())
    return (
        alt.Chart(frame, title="RMSE on new movies, by day (lower is better)", height=280)
        .mark_line(point=True)
        .encode(
            x=alt.X("date:T", title="day", axis=alt.Axis(format="%b %d", tickCount="day")),
            y=alt.Y("rmse:Q", title="RMSE (rating points)", scale=alt.Scale(zero=False, nice=True)),
            color=alt.Color("series:N", title=None, sort=order, legend=alt.Legend(orient="bottom", labelLimit=300)),
            strokeDash=alt.StrokeDash(
                "series:N", sort=order, legend=None,
                scale=alt.Scale(domain=order, range=[[1, 0], [2, 2], [6, 4]]),
            ),
            tooltip=["date:T", "series:N", alt.Tooltip("rmse:Q", format=".3f"), "version:N", "movies:Q"],
        )
    )  # fmt: skip


def drift_rows(days: Sequence[DriftDay], limit: int = 14) -> pd.DataFrame:
    """The newest days' drift verdicts as a table."""
    rows = [
        {
            "day": d.date,
            "compared": d.comparison,
            "rows": d.rows,
            "drifted share": f"{d.share:.0%}" if d.share is not None else "–",
            "drifted features": ", ".join(d.drifted)
            if d.drifted
            else ("none" if d.share is not None else d.status),
        }
        for d in sorted(days, key=lambda d: (d.date, d.comparison), reverse=True)
    ]
    return pd.DataFrame(
        rows[:limit], columns=["day", "compared", "rows", "drifted share", "drifted features"]
    )


def report_url(api_url: str, day: DriftDay) -> str:
    """Where the browser opens a day's Evidently report (served by the API)."""
    return f"{api_url.rstrip('/')}/model/monitoring/drift/{day.date}?comparison={day.comparison}"


def empty_text() -> str:
    """What produces monitoring reports, for when there are none yet."""
    return (
        "**No monitoring reports yet.** Each pipeline run scores the day's new movies with the production "
        "model and compares the day's `/predict` requests with its training data. Run the pipeline on a "
        "few days (`./scripts/pipeline.sh`, or `./scripts/simulate.sh`) to see live RMSE here."
    )
