"""Right to erasure on the real S3: after a marker, the next run's curated data holds nothing of that user."""

from __future__ import annotations

from typing import Any

import numpy as np
import pyarrow as pa
from fastapi.testclient import TestClient

from services.core import events
from services.core.registry import Registry
from services.core.settings import Settings
from services.core.storage import ObjectStore
from services.core.user_store import erasure_key
from services.serve.app import create_app
from services.train import raw_store
from services.train.context import Context
from services.train.feedback.curated import curated_days, curated_key, load_curated_feedback, quarantine_key
from services.train.feedback.erasure import drop_erased, erased_users
from services.train.feedback.steps import collect_feedback
from tests.serve_fixtures import (
    FakeTranslator,
    publish_rating,
    publish_recommender,
    recommender_ids,
)

OLD, EARLIER, DAY = "2026-11-20", "2026-11-29", "2026-12-01"  # OLD is outside the 3-day window
LATER = "2027-01-05"  # after the marker is written (the clock reads 2026-12 or so): a returning user


def fb(event_id: str, user_id: str, day: str, tmdb_id: int = 603, kind: str = "like", **over: Any) -> dict:
    """A feedback event as the serving host writes it."""
    return {
        "event_id": event_id, "ts": f"{day}T10:00:00.000Z", "replica": "api-1", "user_id": user_id,
        "tmdb_id": tmdb_id, "kind": kind, "value": None, "request_id": None, "position": None, **over,
    }  # fmt: skip


def upload(store: ObjectStore, day: str, rows: list[dict[str, Any]]) -> None:
    store.put_bytes(events.batch_key("feedback", day, "api-1", 0), events.encode_lines(rows))


def day_users(store: ObjectStore, day: str) -> list[str]:
    return [r["user_id"] for r in raw_store.read_jsonl(store, curated_key(day))]


def quarantined_users(store: ObjectStore, day: str) -> list[str]:
    return [q["record"]["user_id"] for q in raw_store.read_jsonl(store, quarantine_key(day))]


def _ctx(settings: Settings, store: ObjectStore) -> Context:
    return Context(settings, store, Registry(store), tracker=None)  # type: ignore[arg-type]


def test_an_erased_user_leaves_every_curated_day_old_ones_included(
    s3_settings: Settings, store: ObjectStore
) -> None:
    ctx = _ctx(s3_settings, store)
    for day in (OLD, EARLIER, DAY):
        rows = [fb(f"a-{day}", "ana", day), fb(f"b-{day}", "bob", day, tmdb_id=11)]
        rows.append(fb(f"bad-{day}", "ana", day, kind="shrug"))  # quarantined: it holds her id too
        upload(store, day, rows)
    collect_feedback(ctx, OLD)
    collect_feedback(ctx, EARLIER)
    assert day_users(store, OLD) == ["ana", "bob"] and quarantined_users(store, OLD) == ["ana"]

    store.put_json(erasure_key("ana"), {"user_id": "ana"})  # what DELETE /users/ana leaves
    assert set(erased_users(store)) == {"ana"}
    result = collect_feedback(ctx, DAY)

    # The window (EARLIER..DAY) is curated without her, the day OLD outside it is rewritten.
    assert result["erased_events"] == 2
    assert result["erasure"]["days_rewritten"] == [OLD] and result["erasure"]["events"] == 1
    assert curated_days(store) == [OLD, EARLIER, DAY]
    for day in (OLD, EARLIER, DAY):
        assert day_users(store, day) == ["bob"]
        assert quarantined_users(store, day) == []
    assert {r["user_id"] for r in load_curated_feedback(store, DAY)} == {"bob"}
    assert result["users"] == 1 and result["interactions"] == 1

    # The next run has no new marker: no old day is read, and re-curation from raw still leaves her out.
    again = collect_feedback(ctx, DAY)
    assert again["erasure"] == {"new_markers": 0, "days_read": 0, "days_rewritten": [], "events": 0}
    assert again["erased_events"] == 2 and day_users(store, DAY) == ["bob"]


def test_a_user_who_comes_back_after_the_erasure_starts_from_nothing(
    s3_settings: Settings, store: ObjectStore
) -> None:
    ctx = _ctx(s3_settings, store)
    upload(store, DAY, [fb("a1", "ana", DAY)])
    store.put_json(erasure_key("ana"), {"user_id": "ana"})
    upload(store, LATER, [fb("a2", "ana", LATER, tmdb_id=11)])  # her events after the marker's time
    collect_feedback(ctx, DAY)
    result = collect_feedback(ctx, LATER)
    assert day_users(store, DAY) == []
    assert [r["event_id"] for r in load_curated_feedback(store, LATER)] == ["a2"]
    assert result["erased_events"] == 0


def test_drop_erased_keeps_what_followed_the_erasure_and_drops_what_has_no_time() -> None:
    table = pa.table({"user_id": ["ana", "ana", "ana", "bob", None], "ts": ["a", "b", "c", "d", "e"]})
    ts_us = np.array([100, 200, 201, np.iinfo(np.int64).max, 5], dtype=np.int64)
    ts_us[2] = np.iinfo(np.int64).max  # no readable time: it cannot be shown to follow the erasure
    ts_us[1] = 300
    kept, dropped = drop_erased(table, {"ana": 200}, ts_us)
    assert dropped == 2
    assert kept["ts"].to_pylist() == ["b", "d", "e"]
    assert drop_erased(table, {}, ts_us) == (table, 0)


def test_an_event_in_the_same_second_as_the_marker_is_dropped(
    s3_settings: Settings, store: ObjectStore
) -> None:
    # S3's LastModified has whole seconds: the cutoff is the end of the marker's second.
    store.put_json(erasure_key("ana"), {"user_id": "ana"})
    [marker] = store.list("users/erasures/")
    second = marker.modified.strftime("%Y-%m-%dT%H:%M:%S")
    day = second[:10]
    upload(store, day, [fb("a1", "ana", day, ts=f"{second}.999Z"), fb("b1", "bob", day, ts=f"{second}.999Z")])
    result = collect_feedback(_ctx(s3_settings, store), day)
    assert result["erased_events"] == 1 and day_users(store, day) == ["bob"]


def test_delete_on_the_real_api_leaves_nothing_in_the_next_runs_curated_data(
    s3_settings: Settings, store: ObjectStore, registry: Registry
) -> None:
    publish_rating(registry)
    publish_recommender(registry)
    ids = recommender_ids()
    settings = s3_settings.model_copy(update={"spool_flush_interval_s": 0.1})
    app = create_app(settings, translator=FakeTranslator())
    with TestClient(app) as client:
        body = {
            "events": [
                {"user_id": u, "tmdb_id": ids[n], "kind": "like"} for n, u in enumerate(["ana", "bob"])
            ]
        }
        assert client.post("/feedback", json=body).status_code == 202
        app.state.events.flush()
        day = events.days(store, "feedback")[-1]
        collect_feedback(_ctx(settings, store), day)
        assert sorted(day_users(store, day)) == ["ana", "bob"]
        assert client.delete("/users/ana").status_code == 204
        app.state.events.flush()
    result = collect_feedback(_ctx(settings, store), day)
    assert day_users(store, day) == ["bob"] and result["erased_events"] == 1
