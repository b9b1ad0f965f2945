"""
### Movie intelligence: the daily training pipeline

collect → validate → build features → train (XGBoost, LightGBM, random forest, mean baseline, and
the sequential recommender, in parallel) → select and publish the rating model → notify serving.
Alongside: collect_feedback curates the app's feedback of the day, which the recommender trains on
and evaluate_online joins with the day's impressions. Before anything is published, evaluate_live
scores the day's new movies with the production rating model and monitor runs the drift reports;
alert then fails (and calls the webhook) when the day is bad, without holding training back.

Each task is idempotent for its logical date and exchanges S3 keys through XCom, never data.
The work itself lives in `services/train/steps.py`; this file only wires it (and imports nothing
heavy at parse time).
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pendulum
from airflow.providers.standard.operators.empty import EmptyOperator
from airflow.sdk import dag, get_current_context, task

RATING_ALGORITHMS = ("xgboost", "lightgbm", "random_forest", "mean")


def _logical_date() -> str:
    """The run's date: its logical date, or the day it runs for manual runs that have none."""
    ctx = get_current_context()
    when = ctx.get("logical_date") or ctx["dag_run"].run_after
    return when.strftime("%Y-%m-%d")


def _ctx() -> Any:
    from services.train.context import Context

    return Context.from_env()


@dag(
    dag_id="movie_pipeline",
    schedule="@daily",
    start_date=pendulum.datetime(2026, 11, 1, tz="UTC"),
    catchup=False,
    max_active_runs=1,
    default_args={"retries": 2, "retry_delay": timedelta(seconds=30), "retry_exponential_backoff": True},
    tags=["movies", "training"],
    doc_md=__doc__,
)
def movie_pipeline() -> None:
    """The daily training DAG."""

    @task
    def collect() -> dict[str, Any]:
        """Today's ~100 movies from TMDB (or the bundled snapshot) into a raw S3 partition."""
        from services.train import steps

        return steps.collect(_ctx(), _logical_date())

    @task
    def validate(collected: dict[str, Any]) -> dict[str, Any]:
        """Schema and range checks; bad rows quarantined with their reason."""
        from services.train import steps

        return steps.validate_step(_ctx(), _logical_date())

    @task
    def build_features(validated: dict[str, Any]) -> dict[str, Any]:
        """Time-respecting split, encoders fitted on train only, leak guard, feature matrices."""
        from services.train import steps

        return steps.build_features(_ctx(), _logical_date(), validated["curated"], validated["partitions"])

    @task
    def train_rating(features: dict[str, Any], algorithm: str) -> dict[str, Any]:
        """One rating candidate, tracked in W&B."""
        from services.train import steps

        return steps.train_rating(_ctx(), _logical_date(), features, algorithm)

    @task
    def collect_feedback() -> dict[str, Any]:
        """The day's app feedback: deduplicated, checked, curated; bad rows quarantined."""
        from services.train.feedback import collect_feedback

        return collect_feedback(_ctx().store, _logical_date())

    @task
    def train_recommender(validated: dict[str, Any], feedback: dict[str, Any]) -> dict[str, Any]:
        """Baselines and the torch sequential recommender; publishes the winner under `recommender`."""
        from services.train.feedback import load_curated_feedback
        from services.train.raw_store import read_jsonl
        from services.train.recommender.task import run_recommender_task

        ctx, date = _ctx(), _logical_date()
        return run_recommender_task(
            ctx.settings, ctx.registry, ctx.tracker,
            logical_date=date, max_epochs=ctx.settings.recommender_max_epochs,
            feedback=load_curated_feedback(ctx.store, date),
            collected=read_jsonl(ctx.store, validated["curated"]),
        )  # fmt: skip

    @task
    def evaluate_online(feedback: dict[str, Any]) -> dict[str, Any]:
        """Hit rate, MRR and coverage of each recommender version on the day's impressions."""
        from services.train.online_eval import evaluate_online

        ctx = _ctx()
        return evaluate_online(ctx.store, ctx.tracker, _logical_date())

    @task
    def evaluate_live(validated: dict[str, Any]) -> dict[str, Any]:
        """Production rating model's RMSE and MAE on the day's new labelled movies (and the recipe's)."""
        from services.train.live_eval import evaluate_live

        return evaluate_live(_ctx(), _logical_date())

    @task
    def monitor(validated: dict[str, Any]) -> dict[str, Any]:
        """Evidently drift reports: the day's /predict inputs and new movies against the training features."""
        from services.train.monitor import monitor

        return monitor(_ctx(), _logical_date())

    @task(retries=0, trigger_rule="all_done")
    def alert() -> dict[str, Any]:
        """Fails, and posts to ALERT_WEBHOOK_URL, when live error or drift passes its threshold."""
        from airflow.exceptions import AirflowFailException

        from services.train.alerts import AlertRaised, raise_alerts

        ctx = _ctx()
        try:
            return raise_alerts(ctx.store, ctx.settings, _logical_date())
        except AlertRaised as exc:
            raise AirflowFailException(f"bad day: {exc}") from exc

    @task
    def select_and_publish(features: dict[str, Any], candidates: list[dict[str, Any]]) -> dict[str, Any]:
        """Pick the challenger, compare with production on the same rows, publish, maybe promote."""
        from services.train import steps

        return steps.select_and_publish(_ctx(), _logical_date(), features, candidates)

    @task
    def notify_serving(rating: dict[str, Any], recommender: dict[str, Any]) -> dict[str, Any]:
        """POST /admin/reload to the API when SERVE_URL is set."""
        from services.train import steps

        return steps.notify_serving(_ctx(), [rating, recommender])

    collected = collect()
    validated = validate(collected)
    features = build_features(validated)
    candidates = [
        train_rating.override(task_id=f"train_{algorithm}")(features, algorithm)
        for algorithm in RATING_ALGORITHMS
    ]
    feedback = collect_feedback()
    recommender = train_recommender(validated, feedback)
    evaluate_online(feedback)
    # Monitoring judges yesterday's production model, so it finishes before anything is published; its
    # failure holds nothing back (all_done), and alert's failure only colours the run.
    watched = [evaluate_live(validated), monitor(validated)]
    monitored = EmptyOperator(task_id="monitoring_done", trigger_rule="all_done")
    watched >> monitored
    watched >> alert()
    rating = select_and_publish(features, candidates)
    monitored >> rating
    notify_serving(rating, recommender)


movie_pipeline()
