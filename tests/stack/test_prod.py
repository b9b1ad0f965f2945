"""The production shape, run for real by scripts/prod.sh: what must hold when parts fail.

One stack for the module, started by `./scripts/prod.sh up` itself in a temporary var dir on free ports
(a developer's running stack is untouched): PostgreSQL, Redis, Airflow 3.3 on Celery with two workers, two
API replicas behind nginx, the UI and Prometheus, on an embedded S3 of its own. The registry is seeded
with a deliberately weak rating model, so the replicas are ready from the start and the first DAG run
promotes a better one (a publish and a reload to watch).

Two DAG runs carry every scenario, to keep the module inside its budget (~15 min on 2 cores):
1. the scheduled run the unpaused DAG starts at once: a Celery worker SIGKILLed in the middle of
   train_recommender, the scheduler restarted, then the publish and reload under load through nginx;
2. a run triggered through the REST API while Redis is down, then with Postgres stopped mid-run.
Between them, one API replica is killed under load.
"""

from __future__ import annotations

import os
import shutil
import stat
import subprocess
import tempfile
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import httpx
import pytest

from services.core.embedded_s3 import free_port_block
from services.train.notify import serving_urls
from tests import prerequisites
from tests.prod_stack import (
    DAG,
    ROOT,
    WORKERS,
    Load,
    Stack,
    _listening,
    _port_block,
    _registry,
    _s3_env,
    _seed_weak_rating_model,
    _when,
)


# ---- the stack, once for the module ---------------------------------------------------------------------
@pytest.fixture(scope="module")
def stack() -> Iterator[Stack]:
    """`prod.sh up` in a temporary var dir on free ports; `prod.sh down` afterwards (checked: no listener)."""
    prerequisites.postgres_bin()  # prod.sh runs PostgreSQL as the postgres user: root and runuser
    # Not pytest's tmp_path: its folders are mode 700, and the postgres user must reach its cluster.
    var = Path(tempfile.mkdtemp(prefix="prod-test-"))
    var.chmod(0o755)
    names = ["postgres", "redis", "airflow", "nginx", "api-1", "api-2", "ui", "prometheus", "scheduler"]
    ports = dict(zip(names, _port_block(len(names)), strict=True))
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("AIRFLOW", "S3_", "SPOOL_", "SERVE_", "PROD_"))
        and k
        not in ("ADMIN_TOKEN", "API_URL", "MODEL_CACHE_DIR", "REPLICA_ID", "TMDB_API_KEY", "WANDB_API_KEY")
    }
    env.update(
        VAR_DIR=str(var),
        PROD_DIR=str(var / "prod"),
        S3_PORT=str(free_port_block()),
        S3_BUCKET="prod-test",
        PROD_PG_PORT=str(ports["postgres"]),
        PROD_REDIS_PORT=str(ports["redis"]),
        AIRFLOW_PORT=str(ports["airflow"]),
        PROD_API_PORT=str(ports["nginx"]),
        PROD_REPLICA_PORTS=f"{ports['api-1']} {ports['api-2']}",
        UI_PORT=str(ports["ui"]),
        PROMETHEUS_PORT=str(ports["prometheus"]),
        PROD_SCHEDULER_HEALTH_PORT=str(ports["scheduler"]),
        PROD_REPLICA_PREFIX="prod-test",
        RECOMMENDER_MAX_EPOCHS="1",
        # The load here is twenty variants of one movie: drift by design, which the DAG's alert task
        # would rightly call a bad day (and fail the run). Its verdict is not what is tested here.
        ALERT_DRIFT_SHARE="1.0",
        WANDB_MODE="offline",
    )
    s = Stack(env=env, var=var, ports=ports)
    try:
        s.sh("up", "s3", timeout=300)
        _seed_weak_rating_model(s)
        up = s.sh("up", timeout=900)
        s.events.append(up.stdout)
        yield s
    finally:
        s.sh("down", check=False, timeout=300)
        held = [f"{name}={port}" for name, port in ports.items() if _listening(port)]
        if (var / "prod" / "logs").exists():
            keep = ROOT / "test-artifacts" / "prod-logs"
            shutil.rmtree(keep, ignore_errors=True)
            shutil.copytree(var / "prod" / "logs", keep, dirs_exist_ok=True)
        shutil.rmtree(var, ignore_errors=True)
        print("\n".join(s.events))
        assert not held, f"listeners left after prod.sh down: {held}"


# ---- unit: SERVE_URL lists the replicas -----------------------------------------------------------------
@pytest.mark.parametrize(
    ("value", "urls"),
    [
        (None, []),
        ("", []),
        ("http://a:8000/", ["http://a:8000"]),
        (" http://a:8001, http://b:8002/ ,", ["http://a:8001", "http://b:8002"]),
    ],
)
def test_serve_url_is_one_url_or_a_comma_separated_list(value: str | None, urls: list[str]) -> None:
    assert serving_urls(value) == urls


# ---- what must hold -------------------------------------------------------------------------------------
@pytest.mark.prod
@pytest.mark.integration
@pytest.mark.slow
@pytest.mark.timeout(1500)
class TestProductionShape:
    def test_up_starts_every_part_healthy_with_secrets_kept_private(self, stack: Stack) -> None:
        code, rows = stack.status()
        assert code == 0, rows
        expected = {"s3", "postgres", "redis", "api-server", "scheduler", "dag-processor", "triggerer",
                    "worker-1", "worker-2", "api-1", "api-2", "nginx", "ui", "prometheus"}  # fmt: skip
        assert set(rows) == expected
        assert all(h.startswith("ok") for h in rows.values()), rows
        secrets = stack.prod_dir / "secrets.env"
        assert stat.S_IMODE(secrets.stat().st_mode) == 0o600
        said = "\n".join(stack.events)
        for name, value in stack.secrets().items():
            assert value not in said, f"{name} was printed"
        # The UI talks to nginx; Prometheus scrapes both replicas.
        assert httpx.get(stack.nginx + "/ready", timeout=5).status_code == 200
        expected_targets = {f"127.0.0.1:{stack.ports['api-1']}", f"127.0.0.1:{stack.ports['api-2']}"}
        deadline, found = time.monotonic() + 60, set()
        while found != expected_targets and time.monotonic() < deadline:  # file_sd is read in the background
            time.sleep(2)
            targets = httpx.get(f"http://127.0.0.1:{stack.ports['prometheus']}/api/v1/targets", timeout=5)
            found = {t["labels"]["instance"] for t in targets.json()["data"]["activeTargets"]}
        assert found == expected_targets
        # The DAG is unpaused: it runs on its schedule without anyone lifting a pause.
        assert stack.api("GET", f"/api/v2/dags/{DAG}").json()["is_paused"] is False

    def test_a_user_is_known_by_id_on_every_replica_through_the_shared_redis(self, stack: Stack) -> None:
        import json

        from tests.serve_fixtures import catalog_json

        ids = [int(e["tmdb_id"]) for e in json.loads(catalog_json())[:4]]
        user = f"prod-user-{time.time_ns()}"
        events = [{"user_id": user, "tmdb_id": t, "kind": "like"} for t in ids[:3]]
        events.append({"user_id": user, "tmdb_id": ids[3], "kind": "dislike"})
        assert httpx.post(stack.nginx + "/feedback", json={"events": events}, timeout=10).status_code == 202
        # Each replica reads the state another one wrote: one store, Redis DB 1 with its password.
        held = [httpx.get(f"{stack.replica(n)}/users/{user}", timeout=10) for n in (1, 2)]
        assert [r.status_code for r in held] == [200, 200] and held[0].json() == held[1].json()
        for _ in range(3):  # whichever replica answers
            out = httpx.post(stack.nginx + "/recommend", json={"user_id": user, "k": 10}, timeout=10).json()
            assert (out["source"], out["history"]) == ("user", 3)
            assert not set(ids) & {i["tmdb_id"] for i in out["items"]}  # liked and disliked: never shown
        keys = subprocess.run(
            ["redis-cli", "-h", "127.0.0.1", "-p", str(stack.ports["redis"]), "-n", "1", "--scan"],
            env={**os.environ, "REDISCLI_AUTH": stack.secrets()["REDIS_PASSWORD"]},
            capture_output=True, text=True, timeout=30,
        ).stdout  # fmt: skip
        assert user in keys
        assert httpx.delete(f"{stack.nginx}/users/{user}", timeout=10).status_code == 204
        assert [httpx.get(f"{stack.replica(n)}/users/{user}", timeout=10).status_code for n in (1, 2)] == [
            404,
            404,
        ]

    def test_scheduled_run_survives_a_killed_worker_and_a_restarted_scheduler_and_reloads_under_load(
        self, stack: Stack
    ) -> None:
        deadline = time.monotonic() + 120
        while not (runs := stack.runs()) and time.monotonic() < deadline:
            time.sleep(2)
        assert runs, "the unpaused DAG started no scheduled run"
        run_id = runs[0]["dag_run_id"]
        assert runs[0]["run_type"] == "scheduled"

        # 1. SIGKILL the worker running train_recommender, mid-task.
        victim = stack.wait_task(run_id, "train_recommender", {"running"}, timeout_s=600)["hostname"]
        time.sleep(3)  # inside the training, past the task's start-up
        assert victim in WORKERS
        stack.sh("kill", victim)
        code, rows = stack.status()
        assert code != 0 and rows[victim] == "DOWN", rows

        # 2. Restart the scheduler while that try is being given up on.
        stack.sh("down", "scheduler")
        stack.sh("up")  # starts what is down: the scheduler and the killed worker
        code, rows = stack.status()
        assert code == 0, rows

        # 3. Publish and reload under load through nginx: start when notify_serving's inputs are done.
        stack.wait_task(
            run_id, "notify_serving", {"queued", "scheduled", "running", "success"}, timeout_s=900
        )
        load = Load(stack.nginx, seconds=90)  # bounded; stopped once the run is over
        load.start()
        run = stack.wait_run(run_id, timeout_s=600)
        load.stop()
        load.join(timeout=60)
        stack.events.append(f"load during the publish and reload: {load.result}")
        tis = stack.tis(run_id)
        assert run["state"] == "success", {k: v["state"] for k, v in tis.items()}

        recommender = tis["train_recommender"]
        assert recommender["try_number"] >= 2, "the killed try was not retried"
        tries = [
            (t["try_number"], t["state"], t["hostname"]) for t in stack.tries(run_id, "train_recommender")
        ]
        stack.events.append(f"train_recommender: killed on {victim}; tries {tries}")
        hosts = {t["hostname"] for t in tis.values() if t["hostname"]}
        assert hosts == WORKERS, f"task instances ran on {hosts}"

        notify = tis["notify_serving"]
        assert load.result.sent > 100, load.result
        assert load.result.errors == 0, f"{load.result.errors} failed requests of {load.result.sent}"
        assert load.started <= _when(notify, "end_date") <= load.ended, "the reload fell outside the load"

        # Both replicas serve what the registry's production pointer names, and it is the new model.
        registry = _registry(stack)
        production = registry.production_version("rating")
        assert production != stack.env["SEED_RATING_VERSION"]
        for n in (1, 2):
            ready = stack.ready(n)
            assert ready["rating_version"] == production, (n, ready)
            assert ready["recommender_version"] == registry.production_version("recommender"), (n, ready)

        # No half-published version: every listed version verifies, production included (the CLI's verify).
        for model in ("rating", "recommender"):
            for version in registry.versions(model):
                assert registry.verify(model, version) == [], (model, version)
            proc = subprocess.run(
                [str(ROOT / "scripts" / "registry.sh"), "verify", model],
                env=_s3_env(stack), capture_output=True, text=True, timeout=120,
            )  # fmt: skip
            assert proc.returncode == 0 and proc.stdout.startswith("OK"), proc.stdout + proc.stderr

    def test_a_stopped_or_killed_replica_is_routed_around_and_status_shows_it(self, stack: Stack) -> None:
        # Stopped (SIGTERM): uvicorn finishes what it has in flight, nginx sends the rest to the other one.
        load = Load(stack.nginx, seconds=8)
        load.start()
        time.sleep(2)
        stack.sh("down", "api-1")
        load.join(timeout=60)
        assert load.result.sent > 50 and load.result.errors == 0, load.result
        code, rows = stack.status()
        assert code != 0 and rows["api-1"] == "DOWN" and rows["api-2"].startswith("ok"), rows
        stack.sh("up", "api-1")
        self._wait_ready(stack, 1)

        # Killed (SIGKILL): a response the replica had begun (nginx already passed its header on) is cut,
        # which no proxy can retry; at most the requests in flight then. After that, none fails.
        load = Load(stack.nginx, seconds=8)
        load.start()
        time.sleep(2)
        stack.sh("kill", "api-2")
        load.join(timeout=60)
        stack.events.append(f"api-2 killed under load: {load.result}")
        assert load.result.sent > 50 and load.result.errors <= load.concurrency, load.result
        after = Load(stack.nginx, seconds=4)
        after.start()
        after.join(timeout=60)
        assert after.result.sent > 50 and after.result.errors == 0, after.result
        code, rows = stack.status()
        assert code != 0 and rows["api-2"] == "DOWN" and rows["api-1"].startswith("ok"), rows
        stack.sh("up", "api-2")
        # Back up, a replica loads the production versions at start: a reload it missed included.
        self._wait_ready(stack, 2)
        assert stack.ready(1)["rating_version"] == stack.ready(2)["rating_version"]

    @staticmethod
    def _wait_ready(stack: Stack, n: int) -> None:
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            try:
                if stack.ready(n).get("ready"):
                    return
            except httpx.HTTPError:
                pass
            time.sleep(1)
        raise AssertionError(f"api-{n} not ready after 120 s")

    def test_rest_run_fails_clearly_without_redis_or_postgres_and_completes_once_they_are_back(
        self, stack: Stack
    ) -> None:
        # A run the scheduler fired meanwhile (its 00:00 UTC run, when the suite crosses midnight) would
        # hold this one queued behind max_active_runs=1: let it finish first.
        if waited := stack.wait_idle(timeout_s=900):
            stack.events.append(f"waited for active runs before the REST run: {waited}")
        # Redis down: the scheduler cannot queue the first tasks; they fail at once, with the reason.
        stack.sh("down", "redis")
        now = datetime.now(UTC)
        r = stack.api("POST", f"/api/v2/dags/{DAG}/dagRuns", json={"logical_date": now.isoformat()})
        assert r.status_code == 200, r.text
        run_id = r.json()["dag_run_id"]
        t0 = time.monotonic()
        ti = stack.wait_task(run_id, "collect", {"up_for_retry", "failed"}, timeout_s=60)
        stack.events.append(
            f"collect {ti['state']} {time.monotonic() - t0:.0f} s after the trigger, Redis down"
        )
        assert f"Error 111 connecting to 127.0.0.1:{stack.ports['redis']}. Connection refused" in stack.log(
            "scheduler"
        )
        stack.sh("up", "redis")

        # Postgres stopped mid-run: the scheduler stops with the database error instead of hanging, the
        # API answers at once, and status says what is down.
        stack.wait_task(run_id, "build_features", {"running"}, timeout_s=300)
        stack.sh("down", "postgres")
        # Answers rather than hangs: a hang raises ReadTimeout (a hang guard, not a speed claim).
        health = httpx.get(f"http://127.0.0.1:{stack.ports['airflow']}/api/v2/monitor/health", timeout=60)
        assert health.status_code >= 500 or health.json()["metadatabase"]["status"] == "unhealthy"
        refused = f"port {stack.ports['postgres']} failed"
        deadline = time.monotonic() + 60
        while refused not in stack.log("scheduler") and time.monotonic() < deadline:
            time.sleep(1)
        assert refused in stack.log("scheduler"), "the scheduler did not report the database error"
        # The Airflow parts that need the database do not stay up half-working: they exit.
        stopping = ("scheduler", "dag-processor", "triggerer")
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            table = stack.status_table()[1]
            if all(table[part][0] == "-" for part in stopping):
                break
            time.sleep(3)
        assert table["postgres"][1] == "DOWN", table
        assert all(table[part] == ("-", "DOWN") for part in stopping), table
        stack.events.append(f"with Postgres down: {table}")
        stack.sh("up")  # Postgres back, and whatever stopped with it
        # A part that kept running through the outage (the api-server, a worker) may report unhealthy
        # for a few seconds while its database connections come back: wait for it, say what it was.
        deadline = time.monotonic() + 90
        code, rows = stack.status()
        if code != 0:
            stack.events.append(f"right after up, not yet ok: {rows}")
        while code != 0 and time.monotonic() < deadline:
            time.sleep(3)
            code, rows = stack.status()
        assert code == 0, rows

        run = stack.wait_run(run_id, timeout_s=900)
        tis = stack.tis(run_id)
        assert run["state"] == "success", {k: v["state"] for k, v in tis.items()}
        assert {t["hostname"] for t in tis.values() if t["hostname"]} == WORKERS
        assert tis["collect"]["try_number"] >= 2  # the try that failed while Redis was down, then a retry

    def test_down_leaves_no_listener_and_the_data_survives(self, stack: Stack) -> None:
        stack.sh("down", timeout=300)
        held = [name for name, port in stack.ports.items() if _listening(port)]
        assert not held, held
        stack.sh("up", "postgres")
        count = subprocess.run(
            ["psql", "-h", "127.0.0.1", "-p", str(stack.ports["postgres"]), "-U", "airflow", "-d", "airflow",
             "-tAc", "SELECT count(*) FROM dag_run WHERE state = 'success'"],
            env={**stack.env, "PGPASSWORD": stack.secrets()["POSTGRES_PASSWORD"]},
            capture_output=True, text=True, check=True,
        ).stdout.strip()  # fmt: skip
        assert int(count) >= 2
        stack.sh("down", "postgres")
