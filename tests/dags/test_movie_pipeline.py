"""The DAG file imports cleanly, quickly, and wires the pipeline in the documented order."""

from __future__ import annotations

import subprocess
import sys
from datetime import timedelta
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def dagbag(tmp_path_factory: pytest.TempPathFactory):  # noqa: ANN201
    import os

    os.environ.setdefault("AIRFLOW_HOME", str(tmp_path_factory.mktemp("airflow")))
    os.environ["AIRFLOW__CORE__LOAD_EXAMPLES"] = "False"
    from airflow.dag_processing.dagbag import DagBag

    return DagBag(dag_folder=str(ROOT / "dags"))


def test_every_dag_imports_without_errors(dagbag) -> None:  # noqa: ANN001
    assert dagbag.import_errors == {}
    assert "movie_pipeline" in dagbag.dags


def test_pipeline_order_and_schedule(dagbag) -> None:  # noqa: ANN001
    dag = dagbag.dags["movie_pipeline"]
    # Daily at midnight UTC with a one-day data interval: the run fired at the end of day D carries D.
    timetable = dag.timetable
    assert (timetable.expression, timetable.interval, str(timetable.timezone)) == (
        "0 0 * * *",
        timedelta(days=1),
        "UTC",
    )
    assert dag.catchup is False
    t = dag.task_dict
    assert t["validate"].upstream_task_ids == {"collect"}
    assert t["build_features"].upstream_task_ids == {"validate"}
    trains = {"train_xgboost", "train_lightgbm", "train_random_forest", "train_mean"}
    # Publishing waits for the monitoring tasks (they judge yesterday's production), not for their success.
    assert t["select_and_publish"].upstream_task_ids == trains | {"build_features", "monitoring_done"}
    assert t["evaluate_live"].upstream_task_ids == {"validate"} == t["monitor"].upstream_task_ids
    assert t["monitoring_done"].upstream_task_ids == {"evaluate_live", "monitor"}
    assert t["monitoring_done"].trigger_rule == "all_done"
    # A bad day fails alert, once (never retried), and only after both reports exist.
    assert t["alert"].upstream_task_ids == {"evaluate_live", "monitor"}
    assert t["alert"].retries == 0 and t["alert"].trigger_rule == "all_done"
    assert t["alert"].downstream_task_ids == set()
    assert t["collect_feedback"].upstream_task_ids == set()
    # The canary is judged on the curated day before a new recommender may take its slot.
    assert t["judge_experiment"].upstream_task_ids == {"collect_feedback"}
    assert t["train_recommender"].upstream_task_ids == {"validate", "collect_feedback", "judge_experiment"}
    assert t["evaluate_online"].upstream_task_ids == {"collect_feedback"}
    # Batch serving ranks with what train_recommender left in production.
    assert t["precompute_recs"].upstream_task_ids == {"train_recommender"}
    assert t["precompute_recs"].downstream_task_ids == set()
    assert t["notify_serving"].upstream_task_ids == {
        "select_and_publish",
        "train_recommender",
        "judge_experiment",
    }
    assert all(task.retries >= 1 for task in dag.tasks if task.task_id not in ("alert", "monitoring_done"))


def test_parsing_the_dag_file_does_no_heavy_imports() -> None:
    code = (
        "import sys, runpy; runpy.run_path('dags/movie_pipeline.py');"
        "heavy = [m for m in ('xgboost', 'lightgbm', 'torch', 'wandb', 'boto3', 'pandas') if m in sys.modules];"
        "print(','.join(heavy))"
    )
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "", f"parse-time imports: {out.stdout}"
