"""Acknowledged events survive a SIGKILL of the real server (scripts/serve.sh under uvicorn).

A kill is what a crashed process looks like; the power cut, which a kill cannot show, is
tests/serve/test_power_cut.py's.
"""

from __future__ import annotations

import os
import shutil
import signal
from collections import Counter
from pathlib import Path

import httpx
import pytest

from scripts.harness import processes
from services.core import events
from services.core.registry import Registry
from services.core.settings import Settings
from services.core.storage import ObjectStore
from tests.conftest import ROOT
from tests.fakes.s3_hold_proxy import HoldingProxy
from tests.serve_fixtures import publish_rating

pytestmark = pytest.mark.integration
SERVE = [str(ROOT / "scripts" / "serve.sh")]


def _stored(store: ObjectStore) -> Counter[str]:
    ids: Counter[str] = Counter()
    for day in events.days(store, "feedback"):
        ids.update(e["event_id"] for e in events.read_day(store, "feedback", day))
    return ids


def _give_feedback(http: httpx.Client, movie: int, numbers: range) -> list[str]:
    """One POST /feedback per event (its own id), each answered 202; the ids acknowledged."""
    acknowledged = []
    for n in numbers:
        body = {
            "events": [
                {"event_id": f"kill-{n:04d}", "user_id": f"u{n % 7}", "tmdb_id": movie, "kind": "like"}
            ]
        }
        r = http.post("/feedback", json=body)
        assert r.status_code == 202, r.text
        acknowledged += r.json()["event_ids"]
    return acknowledged


def _restart_and_check(
    env: dict[str, str], url: str, acknowledged: list[str], store: ObjectStore, log: Path
) -> None:
    """Start the server again on the same spool: S3 then has every acknowledged event exactly once."""
    restarted = processes.start(SERVE, env, log)
    try:
        processes.wait_ok(url + "/ready", restarted, log, timeout_s=120)
        # The spool is uploaded at start-up, before the server is ready.
        stored = _stored(store)
        assert set(stored) == set(acknowledged)
        assert max(stored.values()) == 1, [k for k, v in stored.items() if v > 1][:5]
        assert "from an earlier run" in log.read_text()
        with httpx.Client(base_url=url, timeout=10) as http:
            movie = http.get("/movies/search", params={"q": "toy story"}).json()["items"][0]["tmdb_id"]
            body = {
                "events": [{"event_id": acknowledged[1], "user_id": "u1", "tmdb_id": movie, "kind": "like"}]
            }
            again = http.post("/feedback", json=body)
        assert again.json()["duplicates"] == 1  # a retry after the crash is recognised, not stored again
    finally:
        processes.stop(restarted)
    assert max(_stored(store).values()) == 1


def test_a_thousand_acknowledged_events_survive_sigkill(
    s3_settings: Settings, registry: Registry, store: ObjectStore, tmp_path: Path
) -> None:
    publish_rating(registry)
    port = processes.free_port()
    env = processes.serve_env(s3_settings, tmp_path, port, SPOOL_FLUSH_INTERVAL_S="3600")
    url = f"http://127.0.0.1:{port}"
    proc = processes.start(SERVE, env, tmp_path / "serve-1.log")
    processes.wait_ok(url + "/ready", proc, tmp_path / "serve-1.log", timeout_s=120)
    with httpx.Client(base_url=url, timeout=10) as http:
        movie = http.get("/movies/search", params={"q": "toy story"}).json()["items"][0]["tmdb_id"]
        acknowledged = _give_feedback(http, movie, range(1000))
    os.killpg(proc.pid, signal.SIGKILL)  # no shutdown hook runs: only the spool on disk remains
    proc.wait(timeout=10)
    assert not _stored(store)  # nothing reached S3 before the kill: the restart below must bring them all
    assert len(acknowledged) == 1000
    _restart_and_check(env, url, acknowledged, store, tmp_path / "serve-2.log")


@pytest.mark.parametrize(
    "hold", ["request", "answer"], ids=["killed-before-s3-stored", "killed-before-s3-answered"]
)
def test_a_kill_in_the_middle_of_a_flush_loses_and_doubles_nothing(
    s3_settings: Settings, registry: Registry, store: ObjectStore, tmp_path: Path, hold: str
) -> None:
    # A proxy in front of S3 holds one feedback upload in flight, so the kill lands inside a flush: after
    # its window was taken and fsynced, before the watermark moved; with S3 not having the window yet, or
    # having stored it without the server hearing so (a restart must then neither lose nor double it).
    publish_rating(registry)
    port = processes.free_port()
    proxy = HoldingProxy(
        s3_settings.s3_endpoint_url or "", f"/{s3_settings.s3_bucket}/events/feedback/", hold
    )
    direct = processes.serve_env(s3_settings, tmp_path, port, SPOOL_FLUSH_INTERVAL_S="0.05")
    # A long read timeout: botocore must not give up on the held upload and retry it before the kill.
    env = {**direct, "S3_ENDPOINT_URL": proxy.endpoint, "S3_READ_TIMEOUT_S": "600"}
    url = f"http://127.0.0.1:{port}"
    proc = processes.start(SERVE, env, tmp_path / "serve-1.log")
    try:
        processes.wait_ok(url + "/ready", proc, tmp_path / "serve-1.log", timeout_s=120)
        with httpx.Client(base_url=url, timeout=10) as http:
            movie = http.get("/movies/search", params={"q": "toy story"}).json()["items"][0]["tmdb_id"]
            acknowledged = _give_feedback(http, movie, range(300))  # flushed as they come, every 50 ms
            proxy.armed.set()
            acknowledged += _give_feedback(http, movie, range(300, 600))
            assert proxy.held.wait(60), "no feedback upload began after the proxy was armed"
            # Taken while the flush is stuck: in the spool after the held window, as a restart finds them.
            later = _give_feedback(http, movie, range(600, 700))
        held = store.list(proxy.held_key)
        window = [e["event_id"] for e in events.decode_lines(store.get_bytes(proxy.held_key))] if held else []
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait(timeout=10)
    finally:
        processes.stop(proc)
        proxy.close()
    assert not set(later) & set(_stored(store))  # the flusher was still stuck when the kill came
    if hold == "answer":
        assert proxy.held_status == "HTTP/1.1 200 OK"  # S3 stored the window; the server never heard so
        assert window and set(window) < set(acknowledged)
    else:
        assert not held  # S3 never saw the window
    acknowledged += later
    assert len(acknowledged) == 700
    _restart_and_check(direct, url, acknowledged, store, tmp_path / "serve-2.log")
    # The restart uploaded the window again under the same name (with the rows taken after it, when they
    # fall on the same day): an object S3 already held was replaced by its own continuation, not doubled.
    again = [e["event_id"] for e in events.decode_lines(store.get_bytes(proxy.held_key))]
    assert again[: len(window)] == window and again


def _predictions(store: ObjectStore) -> int:
    return sum(len(events.read_day(store, "predictions", day)) for day in events.days(store, "predictions"))


def test_a_deleted_spool_never_overwrites_batches_already_in_s3(
    s3_settings: Settings, registry: Registry, store: ObjectStore, tmp_path: Path
) -> None:
    # A pinned REPLICA_ID and a spool that starts again at sequence 1 (compose down/up, a lost volume):
    # the second run's first batches used to take the first run's names and replace acknowledged events.
    publish_rating(registry)
    port = processes.free_port()
    env = processes.serve_env(s3_settings, tmp_path, port, REPLICA_ID="api-1", SPOOL_FLUSH_INTERVAL_S="0.05")
    url = f"http://127.0.0.1:{port}"
    acknowledged: list[str] = []
    for run in range(2):
        log_path = tmp_path / f"serve-{run}.log"
        proc = processes.start(SERVE, env, log_path)
        try:
            processes.wait_ok(url + "/ready", proc, log_path, timeout_s=120)
            with httpx.Client(base_url=url, timeout=10) as http:
                movie = http.get("/movies/search", params={"q": "toy story"}).json()["items"][0]["tmdb_id"]
                for n in range(50):
                    body = {"events": [{"user_id": f"u{n}", "tmdb_id": movie, "kind": "like"}]}
                    r = http.post("/feedback", json=body)
                    assert r.status_code == 202, r.text
                    acknowledged += r.json()["event_ids"]
                    movie_in = {"overview": f"a heist {n}", "runtime": 100, "genres": ["Crime"],
                                "original_language": "en"}  # fmt: skip
                    predicted = http.post("/predict", json=movie_in)
                    assert predicted.status_code == 200, predicted.text
        finally:
            processes.stop(proc)  # a clean stop flushes what is left
        assert set(_stored(store)) == set(acknowledged)
        shutil.rmtree(tmp_path / "spool")  # the next run starts from an empty spool, at sequence 1
    stored = _stored(store)
    assert len(acknowledged) == 100 and set(stored) == set(acknowledged) and max(stored.values()) == 1
    assert _predictions(store) == 100  # the log of every answer, from both runs
    keys = [o.key.rsplit("/", 1)[1] for o in store.list("events/feedback/")]
    epochs = {k.removeprefix("api-1-").split("-")[0] for k in keys}
    assert len(epochs) == 2, keys  # each spool named its batches with its own epoch
