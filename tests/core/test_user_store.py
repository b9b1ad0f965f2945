"""The user stores on real parts: SQLite (the embedded default) and a real redis-server (the prod shape)."""

from __future__ import annotations

import sqlite3
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import redis

from scripts.harness.redis_server import RedisServer, redis_server
from services.core.settings import Settings
from services.core.user_store import MAX_EVENTS, GuardedStore, UserStore
from services.core.user_store_local import LocalUserStore
from services.core.user_store_open import open_user_store, user_store_path
from services.core.user_store_redis import RedisUserStore

TTL_S = 180 * 86400


@pytest.fixture(scope="module")
def redis_srv(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RedisServer]:
    with redis_server(tmp_path_factory.mktemp("redis")) as server:
        yield server


def _open(kind: str, tmp_path: Path, srv: RedisServer | None) -> UserStore:
    if kind == "local":
        return LocalUserStore(tmp_path / "users.db", ttl_s=TTL_S)
    assert srv is not None
    return RedisUserStore(srv.url(1), ttl_s=TTL_S)


@pytest.fixture(params=["local", pytest.param("redis", marks=pytest.mark.integration)])
def kind(request: pytest.FixtureRequest) -> str:
    return request.param


@pytest.fixture
def store(kind: str, tmp_path: Path, request: pytest.FixtureRequest) -> Iterator[UserStore]:
    srv = request.getfixturevalue("redis_srv") if kind == "redis" else None
    s = _open(kind, tmp_path, srv)
    s.clear()
    yield s
    s.clear()
    s.close()


def _ev(user: str, tmdb_id: int, kind: str, n: int, value: float | None = None, **extra: object) -> dict:
    return {
        "user_id": user,
        "tmdb_id": tmdb_id,
        "kind": kind,
        "value": value,
        "ts": f"2026-12-07T10:00:{n:02d}.000Z",
        **extra,
    }


def test_state_is_folded_from_events_in_time_order(store: UserStore) -> None:
    store.apply(
        [_ev("u", 10, "like", 1), _ev("u", 11, "watched", 2), _ev("u", 12, "dislike", 3, request_id="r1")]
    )
    store.apply([_ev("u", 13, "rating", 4, 4.5), _ev("u", 14, "rating", 5, 2.0), _ev("v", 10, "like", 6)])
    s = store.get("u")
    assert s is not None
    assert [i for i, _ in s.positives] == [10, 11, 13]  # 2 stars is no positive
    assert s.positives[0][1] == "2026-12-07T10:00:01.000Z"
    assert s.dislikes == {12} and s.seen == {11, 13, 14} and s.ratings == {13: 4.5, 14: 2.0}
    assert s.shown == ["r1"] and s.seq == 5 and s.events == 5
    assert store.get("v").seq == 1 and store.get("nobody") is None
    # A change of mind: the later event wins.
    store.apply([_ev("u", 12, "like", 7), _ev("u", 10, "dislike", 8)])
    s = store.get("u")
    assert [i for i, _ in s.positives] == [11, 13, 12] and s.dislikes == {10}


def test_a_user_keeps_only_the_most_recent_events(store: UserStore) -> None:
    store.apply([_ev("u", 1000 + n, "like", n % 60) for n in range(MAX_EVENTS + 50)])
    s = store.get("u")
    assert s.events == MAX_EVENTS and s.seq == MAX_EVENTS + 50
    assert [i for i, _ in s.positives] == [1000 + n for n in range(50, MAX_EVENTS + 50)]


def test_a_precomputed_list_is_current_until_the_user_acts(store: UserStore) -> None:
    store.apply([_ev("u", 1, "like", 1), _ev("u", 2, "like", 2)])
    store.put_recs("u", "v-1", [5, 6, 7], "2026-12-07T03:00:00Z")
    recs = store.get("u").cached_recs
    assert recs is not None and recs.seq_at == store.get("u").seq == 2 and recs.items == [5, 6, 7]
    store.apply([_ev("u", 3, "dislike", 3)])
    s = store.get("u")
    assert s.cached_recs.seq_at == 2 and s.seq == 3  # stale now: /recommend ranks live
    # A user the store did not know (a MovieLens user): the list, at seq 0.
    assert (
        store.put_recs_many(
            {"user_id": f"ml-{n}", "model_version": "v-1", "items": [[n, 0.5]], "computed_at": "t"}
            for n in range(2500)
        )
        == 2500
    )
    ml = store.get("ml-7")
    assert (
        ml.seq == 0
        and ml.cached_recs.seq_at == 0
        and ml.cached_recs.items == [[7, 0.5]]
        and ml.positives == []
    )


def test_delete_leaves_nothing(store: UserStore) -> None:
    store.apply([_ev("u", 1, "like", 1), _ev("w", 1, "like", 1)])
    store.put_recs("u", "v-1", [5], "t")
    assert store.delete("u") is True and store.delete("u") is False
    assert store.get("u") is None and store.user_ids() == ["w"]


def test_the_state_survives_a_restart(kind: str, tmp_path: Path, request: pytest.FixtureRequest) -> None:
    srv = request.getfixturevalue("redis_srv") if kind == "redis" else None
    first = _open(kind, tmp_path, srv)
    first.clear()
    first.apply([_ev("u", 1, "like", 1), _ev("u", 2, "dislike", 2)])
    before = first.get("u")
    first.close()
    second = _open(kind, tmp_path, srv)
    try:
        assert second.get("u") == before
    finally:
        second.clear()
        second.close()


def test_redis_keys_expire_after_the_ttl_in_their_own_database(redis_srv: RedisServer) -> None:
    s = RedisUserStore(redis_srv.url(1), ttl_s=3600)
    s.clear()
    s.apply([_ev("u", 1, "like", 1)])
    raw = redis.Redis.from_url(redis_srv.url(1))
    assert 3500 < raw.ttl("u:u") <= 3600 and 3500 < raw.ttl("ue:u") <= 3600
    assert redis.Redis.from_url(redis_srv.url(0)).dbsize() == 0  # Celery's database is left alone
    with pytest.raises(redis.AuthenticationError):
        redis.Redis(port=redis_srv.port, password="wrong").ping()
    s.clear()
    s.close()


def test_a_local_user_untouched_past_the_ttl_is_forgotten(tmp_path: Path) -> None:
    s = LocalUserStore(tmp_path / "users.db", ttl_s=3600)
    s.apply([_ev("old", 1, "like", 1), _ev("new", 1, "like", 1)])
    with sqlite3.connect(tmp_path / "users.db") as db:
        db.execute("UPDATE users SET touched = ? WHERE user_id = 'old'", (time.time() - 7200,))
    assert s.get("old") is None and s.get("new") is not None
    s.apply([_ev("old", 2, "like", 2)])  # starts again from nothing
    assert [i for i, _ in s.get("old").positives] == [2] and s.get("old").seq == 1
    assert s.purge_expired() == 0
    s.close()


def test_settings_pick_the_store(tmp_path: Path, redis_srv: RedisServer) -> None:
    local = Settings(_env_file=None, spool_dir=tmp_path / "spool")
    assert user_store_path(local) == tmp_path / "spool" / "users.db"
    assert isinstance(open_user_store(local), LocalUserStore)
    shared = Settings(_env_file=None, user_store_url=redis_srv.url(1))
    assert isinstance(open_user_store(shared), RedisUserStore)
    assert redis_srv.password not in repr(shared)  # a secret, never logged


def test_a_store_that_is_down_is_skipped_not_raised(tmp_path: Path) -> None:
    errors: list[str] = []
    dead = GuardedStore(RedisUserStore("redis://:x@127.0.0.1:9/1", ttl_s=TTL_S), on_error=errors.append)
    assert dead.get("u") == (None, False)
    assert dead.apply([_ev("u", 1, "like", 1)]) is False  # skipped while down: counted, not tried
    assert errors == ["get", "apply"] and not dead.up()
