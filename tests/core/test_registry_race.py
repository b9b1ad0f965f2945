"""The production pointer under concurrent writers, on a real SeaweedFS server: no decision is lost."""

from __future__ import annotations

import os
import subprocess
import threading
import time
from pathlib import Path

import pytest

from services.core.registry import UNCHECKED, ChecksumError, Registry, Unchecked
from services.core.registry_pointer import Pointer, PointerConflict, PointerMoved, RegistryError
from services.core.settings import Settings
from services.core.storage import ObjectStore, WriteConflict

ROOT = Path(__file__).resolve().parents[2]
POINTER = "registry/rating/production.json"


def _publish(
    registry: Registry, payload: bytes, promote: bool = False, against: str | None | Unchecked = UNCHECKED
) -> str:
    files = {"model.json": payload, "encoders.json": b"{}"}
    published = registry.publish(
        "rating", files, {}, promote=promote, reason="test", expected_production=against
    )
    return published.version


def _replay(start: Pointer, pointer: Pointer) -> tuple[str, list[str]]:
    """Apply the change trail after `start` to its version and history; fails on a broken link."""
    version, history = start.version, list(start.history)
    for change in pointer.changes[len(start.changes) :]:
        assert change.from_version == version, f"change {change.revision} did not start from {version}"
        if change.action == "promote":
            history.append(version)
        else:
            assert history and history[-1] == change.to_version, change
            history.pop()
        version = change.to_version
    return version, history


def test_the_store_refuses_a_stale_conditional_write(store: ObjectStore) -> None:
    # The registry relies on this: SeaweedFS 4.48 honours If-Match / If-None-Match on PutObject.
    first = store.put_bytes_conditional("k", b"one", if_match=None)
    with pytest.raises(WriteConflict):
        store.put_bytes_conditional("k", b"again", if_match=None)  # exists already
    store.put_bytes_conditional("k", b"two", if_match=first)
    with pytest.raises(WriteConflict):
        store.put_bytes_conditional("k", b"three", if_match=first)  # stale ETag
    assert store.get_bytes_with_etag("k")[0] == b"two"

    etag = store.get_bytes_with_etag("k")[1]
    wins: list[bytes] = []

    def write(i: int) -> None:
        try:
            store.put_bytes_conditional("k", f"w{i}".encode(), if_match=etag)
            wins.append(f"w{i}".encode())
        except WriteConflict:
            pass

    threads = [threading.Thread(target=write, args=(i,)) for i in range(16)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(wins) == 1, f"{len(wins)} writers won the same ETag"
    assert store.get_bytes("k") == wins[0]


def test_a_rollback_made_while_a_run_promotes_is_kept(registry: Registry, s3_settings: Settings) -> None:
    older = _publish(registry, b"older", promote=True)
    rejected = _publish(registry, b"rejected", promote=True)
    operator = Registry(ObjectStore.from_settings(s3_settings))
    store = registry.store
    original = store.get_bytes_with_etag
    reads = {"n": 0}

    def read_then_operator_rolls_back(key: str) -> tuple[bytes, str]:
        got = original(key)
        if key == POINTER:
            reads["n"] += 1
            if reads["n"] == 1:  # the run has read the pointer; the operator acts before it writes
                operator.rollback("rating", reason="bad answers in production")
        return got

    store.get_bytes_with_etag = read_then_operator_rolls_back  # type: ignore[method-assign]
    # The run compared its challenger against `rejected`, and says so.
    with pytest.raises(PointerMoved, match="production is now"):
        _publish(registry, b"challenger", promote=True, against=rejected)
    store.get_bytes_with_etag = original  # type: ignore[method-assign]

    pointer = registry.pointer("rating")
    assert pointer is not None
    assert reads["n"] == 2, "the run's write did not hit the conflict and re-read"
    assert pointer.version == older, "the operator's rollback was overwritten"
    assert [c.action for c in pointer.changes] == ["promote", "promote", "rollback"]
    assert pointer.changes[-1].reason == f"rollback from {rejected}: bad answers in production"
    assert len(registry.versions("rating")) == 3  # the challenger stays published, not promoted
    # The next rollback cannot land on the rejected version: there is nothing before `older`.
    assert pointer.history == []


def test_a_rollback_that_finds_production_moved_changes_nothing(registry: Registry) -> None:
    older = _publish(registry, b"older", promote=True)
    seen = _publish(registry, b"seen", promote=True)
    newer = _publish(registry, b"newer", promote=True, against=seen)  # a run landed first
    with pytest.raises(PointerMoved):
        registry.rollback("rating", expected_from=seen)  # rolling back what the operator saw
    pointer = registry.pointer("rating")
    assert pointer is not None and pointer.version == newer and pointer.history == [older, seen]


def test_concurrent_promotes_and_rollbacks_lose_no_change(registry: Registry, s3_settings: Settings) -> None:
    # Each writer has a client of its own, as separate processes would; all of them hit one pointer.
    _publish(registry, b"base0", promote=True)
    base = _publish(registry, b"base1", promote=True)  # so the first rollbacks have somewhere to go
    versions = [_publish(registry, f"v{i}".encode()) for i in range(12)]
    start = registry.pointer("rating")
    assert start is not None and start.version == base
    applied: list[str] = []
    refused: list[str] = []
    lock = threading.Lock()

    def promoter(mine: list[str]) -> None:
        reg = Registry(ObjectStore.from_settings(s3_settings))
        for v in mine:
            try:
                reg.promote("rating", v, reason="by hand")
                outcome, where = f"promote {v}", applied
            except PointerConflict as exc:
                outcome, where = str(exc), refused
            with lock:
                where.append(outcome)

    def rollbacker() -> None:
        # An operator told "production moved" looks again and retries, up to two rollbacks done.
        reg = Registry(ObjectStore.from_settings(s3_settings))
        done = 0
        for _ in range(12):
            try:
                p = reg.rollback("rating")
                outcome, where = f"rollback to {p.version}", applied
                done += 1
            except RegistryError as exc:  # moved under it, conflict, or nothing left to roll back to
                outcome, where = str(exc), refused
            with lock:
                where.append(outcome)
            if done == 2:
                return
            time.sleep(0.01)

    threads = [threading.Thread(target=promoter, args=(versions[i::3],)) for i in range(3)]
    threads += [threading.Thread(target=rollbacker) for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()

    pointer = registry.pointer("rating")
    assert pointer is not None
    new = pointer.changes[len(start.changes) :]
    # Every change that reported success is in the trail, once, and nothing else is.
    assert len(new) == len(applied) == pointer.revision - start.revision, (applied, refused)
    assert [c.revision for c in new] == list(range(start.revision + 1, pointer.revision + 1))
    assert sorted(f"promote {c.to_version}" for c in new if c.action == "promote") == sorted(
        a for a in applied if a.startswith("promote")
    )
    # Replaying the trail gives the pointer's version and history: no write was based on a stale read.
    assert _replay(start, pointer) == (pointer.version, pointer.history)
    assert sum(a.startswith("promote") for a in applied) >= 10, (applied, refused)
    assert any(a.startswith("rollback") for a in applied), (applied, refused)


def test_rollback_refuses_a_target_that_fails_verification(registry: Registry, store: ObjectStore) -> None:
    older = _publish(registry, b"older", promote=True)
    current = _publish(registry, b"current", promote=True)
    store.put_bytes(f"registry/rating/versions/{older}/model.json", b"tampered")
    before = registry.pointer("rating")
    with pytest.raises(ChecksumError, match=f"refusing to roll rating back to {older}"):
        registry.rollback("rating")
    assert registry.pointer("rating") == before
    assert before is not None and before.version == current and before.history == [older]


def test_publish_promotes_only_against_the_production_it_was_compared_with(registry: Registry) -> None:
    first = _publish(registry, b"first", promote=True, against=None)  # compared with no production
    with pytest.raises(PointerMoved):
        _publish(registry, b"late", promote=True, against=None)  # also decided when there was none
    second = _publish(registry, b"second", promote=True, against=first)
    assert registry.production_version("rating") == second
    assert len(set(registry.versions("rating")) - {first, second}) == 1  # "late": published, not promoted


def _cli(s3_settings: Settings, *args: str) -> subprocess.CompletedProcess[str]:
    env = {
        **{k: v for k, v in os.environ.items() if not k.startswith(("S3_", "AWS_"))},
        "S3_EMBEDDED": "0",
        "S3_ENDPOINT_URL": str(s3_settings.s3_endpoint_url),
        "S3_BUCKET": s3_settings.s3_bucket,
        "AWS_ACCESS_KEY_ID": s3_settings.aws_access_key_id.get_secret_value(),  # type: ignore[union-attr]
        "AWS_SECRET_ACCESS_KEY": s3_settings.aws_secret_access_key.get_secret_value(),  # type: ignore[union-attr]
    }
    cli = [str(ROOT / ".venv/bin/python"), "-m", "services.core.registry_cli", *args]
    return subprocess.run(cli, env=env, capture_output=True, text=True, cwd=ROOT, timeout=120)


def test_cli_rollback_from_a_version_that_is_no_longer_production(
    registry: Registry, s3_settings: Settings
) -> None:
    older = _publish(registry, b"older", promote=True)
    current = _publish(registry, b"current", promote=True)
    stale = _cli(s3_settings, "rollback", "rating", "--from", older)
    assert stale.returncode == 2 and f"production is {current}" in stale.stderr, stale.stderr
    done = _cli(s3_settings, "rollback", "rating", "--from", current, "--reason", "slow")
    assert done.returncode == 0, done.stderr
    shown = _cli(s3_settings, "pointer", "rating")
    pointer = Pointer.model_validate_json(shown.stdout)
    assert pointer.version == older and pointer.changes[-1].reason == f"rollback from {current}: slow"
