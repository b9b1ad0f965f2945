"""notify_serving follows the production pointers, not what this try did: real registry on SeaweedFS.

The main test runs two real API replicas (scripts/serve.sh, uvicorn); the edge cases use a small
in-process stand-in of a replica that answers /ready and /admin/reload from the same real registry.
"""

from __future__ import annotations

import json
import re
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import httpx
import pytest
from pydantic import SecretStr

from scripts.harness import processes
from services.core import experiments
from services.core.experiments import effective_candidate, read_candidates
from services.core.registry import Registry
from services.core.settings import Settings
from services.train.context import Context
from services.train.notify import notify_serving
from tests.serve_fixtures import publish_rating, publish_runtime_recommender

ROOT = Path(__file__).resolve().parents[2]
TOKEN = "notify-admin-token-0123456789"


def _ctx(settings: Settings, urls: list[str]) -> Context:
    return Context.from_settings(
        settings.model_copy(update={"serve_url": ",".join(urls), "admin_token": SecretStr(TOKEN)})
    )


def _ready(url: str) -> dict[str, Any]:
    return httpx.get(url + "/ready", timeout=10).json()


def _reload_count(url: str) -> float:
    text = httpx.get(url + "/metrics", timeout=10).text
    return sum(float(v) for v in re.findall(r"^movie_intel_model_reloads_total\{[^}]*\} (\S+)", text, re.M))


@pytest.mark.integration
def test_a_retry_after_a_promote_that_crashed_still_reloads_every_replica(
    registry: Registry, s3_settings: Settings, tmp_path: Path
) -> None:
    first = publish_rating(registry, seed=0)
    recommender = publish_runtime_recommender(registry)
    replicas = []
    try:
        for n in (1, 2):
            port = processes.free_port()
            env = processes.serve_env(s3_settings, tmp_path / f"api-{n}", port, ADMIN_TOKEN=TOKEN)
            log = tmp_path / f"api-{n}.log"
            replicas.append(
                (f"http://127.0.0.1:{port}", processes.start([str(ROOT / "scripts/serve.sh")], env, log), log)
            )
        for url, proc, log in replicas:
            processes.wait_ok(url + "/ready", proc, log, timeout_s=120)
            assert _ready(url)["rating_version"] == first.version
        urls = [url for url, _, _ in replicas]

        # The first try published and promoted, then died before notifying; the retry found nothing new.
        second = publish_rating(registry, seed=1)
        assert registry.production_version("rating") == second.version
        retry = [{"version": second.version, "promoted": False}, {"promoted": False, "skipped": True}]
        out = notify_serving(_ctx(s3_settings, urls), retry)

        assert sorted(out["reloaded"]) == sorted(urls) and out["notified"], out
        for url in urls:
            ready = _ready(url)
            assert ready["rating_version"] == second.version, ready
            assert ready["recommender_version"] == recommender.version, ready

        # Once serving is on the pointers, a later run reloads nothing.
        before = [_reload_count(url) for url in urls]
        again = notify_serving(_ctx(s3_settings, urls), retry)
        assert again["in_sync"] == urls and again["reloaded"] == {} and not again["notified"], again
        assert [_reload_count(url) for url in urls] == before
    finally:
        for _, proc, _ in replicas:
            processes.stop(proc)


# ---- a replica stand-in, for what real replicas rarely do --------------------------------------------
class _Replica(BaseHTTPRequestHandler):
    def do_GET(self) -> None:  # noqa: N802 - http.server's naming
        s = self.server
        held = s.held  # type: ignore[attr-defined]
        body = {"ready": True, "rating_version": held[0], "recommender_version": held[1],
                "recommender_candidate_version": s.candidate}  # type: ignore[attr-defined]  # fmt: skip
        self._send(200, body)

    def do_POST(self) -> None:  # noqa: N802
        s = self.server
        s.reloads += 1  # type: ignore[attr-defined]
        if self.headers.get("Authorization") != f"Bearer {TOKEN}":
            return self._send(401, {"detail": "wrong token"})
        if s.broken:  # type: ignore[attr-defined]
            return self._send(503, {"detail": "reload failed, still serving what was loaded"})
        reg = s.registry  # type: ignore[attr-defined]
        if not s.stuck:  # type: ignore[attr-defined]  # a stuck replica answers 200 but keeps its models
            s.held = (reg.production_version("rating"), reg.production_version("recommender"))  # type: ignore[attr-defined]
            running = effective_candidate(read_candidates(reg, "recommender"), s.held[1])  # type: ignore[attr-defined]
            s.candidate = running.version if running else None  # type: ignore[attr-defined]
        held = s.held  # type: ignore[attr-defined]
        self._send(200, {"changed": True, "rating_version": held[0], "recommender_version": held[1],
                         "recommender_candidate_version": s.candidate})  # type: ignore[attr-defined]  # fmt: skip

    def _send(self, code: int, body: dict[str, Any]) -> None:
        data = json.dumps(body).encode()
        self.send_response(code)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def log_message(self, format: str, *args: object) -> None:  # noqa: A002 - quiet
        return


@contextmanager
def _replica(registry: Registry, held: tuple[str | None, str | None], **how: bool) -> Iterator[Any]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Replica)
    server.registry, server.held, server.reloads = registry, held, 0  # type: ignore[attr-defined]
    server.candidate = None  # type: ignore[attr-defined]
    server.broken, server.stuck = how.get("broken", False), how.get("stuck", False)  # type: ignore[attr-defined]
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    server.url = f"http://127.0.0.1:{server.server_address[1]}"  # type: ignore[attr-defined]
    try:
        yield server
    finally:
        server.shutdown()
        server.server_close()


def _publish(registry: Registry, payload: bytes) -> str:
    files = {"model.json": payload}
    return registry.publish("rating", files, {}, promote=True, reason="test").version


def test_only_replicas_behind_the_pointers_are_reloaded_and_a_down_one_is_skipped(
    registry: Registry, s3_settings: Settings
) -> None:
    old = _publish(registry, b"old")
    new = _publish(registry, b"new")
    down = f"http://127.0.0.1:{processes.free_port()}"
    with _replica(registry, (new, None)) as current, _replica(registry, (old, None)) as behind:
        out = notify_serving(_ctx(s3_settings, [current.url, behind.url, down]), [])
        assert out["in_sync"] == [current.url] and list(out["reloaded"]) == [behind.url], out
        assert down in out["unreachable"]
        assert (current.reloads, behind.reloads, behind.held) == (0, 1, (new, None))


@pytest.mark.parametrize(
    ("how", "says"),
    [({"broken": True}, "HTTP 503"), ({"stuck": True}, "reloaded, but serves")],
)
def test_a_replica_left_behind_the_pointers_fails_the_task_after_all_are_tried(
    registry: Registry, s3_settings: Settings, how: dict[str, bool], says: str
) -> None:
    old = _publish(registry, b"old")
    new = _publish(registry, b"new")
    with _replica(registry, (old, None), **how) as bad, _replica(registry, (old, None)) as good:
        with pytest.raises(RuntimeError, match=says):
            notify_serving(_ctx(s3_settings, [bad.url, good.url]), [{"promoted": True, "version": new}])
        assert good.held == (new, None), "the healthy replica after the bad one was not reloaded"


def test_nothing_in_production_or_no_serve_url_reloads_nothing(
    registry: Registry, s3_settings: Settings
) -> None:
    with _replica(registry, (None, None)) as replica:
        assert notify_serving(_ctx(s3_settings, [replica.url]), [])["notified"] is False
        assert replica.reloads == 0
    assert notify_serving(_ctx(s3_settings, []), [{"promoted": True}])["reason"] == "SERVE_URL not set"


def test_starting_and_ending_an_experiment_reloads_the_replicas(
    registry: Registry, s3_settings: Settings
) -> None:
    rating = _publish(registry, b"rating")
    production = registry.publish("recommender", {"model.json": b"p"}, {}, promote=True).version
    candidate = registry.publish("recommender", {"model.json": b"c"}, {}, promote=False).version
    with _replica(registry, (rating, production)) as replica:
        ctx = _ctx(s3_settings, [replica.url])
        assert notify_serving(ctx, [])["in_sync"] == [replica.url]  # production only, as held

        experiment = experiments.start(registry, "recommender", candidate, share=0.2)
        started = notify_serving(ctx, [])
        assert list(started["reloaded"]) == [replica.url] and replica.candidate == candidate, started
        assert started["candidates"] == {"rating": None, "recommender": candidate}
        assert notify_serving(ctx, [])["in_sync"] == [replica.url]

        experiments.end(
            registry, "recommender", "rolled_back", "test", experiment_id=experiment.experiment_id
        )
        ended = notify_serving(ctx, [])
        assert list(ended["reloaded"]) == [replica.url] and replica.candidate is None, ended
        assert replica.reloads == 2


def test_a_replica_that_could_not_load_the_candidate_fails_the_task(
    registry: Registry, s3_settings: Settings
) -> None:
    rating = _publish(registry, b"rating")
    production = registry.publish("recommender", {"model.json": b"p"}, {}, promote=True).version
    candidate = registry.publish("recommender", {"model.json": b"c"}, {}, promote=False).version
    experiments.start(registry, "recommender", candidate, share=0.2)
    stuck = _replica(registry, (rating, production), stuck=True)  # serves production only
    with stuck as replica, pytest.raises(RuntimeError, match="reloaded, but serves"):
        notify_serving(_ctx(s3_settings, [replica.url]), [])
