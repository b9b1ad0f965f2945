"""Raw movie partitions in S3: one gzipped JSON-lines file per logical date."""

from __future__ import annotations

import gzip
import json
import logging
from typing import Any

from services.core import events
from services.core.storage import ObjectStore

log = logging.getLogger(__name__)

RAW_PREFIX = "raw/tmdb"


def day_key(kind: str, logical_date: str, name: str) -> str:
    """The object key of one file of a step's day partition: <kind>/dt=<date>/<name>."""
    return f"{kind}/dt={logical_date}/{name}"


def partition_key(logical_date: str) -> str:
    """The object key of one date's partition."""
    return f"{RAW_PREFIX}/dt={logical_date}/movies.jsonl.gz"


def write_jsonl(store: ObjectStore, key: str, rows: list[dict[str, Any]]) -> None:
    """Write rows as gzipped JSON lines."""
    body = "\n".join(json.dumps(r, ensure_ascii=False, sort_keys=True, default=str) for r in rows).encode()
    # mtime=0 keeps the bytes identical for identical input, so a rerun is a true no-op.
    store.put_bytes(key, gzip.compress(body, mtime=0), "application/gzip")


def read_jsonl(store: ObjectStore, key: str) -> list[dict[str, Any]]:
    """Read gzipped JSON lines."""
    return events.decode_lines(store.get_bytes(key))


def write_partition(store: ObjectStore, logical_date: str, movies: list[dict[str, Any]], meta: dict) -> str:
    """Write (or overwrite) a date's partition, then its metadata; returns the data key."""
    key = partition_key(logical_date)
    write_jsonl(store, key, movies)
    store.put_json(f"{RAW_PREFIX}/dt={logical_date}/_meta.json", {**meta, "rows": len(movies)})
    return key


def read_partition(store: ObjectStore, logical_date: str) -> list[dict[str, Any]]:
    """The movies of one date's partition."""
    return read_jsonl(store, partition_key(logical_date))


def partitions(store: ObjectStore) -> list[str]:
    """Logical dates that have a partition, oldest first."""
    out = []
    for name in store.list_dirs(RAW_PREFIX):
        if name.startswith("dt=") and store.exists(partition_key(name[3:])):
            out.append(name[3:])
    return out


def load_union(store: ObjectStore, until: str | None = None) -> tuple[list[dict[str, Any]], list[str]]:
    """Every movie of every partition up to a date, deduplicated by id (the newest partition wins)."""
    dates = [d for d in partitions(store) if until is None or d <= until]
    by_id: dict[int, dict[str, Any]] = {}
    for date in dates:
        for movie in read_partition(store, date):
            by_id[int(movie["id"])] = movie
    log.info("training set: %d movies from %d partitions", len(by_id), len(dates))
    return list(by_id.values()), dates
