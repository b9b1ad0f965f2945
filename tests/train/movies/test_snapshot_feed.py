"""The snapshot replays like a live feed: backfill, ~100 a day, idempotent reruns, exhaustion."""

from __future__ import annotations

import logging

import pytest

from services.core.settings import Settings
from services.core.storage import ObjectStore
from services.train import raw_store
from services.train.movies.collect import collect
from services.train.movies.snapshot_feed import next_batch


def _movies(n: int) -> list[dict]:
    return [{"id": i, "release_date": f"2000-01-{1 + i % 28:02d}"} for i in range(1, n + 1)]


def test_backfill_then_daily_batches_then_nothing() -> None:
    movies = _movies(50)
    first = next_batch(movies, set(), holdback=20, daily=8)
    assert len(first) == 30
    seen = {m["id"] for m in first}
    assert max(m["release_date"] for m in first) <= min(
        m["release_date"] for m in movies if m["id"] not in seen
    )  # the backfill holds back the most recent releases
    days = []
    while batch := next_batch(movies, seen, holdback=20, daily=8):
        days.append(len(batch))
        seen |= {m["id"] for m in batch}
    assert days == [8, 8, 4]


def test_collect_writes_one_partition_per_date_and_reruns_do_not_duplicate(
    s3_settings: Settings, store: ObjectStore, caplog: pytest.LogCaptureFixture
) -> None:
    settings = s3_settings.model_copy(
        update={"snapshot_backfill_holdback": 150, "snapshot_daily_movies": 100}
    )
    first = collect(settings, store, "2026-11-20")
    assert first["rows"] == 4999 - 150 and first["source"] == "snapshot"
    second = collect(settings, store, "2026-11-21")
    assert second["rows"] == 100
    again = collect(settings, store, "2026-11-21")  # rerun of the same date
    assert again["rows"] == 100
    assert raw_store.partitions(store) == ["2026-11-20", "2026-11-21"]
    movies, _ = raw_store.load_union(store)
    assert len(movies) == 4999 - 50
    collect(settings, store, "2026-11-22")
    with caplog.at_level(logging.WARNING):
        last = collect(settings, store, "2026-11-23")
    assert last["rows"] == 0
    assert "nothing new arrived" in caplog.text
