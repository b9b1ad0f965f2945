"""Users known by their id: what the server holds for each (UserState) and where (UserStore).

A user's state is derived from the user's most recent MAX_EVENTS feedback events (folded in order), plus
a precomputed list of recommendations the batch side may load. The spool and the curated feedback stay
the record of truth: a store can be lost and rebuilt (./scripts/users.sh rebuild).

This module is the interface both stores share: UserStore, the state and its fold, and nothing of
either store. Two stores: LocalUserStore (SQLite, services/core/user_store_local.py: the embedded default,
one replica) and RedisUserStore (services/core/user_store_redis.py: the prod shape, shared by every
replica); services/core/user_store_open.py opens the one the settings name.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from time import monotonic
from typing import Any, Protocol

from services.core.events import is_positive_feedback

log = logging.getLogger(__name__)

# The most recent events kept per user. The recommender reads at most its max sequence length (50) of
# positives; 200 events leave room for dislikes, ratings and watched among them, so the model's input is
# complete for anyone whose recent activity is not mostly negative, and a user stays a few KB.
MAX_EVENTS = 200
RECENT_SHOWN = 20  # request ids of recent responses the user answered
ERASURES_PREFIX = "users/erasures/"
DOWN_FOR_S = 5.0  # after a store error, requests skip the store this long (no stall per request)

# One stored event, compact: [tmdb_id, kind, value, ts, request_id].
StoredEvent = list[Any]


def erasure_key(user_id: str) -> str:
    """The S3 key of a user's erasure marker (curation drops that user's events)."""
    return f"{ERASURES_PREFIX}{user_id}.json"


@dataclass
class CachedRecs:
    """A precomputed list: which version made it, when, and the user's seq it was made for."""

    model_version: str
    items: list[Any]  # tmdb ids, or [tmdb_id, score] pairs
    computed_at: str
    seq_at: int


@dataclass
class UserState:
    """What the server holds for one user, derived from the user's recent events."""

    user_id: str
    positives: list[tuple[int, str]] = field(default_factory=list)  # (tmdb_id, ts), oldest first
    dislikes: set[int] = field(default_factory=set)
    seen: set[int] = field(default_factory=set)  # watched or rated: never recommended again
    ratings: dict[int, float] = field(default_factory=dict)
    shown: list[str] = field(default_factory=list)  # recent request ids the user answered, newest last
    updated_at: str | None = None
    seq: int = 0  # bumped on every event applied
    events: int = 0  # events held (at most MAX_EVENTS)
    cached_recs: CachedRecs | None = None

    def excluded(self) -> set[int]:
        """Movies never to recommend to this user: disliked, seen, and the positives themselves."""
        return self.dislikes | self.seen | {i for i, _ in self.positives}

    def to_json(self) -> dict[str, Any]:
        """The state as GET /users/{id} shows it."""
        recs = self.cached_recs
        return {
            "user_id": self.user_id,
            "positives": [{"tmdb_id": i, "ts": ts} for i, ts in self.positives],
            "dislikes": sorted(self.dislikes),
            "seen": sorted(self.seen),
            "ratings": {str(i): v for i, v in self.ratings.items()},
            "shown": self.shown,
            "updated_at": self.updated_at,
            "seq": self.seq,
            "events": self.events,
            "cached_recs": None if recs is None else recs.__dict__,
        }


def compact(record: dict[str, Any]) -> StoredEvent:
    """A feedback record (as /feedback or curation has it) as the stores keep it."""
    value = record.get("value")
    return [
        int(record["tmdb_id"]),
        record["kind"],
        None if value is None else float(value),
        record.get("ts"),
        record.get("request_id"),
    ]


def fold(user_id: str, events: Iterable[StoredEvent], seq: int = 0) -> UserState:
    """The state of a user from the events kept, oldest first; a later event overrides an earlier one."""
    positives: dict[int, str] = {}  # insertion order is time order; a repeat moves to the end
    dislikes: set[int] = set()
    seen: set[int] = set()
    ratings: dict[int, float] = {}
    shown: list[str] = []
    n = 0
    last_ts = None
    for tmdb_id, kind, value, ts, request_id in events:
        n += 1
        last_ts = ts or last_ts
        if is_positive_feedback(kind, value):
            positives.pop(tmdb_id, None)
            positives[tmdb_id] = ts or ""
            dislikes.discard(tmdb_id)  # a change of mind
        if kind == "dislike":
            dislikes.add(tmdb_id)
            positives.pop(tmdb_id, None)
        if kind in ("watched", "rating"):
            seen.add(tmdb_id)
        if kind == "rating" and value is not None:
            ratings[tmdb_id] = value
        if request_id and (not shown or shown[-1] != request_id):
            shown.append(request_id)
    return UserState(
        user_id=user_id,
        positives=list(positives.items()),
        dislikes=dislikes,
        seen=seen,
        ratings=ratings,
        shown=shown[-RECENT_SHOWN:],
        updated_at=last_ts,
        seq=seq,
        events=n,
    )


def by_user(records: Iterable[dict[str, Any]]) -> dict[str, list[StoredEvent]]:
    """Feedback records grouped by user id, each user's in the order given."""
    out: dict[str, list[StoredEvent]] = {}
    for r in records:
        if r.get("user_id"):
            out.setdefault(r["user_id"], []).append(compact(r))
    return out


def now_iso() -> str:
    """The current UTC time, as computed_at and updated_at are written."""
    return datetime.now(UTC).isoformat(timespec="seconds").replace("+00:00", "Z")


class UserStore(Protocol):
    """Where users' states live: SQLite on one replica, Redis shared by every replica."""

    def get(self, user_id: str) -> UserState | None:
        """The user's state, or None when unknown (or expired)."""

    def apply(self, events: list[dict[str, Any]]) -> None:
        """Apply feedback records (as /feedback builds them), in order; one transaction."""

    def delete(self, user_id: str) -> bool:
        """Remove everything held for a user; whether there was anything."""

    def put_recs(self, user_id: str, model_version: str, items: list[Any], computed_at: str) -> None:
        """Load a precomputed list for a user, made for the user's current seq."""

    def put_recs_many(self, rows: Iterable[dict[str, Any]]) -> int:
        """put_recs for many rows ({user_id, model_version, items, computed_at}) in few round trips."""

    def user_ids(self) -> list[str]:
        """Every user held (for the CLI and tests; not for the request path)."""

    def clear(self) -> None:
        """Remove every user (a rebuild starts from nothing)."""

    def close(self) -> None:
        """Release connections."""


class GuardedStore:
    """The request path's view of a store: an error is logged and counted, then the store is skipped
    for DOWN_FOR_S, so a store that is down costs one timeout every few seconds, not one per request."""

    def __init__(self, store: UserStore, on_error: Any = None, down_for_s: float = DOWN_FOR_S) -> None:
        self.store = store
        self.on_error = on_error  # called with the operation's name
        self.down_for_s = down_for_s
        self._down_until = 0.0

    def up(self) -> bool:
        """Whether the store is being used (not in its pause after an error)."""
        return monotonic() >= self._down_until

    def get(self, user_id: str) -> tuple[UserState | None, bool]:
        """(state, ok): ok is False when the store could not be asked."""
        if not self.up():
            return None, False
        try:
            return self.store.get(user_id), True
        except Exception:  # noqa: BLE001 - any store failure degrades the answer, never fails it
            self._failed("get")
            return None, False

    def apply(self, events: list[dict[str, Any]]) -> bool:
        """Apply events; False when the store could not take them (the spool still has them)."""
        if not events:
            return True
        if not self.up():
            self._count("apply")
            return False
        try:
            self.store.apply(events)
            return True
        except Exception:  # noqa: BLE001
            self._failed("apply")
            return False

    def _failed(self, op: str) -> None:
        log.warning("user store %s failed; skipping the store for %.0f s", op, self.down_for_s, exc_info=True)
        self._down_until = monotonic() + self.down_for_s
        self._count(op)

    def _count(self, op: str) -> None:
        if self.on_error is not None:
            self.on_error(op)
