"""The stand-in API's users known by id: an in-memory state per user, as the real store keeps it.

Feedback events update it (likes, watched, ratings >= 3.5 are positives in time order; dislikes and what
was seen are never recommended again); ``GET /users/{id}`` shows it and ``DELETE`` erases it. ``status``
503 stands for a user store that is down: the routes answer 503 and /recommend ranks from the request.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from typing import Any

POSITIVE_RATING = 3.5
MAX_EVENTS = 200


def _now() -> str:
    return dt.datetime.now(dt.UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


@dataclass
class StubUser:
    """One user's state."""

    user_id: str
    positives: list[tuple[int, str]] = field(default_factory=list)  # (tmdb_id, ts) oldest first
    dislikes: set[int] = field(default_factory=set)
    seen: set[int] = field(default_factory=set)
    ratings: dict[int, float] = field(default_factory=dict)
    seq: int = 0

    def as_json(self) -> dict[str, Any]:
        """What GET /users/{id} answers."""
        return {
            "user_id": self.user_id,
            "positives": [{"tmdb_id": i, "ts": ts} for i, ts in self.positives],
            "dislikes": sorted(self.dislikes),
            "seen": sorted(self.seen),
            "ratings": {str(i): v for i, v in self.ratings.items()},
            "shown": [],
            "updated_at": self.positives[-1][1] if self.positives else None,
            "seq": self.seq,
            "events": self.seq,
            "cached_recs": None,
        }


@dataclass
class StubUsers:
    """Every user's state, and the switch for a store that is down."""

    status: int = 200  # 503: the store is down
    users: dict[str, StubUser] = field(default_factory=dict)
    cached_for: set[str] = field(default_factory=set)  # users whose next answer comes "from the cache"
    erased: list[str] = field(default_factory=list)  # ids DELETE took, in order

    def apply(self, events: list[dict[str, Any]]) -> None:
        """Take accepted /feedback events into the users' states."""
        if self.status != 200:
            return  # the spool keeps them; a rebuild would replay them
        for event in events:
            user = self.users.setdefault(event["user_id"], StubUser(event["user_id"]))
            tmdb_id, kind = int(event["tmdb_id"]), event["kind"]
            user.seq += 1
            if kind == "dislike":
                user.dislikes.add(tmdb_id)
                user.positives = [p for p in user.positives if p[0] != tmdb_id]
                continue
            if kind in ("watched", "rating"):
                user.seen.add(tmdb_id)
            if kind == "rating":
                user.ratings[tmdb_id] = float(event["value"])
            if (
                kind == "like"
                or kind == "watched"
                or (kind == "rating" and event["value"] >= POSITIVE_RATING)
            ):
                user.dislikes.discard(tmdb_id)
                user.positives = [p for p in user.positives if p[0] != tmdb_id] + [(tmdb_id, _now())]
                user.positives = user.positives[-MAX_EVENTS:]

    def get(self, user_id: str) -> tuple[int, Any]:
        """GET /users/{id}: the state, 404 when none, 503 when the store is down."""
        if self.status != 200:
            return self.status, {"detail": "the user store is not reachable"}
        user = self.users.get(user_id)
        detail = f"no state is held for user {user_id!r}: no feedback from this id yet, or it was deleted"
        return (200, user.as_json()) if user else (404, {"detail": detail})

    def delete(self, user_id: str) -> tuple[int, Any]:
        """DELETE /users/{id}: 204 whether or not anything was held (idempotent, as the real route)."""
        if self.status != 200:
            return self.status, {"detail": "the user store is not reachable"}
        self.users.pop(user_id, None)
        self.erased.append(user_id)
        return 204, None

    def history(self, user_id: str | None, liked: list[int]) -> tuple[list[int], set[int], str, int]:
        """What /recommend ranks from: (sequence, never-show set, source, stored positives used)."""
        user = self.users.get(user_id or "") if self.status == 200 else None
        stored = [i for i, _ in user.positives] if user else []
        sequence = stored + [i for i in liked if i not in stored]
        never = (user.dislikes | user.seen) if user else set()
        source = "user" if stored else "request" if liked else "fallback"
        return sequence, never, source, len(stored)
