"""A power cut takes back nothing acknowledged: the real server's syncs, read from its system calls.

A SIGKILL cannot test this (tests/serve/test_durability.py): a killed process's writes are in the
kernel's page cache and survive it whether or not they were synced, so synchronous=NORMAL or OFF passes
a kill as well as FULL does. A power cut loses exactly what the kernel has not yet written to the disk.
What moves a file's written bytes to stable storage is fsync or fdatasync returning (for a disk that
honours cache flushes, which is the storage's promise, not ours); and SQLite's recovery keeps every
transaction whose commit frame is in the WAL. So "on stable storage before it is acknowledged" is, in
the order of the server's own system calls:

    the commit's writes to events.db-wal return -> an fsync/fdatasync of events.db-wal begins and
    returns -> the acknowledgement is written to its socket

and these tests check that order in a trace of the real server (scripts/serve.sh under strace -f,
tests/syscall_trace.py): for every 202 of POST /feedback, and for every batch PUT to S3 of rows
committed under SPOOL_SYNCHRONOUS=NORMAL. This is sufficient for the promise and fails without it:
under NORMAL a commit writes the same WAL frames and returns with no sync (the WAL is synced only at
checkpoints, which run in the flusher's rounds, not here), and a flush without its sync_to_disk() puts
rows on S3 that a power cut could take back and whose sequence numbers would be given again.
The alternative, a shim dropping unsynced writes at a simulated power cut, needs a compiler at test
time and a page-cache model of its own; the order of calls is what such a shim would act on anyway.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import httpx
import pytest

from scripts.harness import processes
from services.core.registry import Registry
from services.core.settings import Settings
from tests.conftest import ROOT
from tests.serve_fixtures import publish_rating
from tests.syscall_trace import SYNCS, Call, read_trace, sends, traced, unsynced_before

pytestmark = pytest.mark.integration  # strace comes from tests.prerequisites: a skip, or a failure in CI


def _traced_server(
    s3_settings: Settings, registry: Registry, tmp_path: Path, requests: Callable[[httpx.Client, int], None]
) -> list[Call]:
    """Run the server under strace, send it requests, stop it with SIGTERM; its traced system calls."""
    publish_rating(registry)
    port = processes.free_port()
    # No flusher round while requests come (its checkpoints sync the WAL too): the only flush is the
    # shutdown's. Predictions are committed under NORMAL, the setting whose rows a window must sync.
    env = processes.serve_env(
        s3_settings, tmp_path, port, SPOOL_FLUSH_INTERVAL_S="3600", SPOOL_SYNCHRONOUS="NORMAL"
    )
    trace, log = tmp_path / "strace.txt", tmp_path / "serve.log"
    proc = processes.start(traced([str(ROOT / "scripts" / "serve.sh")], trace), env, log)
    try:
        processes.wait_ok(f"http://127.0.0.1:{port}/ready", proc, log, timeout_s=120)
        with httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=10) as http:
            movie = http.get("/movies/search", params={"q": "toy story"}).json()["items"][0]["tmdb_id"]
            requests(http, movie)
    finally:
        processes.stop(proc, timeout_s=60)  # strace stays until the server has flushed and exited
    return read_trace(trace)


def test_every_feedback_202_is_written_after_its_commit_is_fsynced(
    s3_settings: Settings, registry: Registry, tmp_path: Path
) -> None:
    def feedback(http: httpx.Client, movie: int) -> None:
        for n in range(20):  # one request at a time: each 202 has its own commit before it
            event = {"event_id": f"cut-{n}", "user_id": "u", "tmdb_id": movie, "kind": "like"}
            assert http.post("/feedback", json={"events": [event]}).status_code == 202

    calls = _traced_server(s3_settings, registry, tmp_path, feedback)
    wal = str(tmp_path / "spool" / "events.db-wal")
    acks = sends(calls, '"HTTP/1.1 202 ')
    assert len(acks) == 20, f"{len(acks)} 202s in the trace"
    since = -1
    for n, ack in enumerate(acks):
        why = unsynced_before(calls, ack.began, since, wal)
        assert why is None, f"202 number {n + 1} was sent before its commit was on disk: {why}"
        since = ack.began
    # The WAL's name must survive too: its folder was synced after the file was made, before any 202.
    first_write = min(c.ended for c in calls if c.path == wal)
    folder = str(tmp_path / "spool")
    assert any(
        c.name in SYNCS and c.path == folder and c.began > first_write and c.ended < acks[0].began
        for c in calls
    )


def test_a_window_is_fsynced_before_it_is_uploaded(
    s3_settings: Settings, registry: Registry, tmp_path: Path
) -> None:
    def predictions(http: httpx.Client, movie: int) -> None:
        for n in range(5):
            movie_in = {
                "overview": f"a heist {n}",
                "runtime": 100,
                "genres": ["Crime"],
                "original_language": "en",
            }
            assert http.post("/predict", json=movie_in).status_code == 200

    calls = _traced_server(s3_settings, registry, tmp_path, predictions)
    wal = str(tmp_path / "spool" / "events.db-wal")
    puts = sends(calls, f'"PUT /{s3_settings.s3_bucket}/events/predictions/')
    assert puts, "no upload of the predictions in the trace"
    for put in puts:
        why = unsynced_before(calls, put.began, -1, wal)
        assert why is None, f"a window of predictions was uploaded before it was on disk: {why}"
