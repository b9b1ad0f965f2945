"""Users known by their id, on the real API: a real S3, and the user store both ways (SQLite, a real Redis)."""

from __future__ import annotations

import json
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from pydantic import SecretStr

from scripts.harness.processes import ROOT, serve_env
from scripts.harness.redis_server import RedisServer, redis_server
from services.core import event_table, events, experiments
from services.core.registry import Registry
from services.core.settings import Settings
from services.core.storage import ObjectStore
from services.core.user_store import erasure_key
from services.core.user_store_open import open_user_store
from services.serve.app import create_app
from services.train.feedback.users_cli import rebuild
from tests.serve_fixtures import FakeTranslator, publish_rating, publish_recommender, recommender_ids
from tests.waiting import wait_until

IDS = recommender_ids()  # the item-kNN recommender: each movie's neighbours are the next three of IDS


@pytest.fixture(scope="module")
def redis_srv(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RedisServer]:
    with redis_server(tmp_path_factory.mktemp("redis")) as server:
        yield server


@pytest.fixture(params=["local", "redis"])
def settings(request: pytest.FixtureRequest, s3_settings: Settings, registry: Registry) -> Iterator[Settings]:
    publish_rating(registry)
    publish_recommender(registry, 1)
    update: dict[str, object] = {"spool_flush_interval_s": 0.1}
    if request.param == "redis":
        srv: RedisServer = request.getfixturevalue("redis_srv")
        update["user_store_url"] = SecretStr(srv.url(1))
    settings = s3_settings.model_copy(update=update)
    yield settings
    users = open_user_store(settings)
    users.clear()  # the Redis server is shared by the module's tests
    users.close()


def _client(settings: Settings) -> TestClient:
    return TestClient(create_app(settings, translator=FakeTranslator()))


@pytest.fixture
def client(settings: Settings) -> Iterator[TestClient]:
    with _client(settings) as c:
        yield c


def _feedback(c: TestClient, user: str, *pairs: tuple[int, str]) -> None:
    body = {"events": [{"user_id": user, "tmdb_id": i, "kind": kind} for i, kind in pairs]}
    r = c.post("/feedback", json=body)
    assert r.status_code == 202, r.text


def _recommend(c: TestClient, **body: object) -> dict:
    r = c.post("/recommend", json=body)
    assert r.status_code == 200, r.text
    return r.json()


def _ids(out: dict) -> list[int]:
    return [i["tmdb_id"] for i in out["items"]]


def test_a_user_id_alone_ranks_from_the_stored_likes(client: TestClient) -> None:
    three = IDS[:3]
    _feedback(client, "alice", *((i, "like") for i in three))
    mine = _recommend(client, user_id="alice", k=5)
    assert mine["source"] == "user" and mine["history"] == 3 and mine["cached"] is False
    assert not set(three) & set(_ids(mine))
    # The same ranking as a client sending those three itself, most recent last.
    assert _ids(mine) == _ids(_recommend(client, liked=three, k=5))
    assert _ids(mine)[:3] == IDS[3:6]  # the neighbours of the three: personalised, not popularity
    # The request's liked come after the stored history, as the most recent.
    more = _recommend(client, user_id="alice", liked=[IDS[20]], k=5)
    assert more["source"] == "user" and more["history"] == 3
    assert _ids(more) == _ids(_recommend(client, liked=[*three, IDS[20]], k=5))
    assert _recommend(client, user_id="nobody", k=5)["source"] == "fallback"
    assert _recommend(client, user_id="nobody", liked=three, k=5)["source"] == "request"
    state = client.get("/users/alice").json()
    assert [p["tmdb_id"] for p in state["positives"]] == three and state["seq"] == 3


def test_a_disliked_or_watched_movie_never_comes_back(client: TestClient) -> None:
    _feedback(client, "bob", (IDS[0], "like"), (IDS[1], "like"))
    before = _ids(_recommend(client, user_id="bob", k=10))
    assert IDS[2] in before and IDS[3] in before
    _feedback(client, "bob", (IDS[2], "dislike"), (IDS[3], "watched"))
    for k in (1, 10, 40):
        after = _ids(_recommend(client, user_id="bob", k=k))
        assert IDS[2] not in after and IDS[3] not in after
        assert len(after) == k
    state = client.get("/users/bob").json()
    assert state["dislikes"] == [IDS[2]] and state["seen"] == [IDS[3]]


def test_a_restart_changes_nothing_the_user_sees(settings: Settings) -> None:
    with _client(settings) as first:
        _feedback(first, "carol", (IDS[7], "like"), (IDS[8], "like"), (IDS[9], "dislike"))
        seen_before = _recommend(first, user_id="carol", k=8)
        state_before = first.get("/users/carol").json()
    with _client(settings) as second:  # a new app on the same store: a restarted replica
        assert second.get("/users/carol").json() == state_before
        seen_after = _recommend(second, user_id="carol", k=8)
    assert _ids(seen_after) == _ids(seen_before) and seen_after["history"] == 2


def test_delete_leaves_nothing_in_the_store_and_a_marker_in_s3(
    client: TestClient, settings: Settings, store: ObjectStore
) -> None:
    _feedback(client, "dave", (IDS[0], "like"), (IDS[1], "dislike"))
    assert client.get("/users/dave").status_code == 200
    r = client.delete("/users/dave")
    assert r.status_code == 204 and r.content == b""
    missing = client.get("/users/dave")
    assert missing.status_code == 404 and "no state is held for user 'dave'" in missing.json()["detail"]
    users = open_user_store(settings)
    try:
        assert users.get("dave") is None and "dave" not in users.user_ids()
    finally:
        users.close()
    marker = store.get_json(erasure_key("dave"))
    assert marker["user_id"] == "dave" and marker["requested_at"]
    assert _recommend(client, user_id="dave", k=3)["source"] == "fallback"
    assert client.delete("/users/dave").status_code == 204  # idempotent: a retry is fine


def test_a_precomputed_list_answers_until_the_user_acts(
    client: TestClient, settings: Settings, store: ObjectStore
) -> None:
    _feedback(client, "erin", (IDS[0], "like"), (IDS[1], "dislike"))
    version = _recommend(client, k=1)["model_version"]
    users = open_user_store(settings)
    try:
        # The batch task's list, made for erin's current history (a disliked id in it is still filtered).
        users.put_recs("erin", version, [[IDS[30], 0.9], [IDS[1], 0.8], [IDS[31], 0.7], [IDS[32], 0.6]], "t")
        users.put_recs("frank", "some-older-version", [IDS[30], IDS[31]], "t")
    finally:
        users.close()
    cached = _recommend(client, user_id="erin", k=3)
    assert (
        cached["cached"] is True
        and cached["source"] == "user"
        and _ids(cached) == [IDS[30], IDS[31], IDS[32]]
    )
    assert _recommend(client, user_id="erin", k=4)["cached"] is False  # filtered below k: ranked live
    assert _recommend(client, user_id="frank", k=2)["cached"] is False  # not the serving version
    assert _recommend(client, user_id="erin", liked=[IDS[5]], k=3)["cached"] is False  # new input
    _feedback(client, "erin", (IDS[2], "like"))
    live = _recommend(client, user_id="erin", k=3)
    assert live["cached"] is False and live["history"] == 2
    client.app.state.events.flush()  # type: ignore[attr-defined]
    shown = [r for d in events.days(store, "impressions") for r in events.read_day(store, "impressions", d)]
    by_request = {r["request_id"]: r for r in shown}
    assert by_request[cached["request_id"]]["cached"] is True
    assert (
        by_request[live["request_id"]]["source"] == "user" and by_request[live["request_id"]]["history"] == 2
    )
    # The impression table (what online evaluation reads) has the new columns typed.
    (day,) = events.days(store, "impressions")
    table = event_table.read_day_table(store, "impressions", day).table
    rows = {
        r["request_id"]: r for r in table.select(["request_id", "source", "cached", "history"]).to_pylist()
    }
    assert rows[cached["request_id"]] == {
        "request_id": cached["request_id"],
        "source": "user",
        "cached": True,
        "history": 1,
    }
    metrics = client.get("/metrics").text
    assert 'movie_intel_recommend_source_total{cached="true",source="user"} 1.0' in metrics


def test_a_candidate_arm_ranks_with_the_candidate_and_ignores_productions_list(
    settings: Settings, registry: Registry
) -> None:
    production = registry.pointer("recommender").version
    candidate = publish_recommender(registry, -1, promote=False)
    experiments.start(registry, "recommender", candidate.version, share=0.5, started_by="test")
    users = [f"user-{n}" for n in range(40)]
    with _client(settings) as c:  # started after the experiment: it serves both arms
        for u in users:
            _feedback(c, u, (IDS[10], "like"))
        store = open_user_store(settings)
        try:
            store.put_recs_many(
                {"user_id": u, "model_version": production, "items": IDS[30:36], "computed_at": "t"}
                for u in users
            )
        finally:
            store.close()
        outs = [_recommend(c, user_id=u, k=3) for u in users]
    assert {o["arm"] for o in outs} == {"production", "candidate"}
    for o in outs:
        assert o["source"] == "user" and o["history"] == 1
        if o["arm"] == "production":  # production's precomputed list, current: answered from it
            assert o["cached"] is True and o["model_version"] == production and _ids(o) == IDS[30:33]
        else:  # the candidate ranks live from the same stored history
            assert o["cached"] is False and o["model_version"] == candidate.version
            assert _ids(o)[0] == IDS[9]


def test_a_store_that_is_down_costs_no_feedback_and_no_recommendation(
    s3_settings: Settings, registry: Registry, tmp_path: Path
) -> None:
    publish_rating(registry)
    publish_recommender(registry, 1)
    # Nothing listens on port 9: every store call fails at once.
    down = s3_settings.model_copy(update={"user_store_url": SecretStr("redis://:pw@127.0.0.1:9/1")})
    with _client(down) as c:
        _feedback(c, "gina", (IDS[0], "like"))
        assert _recommend(c, user_id="gina", k=3)["source"] == "fallback"
        out = _recommend(c, user_id="gina", liked=[IDS[0]], k=3)
        assert out["source"] == "request" and out["history"] == 0 and _ids(out)[0] == IDS[1]
        assert c.get("/users/gina").status_code == 503
        metrics = c.get("/metrics").text
    assert 'movie_intel_user_store_errors_total{op="apply"} 1.0' in metrics


def test_rebuild_restores_the_store_from_s3_without_erased_users(
    client: TestClient, settings: Settings, store: ObjectStore, tmp_path: Path
) -> None:
    _feedback(client, "hana", (IDS[0], "like"), (IDS[1], "dislike"), (IDS[2], "watched"))
    _feedback(client, "ivan", (IDS[5], "like"))
    _feedback(client, "hana", (IDS[3], "like"))
    before = client.get("/users/hana").json()
    # The erasure's time is its marker's S3 LastModified, in whole seconds (services/train/feedback/erasure.py): an
    # event in the same second as the DELETE would survive it. Reported; here the DELETE comes in a later second.
    last_event_second = int(time.time())
    wait_until(lambda: int(time.time()) > last_event_second, 5, "the next whole second", poll_s=0.01)
    assert client.delete("/users/ivan").status_code == 204
    client.app.state.events.flush()  # type: ignore[attr-defined]
    users = open_user_store(settings)
    try:
        users.clear()  # the store is lost
        assert client.get("/users/hana").status_code == 404
        summary = rebuild(settings, users, store, days=2)
    finally:
        users.close()
    assert summary["events"] == 4 and summary["users"] == 1
    after = client.get("/users/hana").json()
    assert after == before  # positives in time order, dislikes, seen, seq: as the live store had them
    assert client.get("/users/ivan").status_code == 404  # erased: stays out


def test_users_sh_shows_and_deletes(
    client: TestClient, settings: Settings, store: ObjectStore, tmp_path: Path
) -> None:
    _feedback(client, "jo", (IDS[0], "like"))
    env = {
        **serve_env(settings, tmp_path, 0),
        "SPOOL_DIR": str(settings.spool_dir),
        **({"USER_STORE_URL": settings.user_store_url.get_secret_value()} if settings.user_store_url else {}),
    }
    run = [str(ROOT / "scripts" / "users.sh")]
    shown = subprocess.run([*run, "show", "jo"], env=env, capture_output=True, text=True, timeout=120)
    assert shown.returncode == 0, shown.stderr
    assert [p["tmdb_id"] for p in json.loads(shown.stdout)["positives"]] == [IDS[0]]
    gone = subprocess.run([*run, "delete", "jo"], env=env, capture_output=True, text=True, timeout=120)
    assert gone.returncode == 0 and json.loads(gone.stdout)["online_state_removed"] is True
    assert client.get("/users/jo").status_code == 404 and store.exists(erasure_key("jo"))
    unknown = subprocess.run([*run, "show", "jo"], env=env, capture_output=True, text=True, timeout=120)
    assert unknown.returncode == 1 and "no state is held" in unknown.stderr


def test_replicas_on_the_prod_shapes_redis_share_what_a_user_did(
    s3_settings: Settings, registry: Registry, redis_srv: RedisServer, tmp_path: Path
) -> None:
    publish_rating(registry)
    publish_recommender(registry, 1)
    shared = {"user_store_url": SecretStr(redis_srv.url(1)), "spool_flush_interval_s": 0.1}
    one = s3_settings.model_copy(update={**shared, "spool_dir": tmp_path / "api-1"})
    two = s3_settings.model_copy(update={**shared, "spool_dir": tmp_path / "api-2"})
    try:
        with _client(one) as api1, _client(two) as api2:  # two replicas, each with its own spool
            _feedback(api1, "kim", (IDS[0], "like"), (IDS[1], "like"), (IDS[2], "like"))
            _feedback(api2, "kim", (IDS[3], "dislike"))
            out = _recommend(api2, user_id="kim", k=5)
            assert out["source"] == "user" and out["history"] == 3
            assert not {IDS[0], IDS[1], IDS[2], IDS[3]} & set(_ids(out))
            assert api1.get("/users/kim").json() == api2.get("/users/kim").json()
            assert api2.delete("/users/kim").status_code == 204
            assert api1.get("/users/kim").status_code == 404
    finally:
        users = open_user_store(one)
        users.clear()
        users.close()
