"""The Models page's experiments section: the running canary's arms, its interval day by day, the verdict.

Draws what services/ui/api/experiments.py read from GET /model/experiments. The difference of hit rate
(candidate − production) is shown in percentage points with its 95% interval per day, beside the −δ
non-inferiority line and zero, so one sees the interval narrow until it clears one of them.
"""

from __future__ import annotations

from collections.abc import Sequence

import altair as alt
import pandas as pd
import streamlit as st

from services.ui import shadow_view
from services.ui.api.experiments import Ended, ExperimentDay, Experiments, Interval, Rule, Running
from services.ui.api.records import ApiError
from services.ui.components import when

CANARY_HINT = "./scripts/registry.sh canary recommender <version>"
SIMULATE_HINT = "./scripts/simulate.sh --candidate better"
VERDICTS = {  # verdict -> (label, colour of its points)
    "promote": ("Promote", "#2e9e5b"),
    "rollback": ("Roll back", "#d64545"),
    "continue": ("Continue", "#4c78a8"),
}
OUTCOMES = {
    "promoted": "✅ promoted",
    "rolled_back": "↩️ rolled back",
    "inconclusive": "⌛ inconclusive (rolled back)",
    "aborted": "✋ aborted",
}
METRIC_TITLES = {"hit_rate": "hit rate", "mrr": "MRR"}
RECENT_COLUMNS = ["outcome", "model", "candidate", "against production", "difference (95%)", "users", "share",
                  "started", "ended", "reason"]  # fmt: skip


def empty_text() -> str:
    """What this section will show, and how to start an experiment, for when none ever ran."""
    return (
        "**No online experiment has run yet.** When a recommender that beats production offline becomes "
        "the candidate, or when you start one by hand (`" + CANARY_HINT + "`), its arms, the interval of "
        "the difference narrowing day by day and the verdict appear here; `" + SIMULATE_HINT + "` runs one "
        "on simulated users."
    )


def unavailable_text(error: ApiError) -> str:
    """Why the experiments cannot be shown now."""
    if error.kind == "not_found":
        return (
            "This API does not publish experiments (it has no `GET /model/experiments`): it predates "
            "the registry's candidates. Restart it on the current code to see them here."
        )
    return f"The experiments cannot be read right now: {error.message}"


def pts(value: float | None) -> str:
    """A difference of shares in signed percentage points: '+1.2 pts', '−0.4 pts'; '–' when unknown."""
    return "–" if value is None else f"{value * 100:+.1f} pts".replace("-", "−")


def rule_text(rule: Rule) -> str:
    """The decision rule in a few sentences (services/train/experiments/stats.py decides)."""
    metric = METRIC_TITLES.get(rule.metric, rule.metric)
    guard = METRIC_TITLES.get(rule.guard_metric, rule.guard_metric)
    return (
        f"With at least {rule.min_users:,} users in each arm, it is **rolled back** when the decision "
        f"interval of the {metric} or {guard} difference lies below 0, and **promoted** when both lower "
        f"bounds are above −{rule.delta * 100:.1f} pts (δ: no worse, within the margin). Failing errors or "
        f"latency roll it back at once; after {rule.max_days} days without a decision it is rolled back as "
        "inconclusive. The unit is the user: each one's share of answered recommendations since the start."
    )


def arm_rows(running: Running) -> pd.DataFrame:
    """One row per arm, with its figures from the latest daily report."""
    experiment, latest = running.experiment, running.days[-1] if running.days else None
    shares = {"production": 1.0 - experiment.share, "candidate": experiment.share}
    versions = {"production": experiment.production_version or "none", "candidate": experiment.version}
    rows = []
    for arm in ("production", "candidate"):
        figures = latest.arms.get(arm) if latest else None
        rows.append(
            {
                "arm": arm,
                "version": figures.version if figures else versions[arm],
                "share of users": f"{shares[arm]:.0%}",
                "users": figures.users if figures else 0,
                "recommendations shown": figures.impressions if figures else 0,
                "hit rate": f"{figures.hit_rate:.1%}" if figures and figures.hit_rate is not None else "–",
                "MRR": f"{figures.mrr:.3f}" if figures and figures.mrr is not None else "–",
            }
        )
    return pd.DataFrame(rows)


def interval_frame(days: Sequence[ExperimentDay], metric: str = "hit_rate") -> pd.DataFrame:
    """One row per daily report: the difference of metric in points, its 95% and decision intervals."""
    rows = []
    for day in days:
        diff = day.difference.get(metric)
        decision = day.decision.get(metric)
        if diff is None or diff.estimate is None:
            continue
        rows.append(
            {
                "day": day.days_running,
                "date": day.date,
                "estimate": diff.estimate * 100,
                "low": diff.low * 100 if diff.low is not None else None,
                "high": diff.high * 100 if diff.high is not None else None,
                "decision_low": decision.low * 100 if decision and decision.low is not None else None,
                "decision_high": decision.high * 100 if decision and decision.high is not None else None,
                "users_production": day.arms["production"].users if "production" in day.arms else 0,
                "users_candidate": day.arms["candidate"].users if "candidate" in day.arms else 0,
                "verdict": VERDICTS.get(day.verdict, (day.verdict, "#888888"))[0],
            }
        )
    columns = ["day", "date", "estimate", "low", "high", "decision_low", "decision_high",
               "users_production", "users_candidate", "verdict"]  # fmt: skip
    return pd.DataFrame(rows, columns=columns)


def interval_chart(frame: pd.DataFrame, rule: Rule, metric: str = "hit_rate") -> alt.LayerChart:
    """The estimate and its intervals per day of the experiment, with the −δ line and zero."""
    title = METRIC_TITLES.get(metric, metric)
    x = alt.X("day:O", title="Day of the experiment", scale=alt.Scale(domain=list(range(1, rule.max_days + 1))),
              axis=alt.Axis(labelAngle=0))  # fmt: skip
    y_title = f"Candidate − production, {title} (pts)"
    tooltip = [
        alt.Tooltip("date:N", title="Data day"),
        alt.Tooltip("estimate:Q", title="Difference (pts)", format="+.2f"),
        alt.Tooltip("low:Q", title="95% low", format="+.2f"),
        alt.Tooltip("high:Q", title="95% high", format="+.2f"),
        alt.Tooltip("users_production:Q", title="Users, production", format=","),
        alt.Tooltip("users_candidate:Q", title="Users, candidate", format=","),
        alt.Tooltip("verdict:N", title="Verdict"),
    ]
    base = alt.Chart(frame).encode(x=x)
    decision = base.mark_rule(color="#c7c7c7", strokeWidth=9, opacity=0.7).encode(
        y=alt.Y("decision_low:Q", title=y_title), y2="decision_high:Q"
    )
    interval = base.mark_rule(color="#4c78a8", strokeWidth=3).encode(y="low:Q", y2="high:Q", tooltip=tooltip)
    labels, colours = zip(*VERDICTS.values(), strict=True)
    points = base.mark_point(filled=True, size=90, opacity=1).encode(
        y="estimate:Q",
        color=alt.Color(
            "verdict:N",
            scale=alt.Scale(domain=list(labels), range=list(colours)),
            legend=alt.Legend(orient="top", title=None),
        ),
        tooltip=tooltip,
    )
    zero = alt.Chart(pd.DataFrame({"y": [0.0]})).mark_rule(color="#7f7f7f").encode(y="y:Q")
    margin = pd.DataFrame({"y": [-rule.delta * 100], "label": [f"−δ = −{rule.delta * 100:.1f} pts"]})
    guide = alt.Chart(margin).encode(y="y:Q")
    delta = guide.mark_rule(color="#d64545", strokeDash=[6, 4])
    text = guide.mark_text(align="right", dx=-4, dy=8, color="#d64545").encode(
        text="label:N", x=alt.value("width")
    )
    return alt.layer(decision, interval, points, zero, delta, text).properties(
        title=f"Difference of {title}, candidate − production, with its 95% interval", height=300
    )


def _interval_text(diff: Interval | None) -> str:
    """'−9.4 pts [−13.1, −5.6]': a difference with its 95% interval; '–' without one."""
    if diff is None or diff.estimate is None:
        return "–"
    bounds = (
        f" [{pts(diff.low)[:-4]}, {pts(diff.high)[:-4]}]"
        if diff.low is not None and diff.high is not None
        else ""
    )
    return pts(diff.estimate) + bounds


def recent_rows(recent: Sequence[Ended]) -> pd.DataFrame:
    """The recent experiments' ends, newest first: what was tried, how it ended, on what figures, and why."""
    rows = [
        {
            "outcome": OUTCOMES.get(end.outcome, end.outcome),
            "model": end.experiment.model,
            "candidate": end.experiment.version,
            "against production": end.experiment.production_version or "none",
            "difference (95%)": _interval_text(end.difference),
            "users": f"{end.users[0]:,} / {end.users[1]:,}" if end.users else "–",
            "share": f"{end.experiment.share:.0%}" if end.experiment.mode == "canary" else "shadow",
            "started": end.experiment.started_at[:16].replace("T", " "),
            "ended": end.ended_at[:16].replace("T", " "),
            "reason": end.reason,
        }
        for end in recent
    ]
    return pd.DataFrame(rows, columns=RECENT_COLUMNS)


def show(result: Experiments | ApiError) -> None:
    """The whole section: running experiments, then the recent ones; never raises on odd answers."""
    if isinstance(result, ApiError):
        st.warning(unavailable_text(result), icon="⏳")
        return
    if result.never_ran:
        st.info(empty_text(), icon="🌱")
        return
    if not result.running:
        st.caption(f"No experiment is running now. Start one with `{CANARY_HINT}`.")
    for running in result.running:
        _show_running(running)
    if result.recent:
        st.subheader("Recent experiments")
        reason = st.column_config.TextColumn(width="large")  # the why, not cut to a few words
        st.dataframe(
            recent_rows(result.recent), hide_index=True, width="stretch", column_config={"reason": reason}
        )
        st.caption(
            "**difference (95%)**: of the deciding metric (hit rate), candidate − production, on the day that "
            "decided, with its 95% interval; **users**: production / candidate by then."
        )


def _show_running(running: Running) -> None:
    experiment, rule = running.experiment, running.experiment.rule
    st.subheader(f"Running: {experiment.model} `{experiment.version}`")
    by = f" by {experiment.started_by}" if experiment.started_by else ""
    why = f" ({experiment.reason})" if experiment.reason else ""
    st.caption(f"Started {when(experiment.started_at)}{by}{why}, against production "
               f"`{experiment.production_version or 'none'}`.")  # fmt: skip
    if running.served is False:
        st.warning(
            "The API replica that answered serves production only: it has not loaded this candidate yet "
            "(it does at its next reload, `POST /admin/reload`), or the candidate failed to load (see its log).",
            icon="⚠️",
        )
    if experiment.mode == "shadow":
        shadow_view.show(running)
        return
    if not running.days:
        st.info(
            f"**No verdict yet.** {experiment.share:.0%} of users get the candidate; the next daily run "
            "judges it from what they did with its recommendations.",
            icon="⏳",
        )
        st.dataframe(arm_rows(running), hide_index=True, width="stretch")
        return
    latest = running.days[-1]
    diff = latest.difference.get(rule.metric)
    users = [latest.arms[a].users if a in latest.arms else 0 for a in ("production", "candidate")]
    cards = st.columns(4)
    cards[0].metric("Days running", f"{latest.days_running} of {rule.max_days}", border=True)
    cards[1].metric("Users per arm", f"{users[0]:,} / {users[1]:,}", border=True,
                    help=f"Production / candidate; at least {rule.min_users:,} in each before a promotion")  # fmt: skip
    cards[2].metric(
        f"Difference of {METRIC_TITLES.get(rule.metric, rule.metric)}",
        pts(diff.estimate if diff else None),
        border=True,
        help=f"95% interval [{pts(diff.low if diff else None)}, {pts(diff.high if diff else None)}]",
    )
    cards[3].metric("Verdict", VERDICTS.get(latest.verdict, (latest.verdict, ""))[0], border=True)
    box = {"promote": st.success, "rollback": st.error}.get(latest.verdict, st.info)
    label = VERDICTS.get(latest.verdict, (latest.verdict, ""))[0]
    interval = f" 95% interval [{pts(diff.low)}, {pts(diff.high)}]." if diff else ""
    reason = latest.reason.rstrip(".") + "." if latest.reason else ""
    box(f"**Verdict on {latest.date}: {label.lower()}.** {reason}{interval}")
    st.dataframe(arm_rows(running), hide_index=True, width="stretch")
    frame = interval_frame(running.days, rule.metric)
    if not frame.empty:
        st.altair_chart(interval_chart(frame, rule, rule.metric), width="stretch")
    st.caption(
        "Each day's point is the difference over all users seen since the start, with its 95% bootstrap "
        "interval (blue); the grey band is the wider interval the rule decides on, corrected for looking "
        f"every day. {rule_text(rule)}"
    )
