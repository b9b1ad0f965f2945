"""Collect the app's feedback: one day of `events/feedback`, deduplicated, checked, curated.

The serving host appends what people said about movies (like, dislike, watched, a star rating)
to `events/feedback/dt=…/`. This step reads a day back, drops repeats of one event (a client
retrying against another replica sends the same event_id twice), quarantines rows that fail a
check with their reason, and writes the rest as the day's interactions:

    curated/feedback/dt=YYYY-MM-DD/interactions.jsonl.gz    good rows, sorted by (ts, event_id)
    quarantine/feedback/dt=YYYY-MM-DD/rows.jsonl.gz         {"reason": ..., "record": ...}

Both are written on every run, even empty, so a rerun overwrites and a quiet day says so.

The day is read and curated as one Arrow table (`services.core.event_table`): deduplication, the
checks and the positive flag are vectorised, so 10^6+ events a day cost seconds, not a Python dict
each. `problem` states the same checks for one record; rows Arrow cannot type are judged by it.
"""

from __future__ import annotations

import logging
from collections import Counter
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from services.core import event_table, events
from services.core.identity import USER_ID_PATTERN, USER_ID_RULE, is_valid_user_id
from services.core.storage import ObjectStore
from services.train import raw_store
from services.train.feedback.curated import (
    CURATED_FIELDS,
    STREAM,
    TS_US,
    curated_key,
    event_time,
    quarantine_key,
)
from services.train.feedback.erasure import Erased, drop_erased, drop_erased_records
from services.train.schedule import window

log = logging.getLogger(__name__)

_DAY_US = 86_400 * 1_000_000
# An id outside the one alphabet could not be erased through its path route, so it is never curated.
USER_ID_REASON = f"user_id: not {USER_ID_RULE}"


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _is_number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def problem(record: Any, day: str) -> str | None:
    """The first check a feedback record fails, or None when it is fit to train on."""
    if not isinstance(record, dict):
        return "record: not an object"
    event_id, user_id = record.get("event_id"), record.get("user_id")
    if not isinstance(event_id, str) or not event_id:
        return "event_id: not a non-empty string"
    if not isinstance(user_id, str) or not user_id:
        return "user_id: not a non-empty string"
    if not is_valid_user_id(user_id):
        return USER_ID_REASON
    tmdb_id = record.get("tmdb_id")
    if not _is_int(tmdb_id) or tmdb_id < 1:
        return "tmdb_id: not a positive integer"
    kind, value = record.get("kind"), record.get("value")
    if kind not in events.FEEDBACK_KINDS:
        return f"kind: not one of {', '.join(events.FEEDBACK_KINDS)}"
    if kind == "rating":
        if value is None:
            return "value: missing for a rating"
        if not _is_number(value) or not 0.5 <= value <= 5 or (value * 2) % 1 != 0:
            return "value: not a rating in 0.5..5 by steps of 0.5"
    elif value is not None:
        return f"value: given for {kind}"
    when = event_time(record.get("ts"))
    if when is None:
        return "ts: not an ISO 8601 timestamp with a time zone"
    if when.date().isoformat() != day:
        return f"ts: not on the partition's day {day}"
    return None


@dataclass
class CuratedDay:
    """One day of feedback after deduplication and checks; interactions are an Arrow table."""

    day: str
    events: int  # rows read, duplicates included
    duplicates: int
    interactions: pa.Table
    quarantined: list[dict[str, Any]] = field(default_factory=list)

    @property
    def reasons(self) -> dict[str, int]:
        """How many rows failed each check."""
        return dict(Counter(q["reason"] for q in self.quarantined))


def _mask(arr: pa.Array, null_is: bool) -> np.ndarray:
    return pc.fill_null(arr, null_is).to_numpy(zero_copy_only=False)


def _failed_checks(t: pa.Table, ts_us: np.ndarray, day: str) -> tuple[np.ndarray, list[str]]:
    """Per row, 1 + the index of the first check it fails in the returned reasons (0: fit), as `problem`."""
    kind, value = t["kind"], t["value"]
    is_rating = _mask(pc.equal(kind, "rating"), False)
    no_value = pc.is_null(value).to_numpy(zero_copy_only=False)
    v = pc.fill_null(value, 0.0).to_numpy(zero_copy_only=False)
    start = int(datetime.fromisoformat(day).replace(tzinfo=UTC).timestamp()) * 1_000_000
    others = [k for k in events.FEEDBACK_KINDS if k != "rating"]
    checks: list[tuple[str, np.ndarray]] = [
        ("event_id: not a non-empty string", _mask(pc.equal(t["event_id"], ""), True)),
        ("user_id: not a non-empty string", _mask(pc.equal(t["user_id"], ""), True)),
        (USER_ID_REASON, ~_mask(pc.match_substring_regex(t["user_id"], USER_ID_PATTERN), True)),
        ("tmdb_id: not a positive integer", _mask(pc.less(t["tmdb_id"], 1), True)),
        (f"kind: not one of {', '.join(events.FEEDBACK_KINDS)}",
         ~_mask(pc.is_in(kind, value_set=pa.array(events.FEEDBACK_KINDS)), False)),
        ("value: missing for a rating", is_rating & no_value),
        ("value: not a rating in 0.5..5 by steps of 0.5",
         is_rating & ~no_value & ~((v >= 0.5) & (v <= 5) & ((v * 2) % 1 == 0))),
        *[(f"value: given for {k}", _mask(pc.equal(kind, k), False) & ~no_value) for k in others],
        ("ts: not an ISO 8601 timestamp with a time zone", ts_us == event_table.NO_TIME),
        (f"ts: not on the partition's day {day}", (ts_us < start) | (ts_us >= start + _DAY_US)),
    ]  # fmt: skip
    codes = np.zeros(t.num_rows, dtype=np.int8)
    for code in range(len(checks), 0, -1):  # last to first, so the first failed check is the one kept
        codes[checks[code - 1][1]] = code
    return codes, [reason for reason, _ in checks]


def curate_table(
    day_table: event_table.DayTable, day: str, keep: tuple[str, ...] = (), columns: tuple[str, ...] = ()
) -> CuratedDay:
    """Deduplicate (earliest server time per event_id wins) and check a day's feedback (pure: no I/O).

    Interactions have the curated fields, `keep`'s raw fields, `positive` and TS_US; `columns` narrows
    them to fewer (plus TS_US) when the caller needs only some.
    """
    t = day_table.table
    ts_us = event_table.timestamps_us(t["ts"])
    first = event_table.first_per_key(t["event_id"], ts_us)
    # Checks are per row, so they run on the whole day (no copy) and are read at the kept rows.
    codes, reasons = _failed_checks(t, ts_us, day)
    codes = codes[first]
    bad = first[codes > 0]
    quarantined = [
        {"reason": reasons[c - 1], "record": r}
        for c, r in zip(codes[codes > 0], t.take(pa.array(bad)).to_pylist(), strict=True)
    ]
    for record in day_table.off_schema:
        reason = problem(record, day) or event_table.misfit(record, event_table.FEEDBACK_SCHEMA)
        quarantined.append({"reason": reason, "record": record})
    good = first[codes == 0]
    rows = pa.array(good)
    kind, value = t["kind"].take(rows), t["value"].take(rows)
    is_rating = pc.equal(kind, "rating")
    derived = {
        "value": lambda: pc.if_else(is_rating, value, pa.scalar(None, pa.float64())),
        "positive": lambda: pc.or_(
            pc.is_in(kind, value_set=pa.array(events.POSITIVE_KINDS)),
            pc.and_(is_rating, pc.fill_null(pc.greater_equal(value, events.POSITIVE_MIN_RATING), False)),
        ),
    }
    names = columns or (*CURATED_FIELDS, *keep, "positive")
    out = {n: derived[n]() if n in derived else t[n].take(rows) for n in names}
    out[TS_US] = pa.array(ts_us[good])
    interactions = pa.table(out)  # unsorted: sorting copies the day, and only the writer needs it
    duplicates = t.num_rows - len(first)
    return CuratedDay(day, day_table.rows, duplicates, interactions, quarantined)


def read_curated_day(
    store: ObjectStore, day: str, keep: tuple[str, ...] = (), columns: tuple[str, ...] = ()
) -> CuratedDay:
    """One day of the feedback stream, read from S3 and curated (nothing written); see `curate_table`."""
    return curate_table(event_table.read_day_table(store, STREAM, day), day, keep, columns)


def _curate_and_write(store: ObjectStore, day: str, erased: Erased | None = None) -> dict[str, Any]:
    """Curate one day from its raw events, erased users' events dropped; overwrite its curated and quarantine objects."""
    cur = read_curated_day(store, day)
    key = curated_key(day)
    raw_store.write_jsonl(store, quarantine_key(day), drop_erased_records(cur.quarantined, erased or {}))
    rows, erased_events = drop_erased(cur.interactions, erased or {}, cur.interactions[TS_US].to_numpy())
    ordered = rows.sort_by([(TS_US, "ascending"), ("event_id", "ascending")]).drop_columns([TS_US])
    store.put_bytes(key, event_table.encode_table_jsonl(ordered), "application/gzip")
    del ordered
    event_table.release_memory()
    return {
        "date": day,
        "events": cur.events,
        "duplicates": cur.duplicates,
        "quarantined": len(cur.quarantined),
        "reasons": cur.reasons,
        "interactions": rows.num_rows,
        "positives": int(pc.sum(rows["positive"]).as_py() or 0),
        "users": pc.count_distinct(rows["user_id"]).as_py(),
        "curated": key,
        "erased_events": erased_events,
    }


def _curated_count(store: ObjectStore, day: str) -> int | None:
    key = curated_key(day)
    return event_table.count_lines(store.get_bytes(key)) if store.exists(key) else None


def collect_feedback(
    store: ObjectStore, logical_date: str, window_days: int = 0, erased: Erased | None = None
) -> dict[str, Any]:
    """The data day's feedback into curated/feedback/dt=<day>/, and the `window_days` before it again.

    Re-curating the earlier days is an idempotent overwrite that lets batches which reached S3 after
    their day's run count; the summary's `window` says, per day, how many interactions it had before
    and has now. Events of `erased` users (services/train/feedback/erasure.py) are dropped from every day
    written; with `erased` given, the summary's `erased_events` says how many.
    """
    changes, dropped = [], 0
    for day in window(logical_date, window_days)[:-1]:
        before = _curated_count(store, day)
        if before is None and not store.list(events.stream_prefix(STREAM, day)):
            continue  # nothing was ever posted that day
        day_summary = _curate_and_write(store, day, erased)
        after, dropped = day_summary["interactions"], dropped + day_summary["erased_events"]
        changed = before != after
        changes.append({"date": day, "before": before, "after": after, "changed": changed})
        if changed:
            log.warning(
                "feedback %s re-curated: changed, %s -> %d interactions (late batches)", day, before, after
            )
        else:
            log.info("feedback %s re-curated: unchanged (%d interactions)", day, after)
    summary = _curate_and_write(store, logical_date, erased)
    dropped += summary.pop("erased_events")
    if erased is not None:
        summary["erased_events"] = dropped
        log.info("feedback %s: %d events of %d erased users dropped", logical_date, dropped, len(erased))
    if not summary["events"]:
        log.info("feedback %s: no events in %s", logical_date, events.stream_prefix(STREAM, logical_date))
    log.info(
        "feedback %s: %d events, %d duplicates, %d quarantined %s, %d interactions (%d positive) from %d users",
        logical_date, summary["events"], summary["duplicates"], summary["quarantined"], summary.pop("reasons"),
        summary["interactions"], summary["positives"], summary["users"],
    )  # fmt: skip
    return {**summary, "window": changes}
