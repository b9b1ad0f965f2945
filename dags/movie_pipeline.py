"""
### Movie intelligence: the daily training pipeline

**Each run processes one data day: the day that has just ended.** The run the scheduler fires at
00:00 UTC on 2026-12-03 has the data interval 2026-12-02 → 2026-12-03 shown in the console, and every task reads and writes the partitions `dt=2026-12-02`: that day's TMDB
movies, feedback, impressions and /predict log. A run triggered by hand processes the day before it
was triggered; `./scripts/pipeline.sh --date D` runs data day D. Feedback and online evaluation also
re-curate the `RECURATION_DAYS` (3) days before the data day, so batches that reached S3 late count.

collect → validate → build features → train (XGBoost, LightGBM, random forest, mean baseline, and
the sequential recommender, in parallel) → select and publish the rating model → notify serving.
Alongside: collect_feedback curates the data day's feedback (and says which replicas may not have
flushed it yet, and drops erased users' events), which the recommender trains on and evaluate_online
joins with the impressions. precompute_recs then ranks every recently active user with the production
recommender and loads the lists into the online user store (batch serving).
judge_experiment then decides the running recommender canary on what its users did (promote, roll
back or keep it), before train_recommender, so a canary that ended today frees the slot for a new one.
Before anything is published, evaluate_live scores the day's new movies with the production rating
model and monitor runs the drift reports; alert then fails (and calls the webhook) when the day is
bad, without holding training back.

Each task is idempotent for its data day and exchanges S3 keys through XCom, never data.
The work itself lives in `services/train/`, one package per capability, each with a `steps.py` this
file calls as `steps.<task>(ctx, day, *inputs)`: `movies/` (collect, validate), `rating/` (features,
candidates, selection), `feedback/` (curation, online evaluation), `experiments/` (the judge),
`recommender/` (training, precompute) and `monitoring/` (live error, drift, alert); `notify.py`
reloads serving. This file only wires them (and imports nothing heavy at parse time).
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pendulum
from airflow.providers.standard.operators.empty import EmptyOperator
from airflow.sdk import CronTriggerTimetable, dag, get_current_context, task

RATING_ALGORITHMS = ("xgboost", "lightgbm", "random_forest", "mean")


def _data_day() -> str:
    """The day this run processes: its data interval's first day (services/train/schedule.py says why)."""
    from services.train.schedule import data_day

    ctx = get_current_context()
    return data_day(ctx.get("data_interval_start"), ctx["dag_run"].run_after)


def _ctx() -> Any:
    from services.train.context import Context

    return Context.from_env()


@dag(
    dag_id="movie_pipeline",
    # At 00:00 UTC, with a one-day data interval: the run fired at the end of day D carries D as its
    # data interval (plain "@daily" is a zero-length interval in Airflow 3, which hides the day).
    schedule=CronTriggerTimetable("0 0 * * *", timezone="UTC", interval=timedelta(days=1)),
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
        from services.train.movies import steps

        return steps.collect(_ctx(), _data_day())

    @task
    def validate(collected: dict[str, Any]) -> dict[str, Any]:
        """Schema and range checks; bad rows quarantined with their reason."""
        from services.train.movies import steps

        return steps.validate(_ctx(), _data_day())

    @task
    def build_features(validated: dict[str, Any]) -> dict[str, Any]:
        """Time-respecting split, encoders fitted on train only, leak guard, feature matrices."""
        from services.train.rating import steps

        return steps.build_features(_ctx(), _data_day(), validated["curated"], validated["partitions"])

    @task
    def train_rating(features: dict[str, Any], algorithm: str) -> dict[str, Any]:
        """One rating candidate, tracked in W&B."""
        from services.train.rating import steps

        return steps.train_rating(_ctx(), _data_day(), features, algorithm)

    @task
    def collect_feedback() -> dict[str, Any]:
        """The data day's app feedback (and the re-curation window's): deduplicated, checked, curated."""
        from services.train.feedback import steps

        return steps.collect_feedback(_ctx(), _data_day())

    @task
    def judge_experiment(feedback: dict[str, Any]) -> dict[str, Any]:
        """The running recommender canary judged per user from its start to the data day; report, then pointers."""
        from services.train.experiments import steps

        return steps.judge_experiment(_ctx(), _data_day())

    @task
    def train_recommender(validated: dict[str, Any], feedback: dict[str, Any]) -> dict[str, Any]:
        """Baselines and the torch sequential recommender; publishes the winner under `recommender`."""
        from services.train.recommender import steps

        return steps.train_recommender(_ctx(), _data_day(), validated)

    @task
    def precompute_recs(recommender: dict[str, Any]) -> dict[str, Any]:
        """Top-k for every user active in PRECOMPUTE_DAYS: to recs/dt=…/ on S3 and into the user store."""
        from services.train.recommender import steps

        return steps.precompute_recs(_ctx(), _data_day())

    @task
    def evaluate_online(feedback: dict[str, Any]) -> dict[str, Any]:
        """Hit rate, MRR and coverage of each recommender version on the day's impressions."""
        from services.train.feedback import steps

        return steps.evaluate_online(_ctx(), _data_day())

    @task
    def evaluate_live(validated: dict[str, Any]) -> dict[str, Any]:
        """Production rating model's RMSE and MAE on the day's new labelled movies (and the recipe's)."""
        from services.train.monitoring import steps

        return steps.evaluate_live(_ctx(), _data_day())

    @task
    def monitor(validated: dict[str, Any]) -> dict[str, Any]:
        """Evidently drift reports: the day's /predict inputs and new movies against the training features."""
        from services.train.monitoring import steps

        return steps.monitor(_ctx(), _data_day())

    @task(retries=0, trigger_rule="all_done")
    def alert() -> dict[str, Any]:
        """Fails, and posts to ALERT_WEBHOOK_URL, when live error or drift passes its threshold."""
        from airflow.exceptions import AirflowFailException

        from services.train.monitoring import steps
        from services.train.monitoring.alerts import AlertRaised

        try:
            return steps.alert(_ctx(), _data_day())
        except AlertRaised as exc:
            raise AirflowFailException(f"bad day: {exc}") from exc

    @task
    def select_and_publish(features: dict[str, Any], candidates: list[dict[str, Any]]) -> dict[str, Any]:
        """Pick the challenger, compare with production on the same rows, publish, maybe promote."""
        from services.train.rating import steps

        return steps.select_and_publish(_ctx(), _data_day(), features, candidates)

    @task
    def notify_serving(rating: dict[str, Any], recommender: dict[str, Any]) -> dict[str, Any]:
        """Reload every replica (SERVE_URL) whose /ready differs from the production pointers."""
        from services.train.notify import notify_serving as notify

        return notify(_ctx(), [rating, recommender])

    collected = collect()
    validated = validate(collected)
    features = build_features(validated)
    candidates = [
        train_rating.override(task_id=f"train_{algorithm}")(features, algorithm)
        for algorithm in RATING_ALGORITHMS
    ]
    feedback = collect_feedback()
    judged = judge_experiment(feedback)
    recommender = train_recommender(validated, feedback)
    judged >> recommender
    precompute_recs(recommender)  # with the version train_recommender left in production
    evaluate_online(feedback)
    # Monitoring judges yesterday's production model, so it finishes before anything is published; its
    # failure holds nothing back (all_done), and alert's failure only colours the run.
    watched = [evaluate_live(validated), monitor(validated)]
    monitored = EmptyOperator(task_id="monitoring_done", trigger_rule="all_done")
    watched >> monitored
    watched >> alert()
    rating = select_and_publish(features, candidates)
    monitored >> rating
    judged >> notify_serving(rating, recommender)


movie_pipeline()
