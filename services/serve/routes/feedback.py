"""Feedback: what users did about movies, spooled durably before it is acknowledged."""

from __future__ import annotations

from fastapi import APIRouter, HTTPException, Response, status
from fastapi.exceptions import RequestValidationError

from services.core.events import utc_now
from services.serve.deps import CatalogDep, EventLogDep, UsersDep
from services.serve.event_log import EventsUnavailable
from services.serve.event_schemas import FeedbackAck, FeedbackIn
from services.serve.request_ids import RequestIdDep, event_id
from services.serve.schemas import NO_MODEL, UNREADABLE_BODY, ErrorOut

router = APIRouter(tags=["feedback"])


@router.post(
    "/feedback",
    status_code=status.HTTP_202_ACCEPTED,
    response_model=FeedbackAck,
    responses={
        **UNREADABLE_BODY,
        **NO_MODEL,
        503: {
            "model": ErrorOut,
            "description": "Events cannot be taken now (see Retry-After); nothing was stored",
        },
    },
)
async def feedback(
    body: FeedbackIn, catalog: CatalogDep, events: EventLogDep, request_id: RequestIdDep, users: UsersDep
) -> Response:
    """Take 1 to 500 events (like, dislike, watched, rating); 202 once they are on the replica's disk.

    The server stamps the time and stores no IP address. An event id already accepted is acknowledged
    again and counted as a duplicate, never stored twice.
    """
    unknown = [
        {"loc": ("body", "events", i, "tmdb_id"), "msg": f"movie {e.tmdb_id} is not in the catalog",
         "type": "unknown_movie", "input": e.tmdb_id}
        for i, e in enumerate(body.events) if e.tmdb_id not in catalog
    ]  # fmt: skip
    if unknown:
        raise RequestValidationError(unknown)
    ts = utc_now()
    records = [
        {
            "event_id": e.event_id or event_id(request_id, i, e.model_dump(exclude={"event_id"})),
            "ts": ts,
            "replica": events.spool.replica_id,
            "user_id": e.user_id,
            "tmdb_id": e.tmdb_id,
            "kind": e.kind,
            "value": e.value,
            "request_id": e.request_id,
            "position": e.position,
        }
        for i, e in enumerate(body.events)
    ]
    try:
        fresh = await events.append("feedback", records)
    except EventsUnavailable as exc:
        raise HTTPException(
            status.HTTP_503_SERVICE_UNAVAILABLE,
            detail=str(exc),
            headers={"Retry-After": str(exc.retry_after_s)},
        ) from exc
    # The spool has them (the 202's promise): now the user's state. Duplicates were applied the first time;
    # a store that fails is logged and counted (GuardedStore) and a rebuild from curated data restores it.
    users.apply([r for r, is_new in zip(records, fresh, strict=True) if is_new])
    new = sum(fresh)
    ack = FeedbackAck(accepted=new, duplicates=len(fresh) - new, event_ids=[r["event_id"] for r in records])
    return Response(
        ack.model_dump_json(), status_code=status.HTTP_202_ACCEPTED, media_type="application/json"
    )
