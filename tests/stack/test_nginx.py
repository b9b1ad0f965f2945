"""deploy/nginx/nginx.conf for real: Debian's nginx on loopback in front of two real uvicorn replicas.

The config is rendered as scripts/prod.sh renders it (the shared nginx.conf, upstream.conf and listen.conf
beside it). Retries of POST /feedback, body caps per route and the per-client rate limit are checked
through it; the replicas run tests/hold_ack_app.py (the API with its /feedback answer held back).
"""

from __future__ import annotations

import json
import os
import re
import secrets
import shutil
import signal
import subprocess
import sys
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest

from scripts.harness import processes
from services.core import events
from services.core.embedded_s3 import EmbeddedS3
from services.core.registry import Registry
from services.core.settings import Settings
from services.core.storage import ObjectStore
from services.serve import request_ids
from services.serve.event_schemas import FeedbackEventIn
from services.serve.limits import BODY_LIMITS, DEFAULT_BODY_LIMIT, human
from services.train.feedback.curate import collect_feedback
from services.train.feedback.curated import load_curated_feedback
from tests import prerequisites
from tests.serve_fixtures import movie_payload, publish_rating
from tests.waiting import wait_until

ROOT = Path(__file__).resolve().parents[2]
CONF = ROOT / "deploy" / "nginx" / "nginx.conf"
HOLD_S = 4.0


def _size(text: str) -> int:
    number, unit = re.fullmatch(r"(\d+)([km]?)", text).groups()  # type: ignore[union-attr]
    return int(number) * {"": 1, "k": 1024, "m": 1024**2}[unit]


# ---- the config as written (no nginx needed) ------------------------------------------------------------
def test_nginx_caps_each_route_as_the_app_does() -> None:
    conf = CONF.read_text()
    located = {
        path: _size(cap)
        for path, cap in re.findall(r"location = (\S+) \{[^}]*?client_max_body_size (\w+);", conf, re.S)
    }
    assert located == BODY_LIMITS
    (default,) = re.findall(r"^  client_max_body_size (\w+);", conf, re.M)  # http level: every other route
    assert _size(default) == DEFAULT_BODY_LIMIT
    # The 413 page names the same caps.
    for path, cap in BODY_LIMITS.items():
        assert f"{path} {human(cap)}" in conf, path


# ---- a stack: SeaweedFS, two replicas, nginx --------------------------------------------------------------
@dataclass
class Replica:
    """One uvicorn replica (tests/hold_ack_app.py) and how to start it again."""

    name: str
    port: int
    env: dict[str, str]
    log: Path
    marker: Path
    proc: subprocess.Popen | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> None:
        cmd = [sys.executable, "-m", "uvicorn", "tests.hold_ack_app:create_app", "--factory",
               "--host", "127.0.0.1", "--port", str(self.port), "--http", "httptools", "--no-access-log"]  # fmt: skip
        self.proc = processes.start(cmd, self.env, self.log)
        processes.wait_ok(self.url + "/ready", self.proc, self.log, timeout_s=120)

    def kill(self) -> None:
        assert self.proc is not None
        os.killpg(self.proc.pid, signal.SIGKILL)
        self.proc.wait(timeout=10)


@dataclass
class Stack:
    """nginx on loopback in front of two replicas, on a bucket with a published rating model."""

    url: str
    replicas: list[Replica]
    store: ObjectStore
    nginx_log: Path


def _start_nginx(home: Path, ports: list[int]) -> tuple[subprocess.Popen, str]:
    # As start_nginx (scripts/prod/serving.sh) writes them.
    home.mkdir()
    shutil.copy(CONF, home / "nginx.conf")
    servers = "".join(f"  server 127.0.0.1:{p} max_fails=1 fail_timeout=5s;\n" for p in ports)
    (home / "upstream.conf").write_text(f"upstream api {{\n{servers}  keepalive 32;\n}}\n")
    port = processes.free_port()
    (home / "listen.conf").write_text(f"listen 127.0.0.1:{port};\n")
    cmd = [prerequisites.program("nginx"), "-p", str(home), "-c", str(home / "nginx.conf"), "-e", str(home / "error.log"),
           "-g", f"daemon off; pid {home / 'nginx.pid'};"]  # fmt: skip
    proc = processes.start(cmd, dict(os.environ), home / "nginx.log")
    url = f"http://127.0.0.1:{port}"
    processes.wait_ok(url + "/ready", proc, home / "error.log", timeout_s=30)
    return proc, url


@pytest.fixture(scope="module")
def stack(s3_server: EmbeddedS3, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    prerequisites.program("nginx")
    tmp = tmp_path_factory.mktemp("nginx-stack")
    settings = Settings(
        _env_file=None, s3_endpoint_url=s3_server.endpoint, s3_bucket="t-" + secrets.token_hex(6),
        aws_access_key_id=s3_server.access_key, aws_secret_access_key=s3_server.secret_key,
        wandb_mode="disabled", tmdb_api_key=None,
    )  # fmt: skip
    store = ObjectStore.from_settings(settings)
    store.ensure_bucket()
    publish_rating(Registry(store))
    replicas = []
    for n in (1, 2):
        port = processes.free_port()
        env = processes.serve_env(
            settings, tmp / f"api-{n}", port, REPLICA_ID=f"api-{n}", SPOOL_FLUSH_INTERVAL_S="0.2",
            HOLD_ACK_MARKER=str(tmp / f"api-{n}.held"), HOLD_ACK_S=str(HOLD_S),
        )  # fmt: skip
        replicas.append(Replica(f"api-{n}", port, env, tmp / f"api-{n}.log", tmp / f"api-{n}.held"))
    started: list[subprocess.Popen] = []
    try:
        for r in replicas:
            r.start()
        nginx, url = _start_nginx(tmp / "nginx", [r.port for r in replicas])
        started.append(nginx)
        yield Stack(url, replicas, store, tmp / "nginx" / "nginx.log")
    finally:
        for proc in [*started, *(r.proc for r in replicas if r.proc is not None)]:
            processes.stop(proc)


def _client(url: str, source: str = "127.0.0.1") -> httpx.Client:
    # 127.0.0.1 is exempt from the rate limit (this host's own parts); any other loopback address is not.
    return httpx.Client(base_url=url, timeout=30, transport=httpx.HTTPTransport(local_address=source))


# ---- retries --------------------------------------------------------------------------------------------
@pytest.mark.integration
def test_a_feedback_retried_after_a_crash_between_commit_and_answer_is_curated_once(stack: Stack) -> None:
    with _client(stack.url) as http:
        movies = [m["tmdb_id"] for m in http.get("/movies/search", params={"q": "the"}).json()["items"][:3]]
    sent = [{"user_id": "u-retry", "tmdb_id": m, "kind": "like"} for m in movies]  # no event_id
    answer: dict[str, httpx.Response] = {}

    def post() -> None:
        with _client(stack.url) as http:
            answer["r"] = http.post("/feedback", json={"events": sent})

    poster = threading.Thread(target=post)
    poster.start()
    deadline = time.monotonic() + 20
    while not any(r.marker.exists() for r in stack.replicas):
        assert time.monotonic() < deadline, "no replica stored the events"
        time.sleep(0.01)
    # The first replica has committed the events and is holding its 202: it dies now, as in a crash.
    (first,) = [r for r in stack.replicas if r.marker.exists()]
    first.kill()
    poster.join(timeout=30)
    r = answer["r"]
    assert r.status_code == 202, r.text
    (other,) = [x for x in stack.replicas if x is not first]
    assert other.marker.exists()  # nginx sent the same request on, to the other replica
    # The ids come from the request id nginx gave both attempts, and it is the one it answers with.
    request_id = r.headers["X-Request-ID"]
    expected = [
        request_ids.event_id(request_id, i, FeedbackEventIn(**e).model_dump(exclude={"event_id"}))
        for i, e in enumerate(sent)
    ]
    assert r.json()["event_ids"] == expected and r.json()["accepted"] == 3

    first.marker.unlink()
    first.start()  # a restart uploads what the killed replica had acknowledged to no one
    deadline = time.monotonic() + 30
    while True:
        stored = _feedback(stack.store)
        copies = Counter(e["event_id"] for e in stored if e["user_id"] == "u-retry")
        if set(copies) == set(expected) and set(copies.values()) == {2}:
            break
        assert time.monotonic() < deadline, f"both replicas' copies not in S3: {copies}"
        time.sleep(0.2)
    # Both replicas stored every event (nothing is lost) under one id, so curation keeps one copy each.
    assert {e["replica"] for e in stored if e["user_id"] == "u-retry"} == {"api-1", "api-2"}
    day = stored[0]["ts"][:10]
    collect_feedback(stack.store, day)
    curated = [e for e in load_curated_feedback(stack.store, day) if e["user_id"] == "u-retry"]
    assert sorted(e["event_id"] for e in curated) == sorted(expected)


@pytest.mark.integration
def test_a_client_request_id_is_passed_on_and_answered(stack: Stack) -> None:
    with _client(stack.url) as http:
        mine = http.get("/health", headers={"X-Request-ID": "client-chosen-1"})
        theirs = http.get("/health")
    assert mine.headers["X-Request-ID"] == "client-chosen-1"
    assert re.fullmatch(r"[0-9a-f]{32}", theirs.headers["X-Request-ID"])


def _feedback(store: ObjectStore) -> list[dict]:
    return [e for day in events.days(store, "feedback") for e in events.read_day(store, "feedback", day)]


# ---- body caps -------------------------------------------------------------------------------------------
@pytest.mark.integration
@pytest.mark.parametrize("path", sorted(BODY_LIMITS))
def test_a_body_over_the_route_cap_is_refused_by_nginx(stack: Stack, path: str) -> None:
    cap = BODY_LIMITS[path]
    prefix = b"[]"  # JSON that no route takes (a list, not an object): a 422 means the replica had it
    with _client(stack.url) as http:
        at_cap = http.post(path, content=prefix + b" " * (cap - len(prefix)),
                           headers={"Content-Type": "application/json"})  # fmt: skip
        over = http.post(path, content=prefix + b" " * (cap + 1 - len(prefix)),
                         headers={"Content-Type": "application/json"})  # fmt: skip
    assert at_cap.status_code == 422, at_cap.text
    assert over.status_code == 413 and over.headers["content-type"] == "application/json"
    assert f"{path} {human(cap)}" in over.json()["detail"]
    _assert_nginx_refused(stack, over)


@pytest.mark.integration
def test_a_streamed_body_over_the_cap_is_refused_by_nginx(stack: Stack) -> None:
    def chunks() -> Iterator[bytes]:
        yield b'{"liked": ['
        for _ in range(BODY_LIMITS["/recommend"] // 1000 + 1):  # just over the cap, in 1,000-byte chunks
            yield b"1, " * 333 + b" "
        yield b"1]}"

    with _client(stack.url) as http:
        r = http.post("/recommend", content=chunks(), headers={"Content-Type": "application/json"})
    assert r.status_code == 413
    _assert_nginx_refused(stack, r)


def _assert_nginx_refused(stack: Stack, answer: httpx.Response) -> None:
    """The 413 is nginx's own: its body (the app's names the route and byte count), and no upstream tried."""
    (body,) = re.findall(r"return 413 '(.*)'", CONF.read_text())
    assert answer.json() == json.loads(body.replace("\\'", "'").replace("\\n", "")), answer.text
    tail = f" id={answer.headers['X-Request-ID']}"

    def logged() -> str | None:
        return next((ln for ln in stack.nginx_log.read_text().splitlines() if ln.endswith(tail)), None)

    line = wait_until(logged, 30, "nginx's access log line for this request")
    # `upstream=$upstream_addr $upstream_status`: "- -" when nginx answered without asking a replica.
    assert re.search(r'" 413 \d+ \S+ upstream=- - ', line), line


# ---- rate limit ------------------------------------------------------------------------------------------
@pytest.mark.integration
def test_a_client_over_the_rate_gets_429_with_retry_after(stack: Stack) -> None:
    with _client(stack.url, "127.0.0.2") as http:
        passed, t0 = _until_limited(lambda: http.get("/health"), 1000)
        elapsed = time.monotonic() - t0
        # Bursts of 100 at once, then 50 a second: what passed is the burst and what refilled meanwhile.
        # Not a speed claim: the client's interval contains nginx's, so load only widens the allowance.
        assert 100 <= passed.count <= 101 + 50 * elapsed + 1, (passed.count, elapsed)
        limited = passed.refused
        assert limited.headers["Retry-After"] == "1" and limited.headers["content-type"] == "application/json"
        assert "too many requests" in limited.json()["detail"]
        time.sleep(float(limited.headers["Retry-After"]))
        assert http.get("/health").status_code == 200  # it may come back after Retry-After
    with _client(stack.url) as http:  # 127.0.0.1, this host's own parts, is not limited
        assert {http.get("/health").status_code for _ in range(200)} == {200}


@pytest.mark.integration
def test_predict_batch_has_a_lower_rate_of_its_own(stack: Stack) -> None:
    body = {"movies": [movie_payload()]}
    with _client(stack.url, "127.0.0.3") as http:
        passed, t0 = _until_limited(lambda: http.post("/predict/batch", json=body), 50)
        elapsed = time.monotonic() - t0
        single = http.post("/predict", json=movie_payload()).status_code
    # One a second, bursts of 5 (the allowance for refill widens under load, as above).
    assert 6 <= passed.count <= 6 + elapsed + 1, (passed.count, elapsed)
    assert single == 200  # the other routes' budget is apart


@dataclass
class Passed:
    """How many requests passed before the first 429, and that 429."""

    count: int
    refused: httpx.Response


def _until_limited(call: Callable[[], httpx.Response], most: int) -> tuple[Passed, float]:
    t0 = time.monotonic()
    for n in range(most):
        r = call()
        if r.status_code == 429:
            return Passed(n, r), t0
        assert r.status_code == 200, r.text
    raise AssertionError(f"no 429 after {most} requests")


def test_the_429_body_is_json() -> None:
    (body,) = re.findall(r"return 429 '(.*)'", CONF.read_text())
    assert json.loads(body.replace("\\n", ""))["detail"]
