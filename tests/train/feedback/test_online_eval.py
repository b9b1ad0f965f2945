"""Online evaluation on hand-made impressions and feedback, with every metric computed by hand.

The join is columnar (Arrow); a row-by-row reference of the same rules checks it on a random day.
"""

from __future__ import annotations

import random
from collections import defaultdict
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from types import SimpleNamespace
from typing import Any

import pytest

from services.core import events
from services.core.storage import ObjectStore
from services.train.feedback.curated import event_time
from services.train.feedback.online_eval import evaluate_online, version_metrics
from services.train.tracking import TrackedRun

DAY, NEXT = "2026-12-01", "2026-12-02"


def imp(request_id: str, ts: str, items: list[int], version: str | None, catalog: int,
        fallback: bool = False) -> dict[str, Any]:  # fmt: skip
    """An impression as the serving host writes it (one per /recommend response)."""
    return {
        "event_id": request_id, "request_id": request_id, "ts": ts, "replica": "api-1", "user_id": "u1",
        "model_version": version, "strategy": "popularity" if fallback else "sequential",
        "fallback": fallback, "items": items, "catalog_size": catalog,
    }  # fmt: skip


def fb(event_id: str, request_id: str | None, tmdb_id: int, ts: str, kind: str = "like",
       value: float | None = None) -> dict[str, Any]:  # fmt: skip
    """A feedback event as the serving host writes it."""
    return {
        "event_id": event_id, "ts": ts, "replica": "api-2", "user_id": "u1", "tmdb_id": tmdb_id,
        "kind": kind, "value": value, "request_id": request_id, "position": None,
    }  # fmt: skip


IMPRESSIONS = [
    imp("r1", f"{DAY}T12:00:00.000Z", [1, 2, 3], "v1", 10),
    imp("r2", f"{DAY}T13:00:00.000Z", [4, 5, 6], "v1", 10),
    imp("r3", f"{DAY}T14:00:00.000Z", [1, 7, 8], "v1", 10, fallback=True),
    imp("r4", f"{DAY}T23:50:00.000Z", [1, 2], None, 4, fallback=True),
    imp("r5", f"{DAY}T15:00:00.000Z", [9, 10], "v2", 20),
]
FEEDBACK = [
    fb("f1", "r1", 3, f"{DAY}T12:10:00.000Z"),  # hit at rank 3
    fb("f2", "r1", 2, f"{DAY}T12:20:00.000Z"),  # hit at rank 2: the best-ranked answer counts
    fb("f3", "r2", 4, f"{DAY}T13:31:00.000Z"),  # 31 minutes later: too late
    fb("f4", "r2", 5, f"{DAY}T13:05:00.000Z", "dislike"),  # not positive
    fb("f5", "r2", 9, f"{DAY}T13:05:00.000Z"),  # a movie r2 did not show
    fb("f6", "r3", 1, f"{DAY}T14:30:00.000Z", "rating", 4.0),  # at 30 minutes: still an answer
    fb("f7", "r3", 7, f"{DAY}T14:05:00.000Z", "rating", 3.0),  # below 3.5 stars: not positive
    fb("f8", "r4", 2, f"{NEXT}T00:10:00.000Z", "watched"),  # after midnight, 20 minutes later
    fb("f9", "r1", 9, f"{DAY}T15:01:00.000Z"),  # shown by r5, but it names r1
    fb("f10", None, 10, f"{DAY}T15:01:00.000Z"),  # names no request
    fb("f11", "r3", 8, f"{DAY}T13:59:00.000Z"),  # before the impression
]
# By hand. v1: r1 hit (best rank 2), r2 none, r3 hit (rank 1); 8 distinct of 10; r3 fell back.
V1 = {"version": "v1", "pool": "all", "responses": 3, "hit_rate": 2 / 3, "mrr": (1 / 2 + 0 + 1) / 3, "coverage": 0.8,
      "distinct_items": 8, "catalog_size": 10, "fallback_share": 1 / 3, "positives": 3}  # fmt: skip
V2 = {"version": "v2", "pool": "all", "responses": 1, "hit_rate": 0.0, "mrr": 0.0, "coverage": 0.1,
      "distinct_items": 2, "catalog_size": 20, "fallback_share": 0.0, "positives": 0}  # fmt: skip
NONE = {"version": "none", "pool": "all", "responses": 1, "hit_rate": 1.0, "mrr": 0.5, "coverage": 0.5,
        "distinct_items": 2, "catalog_size": 4, "fallback_share": 1.0, "positives": 1}  # fmt: skip


def _approx(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [{k: pytest.approx(v) if isinstance(v, float) else v for k, v in r.items()} for r in rows]


def test_metrics_per_version_match_the_hand_computation() -> None:
    assert version_metrics(IMPRESSIONS, FEEDBACK) == _approx([NONE, V1, V2])


def test_the_new_shelf_is_judged_apart_from_the_main_list() -> None:
    # The same page asked for both lists: r1 (the main list, before pools existed) and n1 (the shelf).
    shelf = {**imp("n1", f"{DAY}T12:00:01.000Z", [11, 12], "v1", 10), "pool": "new"}
    answer = fb("g1", "n1", 12, f"{DAY}T12:05:00.000Z")
    rows = version_metrics([*IMPRESSIONS[:3], shelf], [*FEEDBACK, answer])
    assert [(r["version"], r["pool"]) for r in rows] == [("v1", "all"), ("v1", "new")]
    assert rows[0] == _approx([V1])[0]  # the main list's figures do not move
    assert (rows[1]["responses"], rows[1]["hit_rate"], rows[1]["mrr"]) == (1, 1.0, 0.5)


def test_answers_from_the_precomputed_list_are_reported_apart() -> None:
    # r1 and r3 came from v1's cache, r2 was ranked live: the split keeps each figure, versions merge them.
    cached = {"r1": True, "r2": False, "r3": True}
    impressions = [{**i, "cached": cached.get(i["request_id"])} for i in IMPRESSIONS]
    rows = version_metrics(impressions, FEEDBACK, by_cache=True)
    assert [(r["version"], r["pool"], r["cached"], r["responses"]) for r in rows] == [
        ("none", "all", False, 1), ("v1", "all", False, 1), ("v1", "all", True, 2), ("v2", "all", False, 1)
    ]  # fmt: skip
    v1_cached = rows[2]
    assert v1_cached["hit_rate"] == 1.0 and v1_cached["mrr"] == pytest.approx((1 / 2 + 1) / 2)
    assert rows[1]["hit_rate"] == 0.0 and rows[1]["positives"] == 0
    assert version_metrics(impressions, FEEDBACK) == _approx([NONE, V1, V2])


def test_a_wider_window_counts_the_late_like() -> None:
    v1 = version_metrics(IMPRESSIONS[:3], FEEDBACK, window_minutes=31)[0]
    assert (v1["hit_rate"], v1["positives"]) == (1.0, 4)


class FakeTracker:
    """Records the runs and summaries it is given, instead of writing W&B files."""

    def __init__(self) -> None:
        self.runs: list[tuple[str, str, dict[str, Any]]] = []

    @contextmanager
    def run(self, name: str, config: dict[str, Any], group: str | None = None,
            job_type: str = "train") -> Iterator[TrackedRun]:  # fmt: skip
        fake = SimpleNamespace(summary={})
        self.runs.append((name, job_type, fake.summary))
        yield TrackedRun(run=fake, name=name)


def _upload(store: ObjectStore, stream: str, day: str, replica: str, rows: list[dict[str, Any]]) -> None:
    store.put_bytes(events.batch_key(stream, day, replica, 0), events.encode_lines(rows))


def test_evaluate_online_reads_s3_writes_the_report_and_tracks_it(store: ObjectStore) -> None:
    # Each replica logs its own copy of r1 (a retried request) and of the answer f1.
    _upload(store, "impressions", DAY, "api-1", IMPRESSIONS)
    _upload(store, "impressions", DAY, "api-2", IMPRESSIONS[:1])
    _upload(store, "feedback", DAY, "api-1", [f for f in FEEDBACK if f["ts"].startswith(DAY)] + FEEDBACK[:1])
    _upload(store, "feedback", NEXT, "api-1", [f for f in FEEDBACK if f["ts"].startswith(NEXT)])
    tracker = FakeTracker()
    result = evaluate_online(store, tracker, DAY)  # type: ignore[arg-type]
    key = events.report_key("online", DAY, "recommender.json")
    report = store.get_json(key)
    assert report == {
        "date": DAY, "window_minutes": 30, "impressions": 5, "feedback_events": len(FEEDBACK),
        "versions": _approx([NONE, V1, V2]),
        # No answer came from a precomputed list (the impressions say nothing of it): all live.
        "cache": _approx([{**NONE, "cached": False}, {**V1, "cached": False}, {**V2, "cached": False}]),
    }  # fmt: skip
    assert result["report"] == key
    [(name, job_type, summary)] = tracker.runs
    assert (name, job_type) == (f"online-{DAY}", "evaluate")
    assert summary["v1/hit_rate"] == pytest.approx(2 / 3) and summary["none/coverage"] == 0.5


def test_a_day_without_impressions_writes_an_empty_report(store: ObjectStore, caplog: Any) -> None:
    caplog.set_level("INFO")
    _upload(store, "feedback", DAY, "api-1", FEEDBACK[:2])
    evaluate_online(store, FakeTracker(), DAY)  # type: ignore[arg-type]
    report = store.get_json(events.report_key("online", DAY, "recommender.json"))
    assert report == {
        "date": DAY,
        "window_minutes": 30,
        "impressions": 0,
        "feedback_events": 2,
        "versions": [],
        "cache": [],
    }
    assert "no impressions" in caplog.text


def _reference_metrics(
    impressions: list[dict[str, Any]], feedback: list[dict[str, Any]], by_cache: bool = False
) -> list[dict[str, Any]]:
    """The row-by-row join the columnar one replaced, on impressions already one per request."""
    groups: dict[tuple[str, str, bool], list[dict[str, Any]]] = defaultdict(list)
    for i in impressions:
        groups[
            (i["model_version"] or "none", i.get("pool") or "all", by_cache and bool(i.get("cached")))
        ].append(i)
    out = []
    for (version, pool, cached), rows in sorted(groups.items()):
        hits, reciprocal, positives = 0, 0.0, 0
        for i in rows:
            start = event_time(i["ts"])
            found = [
                f for f in feedback
                if f["request_id"] == i["request_id"] and f["tmdb_id"] in i["items"] and events.is_positive(f)
                and start <= event_time(f["ts"]) <= start + timedelta(minutes=30)
            ]  # fmt: skip
            positives += len(found)
            if found:
                hits += 1
                reciprocal += 1 / (1 + min(i["items"].index(f["tmdb_id"]) for f in found))
        served = {t for i in rows for t in i["items"]}
        catalog = max(i["catalog_size"] for i in rows)
        out.append({
            "version": version, "pool": pool, "responses": len(rows), "hit_rate": hits / len(rows),
            "mrr": reciprocal / len(rows), "coverage": len(served) / catalog, "distinct_items": len(served),
            "catalog_size": catalog, "fallback_share": sum(i["fallback"] for i in rows) / len(rows),
            "positives": positives, **({"cached": cached} if by_cache else {}),
        })  # fmt: skip
    return out


def test_the_columnar_join_agrees_with_the_row_by_row_reference(store: ObjectStore) -> None:
    rng = random.Random(11)
    start = datetime(2026, 12, 1, tzinfo=UTC)

    def at(seconds: float) -> str:
        return (start + timedelta(seconds=seconds)).isoformat(timespec="milliseconds").replace("+00:00", "Z")

    impressions = []
    for n in range(600):
        shown = rng.sample(range(1, 80), 5)
        row = imp(f"r{n}", at(rng.uniform(0, 86_000)), shown, rng.choice(["v1", "v2", None]), 100,
                  fallback=rng.random() < 0.1)  # fmt: skip
        impressions.append(
            {**row, "pool": rng.choice(["all", "new", None]), "cached": rng.choice([True, False, None])}
        )
    feedback = []
    for n in range(1500):
        i = rng.choice(impressions)
        when = event_time(i["ts"]) + timedelta(minutes=rng.uniform(-5, 40))  # some before, some too late
        movie = rng.choice(i["items"]) if rng.random() < 0.8 else rng.randrange(1, 80)
        kind, value = rng.choice([("like", None), ("watched", None), ("dislike", None), ("rating", 4.0),
                                  ("rating", 2.5)])  # fmt: skip
        request = i["request_id"] if rng.random() < 0.9 else None
        feedback.append(fb(f"f{n}", request, movie, at((when - start).total_seconds()), kind, value))
    # Replicas log their own copies of some responses, later than the first.
    retried = [{**i, "ts": at((event_time(i["ts"]) - start).total_seconds() + 1)} for i in impressions[::7]]
    for replica, rows in (("api-1", impressions[:300]), ("api-2", impressions[300:] + retried)):
        _upload(store, "impressions", DAY, replica, rows)
    _upload(store, "feedback", DAY, "api-1", [f for f in feedback if f["ts"].startswith(DAY)])
    _upload(store, "feedback", NEXT, "api-1", [f for f in feedback if f["ts"].startswith(NEXT)])
    expected = _reference_metrics(impressions, feedback)
    assert sum(v["positives"] for v in expected) > 300  # the join has real work to do
    evaluate_online(store, FakeTracker(), DAY)  # type: ignore[arg-type]
    report = store.get_json(events.report_key("online", DAY, "recommender.json"))
    assert report["impressions"] == len(impressions)
    assert report["versions"] == _approx(expected)
    assert report["cache"] == _approx(_reference_metrics(impressions, feedback, by_cache=True))
    assert version_metrics(impressions + retried, feedback) == _approx(expected)
