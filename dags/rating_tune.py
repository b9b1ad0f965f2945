"""
### Movie intelligence: the weekly hyperparameter search of the rating model

**Sundays at 03:00 UTC, or on demand** (`airflow dags trigger rating_tune`, `./scripts/tune.sh` outside
Airflow). It tunes the main hyperparameters of each algorithm in TUNE_ALGORITHMS (the others' tasks are
skipped) with Optuna (seeded TPE) on the most recent train/validation split that movie_pipeline's
build_features stored in S3; the test (time holdout) rows are never read. Budgets: TUNE_TRIALS trials
per algorithm and TUNE_TIMEOUT_S seconds for all of them together (default 600 s, an equal share each). Studies are kept in OPTUNA_STORAGE_URL (Postgres in the
production shape) or SQLite under var/ by default.

pick_split → tune_xgboost, tune_lightgbm, tune_random_forest (in parallel) → publish: best.json under
`tuning/rating/dt=<data day>/`, then the `tuning/rating/latest.json` pointer, which the daily
train tasks read. The daily DAG never searches, so its quiet-day rerun stays fast.
This file only wires `services/train/rating/tuning/steps.py` (and imports nothing heavy at parse time).
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pendulum
from airflow.sdk import CronTriggerTimetable, dag, task

TUNED_ALGORITHMS = ("xgboost", "lightgbm", "random_forest")


def _ctx() -> Any:
    from services.train.context import Context

    return Context.from_env()


@dag(
    dag_id="rating_tune",
    # Weekly, in the quiet hours after Saturday's daily run (00:00 UTC) has stored a fresh split.
    schedule=CronTriggerTimetable("0 3 * * 0", timezone="UTC"),
    start_date=pendulum.datetime(2026, 11, 1, tz="UTC"),
    catchup=False,
    max_active_runs=1,
    default_args={"retries": 1, "retry_delay": timedelta(minutes=1)},
    tags=["movies", "training", "tuning"],
    doc_md=__doc__,
)
def rating_tune() -> None:
    """The weekly search DAG."""

    @task
    def pick_split() -> str:
        """The data day whose stored train/val split every tune task searches on (the newest)."""
        from services.train.rating.tuning.steps import pick_split as pick

        return pick(_ctx())

    @task(execution_timeout=timedelta(minutes=30))
    def tune(data_day: str, algorithm: str) -> dict[str, Any]:
        """One algorithm's study within its share of the time budget; result to S3."""
        from airflow.exceptions import AirflowSkipException

        from services.train.rating.tuning.steps import algorithms_from, tune_algorithm

        ctx = _ctx()
        chosen = algorithms_from(ctx.settings.tune_algorithms)
        if algorithm not in chosen:
            raise AirflowSkipException(f"{algorithm} is not in TUNE_ALGORITHMS ({', '.join(chosen)})")
        return tune_algorithm(ctx, data_day, algorithm, timeout_s=ctx.settings.tune_timeout_s / len(chosen))

    # Publishes what was tuned when the others were skipped (TUNE_ALGORITHMS), never after a failure.
    @task(trigger_rule="none_failed_min_one_success")
    def publish(data_day: str, tuned: list[dict[str, Any] | None]) -> dict[str, Any]:
        """best.json of the data day, then the latest.json pointer daily training reads."""
        from services.train.rating.tuning.steps import publish_tuned

        return publish_tuned(_ctx(), data_day, [t for t in tuned if t])

    day = pick_split()
    tuned = [tune.override(task_id=f"tune_{algorithm}")(day, algorithm) for algorithm in TUNED_ALGORITHMS]
    publish(day, tuned)


rating_tune()
