"""The curated feedback's layout and its readers: one owner for where curated days live and how they read.

    curated/feedback/dt=YYYY-MM-DD/interactions.jsonl.gz    good rows, sorted by (ts, event_id)
    quarantine/feedback/dt=YYYY-MM-DD/rows.jsonl.gz         {"reason": ..., "record": ...}

Curation (`services/train/feedback/curate.py`) writes them; erasure, the users CLI, the recommender's
training data, online evaluation and precompute read them through this module.
"""

from __future__ import annotations

import logging
from datetime import UTC, datetime
from typing import Any

import numpy as np
import pyarrow as pa

from services.core import event_table, events
from services.core.storage import ObjectStore

log = logging.getLogger(__name__)

STREAM = "feedback"
CURATED_PREFIX = "curated/feedback"
QUARANTINE_PREFIX = "quarantine/feedback"
CURATED_FIELDS = ("event_id", "ts", "user_id", "tmdb_id", "kind", "value")
CURATED_SCHEMA = pa.schema(
    [("event_id", pa.string()), ("kind", pa.string()), ("positive", pa.bool_()), ("tmdb_id", pa.int64()),
     ("ts", pa.string()), ("user_id", pa.string()), ("value", pa.float64())]
)  # fmt: skip
TS_US = "_ts_us"  # the parsed server time (UTC microseconds), kept beside the curated rows, never written


def curated_key(day: str) -> str:
    """The object key of one day's curated interactions."""
    return f"{CURATED_PREFIX}/dt={day}/interactions.jsonl.gz"


def quarantine_key(day: str) -> str:
    """The object key of one day's quarantined feedback rows."""
    return f"{QUARANTINE_PREFIX}/dt={day}/rows.jsonl.gz"


def event_time(ts: Any) -> datetime | None:
    """An event timestamp as an aware UTC datetime, or None when it is not one."""
    if not isinstance(ts, str):
        return None
    try:
        when = events.parse_ts(ts)
    except ValueError:
        return None
    # A naive time has no defined UTC day, so it cannot be placed in a partition.
    return when.astimezone(UTC) if when.tzinfo is not None else None


def curated_days(store: ObjectStore) -> list[str]:
    """Days that have curated feedback, oldest first."""
    return [d[3:] for d in store.list_dirs(CURATED_PREFIX) if d.startswith("dt=")]


def load_curated_feedback(store: ObjectStore, until: str) -> list[dict[str, Any]]:
    """Every curated interaction of every day up to `until`, deduplicated by event_id (earliest day wins)."""
    days = [d for d in curated_days(store) if d <= until]
    keys = [curated_key(d) for d in days if store.exists(curated_key(d))]
    tables = [event_table.read_jsonl_table(store.get_bytes(k), CURATED_SCHEMA) for k in keys]
    table = pa.concat_tables(tables) if tables else CURATED_SCHEMA.empty_table()
    # Rows are in day order, so "the earliest row per event_id" is the earliest day's.
    first = event_table.first_per_key(table["event_id"], np.arange(table.num_rows, dtype=np.int64))
    out = table.take(pa.array(first)).to_pylist()
    log.info("curated feedback: %d interactions from %d days up to %s", len(out), len(days), until)
    return out
