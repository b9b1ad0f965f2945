"""The weekly search DAG imports cleanly, runs weekly, and wires pick_split -> tune_* -> publish."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from services.core.settings import Settings
from services.core.storage import ObjectStore
from services.train import raw_store
from services.train.context import Context
from services.train.rating import steps
from services.train.rating.data import first_run_rows
from services.train.rating.tuning import store as tuning_store
from tests.pg_cluster import throwaway_postgres

ROOT = Path(__file__).resolve().parents[2]
AIRFLOW = str(Path(sys.executable).parent / "airflow")
DAY = "2026-12-05"


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
    # What TUNE_ALGORITHMS leaves out is skipped; the rest is still published, but never after a failure.
    assert t["publish"].trigger_rule == "none_failed_min_one_success"
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


@pytest.fixture(scope="module")
def airflow_home(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A migrated Airflow home on SQLite for `airflow dags test`."""
    home = tmp_path_factory.mktemp("airflow-tune")
    env = {**os.environ, "AIRFLOW_HOME": str(home), "AIRFLOW__CORE__LOAD_EXAMPLES": "False"}
    subprocess.run([AIRFLOW, "db", "migrate"], env=env, check=True, capture_output=True, timeout=300)
    return home


@pytest.fixture(scope="module")
def postgres_url() -> Iterator[str]:
    """A throw-away PostgreSQL cluster on loopback (tests/pg_cluster.py)."""
    with throwaway_postgres() as url:
        yield url


@pytest.mark.integration
@pytest.mark.parametrize("storage", ["sqlite", "postgresql"])
def test_the_dag_runs_the_search_with_either_storage(
    storage: str, request: pytest.FixtureRequest, s3_settings: Settings, airflow_home: Path, tmp_path: Path
) -> None:
    store = ObjectStore.from_settings(s3_settings)
    key = f"curated/dt={DAY}/movies.jsonl.gz"
    raw_store.write_jsonl(store, key, first_run_rows(ROOT / "data" / "snapshot", 0, 10)[::16])
    steps.build_features(Context.from_settings(s3_settings), DAY, key, [])
    env = {
        **{k: v for k, v in os.environ.items() if k not in ("OPTUNA_STORAGE_URL", "WANDB_API_KEY")},
        "AIRFLOW_HOME": str(airflow_home),
        "AIRFLOW__CORE__DAGS_FOLDER": str(ROOT / "dags"),
        "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
        "S3_ENDPOINT_URL": str(s3_settings.s3_endpoint_url),
        "S3_BUCKET": s3_settings.s3_bucket,
        "AWS_ACCESS_KEY_ID": s3_settings.aws_access_key_id.get_secret_value(),  # type: ignore[union-attr]
        "AWS_SECRET_ACCESS_KEY": s3_settings.aws_secret_access_key.get_secret_value(),  # type: ignore[union-attr]
        "WANDB_MODE": "disabled",
        "TUNE_TRIALS": "2",
        "TUNE_TIMEOUT_S": "60",
        "TUNE_SQLITE_PATH": str(tmp_path / "optuna.db"),
        "PYTHONPATH": str(ROOT),
    }
    expected = {"xgboost", "lightgbm", "random_forest"}
    if storage == "postgresql":
        env["OPTUNA_STORAGE_URL"] = request.getfixturevalue("postgres_url")
        # And a narrower TUNE_ALGORITHMS: random_forest's task is skipped, the other two still published.
        env["TUNE_ALGORITHMS"] = "xgboost,lightgbm"
        expected = {"xgboost", "lightgbm"}
    proc = subprocess.run([AIRFLOW, "dags", "test", "rating_tune", "2026-12-06"], env=env, cwd=ROOT,
                          capture_output=True, text=True, timeout=600)  # fmt: skip
    assert proc.returncode == 0, (proc.stdout + proc.stderr)[-4000:]
    latest = tuning_store.read_latest(store)
    assert latest is not None and latest["key"] == f"tuning/rating/dt={DAY}/best.json"
    assert set(latest["algorithms"]) == expected
    for entry in latest["algorithms"].values():
        assert entry["storage"] == storage and entry["trials_run"] == 2
    assert (tmp_path / "optuna.db").exists() == (storage == "sqlite")
