"""The Models page's rating shadow: a challenger rating model scored beside production on live traffic.

Its predictions are logged, never returned; each day's new labelled movies (that neither version saw in
training) score both versions (services/train/experiments/shadow.py). Promoting it is a person's call,
made on this record: the daily run never moves the rating model's pointer on a shadow.
"""

from __future__ import annotations

from collections.abc import Sequence

import pandas as pd
import streamlit as st

from services.ui.api.experiments import Running, ShadowDay

PROMOTE_HINT = "./scripts/registry.sh promote rating"
ROLLBACK_HINT = "./scripts/registry.sh rollback rating"


def _rmse(value: float | None) -> str:
    return "–" if value is None else f"{value:.3f}"


def _signed(value: float | None) -> str:
    return "–" if value is None else f"{value:+.3f}".replace("-", "−")


def day_rows(days: Sequence[ShadowDay]) -> pd.DataFrame:
    """One row per scored day, oldest first: movies, both RMSEs and the paired difference."""
    rows = [
        {
            "data day": d.date,
            "new labelled movies": d.movies,
            "production RMSE": _rmse(d.rmse.get("production")),
            "shadow RMSE": _rmse(d.rmse.get("shadow")),
            "difference (95%)": "–"
            if d.difference is None
            else f"{_signed(d.difference.estimate)} [{_signed(d.difference.low)}, {_signed(d.difference.high)}]",
            "status": d.status,
        }
        for d in days
    ]
    columns = [
        "data day",
        "new labelled movies",
        "production RMSE",
        "shadow RMSE",
        "difference (95%)",
        "status",
    ]
    return pd.DataFrame(rows, columns=columns)


def show(running: Running) -> None:
    """A running shadow: what it is, its errors so far beside production's, and how to decide it."""
    version = running.experiment.version
    st.info(
        f"**In shadow.** `{version}` scores every /predict request beside production; its answers are logged, "
        "never returned. Each day's new labelled movies score both. Deciding is yours, on this record: "
        f"`{PROMOTE_HINT}` makes it production, `{ROLLBACK_HINT}` drops it.",
        icon="👥",
    )
    if not running.shadow_days:
        st.caption("No day scored yet: the daily run scores it on the day's new labelled movies.")
        return
    latest = running.shadow_days[-1]
    cards = st.columns(3)
    cards[0].metric("Days in shadow", f"{latest.days_running}", border=True)
    cards[1].metric("Movies scored", f"{latest.window_movies:,}", border=True,
                    help="New labelled movies neither version saw in training, over the shadow's days")  # fmt: skip
    cards[2].metric(
        "RMSE so far (production / shadow)",
        f"{_rmse(latest.window_rmse.get('production'))} / {_rmse(latest.window_rmse.get('shadow'))}",
        border=True,
        help="Pooled over every scored movie since the shadow started (lower is better)",
    )
    st.dataframe(day_rows(running.shadow_days), hide_index=True, width="stretch")
    st.caption(
        "**difference (95%)**: shadow − production RMSE on the same movies that day (below 0: the shadow errs "
        "less), with a bootstrap interval over movies (none under 20 movies)."
    )
