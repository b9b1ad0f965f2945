"""The collect step: today's movies from TMDB (or the bundled snapshot) into a raw S3 partition."""

from __future__ import annotations

import logging
from typing import Any

from services.core.settings import Settings
from services.core.storage import ObjectStore
from services.train import raw_store
from services.train.movies.snapshot import load_movies
from services.train.movies.snapshot_feed import next_batch

log = logging.getLogger(__name__)


def seen_before(store: ObjectStore, logical_date: str) -> set[int]:
    """Ids stored by partitions older than this date (a rerun of the date ignores its own)."""
    ids: set[int] = set()
    for date in raw_store.partitions(store):
        if date < logical_date:
            ids.update(int(m["id"]) for m in raw_store.read_partition(store, date))
    return ids


def collect_from_snapshot(settings: Settings, store: ObjectStore, logical_date: str) -> list[dict[str, Any]]:
    """The snapshot feed's batch for this date."""
    movies = load_movies(settings.snapshot_dir)
    seen = seen_before(store, logical_date)
    batch = next_batch(
        movies,
        seen,
        holdback=settings.snapshot_backfill_holdback,
        daily=settings.snapshot_daily_movies,
    )
    if not seen:
        log.info("empty store: backfilling %d of %d snapshot movies", len(batch), len(movies))
    elif not batch:
        log.warning("snapshot exhausted: all %d movies already collected, nothing new arrived", len(movies))
    else:
        log.info("snapshot feed: %d new releases (%d already stored)", len(batch), len(seen))
    return batch


def collect(settings: Settings, store: ObjectStore, logical_date: str, client: Any = None) -> dict[str, Any]:
    """Collect and write the date's partition; returns a summary for XCom (keys, not data)."""
    store.ensure_bucket()
    if settings.tmdb_api_key is not None or client is not None:
        from services.train.movies.tmdb_client import TMDBClient

        client = client or TMDBClient.from_settings(settings)
        movies = client.collect(settings.tmdb_pages)
        source = "tmdb"
    else:
        movies = collect_from_snapshot(settings, store, logical_date)
        source = "snapshot"
    key = raw_store.write_partition(store, logical_date, movies, {"source": source, "date": logical_date})
    log.info("wrote %d movies to s3://%s/%s", len(movies), store.bucket, key)
    return {"partition": key, "rows": len(movies), "source": source, "date": logical_date}
