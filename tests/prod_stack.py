"""The production-shape stack the prod tests drive: scripts/prod.sh up in a temp var dir, and its probes."""

import json
import shutil
import subprocess
import tempfile
import threading
import time
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

import httpx

from scripts.harness import processes

ROOT = Path(__file__).resolve().parents[1]
PROD = str(ROOT / "scripts" / "prod.sh")
DAG = "movie_pipeline"
WORKERS = {"worker-1", "worker-2"}
FINISHED = {"success", "failed", "upstream_failed", "skipped", "removed"}


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

    def active_runs(self) -> list[str]:
        """Run ids still queued or running (the DAG has max_active_runs=1: one blocks the next)."""
        return [r["dag_run_id"] for r in self.runs() if r["state"] in ("queued", "running")]

    def wait_idle(self, timeout_s: float) -> list[str]:
        """Wait until no run is active, e.g. the scheduled run the timetable fires at 00:00 UTC when a
        test crosses midnight; returns the runs that were waited for."""
        waited = self.active_runs()
        for run_id in waited:
            self.wait_run(run_id, timeout_s)
        return waited

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
        others = [r for r in self.active_runs() if r != run_id]
        raise AssertionError(
            f"{task_id} not in {states} after {timeout_s} s (last: {ti['state']}; other active runs: {others})"
        )

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
    """Bounded load on /predict through nginx, in a thread: scripts/bench/serve.py's generator (wrk, else httpx).

    It runs in chunks of `chunk` seconds until stop() (after the current chunk) or `seconds` in all,
    so a test can keep it going until the event it watches is over.
    """

    def __init__(self, url: str, seconds: float, concurrency: int = 16, chunk: float = 4.0) -> None:
        super().__init__(daemon=True)
        from scripts.bench.serve_load import HttpxLoad, Measured, Target, Wrk
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
        from scripts.bench.serve_load import Measured

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
