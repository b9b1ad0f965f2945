"""What the serving API holds for one user (GET / DELETE /users/{user_id}) and /recommend's user fields."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from services.ui.api.records import ApiError

# FastAPI's body for a route it does not have; any other 404 from /users is "no such user".
NO_ROUTE_DETAIL = "Not Found"
SOURCES = ("user", "request", "fallback")


@dataclass(frozen=True)
class UserHistory:
    """The server's view of one user: positives in time order (oldest first), dislikes and what was seen."""

    user_id: str
    liked: tuple[int, ...] = ()  # positives: like, watched, a rating >= 3.5
    disliked: tuple[int, ...] = ()
    seen: tuple[int, ...] = ()  # watched / seen / rated: never recommended again
    ratings: int = 0

    @property
    def known(self) -> bool:
        """True when the server holds anything for this user."""
        return bool(self.liked or self.disliked or self.seen or self.ratings)


def _ids(raw: Any) -> tuple[int, ...]:
    """Movie ids from a list of ids, [id, ts] pairs or {"tmdb_id": …} records, order kept, repeats dropped."""
    out: dict[int, None] = {}
    for item in raw or []:
        if isinstance(item, Mapping):
            item = item.get("tmdb_id")
        elif isinstance(item, list | tuple):
            item = item[0] if item else None
        if isinstance(item, int | str) and str(item).lstrip("-").isdigit():
            out[int(item)] = None
    return tuple(out)


def read_user(user_id: str, body: Any) -> UserHistory:
    """GET /users/{user_id}'s answer; an API that keys dislikes etc. as objects or lists both read."""
    if not isinstance(body, Mapping):
        raise TypeError("the user state is not an object")
    state = body.get("state") if isinstance(body.get("state"), Mapping) else body
    ratings = state.get("ratings")
    return UserHistory(
        user_id=str(state.get("user_id") or user_id),
        liked=_ids(state.get("positives") or state.get("liked")),
        disliked=_ids(state.get("dislikes") or state.get("disliked")),
        seen=_ids(state.get("seen") or state.get("watched")),
        ratings=len(ratings) if isinstance(ratings, Mapping | list) else 0,
    )


def no_route(error: ApiError) -> bool:
    """Whether the API lacks the route (405, or FastAPI's bare 'Not Found') rather than the user."""
    return error.status == 405 or (error.kind == "not_found" and error.problems == (NO_ROUTE_DETAIL,))


def user_fields(body: Mapping[str, Any]) -> dict[str, Any]:
    """/recommend's answer for a user: source, history and cached; None each from an API without users."""
    source = body.get("source")
    history = body.get("history")
    cached = body.get("cached")
    return {
        "source": source if source in SOURCES else None,
        "history": int(history)
        if isinstance(history, int | float) and not isinstance(history, bool)
        else None,
        "cached": cached if isinstance(cached, bool) else None,
    }
