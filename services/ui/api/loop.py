"""The feedback loop as the UI sees it: events it sends to /feedback, and /model/online's daily reports."""

from __future__ import annotations

import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Literal

FeedbackKind = Literal["like", "dislike", "watched", "rating"]


@dataclass(frozen=True)
class FeedbackEvent:
    """One reaction to a movie, tied to the recommendation that showed it when there was one."""

    user_id: str
    tmdb_id: int
    kind: FeedbackKind
    event_id: str
    request_id: str | None = None
    position: int | None = None  # 1 = the first card of that recommendation
    value: float | None = None  # stars, for kind "rating" only

    @classmethod
    def new(
        cls,
        user_id: str,
        tmdb_id: int,
        kind: FeedbackKind,
        *,
        request_id: str | None = None,
        position: int | None = None,
        value: float | None = None,
    ) -> FeedbackEvent:
        """An event with a fresh id, so that a retried POST is counted once by the API."""
        return cls(user_id, int(tmdb_id), kind, uuid.uuid4().hex, request_id, position, value)

    def as_json(self) -> dict[str, Any]:
        """The event as /feedback takes it: optional fields left out when unset."""
        body: dict[str, Any] = {
            "event_id": self.event_id,
            "user_id": self.user_id,
            "tmdb_id": self.tmdb_id,
            "kind": self.kind,
        }
        for name in ("request_id", "position", "value"):
            if getattr(self, name) is not None:
                body[name] = getattr(self, name)
        return body


@dataclass(frozen=True)
class FeedbackAck:
    """What /feedback took: new events, repeats of events it already had, and their ids."""

    accepted: int
    duplicates: int
    event_ids: tuple[str, ...] = ()


@dataclass(frozen=True)
class OnlineVersion:
    """How one recommender version's answers landed with people on one day."""

    version: str
    responses: int
    hit_rate: float
    mrr: float
    coverage: float
    distinct_items: int
    catalog_size: int
    fallback_share: float
    positives: int
    pool: str = "all"  # "new": the "new for you" shelf, judged apart


@dataclass(frozen=True)
class OnlineDay:
    """The online evaluation of one day: traffic, feedback, and a row per version that answered."""

    date: str
    window_minutes: int
    impressions: int
    feedback_events: int
    versions: tuple[OnlineVersion, ...] = ()


def read_ack(body: Any) -> FeedbackAck:
    """/feedback's 202 answer; raises KeyError/TypeError/ValueError on another shape."""
    return FeedbackAck(
        accepted=int(body["accepted"]),
        duplicates=int(body.get("duplicates") or 0),
        event_ids=tuple(str(i) for i in body.get("event_ids") or []),
    )


def read_online(body: Any) -> list[OnlineDay]:
    """/model/online's answer, oldest day first; raises KeyError/TypeError/ValueError on another shape."""
    rows = body["days"] if isinstance(body, Mapping) else body
    days = [_day(row) for row in rows or []]
    return sorted(days, key=lambda d: d.date)


def _day(raw: Mapping[str, Any]) -> OnlineDay:
    return OnlineDay(
        date=str(raw["date"]),
        window_minutes=int(raw.get("window_minutes") or 30),
        impressions=int(raw.get("impressions") or 0),
        feedback_events=int(raw.get("feedback_events") or 0),
        versions=tuple(_version(v) for v in raw.get("versions") or []),
    )


def _version(raw: Mapping[str, Any]) -> OnlineVersion:
    return OnlineVersion(
        version=str(raw.get("version") or "unknown"),
        responses=int(raw.get("responses") or 0),
        hit_rate=float(raw.get("hit_rate") or 0.0),
        mrr=float(raw.get("mrr") or 0.0),
        coverage=float(raw.get("coverage") or 0.0),
        distinct_items=int(raw.get("distinct_items") or 0),
        catalog_size=int(raw.get("catalog_size") or 0),
        fallback_share=float(raw.get("fallback_share") or 0.0),
        positives=int(raw.get("positives") or 0),
        pool=str(raw.get("pool") or "all"),
    )
