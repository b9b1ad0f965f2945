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

import json
import os
import shutil
import stat
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import pytest

from services.core.embedded_s3 import free_port_block
from services.train.steps import serving_urls
from tests import processes

ROOT = Path(__file__).resolve().parents[1]
PROD = str(ROOT / "scripts" / "prod.sh")
DAG = "movie_pipeline"
WORKERS = {"worker-1", "worker-2"}
FINISHED = {"success", "failed", "upstream_failed", "skipped", "removed"}


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


# ---- the stack ------------------------------------------------------------------------------------------
@dataclass
class Stack:
    """A running prod.sh stack: its environment, ports, and an Airflow REST client."""

    env: dict[str, str]
    var: Path
    ports: dict[str, int]
    events: list[str] = field(default_factory=list)
    _token: str | None = None

    @property
    def prod_dir(self) -> Path:
        return self.var / "prod"

    @property
    def nginx(self) -> str:
        return f"http://127.0.0.1:{self.ports['nginx']}"

    def replica(self, n: int) -> str:
        return f"http://127.0.0.1:{self.ports[f'api-{n}']}"

    def sh(self, *args: str, check: bool = True, timeout: float = 600) -> subprocess.CompletedProcess:
        """Run scripts/prod.sh with this stack's environment."""
        t0 = time.monotonic()
        proc = subprocess.run(
            [PROD, *args], env=self.env, cwd=ROOT, capture_output=True, text=True, timeout=timeout
        )
        self.events.append(f"prod.sh {' '.join(args)}: rc {proc.returncode}, {time.monotonic() - t0:.0f} s")
        if check and proc.returncode != 0:
            raise AssertionError(
                f"prod.sh {' '.join(args)} failed ({proc.returncode}):\n{proc.stdout}\n{proc.stderr}"
            )
        return proc

    def secrets(self) -> dict[str, str]:
        lines = (self.prod_dir / "secrets.env").read_text().splitlines()
        return dict(line.split("=", 1) for line in lines if "=" in line and not line.startswith("#"))

    def log(self, part: str) -> str:
        return (self.prod_dir / "logs" / f"{part}.log").read_text(errors="replace")

    # -- Airflow REST API (what the console uses) --
    def api(self, method: str, path: str, **kwargs: Any) -> httpx.Response:
        base = f"http://127.0.0.1:{self.ports['airflow']}"
        for _ in range(2):
            if self._token is None:
                password = self.secrets()["AIRFLOW_ADMIN_PASSWORD"]
                r = httpx.post(
                    f"{base}/auth/token", json={"username": "admin", "password": password}, timeout=10
                )
                r.raise_for_status()
                self._token = r.json()["access_token"]
            r = httpx.request(
                method, base + path, headers={"Authorization": f"Bearer {self._token}"}, timeout=15, **kwargs
            )
            if r.status_code != 401:
                return r
            self._token = None
        return r

    def runs(self) -> list[dict[str, Any]]:
        r = self.api("GET", f"/api/v2/dags/{DAG}/dagRuns", params={"order_by": "start_date"})
        r.raise_for_status()
        return r.json()["dag_runs"]

    def run(self, run_id: str) -> dict[str, Any]:
        r = self.api("GET", f"/api/v2/dags/{DAG}/dagRuns/{run_id}")
        r.raise_for_status()
        return r.json()

    def tis(self, run_id: str) -> dict[str, dict[str, Any]]:
        r = self.api("GET", f"/api/v2/dags/{DAG}/dagRuns/{run_id}/taskInstances")
        r.raise_for_status()
        return {t["task_id"]: t for t in r.json()["task_instances"]}

    def tries(self, run_id: str, task_id: str) -> list[dict[str, Any]]:
        """Every try of a task instance, earlier ones included (their hostnames too)."""
        r = self.api("GET", f"/api/v2/dags/{DAG}/dagRuns/{run_id}/taskInstances/{task_id}/tries")
        r.raise_for_status()
        return r.json()["task_instances"]

    def wait_run(self, run_id: str, timeout_s: float) -> dict[str, Any]:
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            try:
                run = self.run(run_id)
            except httpx.HTTPError:
                run = {"state": "unknown"}
            if run["state"] in ("success", "failed"):
                return run
            time.sleep(3)
        states = {k: v["state"] for k, v in self.tis(run_id).items()}
        raise AssertionError(f"run {run_id} not finished after {timeout_s} s: {states}")

    def wait_task(self, run_id: str, task_id: str, states: set[str], timeout_s: float) -> dict[str, Any]:
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            try:
                ti = self.tis(run_id)[task_id]
            except (httpx.HTTPError, KeyError):
                ti = {"state": "unknown"}
            if ti["state"] in states:
                return ti
            if ti["state"] in FINISHED:
                raise AssertionError(f"{task_id} ended {ti['state']} while waiting for {states}")
            time.sleep(1)
        raise AssertionError(f"{task_id} not in {states} after {timeout_s} s (last: {ti['state']})")

    def ready(self, n: int) -> dict[str, Any]:
        return httpx.get(self.replica(n) + "/ready", timeout=5).json()

    def status(self) -> tuple[int, dict[str, str]]:
        """prod.sh status: its exit code and each part's health column."""
        code, table = self.status_table()
        return code, {part: health for part, (_pid, health) in table.items()}

    def status_table(self) -> tuple[int, dict[str, tuple[str, str]]]:
        """prod.sh status: its exit code and each part's (pid, health); pid "-" when no process runs."""
        proc = self.sh("status", check=False, timeout=120)
        rows = {}
        for line in proc.stdout.splitlines()[1:]:
            part, _port, pid, health = line.split(None, 3)
            rows[part] = (pid, health)
        return proc.returncode, rows


def _port_block(n: int) -> list[int]:
    ports: set[int] = set()
    while len(ports) < n:
        ports.add(processes.free_port())
    return sorted(ports)


@pytest.fixture(scope="module")
def stack() -> Iterator[Stack]:
    """`prod.sh up` in a temporary var dir on free ports; `prod.sh down` afterwards (checked: no listener)."""
    if os.geteuid() != 0:
        pytest.skip("prod.sh runs PostgreSQL as the postgres user: needs root (runuser)")
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


def _listening(port: int) -> bool:
    out = subprocess.run(["ss", "-Hltn", f"sport = :{port}"], capture_output=True, text=True).stdout
    return bool(out.strip())


def _s3_env(s: Stack) -> dict[str, str]:
    keys = dict(
        line.split("=", 1) for line in (s.var / "s3" / "keys.env").read_text().splitlines() if "=" in line
    )
    return {
        **s.env,
        "S3_ENDPOINT_URL": f"http://127.0.0.1:{s.env['S3_PORT']}",
        "S3_EMBEDDED": "0",
        **keys,
    }


def _registry(s: Stack) -> Any:
    from services.core.registry import Registry
    from services.core.settings import Settings
    from services.core.storage import ObjectStore

    env = _s3_env(s)
    settings = Settings(
        _env_file=None,
        s3_endpoint_url=env["S3_ENDPOINT_URL"],
        s3_bucket=env["S3_BUCKET"],
        aws_access_key_id=env["AWS_ACCESS_KEY_ID"],
        aws_secret_access_key=env["AWS_SECRET_ACCESS_KEY"],
    )
    store = ObjectStore.from_settings(settings)
    store.ensure_bucket()
    return Registry(store)


def _seed_weak_rating_model(s: Stack) -> None:
    from tests.serve_fixtures import publish_rating

    manifest = publish_rating(_registry(s), rounds=1)  # one boosting round: any real candidate beats it
    s.env["SEED_RATING_VERSION"] = manifest.version


# ---- load through nginx ---------------------------------------------------------------------------------
class Load(threading.Thread):
    """Bounded load on /predict through nginx, in a thread: bench_serve's generator (wrk, else httpx).

    It runs in chunks of `chunk` seconds until stop() (after the current chunk) or `seconds` in all,
    so a test can keep it going until the event it watches is over.
    """

    def __init__(self, url: str, seconds: float, concurrency: int = 16, chunk: float = 4.0) -> None:
        super().__init__(daemon=True)
        sys.path.insert(0, str(ROOT / "scripts"))
        from bench_serve import HttpxLoad, Measured, Target, Wrk

        from tests.serve_fixtures import movie_payload

        bodies = [json.dumps(movie_payload(runtime=80 + i, budget=1e6 * (i + 1))) for i in range(20)]
        self.target = Target("movie-intel", "POST", "/predict", bodies)
        self.tmp = Path(tempfile.mkdtemp(prefix="prod-load-"))
        exe = shutil.which("wrk")
        self.generator = Wrk(exe, None, self.tmp) if exe else HttpxLoad()
        self.url, self.seconds, self.concurrency, self.chunk = url, seconds, concurrency, chunk
        self.result = Measured(0, 0, 0.0, 0.0, 0.0)
        self.started = self.ended = 0.0
        self._halt = threading.Event()

    def stop(self) -> None:
        self._halt.set()

    def run(self) -> None:
        from bench_serve import Measured

        self.started = time.time()
        try:
            while not self._halt.is_set() and time.time() - self.started < self.seconds:
                m = self.generator.run(self.url, self.target, self.concurrency, self.chunk)
                r = self.result
                self.result = Measured(
                    r.sent + m.sent, r.errors + m.errors, r.seconds + m.seconds,
                    max(r.p50_ms, m.p50_ms), max(r.p99_ms, m.p99_ms),
                )  # fmt: skip
        finally:
            self.ended = time.time()
            shutil.rmtree(self.tmp, ignore_errors=True)


def _when(ti: dict[str, Any], key: str) -> float:
    return datetime.fromisoformat(ti[key].replace("Z", "+00:00")).timestamp()


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
        t0 = time.monotonic()
        health = httpx.get(f"http://127.0.0.1:{stack.ports['airflow']}/api/v2/monitor/health", timeout=15)
        assert time.monotonic() - t0 < 10
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
