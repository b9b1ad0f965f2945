"""The whole-stack fixtures: the real DAG run for three days on the session's S3, and the real API on it."""

from __future__ import annotations

import os
import secrets
import sqlite3
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import pytest

from scripts.harness import processes
from services.core.embedded_s3 import EmbeddedS3
from services.core.settings import Settings
from services.train.schedule import logical_date_for
from tests.conftest import ROOT, SNAPSHOT


@dataclass
class PipelineRun:
    """A registry published by the real DAG (`airflow dags test`) on the session's S3 server."""

    settings: Settings
    env: dict[str, str]
    dates: list[str]
    logs: dict[str, str]
    app: dict[str, object]  # what the user did through the API between the first two days
    states: dict[str, dict[str, str]]  # task id -> final state, per date
    webhook: list[dict[str, object]]  # what the alert task POSTed to the stand-in webhook


def _airflow_env(server: EmbeddedS3, home: Path, bucket: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in ("TMDB_API_KEY", "WANDB_API_KEY", "SERVE_URL")}
    env.update(
        AIRFLOW_HOME=str(home),
        AIRFLOW__CORE__DAGS_FOLDER=str(ROOT / "dags"),
        AIRFLOW__CORE__LOAD_EXAMPLES="False",
        AIRFLOW__CORE__UNIT_TEST_MODE="False",
        S3_ENDPOINT_URL=server.endpoint,
        S3_BUCKET=bucket,
        AWS_ACCESS_KEY_ID=server.access_key,
        AWS_SECRET_ACCESS_KEY=server.secret_key,
        WANDB_MODE="offline",
        WANDB_DIR=str(home / "wandb"),
        WANDB_SILENT="true",
        RECOMMENDER_MAX_EPOCHS="3",
        USER_STORE_PATH=str(home / "users.db"),  # precompute_recs loads lists here, not into var/
        PYTHONPATH=str(ROOT),
    )
    return env


# A bad day fails the `alert` task on purpose (the run's colour says it); any other failure is a broken run.
MAY_FAIL = {"alert"}


def _task_states(home: Path, date: str) -> dict[str, str]:
    # Read from Airflow's own metadata database (SQLite here): one query instead of two CLI start-ups.
    with sqlite3.connect(home / "airflow.db") as db:
        rows = db.execute(
            "SELECT ti.task_id, ti.state FROM task_instance ti JOIN dag_run dr"
            " ON ti.dag_id = dr.dag_id AND ti.run_id = dr.run_id"
            " WHERE dr.dag_id = 'movie_pipeline' AND dr.logical_date LIKE ?",
            (date + "%",),
        ).fetchall()
    return dict(rows)


def _dags_test(airflow: str, env: dict[str, str], home: Path, date: str) -> tuple[str, dict[str, str]]:
    """Run data day `date`: the DAG with the logical date of the scheduled run that processes it (D + 1)."""
    logical = logical_date_for(date)
    proc = subprocess.run(
        [airflow, "dags", "test", "movie_pipeline", logical],
        env=env, capture_output=True, text=True, timeout=1200, cwd=ROOT,
    )  # fmt: skip
    log = proc.stdout + proc.stderr
    (home / f"dags-test-{date}.log").write_text(log)
    states = _task_states(home, logical)
    broken = {t: s for t, s in states.items() if s != "success" and t not in MAY_FAIL}
    if broken or not states:
        pytest.fail(
            f"airflow dags test {logical} (data day {date}) failed (rc {proc.returncode}, {broken}):\n{log[-6000:]}"
        )
    return log, states


def _shifted_requests(n: int = 40) -> list[dict[str, object]]:
    """/predict bodies shifted on purpose: real overviews, but every runtime past 200 min, one language, one genre."""
    from services.train.movies.snapshot import load_movies

    overviews = [m["overview"] for m in load_movies(SNAPSHOT) if (m.get("overview") or "").strip()][:n]
    return [
        {"overview": text, "runtime": 200 + 3 * i, "genres": ["Horror"], "original_language": "en"}
        for i, text in enumerate(overviews)
    ]


def _use_the_app(env: dict[str, str], home: Path) -> dict[str, object]:
    """Start the real API on the pipeline's bucket, get recommendations and give feedback, as a user would.

    The API is stopped with SIGTERM afterwards, which uploads its spool: the next DAG run finds the events.
    """
    port = processes.free_port()
    api_env = {
        **env, "S3_EMBEDDED": "0", "SERVE_PORT": str(port), "SPOOL_DIR": str(home / "app-spool"),
        "MODEL_CACHE_DIR": str(home / "app-model-cache"),
    }  # fmt: skip
    log = home / "app-api.log"
    proc = processes.start([str(ROOT / "scripts" / "serve.sh")], api_env, log)
    try:
        url = f"http://127.0.0.1:{port}"
        processes.wait_ok(url + "/ready", proc, log, timeout_s=120)
        with httpx.Client(base_url=url, timeout=30) as http:
            seen = [862, 603]  # Toy Story, The Matrix
            rec = http.post("/recommend", json={"liked": seen, "user_id": "e2e-user"}).json()
            shown = [m["tmdb_id"] for m in rec["items"]]
            events = (
                [{"user_id": "e2e-user", "tmdb_id": t, "kind": "watched"} for t in seen]
                + [
                    {
                        "user_id": "e2e-user",
                        "tmdb_id": t,
                        "kind": "like",
                        "request_id": rec["request_id"],
                        "position": i,
                    }
                    for i, t in enumerate(shown[:3], start=1)
                ]
                + [
                    {
                        "user_id": "e2e-user",
                        "tmdb_id": shown[3],
                        "kind": "dislike",
                        "request_id": rec["request_id"],
                    }
                ]
            )
            ack = http.post("/feedback", json={"events": events})
            assert ack.status_code == 202, ack.text
            shifted = _shifted_requests()
            for body in shifted:
                answer = http.post("/predict", json=body)
                assert answer.status_code == 200, answer.text
    finally:
        processes.stop(proc)
    return {
        "request_id": rec["request_id"],
        "version": rec["model_version"],
        "liked": shown[:3],
        "seen": seen,
        "shifted_predictions": len(shifted),
    }


@pytest.fixture(scope="session")
def webhook_stand_in() -> Iterator[tuple[str, list[dict[str, object]]]]:
    """A local Slack-style webhook: (URL, bodies it accepted)."""
    from tests.fakes.webhook_server import webhook_server

    with webhook_server() as served:
        yield served


@pytest.fixture(scope="session")
def pipeline_run(
    s3_server: EmbeddedS3,
    tmp_path_factory: pytest.TempPathFactory,
    webhook_stand_in: tuple[str, list[dict[str, object]]],
) -> PipelineRun:
    """The real DAG for three consecutive days, the real API used in between; a failed run fails every user.

    Day 1 publishes the first models. Then a user asks the API for recommendations, gives feedback and
    asks for predictions whose inputs are shifted on purpose (all stamped today by the server). Day 2
    (today) trains the recommender on that feedback, finds the drift and fails its alert task; day 3
    finds nothing new and skips training.
    """
    home = tmp_path_factory.mktemp("airflow")
    env = _airflow_env(s3_server, home, "pipeline-" + secrets.token_hex(4))
    env["ALERT_WEBHOOK_URL"] = webhook_stand_in[0]
    airflow = str(Path(sys.executable).parent / "airflow")
    subprocess.run([airflow, "db", "migrate"], env=env, check=True, capture_output=True, timeout=300)
    today = datetime.now(UTC).date()
    dates = [(today + timedelta(days=d)).isoformat() for d in (-1, 0, 1)]
    logs, states = {}, {}
    logs[dates[0]], states[dates[0]] = _dags_test(airflow, env, home, dates[0])
    app = _use_the_app(env, home)
    for date in dates[1:]:
        logs[date], states[date] = _dags_test(airflow, env, home, date)
    settings = Settings(
        _env_file=None,
        s3_endpoint_url=s3_server.endpoint,
        s3_bucket=env["S3_BUCKET"],
        aws_access_key_id=s3_server.access_key,
        aws_secret_access_key=s3_server.secret_key,
        wandb_mode="disabled",
        model_cache_dir=home / "model-cache",
        tmdb_api_key=None,
    )
    return PipelineRun(
        settings=settings,
        env=env,
        dates=dates,
        logs=logs,
        app=app,
        states=states,
        webhook=webhook_stand_in[1],
    )


@pytest.fixture(scope="session")
def translator_stand_in() -> Iterator[tuple[str, list[str]]]:
    """A local Google-Translate stand-in: (base URL, texts it was asked to translate)."""
    from tests.fakes.translate_server import translate_server

    with translate_server() as served:
        yield served


@pytest.fixture(scope="session")
def live_api(
    pipeline_run: PipelineRun,
    translator_stand_in: tuple[str, list[str]],
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[str]:
    """The real API (scripts/serve.sh, uvicorn) serving what the real pipeline published.

    Translation goes through the real deep-translator client to a local stand-in of Google's page.
    """
    port = processes.free_port()
    home = tmp_path_factory.mktemp("live-api")
    env = {
        **pipeline_run.env,
        "S3_EMBEDDED": "0",
        "SERVE_PORT": str(port),
        "MODEL_CACHE_DIR": str(home / "model-cache"),
        "SPOOL_DIR": str(home / "spool"),
        "ADMIN_TOKEN": "live-api-" + secrets.token_hex(8),
        "TRANSLATE_TIMEOUT_S": "2.0",
        "TRANSLATE_BASE_URL": translator_stand_in[0],
    }
    log = home / "serve.log"
    proc = processes.start([str(ROOT / "scripts" / "serve.sh")], env, log)
    url = f"http://127.0.0.1:{port}"
    processes.wait_ok(url + "/ready", proc, log, timeout_s=120)
    yield url
    processes.stop(proc)
