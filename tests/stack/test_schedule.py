"""The scheduler's own runs process the day that has just ended, late batches included (issue 18).

Real parts throughout: SeaweedFS, the API (scripts/serve.sh) and `airflow standalone` on SQLite with
its LocalExecutor. No `airflow dags test`: the runs are the ones the scheduler itself creates.

1. A user gives feedback on day D (yesterday): the API runs under `faketime -1d`, so the server stamps
   D. S3 refuses its skewed signatures, so the events wait in its spool until the replica comes back
   with the right clock and flushes them: a backlog that lands after D has ended.
2. Unpausing the DAG makes the scheduler create the run it fires at the end of D (data interval
   [D, D + 1), which Airflow 3.3 gives the logical date D). That run curates D's feedback and trains
   the recommender on it.
3. More of D's events land late. The next run (posted through the REST API with the next scheduled
   run's logical date and data interval, [today, tomorrow)) re-curates D inside its window: the late
   events count and the run says D changed.
"""

from __future__ import annotations

import json
import os
import socket
import sqlite3
import subprocess
import sys
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import pytest

from scripts.harness import processes
from services.core.embedded_s3 import EmbeddedS3
from services.core.registry import Registry
from services.core.settings import Settings
from services.core.storage import ObjectStore
from services.train import raw_store
from services.train.feedback.curated import curated_key
from tests import prerequisites
from tests.conftest import ROOT
from tests.pipeline_run import MAY_FAIL, _airflow_env
from tests.serve_fixtures import publish_rating

pytestmark = [pytest.mark.integration, pytest.mark.slow]

AIRFLOW = str(Path(sys.executable).parent / "airflow")
DAG = "movie_pipeline"


def _settings(server: EmbeddedS3, bucket: str, home: Path) -> Settings:
    return Settings(
        _env_file=None, s3_endpoint_url=server.endpoint, s3_bucket=bucket,
        aws_access_key_id=server.access_key, aws_secret_access_key=server.secret_key,
        wandb_mode="disabled", model_cache_dir=home / "model-cache", tmdb_api_key=None,
    )  # fmt: skip


def _give_feedback_on_day_d(settings: Settings, home: Path, events: list[dict[str, object]]) -> None:
    """POST events to an API whose clock reads a day ago, then let the replica flush them late."""
    port = processes.free_port()
    env = processes.serve_env(settings, home, port, REPLICA_ID="api-sched")
    url = f"http://127.0.0.1:{port}"
    log = home / "api.log"
    # The shifted replica cannot reach S3 (RequestTimeTooSkewed): it serves the cached models.
    shifted = processes.start(
        [prerequisites.program("faketime"), "-f", "-1d", str(ROOT / "scripts" / "serve.sh")], env, log
    )
    try:
        processes.wait_ok(url + "/ready", shifted, log, timeout_s=120)
        ack = httpx.post(url + "/feedback", json={"events": events}, timeout=30)
        assert ack.status_code == 202, ack.text
    finally:
        processes.stop(shifted)
        # faketime's wrapper exits on SIGTERM at once while uvicorn, its child, is still shutting down
        # (and flushing): wait until the port is free, or the next start would talk to the old server.
        _wait_port_free(port)
    # Back with the right clock on the same spool: the backlog of D is uploaded now, after D ended.
    proc = processes.start([str(ROOT / "scripts" / "serve.sh")], env, home / "api-flush.log")
    try:
        processes.wait_ok(url + "/ready", proc, home / "api-flush.log", timeout_s=120)
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and _pending(url):
            time.sleep(0.5)
        assert not _pending(url), "the replica did not flush its backlog"
    finally:
        processes.stop(proc)


def _wait_port_free(port: int, timeout_s: float = 30) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        with socket.socket() as s:
            if s.connect_ex(("127.0.0.1", port)) != 0:
                return
        time.sleep(0.2)
    raise AssertionError(f"port {port} still answers {timeout_s} s after the shifted replica was stopped")


def _pending(url: str) -> float:
    metrics = httpx.get(url + "/metrics", timeout=10).text
    values = [
        float(line.split()[-1])
        for line in metrics.splitlines()
        if line.startswith("movie_intel_spool_pending")
    ]
    return sum(values) if values else 1.0


def _runs(home: Path) -> list[dict[str, object]]:
    with sqlite3.connect(home / "airflow.db") as db:
        db.row_factory = sqlite3.Row
        rows = db.execute(
            "SELECT run_id, run_type, state, logical_date, data_interval_start FROM dag_run WHERE dag_id = ?"
            " ORDER BY logical_date",
            (DAG,),
        ).fetchall()
    return [dict(r) for r in rows]


def _task_states(home: Path, run_id: str) -> dict[str, str]:
    with sqlite3.connect(home / "airflow.db") as db:
        return dict(
            db.execute(
                "SELECT task_id, state FROM task_instance WHERE dag_id = ? AND run_id = ?", (DAG, run_id)
            )
        )


def _wait_run(home: Path, data_day: str, log: Path, timeout_s: float = 1500) -> dict[str, object]:
    """The finished run whose data interval starts on `data_day` (the day it processes)."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        for run in _runs(home):
            if str(run["data_interval_start"]).startswith(data_day) and run["state"] in ("success", "failed"):
                return run
        time.sleep(3)
    raise TimeoutError(
        f"no finished run for data day {data_day}; runs {_runs(home)}\n{log.read_text()[-3000:]}"
    )


def _airflow(env: dict[str, str], *args: str) -> str:
    proc = subprocess.run([AIRFLOW, *args], env=env, capture_output=True, text=True, timeout=300, cwd=ROOT)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    return proc.stdout


def _trigger(port: int, password: str, start: str, end: str) -> None:
    """POST a run through the REST API (as the console does) with an explicit data interval [start, end)."""
    base = f"http://127.0.0.1:{port}"
    token = httpx.post(f"{base}/auth/token", json={"username": "admin", "password": password}, timeout=30)
    token.raise_for_status()
    body = {"logical_date": f"{start}T00:00:00Z", "data_interval_start": f"{start}T00:00:00Z",
            "data_interval_end": f"{end}T00:00:00Z"}  # fmt: skip
    r = httpx.post(
        f"{base}/api/v2/dags/{DAG}/dagRuns",
        json=body,
        headers={"Authorization": f"Bearer {token.json()['access_token']}"},
        timeout=30,
    )
    assert r.status_code == 200, r.text


def _feedback(user: str, kinds: list[tuple[int, str]]) -> list[dict[str, object]]:
    return [{"user_id": user, "tmdb_id": t, "kind": k} for t, k in kinds]


def test_the_scheduler_run_at_the_end_of_a_day_curates_and_trains_on_that_day(
    s3_server: EmbeddedS3, tmp_path: Path
) -> None:
    today = datetime.now(UTC).date()
    day_d, tomorrow = (today - timedelta(days=1)).isoformat(), (today + timedelta(days=1)).isoformat()
    home = tmp_path / "airflow"
    home.mkdir()
    env = _airflow_env(s3_server, home, "sched-" + os.urandom(4).hex())
    settings = _settings(s3_server, env["S3_BUCKET"], tmp_path)
    store = ObjectStore.from_settings(settings)
    store.ensure_bucket()
    registry = Registry(store)
    publish_rating(registry, rounds=1)  # a model to serve, which the first run's candidates beat

    # The API fills its model cache once with the right clock, so the shifted replica can serve.
    port = processes.free_port()
    api = processes.start(
        [str(ROOT / "scripts" / "serve.sh")],
        processes.serve_env(settings, tmp_path, port),
        tmp_path / "warm.log",
    )
    processes.wait_ok(f"http://127.0.0.1:{port}/ready", api, tmp_path / "warm.log", timeout_s=120)
    processes.stop(api)

    first = _feedback("sched-user", [(862, "watched"), (603, "watched"), (949, "like"), (8844, "like"), (550, "like"), (13, "dislike")])  # fmt: skip
    _give_feedback_on_day_d(settings, tmp_path, first)
    assert store.list(f"events/feedback/dt={day_d}/"), "the backlog did not land in D's partition"

    ports = {name: processes.free_port() for name in ("api", "logs", "triggerer_logs")}
    env.update(
        AIRFLOW__API__HOST="127.0.0.1",
        AIRFLOW__API__PORT=str(ports["api"]),
        AIRFLOW__CORE__EXECUTION_API_SERVER_URL=f"http://127.0.0.1:{ports['api']}/execution/",
        AIRFLOW__LOGGING__WORKER_LOG_SERVER_PORT=str(ports["logs"]),
        AIRFLOW__LOGGING__TRIGGER_LOG_SERVER_PORT=str(ports["triggerer_logs"]),
        AIRFLOW__LOGGING__WORKER_LOG_SERVER_HOST="127.0.0.1",
        AIRFLOW__CORE__PARALLELISM="4",
        AIRFLOW__CORE__DAGS_ARE_PAUSED_AT_CREATION="True",
        AIRFLOW__SCHEDULER__DAG_DIR_LIST_INTERVAL="5",
        # `airflow standalone` starts its parts as `airflow …` found on PATH: this venv's.
        PATH=f"{Path(AIRFLOW).parent}{os.pathsep}{env.get('PATH', os.environ.get('PATH', ''))}",
    )
    password = os.urandom(12).hex()
    (home / "passwords.json").write_text(json.dumps({"admin": password}))
    env["AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_PASSWORDS_FILE"] = str(home / "passwords.json")
    _airflow(env, "db", "migrate")
    log = home / "standalone.log"
    standalone = processes.start([AIRFLOW, "standalone"], env, log)
    try:
        deadline = time.monotonic() + 180
        while time.monotonic() < deadline and DAG not in _airflow(env, "dags", "list", "-o", "plain"):
            time.sleep(3)
        _airflow(env, "dags", "unpause", DAG)

        # 2. The run the scheduler fires at the end of D: data interval [D, today), logical date D.
        run = _wait_run(home, day_d, log)
        assert run["run_type"] == "scheduled"
        assert str(run["logical_date"]).startswith(day_d)
        states = _task_states(home, str(run["run_id"]))
        assert {t: s for t, s in states.items() if s != "success" and t not in MAY_FAIL} == {}, states
        curated = raw_store.read_jsonl(store, curated_key(day_d))
        assert sorted(r["kind"] for r in curated) == ["dislike", "like", "like", "like", "watched", "watched"]
        decision = store.get_json(f"runs/dt={day_d}/recommender_decision.json")
        manifest = registry.manifest("recommender", decision["version"])
        assert manifest.notes["data"]["feedback_interactions"] == 5  # the dislike is not a positive
        assert not store.list(f"curated/feedback/dt={today.isoformat()}/"), "a day not yet over was curated"

        # 3. More of D arrives late; the next run (data day today) re-curates D within its window.
        _give_feedback_on_day_d(settings, tmp_path, _feedback("late-user", [(680, "like"), (603, "like")]))
        # The CLI's trigger infers the interval from the time it runs (so it would redo D): the REST API
        # takes the next scheduled run's own logical date and data interval, [today, tomorrow).
        _trigger(ports["api"], password, today.isoformat(), tomorrow)
        run = _wait_run(home, today.isoformat(), log)
        assert run["run_type"] == "manual" and str(run["logical_date"]).startswith(today.isoformat())
        states = _task_states(home, str(run["run_id"]))
        assert {t: s for t, s in states.items() if s != "success" and t not in MAY_FAIL} == {}, states
        assert len(raw_store.read_jsonl(store, curated_key(day_d))) == 8
        decision = store.get_json(f"runs/dt={today.isoformat()}/recommender_decision.json")
        assert (
            registry.manifest("recommender", decision["version"]).notes["data"]["feedback_interactions"] == 7
        )
        task_log = "\n".join(
            p.read_text() for p in (home / "logs").rglob("*.log") if "task_id=collect_feedback" in str(p)
        )
        assert day_d in task_log and "changed" in task_log, "the run did not say that D changed"
    finally:
        processes.stop(standalone, timeout_s=30)
