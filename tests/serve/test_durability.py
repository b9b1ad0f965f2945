"""Acknowledged events survive a SIGKILL of the real server (scripts/serve.sh under uvicorn)."""

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
from tests.serve_fixtures import publish_rating

pytestmark = pytest.mark.integration


def _stored(store: ObjectStore) -> Counter[str]:
    ids: Counter[str] = Counter()
    for day in events.days(store, "feedback"):
        ids.update(e["event_id"] for e in events.read_day(store, "feedback", day))
    return ids


@pytest.mark.parametrize("flush_interval_s", ["3600", "0.05"], ids=["nothing-flushed", "killed-mid-flushing"])
def test_a_thousand_acknowledged_events_survive_sigkill(
    s3_settings: Settings, registry: Registry, store: ObjectStore, tmp_path: Path, flush_interval_s: str
) -> None:
    publish_rating(registry)
    port = processes.free_port()
    env = processes.serve_env(s3_settings, tmp_path, port, SPOOL_FLUSH_INTERVAL_S=flush_interval_s)
    url = f"http://127.0.0.1:{port}"
    proc = processes.start([str(ROOT / "scripts" / "serve.sh")], env, tmp_path / "serve-1.log")
    processes.wait_ok(url + "/ready", proc, tmp_path / "serve-1.log", timeout_s=120)
    acknowledged: list[str] = []
    with httpx.Client(base_url=url, timeout=10) as http:
        movie = http.get("/movies/search", params={"q": "toy story"}).json()["items"][0]["tmdb_id"]
        for n in range(1000):
            body = {
                "events": [
                    {"event_id": f"kill-{n:04d}", "user_id": f"u{n % 7}", "tmdb_id": movie, "kind": "like"}
                ]
            }
            r = http.post("/feedback", json=body)
            assert r.status_code == 202, r.text
            acknowledged += r.json()["event_ids"]
    os.killpg(proc.pid, signal.SIGKILL)  # no shutdown hook runs: only the spool on disk remains
    proc.wait(timeout=10)
    before = _stored(store)
    if flush_interval_s == "3600":
        assert not before  # nothing reached S3 before the kill: the restart below must bring them all

    restarted = processes.start([str(ROOT / "scripts" / "serve.sh")], env, tmp_path / "serve-2.log")
    try:
        processes.wait_ok(url + "/ready", restarted, tmp_path / "serve-2.log", timeout_s=120)
        # The spool is uploaded at start-up, before the server is ready.
        stored = _stored(store)
        assert set(stored) == set(acknowledged) and len(acknowledged) == 1000
        assert max(stored.values()) == 1, [k for k, v in stored.items() if v > 1][:5]
        assert "from an earlier run" in (tmp_path / "serve-2.log").read_text() or before
        with httpx.Client(base_url=url, timeout=10) as http:
            again = http.post(
                "/feedback",
                json={
                    "events": [{"event_id": "kill-0001", "user_id": "u1", "tmdb_id": movie, "kind": "like"}]
                },
            )
        assert again.json()["duplicates"] == 1  # a retry after the crash is recognised, not stored again
    finally:
        processes.stop(restarted)
    assert max(_stored(store).values()) == 1


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
        proc = processes.start([str(ROOT / "scripts" / "serve.sh")], env, log_path)
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
