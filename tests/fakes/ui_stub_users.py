"""The stand-in API's users known by id: the real store's fold (services.core.user_store) over in-memory events.

Feedback events update it (likes, watched, ratings >= 3.5 are positives in time order; dislikes and what
was seen are never recommended again); ``GET /users/{id}`` shows it and ``DELETE`` erases it. ``status``
503 stands for a user store that is down: the routes answer 503 and /recommend ranks from the request.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from services.core.user_store import MAX_EVENTS, StoredEvent, UserState, compact, fold, now_iso


@dataclass
class StubUsers:
    """Every user's kept events, folded by the real store's code, and the switch for a store that is down."""

    status: int = 200  # 503: the store is down
    users: dict[str, list[StoredEvent]] = field(default_factory=dict)  # the most recent MAX_EVENTS per user
    applied: dict[str, int] = field(default_factory=dict)  # events taken per user (the state's seq)
    cached_for: set[str] = field(default_factory=set)  # users whose next answer comes "from the cache"
    erased: list[str] = field(default_factory=list)  # ids DELETE took, in order

    def apply(self, events: list[dict[str, Any]]) -> None:
        """Take accepted /feedback events into the users' states."""
        if self.status != 200:
            return  # the spool keeps them; a rebuild would replay them
        for event in events:
            kept = self.users.setdefault(event["user_id"], [])
            kept.append(compact({**event, "ts": event.get("ts") or now_iso()}))
            del kept[:-MAX_EVENTS]
            self.applied[event["user_id"]] = self.applied.get(event["user_id"], 0) + 1

    def _state(self, user_id: str) -> UserState | None:
        kept = self.users.get(user_id)
        return fold(user_id, kept, self.applied.get(user_id, 0)) if kept else None

    def get(self, user_id: str) -> tuple[int, Any]:
        """GET /users/{id}: the state, 404 when none, 503 when the store is down."""
        if self.status != 200:
            return self.status, {"detail": "the user store is not reachable"}
        user = self._state(user_id)
        detail = f"no state is held for user {user_id!r}: no feedback from this id yet, or it was deleted"
        return (200, user.to_json()) if user else (404, {"detail": detail})

    def delete(self, user_id: str) -> tuple[int, Any]:
        """DELETE /users/{id}: 204 whether or not anything was held (idempotent, as the real route)."""
        if self.status != 200:
            return self.status, {"detail": "the user store is not reachable"}
        self.users.pop(user_id, None)
        self.applied.pop(user_id, None)
        self.erased.append(user_id)
        return 204, None

    def history(self, user_id: str | None, liked: list[int]) -> tuple[list[int], set[int], str, int]:
        """What /recommend ranks from: (sequence, never-show set, source, stored positives used)."""
        user = self._state(user_id or "") if self.status == 200 else None
        stored = [i for i, _ in user.positives] if user else []
        sequence = stored + [i for i in liked if i not in stored]
        never = (user.dislikes | user.seen) if user else set()
        source = "user" if stored else "request" if liked else "fallback"
        return sequence, never, source, len(stored)
