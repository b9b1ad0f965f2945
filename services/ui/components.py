"""Reusable pieces of the pages: friendly errors, movie cards with poster placeholders, charts."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import UTC, datetime

import altair as alt
import pandas as pd
import streamlit as st

from services.ui.api.records import ApiError, HistoryPoint, Prediction, Readiness

API_START_HINT = "./scripts/serve.sh"
TRAIN_HINT = "./scripts/pipeline.sh"
UP_COLOUR = "#2e9e5b"
DOWN_COLOUR = "#d64545"

FEATURE_LABELS = {
    "runtime": "Runtime",
    "overview_polarity": "Overview mood",
    "overview_subjectivity": "Overview subjectivity",
    "overview_length": "Overview length",
    "overview_words": "Overview word count",
    "tagline_length": "Tagline length",
    "title_length": "Title length",
    "main_genre": "Main genre",
    "n_genres": "Number of genres",
    "original_language": "Original language",
    "is_english": "English-language",
    "release_year": "Release year",
    "release_month": "Release month",
    "log_budget": "Budget",
    "in_collection": "Part of a collection",
    "n_companies": "Number of companies",
    "n_countries": "Number of countries",
    "n_spoken_languages": "Spoken languages",
    "text_signal": "Wording of title, tagline and overview",
    "genre_track_record": "Genres' track record",
    "language_track_record": "Language's track record",
    "country_track_record": "Countries' track record",
    "company_track_record": "Studios' track record",
    "collection_track_record": "Collection's track record",
}
PREFIX_LABELS = {"genre": "Genre", "country": "Country", "company": "Company", "language": "Language"}


# --- errors -----------------------------------------------------------------------------------------
def show_error(error: ApiError) -> None:
    """Explain an API failure and what to run about it; never raises."""
    if error.kind == "down":
        st.error(
            f"**The movie API is not reachable.** {error.message}\n\n"
            f"Start it with `{API_START_HINT}` (or point `API_URL` at a running one), then try again.",
            icon="🔌",
        )
    elif error.kind == "not_ready":
        hint = (
            ""
            if TRAIN_HINT in error.message
            else f"\n\nIt needs a published model: run the training pipeline (`{TRAIN_HINT}`), "
            "then reload the API (`POST /admin/reload`) or restart it."
        )
        st.warning(f"**The API is up but not ready yet:** {error.message}{hint}", icon="⏳")
    elif error.kind == "invalid":
        lines = "\n".join(f"- {p}" for p in error.problems) or "- (no details given)"
        st.error(f"**Please check these fields:**\n\n{lines}", icon="✏️")
    else:
        st.error(f"**Something went wrong talking to the API.** {error.message}", icon="⚠️")


def api_status_banner(status: Readiness | ApiError) -> bool:
    """Warn up front when the API is down or has no model; True when it is ready."""
    if isinstance(status, ApiError):
        show_error(status)
        return False
    if not status.ready:
        show_error(ApiError("not_ready", status.detail or "no model loaded"))
        return False
    return True


# --- contributions chart --------------------------------------------------------------------------
def feature_label(name: str) -> str:
    """A reader's name for a model feature: 'genre=Drama' becomes 'Genre: Drama'."""
    if "=" in name:
        prefix, _, value = name.partition("=")
        return f"{PREFIX_LABELS.get(prefix, prefix.replace('_', ' ').capitalize())}: {value}"
    return FEATURE_LABELS.get(name, name.replace("_", " ").capitalize())


def contribution_frame(contributions: Mapping[str, float], top: int = 12) -> pd.DataFrame:
    """The top features by size of effect, largest first, with a readable label and direction."""
    ranked = sorted(((n, v) for n, v in contributions.items() if abs(v) > 1e-9), key=lambda kv: -abs(kv[1]))[
        :top
    ]
    return pd.DataFrame(
        {
            "feature": [feature_label(n) for n, _ in ranked],
            "effect": [round(v, 4) for _, v in ranked],
            "direction": ["Pushes up" if v > 0 else "Pushes down" for _, v in ranked],
        }
    )


def contributions_chart(frame: pd.DataFrame) -> alt.LayerChart:
    """Horizontal bars of what pushed the estimate up (green) or down (red)."""
    bars = (
        alt.Chart(frame)
        .mark_bar(cornerRadius=3)
        .encode(
            x=alt.X("effect:Q", title="Effect on the predicted rating (points out of 10)"),
            y=alt.Y("feature:N", sort=list(frame["feature"]), title=None, axis=alt.Axis(labelLimit=220)),
            color=alt.Color(
                "direction:N",
                scale=alt.Scale(domain=["Pushes up", "Pushes down"], range=[UP_COLOUR, DOWN_COLOUR]),
                legend=alt.Legend(orient="bottom", title=None),
            ),
            tooltip=[alt.Tooltip("feature:N", title="Feature"), alt.Tooltip("effect:Q", format="+.3f")],
        )
    )
    zero = alt.Chart(pd.DataFrame({"x": [0]})).mark_rule(color="#888").encode(x="x:Q")
    # The height includes the axis and legend (autosize "fit"): about 30 px a bar keeps every label.
    return alt.layer(bars, zero).properties(height=110 + 30 * len(frame))


# --- history chart ----------------------------------------------------------------------------------
def history_frame(points: Sequence[HistoryPoint], metric: str) -> pd.DataFrame:
    """One row per version that has the metric, oldest first."""
    rows = [
        {
            "version": p.version,
            "trained": _parse_time(p.created_at),
            "value": p.metrics[metric],
            "status": "production" if p.production else "other version",
        }
        for p in points
        if metric in p.metrics
    ]
    frame = pd.DataFrame(rows, columns=["version", "trained", "value", "status"])
    return frame.sort_values("version").reset_index(drop=True)


def history_chart(frame: pd.DataFrame, metric_title: str) -> alt.LayerChart:
    """The metric by version (placed by training time when known), the production version highlighted."""
    if len(frame) and frame["trained"].notna().all():
        span = frame["trained"].max() - frame["trained"].min()
        fmt = "%b %d" if span >= pd.Timedelta(days=3) else "%b %d %H:%M"
        x = alt.X(
            "trained:T",
            title="Trained",
            axis=alt.Axis(format=fmt, labelAngle=0, tickCount=min(len(frame), 6)),
        )
    else:
        x = alt.X("version:N", sort=list(frame["version"]), title="Version", axis=alt.Axis(labelLimit=140))
    base = alt.Chart(frame).encode(
        x=x,
        y=alt.Y("value:Q", title=metric_title, scale=alt.Scale(zero=False)),
        tooltip=[
            alt.Tooltip("version:N", title="Version"),
            alt.Tooltip("trained:T", title="Trained", format="%Y-%m-%d %H:%M"),
            alt.Tooltip("value:Q", title=metric_title, format=".4f"),
            alt.Tooltip("status:N", title="Status"),
        ],
    )
    line = base.mark_line(color="#8aa1c1")
    dots = base.mark_point(filled=True, size=90, opacity=1).encode(
        color=alt.Color(
            "status:N",
            scale=alt.Scale(domain=["production", "other version"], range=["#e4572e", "#4c78a8"]),
            legend=alt.Legend(orient="bottom", title=None),
        )
    )
    return alt.layer(line, dots).properties(height=240)


# --- time -------------------------------------------------------------------------------------------
def _parse_time(value: str | None) -> datetime | None:
    if not value:
        return None
    try:
        parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return None
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)


def when(value: str | None, now: datetime | None = None) -> str:
    """'2025-11-21 10:14 UTC (3 hours ago)' for an ISO time; the raw text when it is not one."""
    parsed = _parse_time(value)
    if parsed is None:
        return value or "unknown"
    seconds = ((now or datetime.now(UTC)) - parsed).total_seconds()
    if seconds < 0:
        ago = "just now"
    elif seconds < 3600:
        ago = f"{int(seconds // 60)} min ago"
    elif seconds < 2 * 86400:
        ago = f"{int(seconds // 3600)} h ago"
    else:
        ago = f"{int(seconds // 86400)} days ago"
    return f"{parsed.astimezone(UTC):%Y-%m-%d %H:%M} UTC ({ago})"


# --- prediction -------------------------------------------------------------------------------------
def prediction_view(prediction: Prediction, top: int = 12) -> None:
    """The predicted rating, the overview's mood, translation, model version and the effects chart."""
    rating_col, mood_col, text_col = st.columns([1.2, 1, 1])
    rating_col.metric(
        "Predicted rating", f"{prediction.rating:.1f} / 10", border=True, help="TMDB-style average vote"
    )
    sentiment = prediction.sentiment
    mood_col.metric(
        "Overview mood",
        sentiment.label.capitalize(),
        delta=f"{sentiment.polarity:+.2f} polarity",
        delta_color="normal" if abs(sentiment.polarity) >= 0.05 else "off",
        border=True,
        help=f"Polarity from -1 (negative) to +1 (positive); subjectivity {sentiment.subjectivity:.2f}.",
    )
    text_col.metric(
        "Overview text",
        "Translated" if prediction.translated else "As written",
        delta="to English" if prediction.translated else None,
        delta_color="off",
        border=True,
        help="Overviews not in English are translated before the model reads them.",
    )
    st.caption(f"Model version `{prediction.model_version}`")
    for note in prediction.notes:
        st.info(note, icon="ℹ️")

    st.subheader("What pushed the estimate up or down")
    frame = contribution_frame(prediction.contributions, top)
    if frame.empty:
        st.info("The API did not explain this estimate.")
        return
    start = (
        f"It starts from {prediction.bias:.2f}, the average movie; " if prediction.bias is not None else ""
    )
    shown = min(top, len(frame))
    st.caption(
        f"{start}each bar is how many points one input added or took away "
        f"(the {shown} largest of {len(prediction.contributions)} inputs)."
    )
    st.altair_chart(contributions_chart(frame), width="stretch")
