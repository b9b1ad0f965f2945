"""Collecting the app's feedback on the real S3: repeats dropped, bad rows quarantined, reruns idempotent.

Curation is columnar (Arrow); a row-by-row reference of the same rules checks it on random days.
"""

from __future__ import annotations

import io
import json
import random
from datetime import UTC, date, datetime, timedelta
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq

from services.core import events
from services.core.storage import ObjectStore
from services.train import raw_store
from services.train.feedback.curate import USER_ID_REASON, collect_feedback, problem
from services.train.feedback.curated import curated_key, event_time, load_curated_feedback, quarantine_key

DAY = "2026-12-01"


def fb(event_id: str, kind: str = "like", value: float | None = None, **over: Any) -> dict[str, Any]:
    """A feedback event as the serving host writes it."""
    return {
        "event_id": event_id, "ts": f"{DAY}T18:42:07.123Z", "replica": "api-1", "user_id": "ana",
        "tmdb_id": 603, "kind": kind, "value": value, "request_id": None, "position": None, **over,
    }  # fmt: skip


def upload(store: ObjectStore, rows: list[dict[str, Any]], replica: str = "api-1", day: str = DAY) -> None:
    store.put_bytes(events.batch_key("feedback", day, replica, 0), events.encode_lines(rows))


def test_a_repeated_event_is_kept_once_with_its_earliest_time(store: ObjectStore) -> None:
    # A client retried against another replica: the same event arrives twice, a second apart.
    upload(store, [fb("e1", ts=f"{DAY}T10:00:01.000Z"), fb("e2", "dislike", tmdb_id=11)], "api-1")
    upload(store, [fb("e1", ts=f"{DAY}T10:00:00.000Z")], "api-2")
    summary = collect_feedback(store, DAY)
    assert summary == {
        "date": DAY, "events": 3, "duplicates": 1, "quarantined": 0, "interactions": 2,
        "positives": 1, "users": 1, "curated": curated_key(DAY), "window": [],
    }  # fmt: skip
    rows = raw_store.read_jsonl(store, curated_key(DAY))
    assert [(r["event_id"], r["ts"]) for r in rows] == [
        ("e1", f"{DAY}T10:00:00.000Z"),
        ("e2", fb("e2")["ts"]),
    ]
    assert rows[0] == {
        "event_id": "e1", "ts": f"{DAY}T10:00:00.000Z", "user_id": "ana", "tmdb_id": 603,
        "kind": "like", "value": None, "positive": True,
    }  # fmt: skip


def test_every_failed_check_is_quarantined_with_its_reason(store: ObjectStore) -> None:
    bad = {
        "b1": (fb("", user_id="x"), "event_id: not a non-empty string"),
        "b2": (fb("b2", user_id=""), "user_id: not a non-empty string"),
        "b3": (fb("b3", user_id="u" * 65), USER_ID_REASON),
        "b3a": (fb("b3a", user_id="a/b"), USER_ID_REASON),  # could never be erased by DELETE /users/{id}
        "b3b": (fb("b3b", user_id="ana\n"), USER_ID_REASON),
        "b3c": (fb("b3c", user_id="..", tmdb_id=0), USER_ID_REASON),  # the first failed check is named
        "b4": (fb("b4", tmdb_id=0), "tmdb_id: not a positive integer"),
        "b5": (fb("b5", tmdb_id="603"), "tmdb_id: not a positive integer"),
        "b6": (fb("b6", "love"), "kind: not one of like, dislike, watched, rating"),
        "b7": (fb("b7", "rating"), "value: missing for a rating"),
        "b8": (fb("b8", "rating", 3.3), "value: not a rating in 0.5..5 by steps of 0.5"),
        "b9": (fb("b9", "rating", 5.5), "value: not a rating in 0.5..5 by steps of 0.5"),
        "b10": (fb("b10", "like", 4.0), "value: given for like"),
        "b11": (fb("b11", ts="yesterday"), "ts: not an ISO 8601 timestamp with a time zone"),
        "b12": (fb("b12", ts="2026-11-30T23:59:59.999Z"), f"ts: not on the partition's day {DAY}"),
    }
    good = [fb("g1", "rating", 0.5), fb("g2", "rating", 5), fb("g3", "watched", user_id="u" * 64)]
    upload(store, [row for row, _ in bad.values()] + good)
    summary = collect_feedback(store, DAY)
    assert (summary["quarantined"], summary["interactions"]) == (len(bad), len(good))
    quarantined = raw_store.read_jsonl(store, quarantine_key(DAY))
    assert sorted((q["record"]["event_id"], q["reason"]) for q in quarantined) == sorted(
        (row["event_id"], reason) for row, reason in bad.values()
    )
    assert all(set(q) == {"reason", "record"} for q in quarantined)
    curated = raw_store.read_jsonl(store, curated_key(DAY))
    assert [r["value"] for r in curated] == [0.5, 5.0, None]
    # 0.5 stars is a rating, not a positive; 5 stars and watched are.
    assert [r["positive"] for r in curated] == [False, True, True]


def test_ratings_below_three_and_a_half_and_dislikes_are_not_positive(store: ObjectStore) -> None:
    upload(store, [fb("a", "rating", 3.0), fb("b", "rating", 3.5), fb("c", "dislike"), fb("d", "like")])
    assert collect_feedback(store, DAY)["positives"] == 2
    curated = {r["event_id"]: r["positive"] for r in raw_store.read_jsonl(store, curated_key(DAY))}
    assert curated == {"a": False, "b": True, "c": False, "d": True}


def test_a_rerun_overwrites_its_own_partition(store: ObjectStore) -> None:
    upload(store, [fb("e1"), fb("bad", tmdb_id=-1)])
    first = collect_feedback(store, DAY)
    assert collect_feedback(store, DAY) == first
    assert len(raw_store.read_jsonl(store, curated_key(DAY))) == 1
    assert len(raw_store.read_jsonl(store, quarantine_key(DAY))) == 1
    # A batch that landed late is picked up by the rerun, with nothing counted twice.
    upload(store, [fb("e2", ts=f"{DAY}T23:59:59.000Z"), fb("e1")], "api-2")
    third = collect_feedback(store, DAY)
    assert (third["events"], third["duplicates"], third["interactions"]) == (4, 1, 2)
    assert [r["event_id"] for r in raw_store.read_jsonl(store, curated_key(DAY))] == ["e1", "e2"]
    assert len(raw_store.read_jsonl(store, quarantine_key(DAY))) == 1


def test_a_day_without_events_writes_empty_files(store: ObjectStore, caplog: Any) -> None:
    caplog.set_level("INFO")
    summary = collect_feedback(store, DAY)
    assert {k: summary[k] for k in ("events", "interactions", "quarantined", "users")} == dict.fromkeys(
        ("events", "interactions", "quarantined", "users"), 0
    )
    assert raw_store.read_jsonl(store, curated_key(DAY)) == []
    assert raw_store.read_jsonl(store, quarantine_key(DAY)) == []
    assert "no events" in caplog.text


def test_load_curated_feedback_unions_days_up_to_a_date(store: ObjectStore) -> None:
    days = ["2026-11-29", "2026-11-30", DAY]
    for n, day in enumerate(days):
        upload(store, [fb(f"e{n}", ts=f"{day}T08:00:00.000Z", tmdb_id=100 + n)], day=day)
        collect_feedback(store, day)
    assert [r["tmdb_id"] for r in load_curated_feedback(store, until="2026-11-30")] == [100, 101]
    assert [r["event_id"] for r in load_curated_feedback(store, until=DAY)] == ["e0", "e1", "e2"]
    assert load_curated_feedback(store, until="2026-11-01") == []


def test_a_late_batch_of_an_earlier_day_is_curated_by_the_next_run(store: ObjectStore) -> None:
    upload(store, [fb("e1")], "api-1")
    collect_feedback(store, DAY)
    upload(store, [fb("e9", tmdb_id=11)], "api-2")  # lands after DAY's run
    nxt = (date.fromisoformat(DAY) + timedelta(days=1)).isoformat()
    summary = collect_feedback(store, nxt, window_days=3)
    assert summary["window"] == [{"date": DAY, "before": 1, "after": 2, "changed": True}]
    assert len(raw_store.read_jsonl(store, curated_key(DAY))) == 2


def test_every_batch_under_the_day_is_read_whatever_its_name_or_format(store: ObjectStore) -> None:
    # Flushers name batches as they like (a spool epoch, a sequence); Parquet batches count too, and
    # anything that is not a batch (a multipart upload's leftovers) is ignored.
    prefix = events.stream_prefix("feedback", DAY)
    store.put_bytes(f"{prefix}api-1-7f3a-000000000000.jsonl.gz", events.encode_lines([fb("e1"), fb("e2")]))
    # The same event again from another replica, seconds later (nginx retried it there).
    store.put_bytes(f"{prefix}api-2-91bc-000000000040.jsonl.gz",
                    events.encode_lines([fb("e2", ts=f"{DAY}T18:42:09.000Z"), fb("e3", "rating", 4.5)]))  # fmt: skip
    sink = io.BytesIO()
    pq.write_table(pa.Table.from_pylist([fb("e4", "watched"), fb("e1", ts=f"{DAY}T23:00:00.000Z")]), sink)
    store.put_bytes(f"{prefix}part-00000.parquet", sink.getvalue())
    store.put_bytes(f"{prefix}api-3-0000.jsonl.gz.tmp", events.encode_lines([fb("e9")]))
    summary = collect_feedback(store, DAY)
    assert (summary["events"], summary["duplicates"], summary["interactions"]) == (6, 2, 4)
    rows = raw_store.read_jsonl(store, curated_key(DAY))
    assert {(r["event_id"], r["ts"]) for r in rows} == {
        ("e1", fb("e1")["ts"]), ("e2", fb("e2")["ts"]), ("e3", fb("e3")["ts"]), ("e4", fb("e4")["ts"]),
    }  # fmt: skip


def test_lines_that_are_not_events_are_quarantined_and_the_rest_of_their_batch_kept(
    store: ObjectStore,
) -> None:
    good = [fb("g1"), fb("g2", "rating", 4.0)]
    lines = [json.dumps(r) for r in good] + ["[1, 2]", "{not json", json.dumps(fb("b1", tmdb_id=True))]
    store.put_bytes(events.batch_key("feedback", DAY, "api-1", 0), events.encode_jsonl("\n".join(lines)))
    summary = collect_feedback(store, DAY)
    assert (summary["events"], summary["interactions"], summary["quarantined"]) == (5, 2, 3)
    reasons = sorted(q["reason"] for q in raw_store.read_jsonl(store, quarantine_key(DAY)))
    assert reasons == ["record: not an object", "record: not an object", "tmdb_id: not a positive integer"]


def test_time_zones_and_iso_spellings_place_events_on_their_utc_day(store: ObjectStore) -> None:
    rows = [
        fb("z1", ts="2026-12-02T01:30:00.000+02:00"),  # 23:30 UTC on DAY
        fb("z2", ts=f"{DAY}T08:00:00.123456Z"),
        fb("z3", ts=f"{DAY} 09:00:00+00:00"),  # a space, not a T: Python's reading still applies
        fb("z4", ts=f"{DAY}T22:30:00.000-02:00"),  # 00:30 UTC the next day
        fb("z5", ts=f"{DAY}T10:00:00"),  # no zone: no UTC day
        fb("z6", ts=f"{DAY}T25:00:00Z"),  # the right shape, not a time
    ]
    upload(store, rows)
    collect_feedback(store, DAY)
    assert [r["event_id"] for r in raw_store.read_jsonl(store, curated_key(DAY))] == ["z2", "z3", "z1"]
    reasons = {q["record"]["event_id"]: q["reason"] for q in raw_store.read_jsonl(store, quarantine_key(DAY))}
    assert reasons == {
        "z4": f"ts: not on the partition's day {DAY}",
        "z5": "ts: not an ISO 8601 timestamp with a time zone",
        "z6": "ts: not an ISO 8601 timestamp with a time zone",
    }


def _reference(records: list[dict[str, Any]]) -> tuple[list[tuple[str, str]], list[tuple[str, str]]]:
    """The row-by-row curation the columnar one replaced: earliest (time, position) per id, then checks."""
    first: dict[str, tuple[datetime, int]] = {}
    latest = datetime.max.replace(tzinfo=UTC)
    for pos, r in enumerate(records):
        if r["event_id"]:
            key = (event_time(r["ts"]) or latest, pos)
            first[r["event_id"]] = min(first.get(r["event_id"], key), key)
    kept = [r for pos, r in enumerate(records) if not r["event_id"] or first[r["event_id"]][1] == pos]
    good = sorted(
        (r for r in kept if problem(r, DAY) is None), key=lambda r: (event_time(r["ts"]), r["event_id"])
    )
    bad = sorted((r["event_id"], problem(r, DAY)) for r in kept if problem(r, DAY) is not None)
    return [(r["event_id"], r["ts"]) for r in good], bad


def test_the_columnar_curation_agrees_with_the_row_by_row_reference(store: ObjectStore) -> None:
    rng = random.Random(7)
    faults: list[dict[str, Any]] = [
        {}, {}, {}, {"event_id": ""}, {"user_id": ""}, {"user_id": "a/b"}, {"user_id": "é"}, {"tmdb_id": 0}, {"kind": "love"},
        {"kind": "rating", "value": None}, {"kind": "rating", "value": 3.3}, {"kind": "rating", "value": 4.5},
        {"kind": "like", "value": 2.0}, {"ts": "2026-11-30T23:59:59Z"}, {"ts": "soon"},
    ]  # fmt: skip
    records = []
    for _ in range(3000):
        when = f"{DAY}T{rng.randrange(24):02d}:{rng.randrange(60):02d}:{rng.randrange(60):02d}.{rng.randrange(1000):03d}Z"
        base = {"event_id": f"e{rng.randrange(2000)}", "ts": when, "user_id": f"u{rng.randrange(50)}", "tmdb_id": rng.randrange(1, 500),
                "kind": rng.choice(events.FEEDBACK_KINDS[:3])}  # fmt: skip
        records.append(fb(**{**base, **rng.choice(faults)}))
    for replica, start in (("api-1", 0), ("api-2", 1000), ("api-3", 2000)):
        upload(store, records[start : start + 1000], replica)
    good, bad = _reference(records)
    summary = collect_feedback(store, DAY)
    assert [(r["event_id"], r["ts"]) for r in raw_store.read_jsonl(store, curated_key(DAY))] == good
    quarantined = raw_store.read_jsonl(store, quarantine_key(DAY))
    assert sorted((q["record"]["event_id"], q["reason"]) for q in quarantined) == bad
    assert summary["duplicates"] == len(records) - len(good) - len(bad) > 500
