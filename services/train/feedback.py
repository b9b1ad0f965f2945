"""Collect the app's feedback: one day of `events/feedback`, deduplicated, checked, curated.

The serving host appends what people said about movies (like, dislike, watched, a star rating)
to `events/feedback/dt=…/`. This step reads a day back, drops repeats of one event (a client
retrying against another replica sends the same event_id twice), quarantines rows that fail a
check with their reason, and writes the rest as the day's interactions:

    curated/feedback/dt=YYYY-MM-DD/interactions.jsonl.gz    good rows, sorted by (ts, event_id)
    quarantine/feedback/dt=YYYY-MM-DD/rows.jsonl.gz         {"reason": ..., "record": ...}

Both are written on every run, even empty, so a rerun overwrites and a quiet day says so.
"""

from __future__ import annotations

import logging
from collections import Counter
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from services.core import events
from services.core.storage import ObjectStore
from services.train import raw_store
from services.train.schedule import window

log = logging.getLogger(__name__)

STREAM = "feedback"
CURATED_PREFIX = "curated/feedback"
QUARANTINE_PREFIX = "quarantine/feedback"
MAX_USER_ID = 128
CURATED_FIELDS = ("event_id", "ts", "user_id", "tmdb_id", "kind", "value")
_LATEST = datetime.max.replace(tzinfo=UTC)


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
    if len(user_id) > MAX_USER_ID:
        return f"user_id: longer than {MAX_USER_ID} characters"
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


def _event_id(record: Any) -> str | None:
    event_id = record.get("event_id") if isinstance(record, dict) else None
    return event_id if isinstance(event_id, str) and event_id else None


def deduplicate(records: list[Any]) -> tuple[list[Any], int]:
    """Records with repeated event_ids dropped (the earliest ts wins) and how many were dropped.

    Records without a usable event_id are kept, in their place, so validation quarantines them.
    """
    first: dict[str, tuple[datetime, int]] = {}
    for pos, record in enumerate(records):
        event_id = _event_id(record)
        if event_id is None:
            continue
        key = (event_time(record.get("ts")) or _LATEST, pos)
        if event_id not in first or key < first[event_id]:
            first[event_id] = key
    keep = {pos for _, pos in first.values()}
    out = [r for pos, r in enumerate(records) if pos in keep or _event_id(r) is None]
    return out, len(records) - len(out)


@dataclass
class CuratedDay:
    """One day of feedback after deduplication and checks."""

    day: str
    events: int  # rows read, duplicates included
    duplicates: int
    interactions: list[dict[str, Any]] = field(default_factory=list)
    quarantined: list[dict[str, Any]] = field(default_factory=list)

    @property
    def reasons(self) -> dict[str, int]:
        """How many rows failed each check."""
        return dict(Counter(q["reason"] for q in self.quarantined))


def interaction(record: dict[str, Any], keep: tuple[str, ...] = ()) -> dict[str, Any]:
    """The curated form of a valid feedback record (plus the `keep` fields), with whether it is positive."""
    row = {k: record.get(k) for k in (*CURATED_FIELDS, *keep)}
    row["value"] = float(row["value"]) if row["kind"] == "rating" else None
    row["positive"] = events.is_positive(row)
    return row


def sort_key(row: dict[str, Any]) -> tuple[datetime, str]:
    """Order of curated interactions: time, then event_id (a total order, so reruns match)."""
    return event_time(row["ts"]) or _LATEST, row["event_id"]


def curate(records: list[Any], day: str, keep: tuple[str, ...] = ()) -> CuratedDay:
    """Deduplicate and check one day's raw feedback records (pure: no I/O); `keep` adds raw fields."""
    unique, duplicates = deduplicate(records)
    out = CuratedDay(day=day, events=len(records), duplicates=duplicates)
    for record in unique:
        reason = problem(record, day)
        if reason is None:
            out.interactions.append(interaction(record, keep))
        else:
            out.quarantined.append({"reason": reason, "record": record})
    out.interactions.sort(key=sort_key)
    return out


def read_curated_day(store: ObjectStore, day: str, keep: tuple[str, ...] = ()) -> CuratedDay:
    """One day of the feedback stream, read from S3 and curated (nothing written)."""
    return curate(events.read_day(store, STREAM, day), day, keep)


def _curate_and_write(store: ObjectStore, day: str) -> dict[str, Any]:
    """Curate one day from its raw events and overwrite its curated and quarantine objects."""
    cur = read_curated_day(store, day)
    key = curated_key(day)
    raw_store.write_jsonl(store, quarantine_key(day), cur.quarantined)
    raw_store.write_jsonl(store, key, cur.interactions)
    return {
        "date": day,
        "events": cur.events,
        "duplicates": cur.duplicates,
        "quarantined": len(cur.quarantined),
        "reasons": cur.reasons,
        "interactions": len(cur.interactions),
        "positives": sum(r["positive"] for r in cur.interactions),
        "users": len({r["user_id"] for r in cur.interactions}),
        "curated": key,
    }


def _curated_count(store: ObjectStore, day: str) -> int | None:
    key = curated_key(day)
    return len(raw_store.read_jsonl(store, key)) if store.exists(key) else None


def collect_feedback(store: ObjectStore, logical_date: str, window_days: int = 0) -> dict[str, Any]:
    """The data day's feedback into curated/feedback/dt=<day>/, and the `window_days` before it again.

    Re-curating the earlier days is an idempotent overwrite that lets batches which reached S3 after
    their day's run count; the summary's `window` says, per day, how many interactions it had before
    and has now.
    """
    changes = []
    for day in window(logical_date, window_days)[:-1]:
        before = _curated_count(store, day)
        if before is None and not store.list(events.stream_prefix(STREAM, day)):
            continue  # nothing was ever posted that day
        after = _curate_and_write(store, day)["interactions"]
        changed = before != after
        changes.append({"date": day, "before": before, "after": after, "changed": changed})
        if changed:
            log.warning(
                "feedback %s re-curated: changed, %s -> %d interactions (late batches)", day, before, after
            )
        else:
            log.info("feedback %s re-curated: unchanged (%d interactions)", day, after)
    summary = _curate_and_write(store, logical_date)
    if not summary["events"]:
        log.info("feedback %s: no events in %s", logical_date, events.stream_prefix(STREAM, logical_date))
    log.info(
        "feedback %s: %d events, %d duplicates, %d quarantined %s, %d interactions (%d positive) from %d users",
        logical_date, summary["events"], summary["duplicates"], summary["quarantined"], summary.pop("reasons"),
        summary["interactions"], summary["positives"], summary["users"],
    )  # fmt: skip
    return {**summary, "window": changes}


def curated_days(store: ObjectStore) -> list[str]:
    """Days that have curated feedback, oldest first."""
    return [d[3:] for d in store.list_dirs(CURATED_PREFIX) if d.startswith("dt=")]


def load_curated_feedback(store: ObjectStore, until: str) -> list[dict[str, Any]]:
    """Every curated interaction of every day up to `until`, deduplicated by event_id (earliest day wins)."""
    seen: set[str] = set()
    out: list[dict[str, Any]] = []
    days = [d for d in curated_days(store) if d <= until]
    for day in days:
        key = curated_key(day)
        if not store.exists(key):
            continue
        for row in raw_store.read_jsonl(store, key):
            if row["event_id"] not in seen:
                seen.add(row["event_id"])
                out.append(row)
    log.info("curated feedback: %d interactions from %d days up to %s", len(out), len(days), until)
    return out
