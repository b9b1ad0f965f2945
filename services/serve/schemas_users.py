"""Response bodies of /users/{user_id}: what the server holds for one user."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, Field


class PositiveOut(BaseModel):
    """A movie the user liked, watched or rated 3.5 stars or more, and when."""

    tmdb_id: int
    ts: str


class UserOut(BaseModel):
    """The user's state: derived from the user's most recent events (at most 200), forgotten after the TTL."""

    user_id: str
    positives: list[PositiveOut] = Field(description="Oldest first: the sequence /recommend ranks from")
    dislikes: list[int] = Field(description="Never recommended to this user")
    seen: list[int] = Field(description="Watched or rated: never recommended again")
    ratings: dict[str, float] = Field(description="Stars per tmdb id")
    shown: list[str] = Field(description="Request ids of recent recommendations the user answered")
    updated_at: str | None = Field(description="Time of the user's last event held")
    seq: int = Field(
        description="Events applied so far (a precomputed list is current while seq is unchanged)"
    )
    events: int = Field(description="Events held (the most recent ones)")
    cached_recs: dict[str, Any] | None = Field(
        description="The precomputed list: model_version, items, computed_at, seq_at"
    )
