"""The Models page's online section: how each recommender version's answers landed with people, by day."""

from __future__ import annotations

from collections.abc import Sequence

import altair as alt
import pandas as pd

from services.ui.api.loop import OnlineDay, OnlineVersion
from services.ui.api.records import ApiError

# metric -> (title, axis format); the shares are shown as percentages.
ONLINE_METRICS = {
    "hit_rate": ("Hit rate", ".0%"),
    "mrr": ("MRR", ".3f"),
    "coverage": ("Coverage", ".0%"),
    "fallback_share": ("Fallback share", ".0%"),
}
NO_VERSION = "none"  # what the evaluation calls responses served with no recommender loaded
NO_VERSION_LABEL = "no model (popular movies)"
SIMULATE_HINT = "./scripts/simulate.sh"
PIPELINE_HINT = "./scripts/pipeline.sh"


def empty_text() -> str:
    """What produces online metrics, for when there are none yet."""
    return (
        "**No online metrics yet.** They are computed from what people did with the recommendations: "
        f"use the recommendation page (👍 / 👎 / Seen it on the cards) or run `{SIMULATE_HINT}` to "
        f"simulate visitors, then run the pipeline (`{PIPELINE_HINT}`), which evaluates each day."
    )


def unavailable_text(error: ApiError) -> str:
    """Why the online metrics cannot be shown now."""
    if error.kind == "not_found":
        return "This API does not publish online metrics (it has no `GET /model/online`)."
    return f"The online metrics cannot be read right now: {error.message}"


def metrics_caption(window_minutes: int) -> str:
    """What each online metric means, in one paragraph."""
    return (
        f"**Hit rate**: share of responses where a shown movie got positive feedback (👍, seen it, or a "
        f"rating of 3.5 stars or more) within {window_minutes} minutes. **MRR**: the average of "
        "1 / position of the first such movie (0 when none), so it rewards putting it near the top. "
        "**Coverage**: share of the movies the version can recommend that it showed at least once that "
        "day. **Fallback share**: share of responses that fell back to popular movies instead of the "
        "model (no likes it knows, or no model loaded)."
    )


def latest_summary(day: OnlineDay) -> str:
    """The newest day's traffic in one line."""
    versions = len(day.versions)
    return (
        f"Latest day {day.date}: {day.impressions:,} responses shown, {day.feedback_events:,} feedback "
        f"events, {versions} version{'s' if versions != 1 else ''} answering."
    )


def online_frame(days: Sequence[OnlineDay]) -> pd.DataFrame:
    """One row per day, version and metric, oldest day first."""
    rows = [
        {
            "date": pd.Timestamp(day.date),
            "version": _label(version),
            "metric": metric,
            "value": float(getattr(version, metric)),
            "responses": version.responses,
        }
        for day in days
        for version in day.versions
        for metric in ONLINE_METRICS
    ]
    frame = pd.DataFrame(rows, columns=["date", "version", "metric", "value", "responses"])
    return frame.sort_values(["date", "version"], kind="stable").reset_index(drop=True)


def online_chart(frame: pd.DataFrame, metric: str, versions: Sequence[str]) -> alt.Chart:
    """One metric by day, a line per recommender version (one colour per version across the charts)."""
    title, fmt = ONLINE_METRICS[metric]
    rows = frame[frame["metric"] == metric].drop(columns="metric")
    return (
        alt.Chart(rows, title=title)
        .mark_line(point=alt.OverlayMarkDef(filled=True, size=60))
        .encode(
            x=alt.X("date:T", title=None, axis=alt.Axis(format="%b %d", labelAngle=0)),
            y=alt.Y("value:Q", title=None, axis=alt.Axis(format=fmt), scale=alt.Scale(zero=True)),
            color=alt.Color(
                "version:N",
                scale=alt.Scale(domain=list(versions), scheme="tableau10"),
                legend=alt.Legend(orient="top", title=None, labelLimit=260),
            ),
            tooltip=[
                alt.Tooltip("date:T", title="Day", format="%Y-%m-%d"),
                alt.Tooltip("version:N", title="Version"),
                alt.Tooltip("value:Q", title=title, format=fmt),
                alt.Tooltip("responses:Q", title="Responses", format=","),
            ],
        )
        .properties(height=300)  # with autosize "fit" this includes the axes and the legend
    )


def _label(version: OnlineVersion) -> str:
    name = NO_VERSION_LABEL if version.version == NO_VERSION else version.version
    return name if version.pool == "all" else f"{name} · new shelf"
