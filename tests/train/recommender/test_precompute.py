"""Precomputed recommendations on the real S3 with real recommenders and a real user store (SQLite)."""

from __future__ import annotations

import socket
from datetime import datetime
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from pydantic import SecretStr

from scripts.harness.redis_server import redis_server
from services.core import events, experiments
from services.core.recommender_runtime import SequentialRecommender, load_recommender
from services.core.registry import Registry
from services.core.settings import Settings
from services.core.storage import ObjectStore
from services.core.user_store_local import LocalUserStore
from services.core.user_store_open import open_user_store
from services.train import raw_store
from services.train.feedback.curate import collect_feedback
from services.train.feedback.users_cli import erase
from services.train.recommender import precompute
from services.train.recommender.precompute import app_users, movielens_inputs, precompute_recs, rank, recs_key
from tests.serve_fixtures import (
    catalog_json,
    publish_runtime_recommender,
    publish_sasrec_recommender,
    recommender_ids,
)

DAY, EARLIER, LONG_AGO = "2026-12-01", "2026-11-28", "2026-10-01"  # LONG_AGO: outside 30 days


def fb(event_id: str, user_id: str, day: str, tmdb_id: int, kind: str = "like", minute: int = 0) -> dict:
    """A feedback event as the serving host writes it."""
    return {
        "event_id": event_id, "ts": f"{day}T10:{minute:02d}:00.000Z", "replica": "api-1", "user_id": user_id,
        "tmdb_id": tmdb_id, "kind": kind, "value": None, "request_id": None, "position": None,
    }  # fmt: skip


def curate(store: ObjectStore, day: str, rows: list[dict[str, Any]]) -> None:
    store.put_bytes(events.batch_key("feedback", day, "api-1", 0), events.encode_lines(rows))
    collect_feedback(store, day)


@pytest.fixture
def ids() -> list[int]:
    return recommender_ids()


@pytest.fixture
def app_day(store: ObjectStore, ids: list[int]) -> list[dict[str, Any]]:
    """Ana (today: liked, disliked, watched), cy (three days ago), bob (two months ago: inactive)."""
    ana = [fb("a1", "ana", DAY, ids[0]), fb("a2", "ana", DAY, ids[1], "dislike", 1),
           fb("a3", "ana", DAY, ids[2], "watched", 2)]  # fmt: skip
    curate(store, DAY, ana)
    curate(store, EARLIER, [fb("c1", "cy", EARLIER, ids[5])])
    curate(store, LONG_AGO, [fb("b1", "bob", LONG_AGO, ids[7])])
    return ana


def _lists(store: ObjectStore) -> dict[str, dict[str, Any]]:
    return {r["user_id"]: r for r in raw_store.read_jsonl(store, recs_key(DAY))}


def test_active_users_get_top_k_without_what_they_disliked_or_saw(
    s3_settings: Settings,
    store: ObjectStore,
    registry: Registry,
    ids: list[int],
    app_day: list[dict],
    tmp_path: Path,
) -> None:
    version = publish_runtime_recommender(registry).version  # popularity: ids in order
    users = LocalUserStore(tmp_path / "users.db", ttl_s=86400)
    users.apply(app_day)  # ana is in the online store (as /feedback put her there); cy only in curated data
    result = precompute_recs(s3_settings, store, DAY, users=users)
    assert (result["users"], result["app_users"], result["app_users_from_store"]) == (2, 2, 1)
    assert result["loaded"] == 2 and result["store_error"] is None and result["seconds_per_10k_users"] > 0
    lists = _lists(store)
    assert set(lists) == {"ana", "cy"}  # bob was last active two months ago
    assert [t for t, _ in lists["ana"]["items"]] == ids[3:13]  # liked, disliked, watched all left out
    assert [t for t, _ in lists["cy"]["items"]] == [i for i in ids if i != ids[5]][:10]
    assert {r["model_version"] for r in lists.values()} == {version}
    state = users.get("ana")
    assert state is not None and state.cached_recs is not None
    assert (state.cached_recs.model_version, state.cached_recs.seq_at) == (version, state.seq)
    assert [i[0] for i in state.cached_recs.items] == ids[3:13]
    users.apply([fb("a4", "ana", DAY, ids[3], minute=3)])  # she did something: the list is now stale
    after = users.get("ana")
    assert after is not None and after.cached_recs is not None and after.cached_recs.seq_at != after.seq
    users.close()


def test_an_erased_user_gets_no_list_in_s3_or_in_the_store(
    s3_settings: Settings, store: ObjectStore, registry: Registry, app_day: list[dict], tmp_path: Path
) -> None:
    publish_runtime_recommender(registry)
    users = LocalUserStore(tmp_path / "users.db", ttl_s=86400)
    users.apply(app_day)
    # DELETE /users/ana after her day was curated (the curated file still holds her events), and a
    # MovieLens user erased too.
    assert erase(users, store, "ana") and not erase(users, store, "ml-1")
    settings = s3_settings.model_copy(update={"precompute_movielens": True, "precompute_k": 3})
    result = precompute_recs(settings, store, DAY, users=users)
    lists = _lists(store)
    assert "ana" not in lists and "ml-1" not in lists and {"cy", "ml-2"} <= set(lists)
    assert result["app_users"] == 1 and result["loaded"] == len(lists)
    assert users.get("ana") is None and users.get("ml-1") is None  # not written back into the store
    assert {"cy", "ml-2"} <= set(users.user_ids())
    users.close()


def test_a_user_erased_while_the_lists_are_ranked_gets_none(
    s3_settings: Settings,
    store: ObjectStore,
    registry: Registry,
    app_day: list[dict],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    publish_runtime_recommender(registry)
    users = LocalUserStore(tmp_path / "users.db", ttl_s=86400)
    users.apply(app_day)

    def rank_then_erase(rec: Any, inputs: list, k: int) -> list:
        erase(users, store, "ana")  # DELETE /users/ana lands mid-run
        return rank(rec, inputs, k)

    monkeypatch.setattr(precompute, "rank", rank_then_erase)
    precompute_recs(s3_settings, store, DAY, users=users)
    assert set(_lists(store)) == {"cy"} and users.user_ids() == ["cy"]
    users.close()


def test_only_events_after_an_erasure_make_a_user_active(
    store: ObjectStore, ids: list[int], app_day: list[dict]
) -> None:
    cutoff = int(datetime.fromisoformat(f"{DAY}T10:00:30+00:00").timestamp()) * 1_000_000
    grouped = app_users(store, DAY, 30, {"ana": cutoff, "cy": cutoff})
    # ana came back after her erasure (10:00:30): only what she did since counts; cy did nothing since.
    assert set(grouped) == {"ana"} and [r["event_id"] for r in grouped["ana"]] == ["a2", "a3"]
    assert set(app_users(store, DAY, 30)) == {"ana", "cy"}


def test_the_local_default_store_is_loaded_when_no_store_is_handed_in(
    s3_settings: Settings, store: ObjectStore, registry: Registry, app_day: list[dict], tmp_path: Path
) -> None:
    publish_runtime_recommender(registry)
    settings = s3_settings.model_copy(update={"user_store_path": tmp_path / "var" / "users.db"})
    assert precompute_recs(settings, store, DAY)["loaded"] == 2
    users = LocalUserStore(tmp_path / "var" / "users.db", ttl_s=86400)
    assert sorted(users.user_ids()) == ["ana", "cy"]
    users.close()


def test_the_prod_shapes_redis_store_is_loaded_through_user_store_url(
    s3_settings: Settings,
    store: ObjectStore,
    registry: Registry,
    ids: list[int],
    app_day: list[dict],
    tmp_path: Path,
) -> None:
    version = publish_runtime_recommender(registry).version
    with redis_server(tmp_path / "redis") as srv:
        settings = s3_settings.model_copy(update={"user_store_url": SecretStr(srv.url(1))})
        users = open_user_store(settings)
        users.apply(app_day)
        users.close()
        result = precompute_recs(settings, store, DAY)  # opens the store the settings name, as the DAG does
        assert (result["loaded"], result["app_users_from_store"], result["store_error"]) == (2, 1, None)
        users = open_user_store(settings)
        state = users.get("ana")
        users.close()
    assert state is not None and state.cached_recs is not None
    assert (state.cached_recs.model_version, state.cached_recs.seq_at) == (version, state.seq)
    assert [i[0] for i in state.cached_recs.items] == ids[3:13]


def test_a_canarys_users_get_the_candidates_list(
    s3_settings: Settings, store: ObjectStore, registry: Registry, ids: list[int], app_day: list[dict]
) -> None:
    production = publish_runtime_recommender(registry).version
    # The candidate ranks the other way round (least popular first), so each list says who ranked it.
    backwards = SequentialRecommender(
        "popularity", ids, np.array([0.0, *range(1, len(ids) + 1)]), max_seq_length=50
    )
    files = {**backwards.save(), "catalog.json": catalog_json()}
    candidate = registry.publish("recommender", files, {"algorithm": "popularity"}, promote=False).version
    experiment = experiments.start(registry, "recommender", candidate, share=0.5, started_by="test")
    settings = s3_settings.model_copy(update={"precompute_movielens": True, "precompute_k": 3})
    result = precompute_recs(settings, store, DAY, users=None)
    assert result["candidate_version"] == candidate and 0 < result["candidate_users"] < result["users"]
    for r in _lists(store).values():
        arm = experiments.arm_of(experiment.experiment_id, r["user_id"], 0.5)
        assert r["model_version"] == (candidate if arm == "candidate" else production)
        first = r["items"][0][0]
        assert (ids.index(first) >= len(ids) - 5) == (arm == "candidate")


def test_an_unreachable_store_costs_the_load_not_the_lists(
    s3_settings: Settings, store: ObjectStore, registry: Registry, app_day: list[dict]
) -> None:
    publish_runtime_recommender(registry)
    with socket.socket() as s:  # a port nothing listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    settings = s3_settings.model_copy(update={"user_store_url": SecretStr(f"redis://:pw@127.0.0.1:{port}/1")})
    result = precompute_recs(settings, store, DAY)
    assert result["loaded"] == 0 and result["store_error"] and result["users"] == 2
    assert set(_lists(store)) == {"ana", "cy"}


def test_movielens_users_are_ranked_when_asked_for(
    s3_settings: Settings, store: ObjectStore, registry: Registry, app_day: list[dict], tmp_path: Path
) -> None:
    publish_runtime_recommender(registry)
    settings = s3_settings.model_copy(update={"precompute_movielens": True, "precompute_k": 5})
    users = LocalUserStore(tmp_path / "users.db", ttl_s=86400)
    result = precompute_recs(settings, store, DAY, users=users, movielens_copies=2)
    n = result["movielens_users"]
    assert n > 1000 and n % 2 == 0 and result["loaded"] == result["users"] == n + 2
    lists = _lists(store)
    assert len(lists) == n + 2 and all(len(r["items"]) <= 5 for r in lists.values())
    users.close()


def test_batched_ranking_is_what_recommend_gives_one_user_at_a_time(
    s3_settings: Settings, registry: Registry
) -> None:
    manifest = publish_sasrec_recommender(registry)
    rec = load_recommender({n: registry.read_file(manifest, n) for n in manifest.files}, num_threads=None)
    inputs = movielens_inputs(s3_settings)[:40]
    for u in inputs[:20]:  # half of them only liked part of what they saw (the rest rated low, say)
        u.liked = u.liked[: len(u.liked) // 2]
    batched = rank(rec, inputs, 10)
    for u, got in zip(inputs, batched, strict=True):
        one = [p for p in rec.recommend(u.liked, 10 + len(u.excluded)) if p[0] not in u.excluded][:10]
        assert [t for t, _ in got] == [t for t, _ in one]
        assert [s for _, s in got] == pytest.approx([s for _, s in one], rel=1e-4, abs=1e-4)
