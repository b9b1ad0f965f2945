"""The weekly search DAG imports cleanly, runs weekly, and wires pick_split -> tune_* -> publish."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def dagbag(tmp_path_factory: pytest.TempPathFactory):  # noqa: ANN201
    import os

    os.environ.setdefault("AIRFLOW_HOME", str(tmp_path_factory.mktemp("airflow")))
    os.environ["AIRFLOW__CORE__LOAD_EXAMPLES"] = "False"
    from airflow.dag_processing.dagbag import DagBag

    return DagBag(dag_folder=str(ROOT / "dags"))


def test_rating_tune_is_weekly_and_wired(dagbag) -> None:  # noqa: ANN001
    assert dagbag.import_errors == {}
    dag = dagbag.dags["rating_tune"]
    timetable = dag.timetable
    # Sundays 03:00 UTC: once a week, never caught up, one run at a time.
    assert (timetable.expression, str(timetable.timezone)) == ("0 3 * * 0", "UTC")
    assert dag.catchup is False and dag.max_active_runs == 1
    t = dag.task_dict
    tunes = {"tune_xgboost", "tune_lightgbm", "tune_random_forest"}
    assert set(t) == {"pick_split", "publish"} | tunes
    assert all(t[name].upstream_task_ids == {"pick_split"} for name in tunes)
    assert t["publish"].upstream_task_ids == tunes | {"pick_split"}
    # The daily DAG never searches: its train tasks only read the published parameters.
    assert not [n for n in dagbag.dags["movie_pipeline"].task_dict if "tune" in n]


def test_parsing_the_tune_dag_does_no_heavy_imports() -> None:
    code = (
        "import sys, runpy; runpy.run_path('dags/rating_tune.py');"
        "heavy = [m for m in ('optuna', 'xgboost', 'lightgbm', 'wandb', 'boto3', 'pandas')"
        " if m in sys.modules];"
        "print(','.join(heavy))"
    )
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "", f"parse-time imports: {out.stdout}"
