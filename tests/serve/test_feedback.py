"""POST /feedback and impression logging through TestClient, with the spool flushed to a real S3."""

from __future__ import annotations

import json
import re
import secrets
from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from pydantic import SecretStr

from services.core import events
from services.core.embedded_s3 import EmbeddedS3, free_port_block
from services.core.registry import Registry
from services.core.settings import Settings
from services.core.storage import ObjectStore
from services.serve.app import create_app
from services.serve.spool import Spool
from services.serve.spool_folder import SpoolLocked
from tests.serve_fixtures import (
    FakeTranslator,
    catalog_json,
    publish_rating,
    publish_recommender,
    recommender_ids,
)
from tests.waiting import wait_until


def _all(store: ObjectStore, stream: str) -> list[dict]:
    return [r for day in events.days(store, stream) for r in events.read_day(store, stream, day)]


def _like(tmdb_id: int, **extra: object) -> dict:
    return {"user_id": "u-1", "tmdb_id": tmdb_id, "kind": "like", **extra}


@pytest.fixture
def app_settings(s3_settings: Settings, registry: Registry) -> Settings:
    publish_rating(registry)
    publish_recommender(registry)
    return s3_settings.model_copy(update={"spool_flush_interval_s": 0.1})


@pytest.fixture
def client(app_settings: Settings) -> Iterator[TestClient]:
    app = create_app(app_settings, translator=FakeTranslator())
    with TestClient(app) as c:
        yield c


def _flushed(c: TestClient) -> None:
    c.app.state.events.flush()  # type: ignore[attr-defined]


def test_accepted_events_reach_s3_once_with_server_time(client: TestClient, store: ObjectStore) -> None:
    movie = recommender_ids()[0]
    body = {"events": [_like(movie, event_id="e-1"), _like(movie, event_id="e-2", kind="watched")]}
    before = events.utc_now()
    r = client.post("/feedback", json=body, headers={"X-Forwarded-For": "203.0.113.9"})
    assert r.status_code == 202, r.text
    assert r.json() == {"accepted": 2, "duplicates": 0, "event_ids": ["e-1", "e-2"]}
    again = client.post("/feedback", json=body)  # a client retrying after a lost answer
    assert again.status_code == 202 and again.json()["duplicates"] == 2 and again.json()["accepted"] == 0
    _flushed(client)
    stored = _all(store, "feedback")
    assert sorted(e["event_id"] for e in stored) == ["e-1", "e-2"]
    assert all(before <= e["ts"] <= events.utc_now() for e in stored)
    assert "203.0.113.9" not in json.dumps(stored)  # no client address is kept


def test_events_without_ids_get_fresh_ones(client: TestClient, store: ObjectStore) -> None:
    movie = recommender_ids()[1]
    ids = [client.post("/feedback", json={"events": [_like(movie)]}).json()["event_ids"][0] for _ in range(3)]
    assert len(set(ids)) == 3
    _flushed(client)
    assert len(_all(store, "feedback")) == 3


def test_a_recommendation_and_the_feedback_on_it_share_a_request_id(
    client: TestClient, store: ObjectStore
) -> None:
    liked = recommender_ids()[:2]
    rec = client.post("/recommend", json={"liked": liked, "user_id": "u-7"}).json()
    assert len(rec["request_id"]) == 32
    shown = rec["items"][2]["tmdb_id"]
    ack = client.post(
        "/feedback", json={"events": [_like(shown, user_id="u-7", request_id=rec["request_id"], position=3)]}
    )
    assert ack.status_code == 202
    _flushed(client)
    (impression,) = _all(store, "impressions")
    assert impression["request_id"] == rec["request_id"] and impression["user_id"] == "u-7"
    assert impression["items"] == [i["tmdb_id"] for i in rec["items"]]
    assert impression["model_version"] == rec["model_version"] and impression["fallback"] is False
    (fb,) = _all(store, "feedback")
    assert fb["request_id"] == rec["request_id"] and fb["position"] == 3
    key = store.list("events/impressions/")[0].key
    replica = client.app.state.events.spool.replica_id  # type: ignore[attr-defined]
    assert key.startswith(f"events/impressions/dt={impression['ts'][:10]}/{replica}-") and key.endswith(
        ".jsonl.gz"
    )


def test_a_cold_start_response_is_logged_as_a_fallback(client: TestClient, store: ObjectStore) -> None:
    rec = client.post("/recommend", json={"liked": []}).json()
    _flushed(client)
    (impression,) = _all(store, "impressions")
    assert impression["fallback"] is True and impression["user_id"] is None
    assert impression["request_id"] == rec["request_id"]


@pytest.mark.parametrize(
    ("event", "field", "words"),
    [
        (_like(999_999_999), "tmdb_id", "not in the catalog"),
        ({"user_id": "u", "tmdb_id": 862, "kind": "love"}, "kind", "like"),
        (_like(862, value=4.0), "value", "only a rating"),
        ({"user_id": "u", "tmdb_id": 862, "kind": "rating"}, "value", "needs a value"),
        ({"user_id": "u", "tmdb_id": 862, "kind": "rating", "value": 4.2}, "value", "multiple of 0.5"),
        ({"user_id": "u", "tmdb_id": 862, "kind": "rating", "value": 5.5}, "value", "less than or equal"),
        ({"user_id": "", "tmdb_id": 862, "kind": "like"}, "user_id", "at least 1"),
        ({"tmdb_id": 862, "kind": "like"}, "user_id", "required"),
        (_like(862, position=0), "position", "greater than or equal"),
        (_like(862, event_id="has spaces"), "event_id", "pattern"),
        (_like(862, ip="1.2.3.4"), "ip", "not permitted"),
    ],
)
def test_bad_events_are_422_naming_the_field(client: TestClient, event: dict, field: str, words: str) -> None:
    good = _like(recommender_ids()[0])
    r = client.post("/feedback", json={"events": [good, event]})
    assert r.status_code == 422, r.text
    (error,) = r.json()["detail"]
    assert error["loc"][:3] == ["body", "events", 1] and error["loc"][-1] == field
    assert words in error["msg"]


def test_empty_and_oversized_batches_are_422(client: TestClient, store: ObjectStore) -> None:
    movie = recommender_ids()[0]
    for events_ in ([], [_like(movie)] * 501):
        r = client.post("/feedback", json={"events": events_})
        assert r.status_code == 422 and r.json()["detail"][0]["loc"] == ["body", "events"]
    _flushed(client)
    assert _all(store, "feedback") == []  # a refused batch stores nothing, not even its good events


def test_a_full_spool_answers_503_with_retry_after(app_settings: Settings) -> None:
    settings = app_settings.model_copy(update={"spool_max_pending": 3, "spool_flush_interval_s": 3600})
    app = create_app(settings, translator=FakeTranslator())
    movie = recommender_ids()[0]
    with TestClient(app) as c:
        assert c.post("/feedback", json={"events": [_like(movie)] * 3}).status_code == 202
        r = c.post("/feedback", json={"events": [_like(movie)]})
        assert r.status_code == 503 and int(r.headers["retry-after"]) > 0
        assert "spool is full" in r.json()["detail"]
        assert c.post("/recommend", json={"liked": []}).status_code == 200  # recommending goes on
        metrics = c.get("/metrics").text
        assert 'movie_intel_events_refused_total{reason="spool_full",stream="feedback"} 1.0' in metrics


def test_two_replicas_on_one_bucket_never_overwrite(
    app_settings: Settings, store: ObjectStore, tmp_path: Path
) -> None:
    movie = recommender_ids()[0]
    sent = []
    clients = []
    for n in range(2):
        settings = app_settings.model_copy(update={"spool_dir": tmp_path / f"spool-{n}"})
        app = create_app(settings, translator=FakeTranslator())
        clients.append(TestClient(app).__enter__())
    try:
        for i in range(40):  # interleaved: both replicas' first batches start at spool sequence 1
            ids = clients[i % 2].post("/feedback", json={"events": [_like(movie)]}).json()["event_ids"]
            sent += ids
        for c in clients:
            _flushed(c)
        replicas = {c.app.state.events.spool.replica_id for c in clients}  # type: ignore[attr-defined]
        assert len(replicas) == 2
    finally:
        for c in clients:
            c.__exit__(None, None, None)
    assert sorted(e["event_id"] for e in _all(store, "feedback")) == sorted(sent)


def test_a_spool_folder_serves_one_process_only(tmp_path: Path) -> None:
    first = Spool(tmp_path)
    first.open()
    try:
        with pytest.raises(SpoolLocked, match="its own SPOOL_DIR"):
            Spool(tmp_path).open()
    finally:
        first.close()


def test_events_taken_while_s3_is_down_are_flushed_once_it_is_back(
    app_settings: Settings, tmp_path_factory: pytest.TempPathFactory
) -> None:
    # An S3 server of this test's own, so stopping it disturbs no other test.
    s3 = EmbeddedS3(
        data_dir=tmp_path_factory.mktemp("own-s3"), port=free_port_block(), access_key="k" + secrets.token_hex(4),
        secret_key=secrets.token_hex(16), bucket="events",
    )  # fmt: skip
    s3.start(timeout_s=60)
    settings = app_settings.model_copy(
        update={
            "s3_endpoint_url": s3.endpoint, "s3_bucket": "events", "aws_access_key_id": SecretStr(s3.access_key),
            "aws_secret_access_key": SecretStr(s3.secret_key), "s3_max_attempts": 1,
        }
    )  # fmt: skip
    store = ObjectStore.from_settings(settings)
    publish_rating(Registry(store))
    movie = int(json.loads(catalog_json())[0]["tmdb_id"])
    app = create_app(settings, translator=FakeTranslator())
    try:
        with TestClient(app) as c:
            s3.stop()
            sent = []
            for _ in range(20):
                r = c.post("/feedback", json={"events": [_like(movie)]})
                assert r.status_code == 202  # acknowledged: it is on the replica's disk
                sent += r.json()["event_ids"]
            # The flusher tries, fails and keeps the rows: a failed upload starts the outage.
            wait_until(lambda: app.state.events.outage_since is not None, 30, "a failed upload")
            assert app.state.events.spool.pending == 20
            s3.start(timeout_s=60)
            wait_until(lambda: app.state.events.spool.pending == 0, 30, "the spool to drain once S3 is back")
            assert app.state.events.outage_since is None
        assert sorted(e["event_id"] for e in _all(store, "feedback")) == sorted(sent)
    finally:
        s3.stop()


def test_a_long_s3_outage_answers_503(app_settings: Settings) -> None:
    settings = app_settings.model_copy(update={"spool_max_outage_s": 60.0, "spool_flush_interval_s": 3600})
    app = create_app(settings, translator=FakeTranslator())
    with TestClient(app) as c:
        app.state.events.outage_since = app.state.events.clock() - 61  # the flusher has failed for a minute
        r = c.post("/feedback", json={"events": [_like(recommender_ids()[0])]})
        assert r.status_code == 503 and r.headers["retry-after"] == "30"
        assert re.search(r"unreachable for 6\d s", r.json()["detail"])  # 61 s, or 62 on a busy machine
        app.state.events.outage_since = None  # S3 back: taken again
        assert c.post("/feedback", json={"events": [_like(recommender_ids()[0])]}).status_code == 202


def test_model_online_serves_the_recent_reports_oldest_first(client: TestClient, store: ObjectStore) -> None:
    for day, hit_rate in (("2026-11-29", 0.1), ("2026-11-30", 0.2), ("2026-12-01", 0.3)):
        report = {"date": day, "versions": [{"version": "v1", "responses": 10, "hit_rate": hit_rate}]}
        store.put_json(events.report_key("online", day, "recommender.json"), report)
    store.put_json(events.report_key("online", "2026-12-02", "other.json"), {})  # not this report
    days = client.get("/model/online").json()["days"]
    assert [d["date"] for d in days] == ["2026-11-29", "2026-11-30", "2026-12-01"]
    assert days[-1]["versions"][0]["hit_rate"] == 0.3
    client.app.state.reports.ttl_s = 0  # type: ignore[attr-defined]
    assert [d["date"] for d in client.get("/model/online", params={"days": 1}).json()["days"]] == [
        "2026-12-01"
    ]
    assert client.get("/model/online", params={"days": 0}).status_code == 422
