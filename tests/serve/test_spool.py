"""The event spool's promises, on the real Spool and EventLog with a real S3 (SeaweedFS)."""

from __future__ import annotations

import asyncio
import sqlite3
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from services.core import events
from services.core.storage import ObjectStore
from services.serve.event_log import EventLog
from services.serve.metrics import ServeMetrics
from services.serve.spool import Spool


def _fb(event_id: str, ts: str = "2026-12-01T10:00:00.000Z") -> dict:
    return {"event_id": event_id, "ts": ts, "user_id": "u", "tmdb_id": 862, "kind": "like"}


def _pred(n: int, ts: str = "2026-12-01T10:00:00.000Z") -> dict:
    return {"event_id": f"p-{n}", "ts": ts, "prediction": 6.5}


@pytest.fixture
def log(store: ObjectStore, tmp_path: Path) -> Iterator[EventLog]:
    event_log = EventLog(
        Spool(tmp_path / "spool", replica_id="r1"), store, ServeMetrics(), flush_interval_s=3600
    )
    event_log.open()
    yield event_log
    event_log.close()


def _all(store: ObjectStore, stream: str) -> list[dict]:
    return [r for day in events.days(store, stream) for r in events.read_day(store, stream, day)]


def test_feedback_ids_are_deduplicated_and_predictions_are_not_remembered(log: EventLog) -> None:
    assert log.append_wait("feedback", [_fb("a"), _fb("b")]) == [True, True]
    assert log.append_wait("feedback", [_fb("b"), _fb("c"), _fb("c")]) == [False, True, False]
    assert log.record("predictions", [_pred(n) for n in range(100)])
    log.spool.commit_queued()
    conn = sqlite3.connect(log.spool.directory / "events.db")
    assert conn.execute("SELECT stream, count(*) FROM ids GROUP BY stream").fetchall() == [("feedback", 3)]
    assert conn.execute("SELECT count(*) FROM events").fetchone()[0] == 103
    assert log.spool.pending == 103


def test_a_prune_forgets_only_ids_older_than_the_cutoff(log: EventLog) -> None:
    log.append_wait("feedback", [_fb(f"old-{n}", "2026-11-01T00:00:00.000Z") for n in range(1200)])
    log.append_wait("feedback", [_fb("new", "2026-12-01T00:00:00.000Z")])
    assert log.spool.prune("2026-11-20T00:00:00.000Z") == 1200
    assert log.append_wait("feedback", [_fb("old-5"), _fb("new")]) == [True, False]  # forgotten, remembered


def test_a_request_never_waits_while_the_writer_is_busy_with_housekeeping(log: EventLog) -> None:
    inside, release = threading.Event(), threading.Event()

    def long_command(conn: sqlite3.Connection) -> None:
        inside.set()
        release.wait(60)  # held until the test lets go (the timeout only ends a test that already failed)

    busy = threading.Thread(target=log.spool.writer.call, args=(long_command,))
    busy.start()
    try:
        assert inside.wait(10)  # the writer is now inside a command that only the test can end
        for n in range(200):
            assert log.record("predictions", [_pred(n)])
        # All 200 returned while the writer could commit none of them: queued, not waited for. Had
        # record() waited for its commit, it would have returned only after the command's 60 s, committed.
        assert busy.is_alive()
        assert log.spool.pending == 0 and log.spool.waiting == 200
    finally:
        release.set()
        busy.join()

    async def feedback() -> list[bool]:
        return await log.append("feedback", [_fb("after")])

    assert asyncio.run(feedback()) == [True]  # the waiting kind returns once its commit is done
    assert log.flush() == 201


def test_a_new_spool_gets_a_new_epoch_and_never_overwrites_a_batch(
    store: ObjectStore, tmp_path: Path
) -> None:
    epochs = []
    for run in range(2):  # the same replica id and folder, deleted in between: both start at sequence 1
        event_log = EventLog(Spool(tmp_path / f"spool-{run}", replica_id="r1"), store, ServeMetrics())
        event_log.open()
        try:
            event_log.append_wait("feedback", [_fb(f"run{run}-{n}") for n in range(3)])
            assert event_log.flush() == 3
            epochs.append(event_log.spool.epoch)
        finally:
            event_log.close()
    assert epochs[0] != epochs[1]
    assert sorted(e["event_id"] for e in _all(store, "feedback")) == [
        f"run{r}-{n}" for r in (0, 1) for n in range(3)
    ]
    reopened = Spool(tmp_path / "spool-1")
    reopened.open()
    try:
        assert reopened.epoch == epochs[1]  # a restart keeps its epoch: its batch names stay its own
    finally:
        reopened.close()


def test_an_upload_repeated_after_a_crash_is_recognised_and_a_stranger_is_never_overwritten(
    log: EventLog, store: ObjectStore
) -> None:
    log.append_wait("feedback", [_fb("x1"), _fb("x2")])
    (batch,) = log.spool.take(100)
    key = events.batch_key("feedback", batch.day, "r1", batch.first_seq, log.spool.epoch)
    # Our own earlier upload of the first row only (the crash came before the watermark moved).
    store.put_bytes(key, events.encode_jsonl(batch.text.split("\n")[0]))  # as the flusher encoded it
    log.append_wait("feedback", [_fb("x3")])
    assert log.flush() == 3
    assert [e["event_id"] for e in events.decode_lines(store.get_bytes(key))] == ["x1", "x2", "x3"]
    assert len(store.list("events/feedback/")) == 1  # the longer window replaced its own prefix
    # Someone else's batch under the name (a copied spool folder): both kept.
    log.append_wait("feedback", [_fb("y1")])
    (batch,) = log.spool.take(100)
    key = events.batch_key("feedback", batch.day, "r1", batch.first_seq, log.spool.epoch)
    store.put_bytes(key, events.encode_lines([_fb("stranger")]))
    assert log.flush() == 1
    assert sorted(e["event_id"] for e in _all(store, "feedback")) == ["stranger", "x1", "x2", "x3", "y1"]


def test_a_full_spool_counts_what_is_still_queued(store: ObjectStore, tmp_path: Path) -> None:
    event_log = EventLog(Spool(tmp_path / "spool"), store, ServeMetrics(), max_pending=5)
    event_log.open()
    try:
        assert event_log.record("predictions", [_pred(n) for n in range(5)])
        assert not event_log.record("predictions", [_pred(9)])  # refused, not silently over the cap
        assert event_log.spool.waiting == 5
    finally:
        event_log.close()
