"""The impression join: a day's impressions and the positive feedback that answers them, as Arrow tables.

A feedback event answers an impression when it names the same request_id, is positive
(`events.is_positive`), is about a movie that was shown, and arrives within
`events.ANSWER_WINDOW_MIN` minutes after it. Online evaluation (`online_eval.py`) and the experiment
judge (`services/train/experiments/steps.py`) both read impressions and answers through this module.
"""

from __future__ import annotations

from datetime import date, timedelta
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from services.core import event_table
from services.core.event_table import IMPRESSION_SCHEMA
from services.core.storage import ObjectStore
from services.train.feedback.curate import read_curated_day
from services.train.feedback.curated import TS_US

# Only what the join needs: at 10^7 impressions a day every string column left out saves ~10^8 bytes.
# `cached` (issue 21: the answer came from the user's precomputed list) splits the report's `cache` rows.
JOIN_SCHEMA = pa.schema(
    [IMPRESSION_SCHEMA.field(n) for n in ("request_id", "ts", "model_version", "pool", "fallback", "items",
                                          "catalog_size", "cached") if n in IMPRESSION_SCHEMA.names]
)  # fmt: skip


def with_time(batch: pa.Table, keep_text: bool = False) -> pa.Table:
    """Impressions with their parsed time as TS_US (and without the timestamp text, unless kept)."""
    ts_us = pa.array(event_table.timestamps_us(batch["ts"]))
    return (batch if keep_text else batch.drop_columns(["ts"])).append_column(TS_US, ts_us)


def read_impressions(
    store: ObjectStore, day: str, schema: pa.Schema = JOIN_SCHEMA, keep: event_table.Transform | None = None
) -> event_table.DayTable:
    """A day of impressions, only the columns the join needs, each batch's times parsed as it arrives.

    `schema` may add columns to JOIN_SCHEMA's; `keep` filters each batch before it is held with the others.
    """
    return event_table.read_day_table(
        store, "impressions", day, schema, with_time if keep is None else lambda b: with_time(keep(b))
    )


def usable_table(day_table: event_table.DayTable) -> tuple[pa.Table, int]:
    """Impressions fit to join, one per request_id (earliest server time wins), and how many were dropped.

    The table must carry TS_US (`with_time`). Rows off the schema (items that are not ints, …) are dropped.
    Consumes `day_table`: its columns are released as the kept rows are copied, so the day is held
    about once, not twice.
    """
    t, total = day_table.table, day_table.rows
    day_table.table = t.schema.empty_table()
    ts_us = t[TS_US].to_numpy()
    usable = (
        pc.fill_null(pc.not_equal(t["request_id"], ""), False).to_numpy(zero_copy_only=False)
        & (ts_us != event_table.NO_TIME)
        & pc.is_valid(t["items"]).to_numpy(zero_copy_only=False)
        & pc.fill_null(pc.greater_equal(t["catalog_size"], 0), False).to_numpy(zero_copy_only=False)
    )
    rows = np.flatnonzero(usable)
    keys = t["request_id"] if len(rows) == t.num_rows else t["request_id"].take(pa.array(rows))
    keep = pa.array(rows[event_table.first_per_key(keys, ts_us[rows])])
    del keys
    names, columns = t.schema.names, list(t.columns)
    del t
    out = []
    while columns:  # pop: the day's copy of a column goes before the next one is copied
        out.append(columns.pop(0).take(keep))
        event_table.release_memory()
    return pa.table(out, names=names), total - len(keep)


def usable_impressions(records: list[Any]) -> tuple[list[dict[str, Any]], int]:
    """Impressions fit to join, one per request_id (the earliest wins), and how many were dropped."""
    table, off = event_table.from_records(records, JOIN_SCHEMA)
    usable, dropped = usable_table(event_table.DayTable(with_time(table, keep_text=True), off))
    return usable.drop_columns([TS_US]).to_pylist(), dropped


def answers(imps: pa.Table, feedback: pa.Table, window_minutes: int) -> tuple[np.ndarray, np.ndarray]:
    """Per impression: the rank (0-based) of its best-ranked answered movie (-1: none), and its answers.

    An answer is positive feedback naming the impression's request, about a movie it showed, from its
    time to `window_minutes` after.
    """
    n = imps.num_rows
    best, found = np.full(n, -1, dtype=np.int64), np.zeros(n, dtype=np.int64)
    positive = feedback.filter(
        pc.and_(pc.fill_null(feedback["positive"], False), pc.is_valid(feedback["request_id"]))
    )
    if n == 0 or positive.num_rows == 0:
        return best, found
    left = pa.table({"request_id": imps["request_id"], "imp": pa.array(np.arange(n)), "start": imps[TS_US]})
    right = pa.table(
        {"request_id": positive["request_id"], "tmdb_id": positive["tmdb_id"], "at": positive[TS_US]}
    )
    pairs = left.join(right, "request_id", join_type="inner")
    imp, tmdb = pairs["imp"].to_numpy(), pairs["tmdb_id"].to_numpy()
    start, at = pairs["start"].to_numpy(), pairs["at"].to_numpy()
    in_time = (start <= at) & (at <= start + window_minutes * 60_000_000)
    imp, tmdb = imp[in_time], tmdb[in_time]
    # Each answer's own impression's items, flattened: the answer counts where its movie was shown.
    items = imps["items"].combine_chunks().take(pa.array(imp))
    flat = pc.fill_null(pc.list_flatten(items), -1).to_numpy(zero_copy_only=False)
    parent = pc.list_parent_indices(items).to_numpy(zero_copy_only=False)
    offsets = items.offsets.to_numpy()
    offsets = offsets - offsets[0]
    shown = np.flatnonzero(flat == tmdb[parent])
    rank_of = np.full(len(imp), np.iinfo(np.int64).max, dtype=np.int64)
    np.minimum.at(rank_of, parent[shown], shown - offsets[:-1][parent[shown]])
    answered = rank_of != np.iinfo(np.int64).max
    np.add.at(found, imp[answered], 1)
    best_or_max = np.full(n, np.iinfo(np.int64).max, dtype=np.int64)
    np.minimum.at(best_or_max, imp[answered], rank_of[answered])
    best[best_or_max != np.iinfo(np.int64).max] = best_or_max[best_or_max != np.iinfo(np.int64).max]
    return best, found


def answer_feedback(store: ObjectStore, day: str) -> tuple[pa.Table, int]:
    """Valid, deduplicated positive feedback naming a request, of a day and the next; and how many valid events.

    The next day counts because answers to late impressions land after midnight. Only the columns the
    join needs are kept, and only positives: at 10^6 events that is a fraction of the curated day.
    """
    following = (date.fromisoformat(day) + timedelta(days=1)).isoformat()
    parts, ids = [], []
    for d in (day, following):
        # request_id is read here only: the training interactions do not need it.
        rows = read_curated_day(
            store, d, columns=("event_id", "request_id", "tmdb_id", "positive")
        ).interactions
        ids.append(rows["event_id"])
        parts.append(rows.filter(pc.and_(rows["positive"], pc.is_valid(rows["request_id"]))))
        event_table.release_memory()
    valid = pc.count_distinct(pa.chunked_array([c for a in ids for c in a.chunks], pa.string())).as_py()
    table = pa.concat_tables(parts)
    first = event_table.first_per_key(table["event_id"], np.arange(table.num_rows, dtype=np.int64))
    return table.take(pa.array(first)), valid
