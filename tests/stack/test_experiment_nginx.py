"""An experiment ended under load, through Debian's nginx in front of two real replicas: no request fails.

Sixteen clients call /recommend through nginx with their user ids while a canary runs. Half way, the
canary is rolled back and every replica reloaded the way the DAG's notify_serving does it. Every
request must get its 200, users in the candidate arm before the reload must have been given the
candidate's version, and after the reload every user gets production.
"""

from __future__ import annotations

import secrets
import sys
import threading
import time
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from pydantic import SecretStr

from scripts.harness import processes
from services.core import experiments
from services.core.embedded_s3 import EmbeddedS3
from services.core.registry import Registry
from services.core.settings import Settings
from services.core.storage import ObjectStore
from services.train.context import Context
from services.train.notify import notify_serving
from tests import prerequisites
from tests.serve_fixtures import publish_rating, publish_runtime_recommender
from tests.stack.test_nginx import _start_nginx
from tests.waiting import wait_until

CLIENTS = 16
TOKEN = "t-" + secrets.token_hex(8)


def _serve(settings: Settings, home: Path, name: str) -> tuple[str, object]:
    port = processes.free_port()
    env = processes.serve_env(
        settings, home / name, port, REPLICA_ID=name, SPOOL_FLUSH_INTERVAL_S="0.2", ADMIN_TOKEN=TOKEN
    )
    cmd = [sys.executable, "-m", "uvicorn", "services.serve.app:create_app", "--factory",
           "--host", "127.0.0.1", "--port", str(port), "--no-access-log"]  # fmt: skip
    proc = processes.start(cmd, env, home / f"{name}.log")
    url = f"http://127.0.0.1:{port}"
    processes.wait_ok(url + "/ready", proc, home / f"{name}.log", timeout_s=120)
    return url, proc


@pytest.fixture
def canary_stack(
    s3_server: EmbeddedS3, tmp_path: Path
) -> Iterator[tuple[str, list[str], Registry, Settings]]:
    prerequisites.program("nginx")
    settings = Settings(
        _env_file=None, s3_endpoint_url=s3_server.endpoint, s3_bucket="t-" + secrets.token_hex(6),
        aws_access_key_id=s3_server.access_key, aws_secret_access_key=s3_server.secret_key,
        wandb_mode="disabled", tmdb_api_key=None,
    )  # fmt: skip
    store = ObjectStore.from_settings(settings)
    store.ensure_bucket()
    registry = Registry(store)
    publish_rating(registry)
    prod = publish_runtime_recommender(registry)
    files = {name: registry.read_file(prod, name) for name in prod.files}
    cand = registry.publish("recommender", files, {"algorithm": "popularity"}, promote=False)
    experiments.start(registry, "recommender", cand.version, share=0.5, started_by="test")
    procs = []
    try:
        urls = []
        for name in ("api-1", "api-2"):
            url, proc = _serve(settings, tmp_path, name)
            urls.append(url)
            procs.append(proc)
        nginx, front = _start_nginx(tmp_path / "nginx", [int(u.rsplit(":", 1)[1]) for u in urls])
        procs.append(nginx)
        yield (
            front,
            urls,
            registry,
            settings.model_copy(update={"serve_url": ",".join(urls), "admin_token": SecretStr(TOKEN)}),
        )
    finally:
        for proc in procs:
            processes.stop(proc)  # type: ignore[arg-type]


@pytest.mark.integration
def test_a_rollback_under_load_through_nginx_loses_no_request(canary_stack) -> None:  # type: ignore[no-untyped-def]
    front, _, registry, settings = canary_stack
    running = experiments.read_candidates(registry, "recommender").running
    assert running is not None
    stop = threading.Event()
    answers: Counter[tuple[int, str]] = Counter()
    after_reload: list[tuple[str, str]] = []
    reloaded = threading.Event()
    failures: list[str] = []

    def client(n: int) -> None:
        with httpx.Client(base_url=front, timeout=30) as http:
            i = 0
            while not stop.is_set():
                user = f"load-{n}-{i % 50}"
                done_before = reloaded.is_set()
                try:
                    r = http.post("/recommend", json={"liked": [], "k": 5, "user_id": user})
                except httpx.HTTPError as exc:
                    failures.append(f"{user}: {exc!r}")
                    time.sleep(0.1)
                    continue
                answers[(r.status_code, r.json().get("arm", "?") if r.status_code == 200 else "")] += 1
                if r.status_code != 200:
                    failures.append(f"{user}: {r.status_code} {r.text[:200]}")
                    time.sleep(0.1)
                elif done_before:
                    after_reload.append((r.json()["arm"], r.json()["model_version"]))
                i += 1

    threads = [threading.Thread(target=client, args=(n,), daemon=True) for n in range(CLIENTS)]
    for t in threads:
        t.start()
    try:
        # The rollback lands while the split is live: both arms have answered.
        wait_until(
            lambda: answers[(200, "candidate")] and answers[(200, "production")], 60, "both arms' answers"
        )
        experiments.end(registry, "recommender", "rolled_back", "test: rolled back under load",
                        experiment_id=running.experiment_id)  # fmt: skip
        result = notify_serving(Context.from_settings(settings), [])
        reloaded.set()
        wait_until(lambda: len(after_reload) >= 5 * CLIENTS, 60, "five answers per client after the reload")
    finally:
        stop.set()
        for t in threads:
            t.join(timeout=60)
    assert not failures, failures[:5]
    assert answers[(200, "candidate")] > 0 and answers[(200, "production")] > 0  # the split was live
    assert after_reload and {arm for arm, _ in after_reload} == {"production"}, result
    assert {v for _, v in after_reload} == {running.production_version}
