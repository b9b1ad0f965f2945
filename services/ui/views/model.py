"""Models: the production version of each model, its metrics, when it was trained, and its history."""

import streamlit as st

from services.core.settings import get_settings
from services.ui import components, data, errors_view, experiments_view, monitoring_view, online_view
from services.ui.api.records import ApiError, HistoryPoint
from services.ui.metric_labels import MetricCard, card_layout, metric_label, rest_title
from services.ui.models_view import MODEL_TITLES, SOURCES, model_order, wandb_markdown

st.title("📈 Models in production")
st.caption("What the API serves right now, and how each model's metrics moved from version to version.")

with st.spinner("Reading the models…"):
    models = data.api().models()
    history = data.api().history()

if isinstance(models, ApiError):
    components.show_error(models)
    st.stop()
if not models:
    components.show_error(ApiError("not_ready", "The API serves no model yet."))
    st.stop()

if history is None or isinstance(history, ApiError):
    history_points = [
        HistoryPoint(m.name, m.version, m.metrics, m.created_at, production=True)
        for m in models.values()
        if m.version
    ]
    history_note = "The API does not publish the registry's history, so only the production version is shown."
else:
    history_points = history
    history_note = ""


def metric_cards(cards: list[MetricCard]) -> None:
    """Metric cards four to a row (wider rows cut labels and values off), a short row at the same width."""
    for start in range(0, len(cards), 4):
        row = cards[start : start + 4]
        for column, card in zip(st.columns(4), row, strict=False):
            column.metric(card.label, card.value, help=card.help, border=True)


for name in model_order(models):
    info = models[name]
    st.header(MODEL_TITLES.get(name, name.capitalize()), divider="gray")
    if not info.version:
        st.warning("No production version is loaded for this model yet.", icon="⏳")
        continue
    if info.metrics:
        headline, rest = card_layout(info.metrics)
        metric_cards(headline)
        if rest:
            with st.expander(rest_title(rest)):
                for row in rest:
                    metric_cards(row)
    else:
        st.caption("No metrics recorded for this version.")
    details, chart = st.columns([1, 1.6], gap="large")
    with details:
        st.markdown(
            f"**Version** `{info.version}`  \n"
            f"**Trained** {components.when(info.created_at)}  \n"
            f"**Algorithm** {info.algorithm or 'unknown'}  \n"
            f"**W&B run** {wandb_markdown(info.wandb_run)}  \n"
            f"**Loaded from** {SOURCES.get(info.source or '', info.source or 'unknown')}"
        )
    with chart:
        points = [p for p in history_points if p.model == name]
        metrics = list(dict.fromkeys(m for p in points for m in p.metrics))
        if not metrics:
            st.info("History not available for this model.")
            continue
        metric = st.selectbox("Metric", metrics, format_func=metric_label, key=f"metric-{name}")
        frame = components.history_frame(points, metric)
        st.altair_chart(components.history_chart(frame, metric_label(metric)), width="stretch")
        if history_note:
            st.caption(history_note)

st.header("🔁 Recommender online", divider="gray")
st.caption("How the recommendations landed with the people who saw them, day by day.")
online = data.api().online(days=30)
if isinstance(online, ApiError):
    st.warning(online_view.unavailable_text(online), icon="⏳")
elif not any(day.versions for day in online):
    st.info(online_view.empty_text(), icon="🌱")
else:
    frame = online_view.online_frame(online)
    versions = list(dict.fromkeys(frame["version"]))
    st.caption(online_view.latest_summary(online[-1]))
    for row in (("hit_rate", "mrr"), ("coverage", "fallback_share")):
        for column, metric in zip(st.columns(2, gap="large"), row, strict=True):
            column.altair_chart(online_view.online_chart(frame, metric, versions), width="stretch")
    st.caption(online_view.metrics_caption(online[-1].window_minutes))

st.header("🧪 Experiments", divider="gray")
st.caption("A candidate recommender serves a share of users until what they did with it decides its fate.")
experiments_view.show(data.api().experiments())

st.header("🩺 Monitoring", divider="gray")
st.caption(
    "How the production rating model does on movies it never saw (each day's new releases, whose ratings "
    "are known), and whether what people ask about still looks like what it learned from."
)
monitoring = data.api().monitoring(days=30)
if isinstance(monitoring, ApiError):
    st.warning(f"The monitoring reports cannot be read right now: {monitoring.message}", icon="⏳")
elif not monitoring.live and not monitoring.drift:
    st.info(monitoring_view.empty_text(), icon="🌱")
else:
    for day, reasons in monitoring.alerts[-3:]:
        st.error(f"**Alert on {day}**: " + "; ".join(reasons), icon="🚨")
    judged = [d for d in monitoring.live if d.rmse is not None]
    if judged:
        latest = judged[-1]
        cards = st.columns(4)
        cards[0].metric(
            "Live RMSE (latest day)",
            f"{latest.rmse:.2f}",
            border=True,
            help=f"{latest.count} new labelled movies on {latest.date}, version {latest.version}",
        )
        cards[1].metric(
            "Live RMSE (7 days)", f"{latest.window_rmse:.2f}" if latest.window_rmse else "–", border=True
        )
        cards[2].metric(
            "Validation RMSE",
            f"{latest.validation_rmse:.2f}" if latest.validation_rmse else "–",
            border=True,
            help="Measured when the version was trained, on releases it did not learn from",
        )
        cards[3].metric(
            "Recipe (latest day)",
            f"{latest.recipe_rmse:.2f}" if latest.recipe_rmse else "–",
            border=True,
            help="The five-feature XGBoost on the same movies: is it the model or the day?",
        )
        frame = monitoring_view.live_frame(judged)
        st.altair_chart(monitoring_view.live_chart(frame), width="stretch")
    else:
        st.caption("No day has had new labelled movies to judge the production model on yet.")
    if monitoring.drift:
        st.subheader("Drift (Evidently)")
        st.dataframe(monitoring_view.drift_rows(monitoring.drift), hide_index=True, width="stretch")
        settings = get_settings()
        public = settings.api_public_url or settings.api_url
        links = [d for d in reversed(monitoring.drift) if d.has_report][:4]
        if links:
            st.markdown(
                "Open a report: "
                + " · ".join(
                    f"[{d.date} {d.comparison}]({monitoring_view.report_url(public, d)})" for d in links
                )
            )
        st.caption(
            "Each feature of the fields every request carries is compared with the production model's training "
            "data, on a seeded sample of at most 5,000 rows a side: it drifted when Evidently's distance "
            "(normed Wasserstein for numbers, Jensen-Shannon for categories) is at least 0.1 and the shift is "
            "also significant (KS / chi-square, p < 0.05), so a verdict means the same on a quiet or busy day."
        )

st.header("🔎 Where the rating model errs", divider="gray")
report = data.api().errors()
if isinstance(report, ApiError):
    st.warning(f"The error analysis cannot be read right now: {report.message}", icon="⏳")
elif report is None or not report.dimensions:
    st.info(errors_view.empty_text(), icon="🌱")
else:
    st.caption(errors_view.summary_text(report))
    dimension = st.selectbox(
        "Band the errors by",
        list(report.dimensions),
        format_func=lambda key: report.dimensions[key][0],
        key="errors-dimension",
    )
    title = report.dimensions[dimension][0].split(" (")[0]
    frame = errors_view.band_frame(report, dimension)
    for column, metric in zip(st.columns(2, gap="large"), errors_view.METRICS, strict=True):
        column.altair_chart(errors_view.band_chart(frame, metric, title), width="stretch")
