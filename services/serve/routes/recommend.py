"""Recommendations for a user's recently liked movies; each response is logged as an impression."""

from __future__ import annotations

from fastapi import APIRouter, Response

from services.core.events import utc_now
from services.serve.deps import EventLogDep, RecommendServiceDep, UsersDep
from services.serve.request_ids import RequestIdDep, event_id
from services.serve.schemas import NO_MODEL, UNREADABLE_BODY, RecommendIn, RecommendOut

router = APIRouter(tags=["recommend"])


# One transformer pass: ~0.6 ms of CPU for a few liked ids, ~2 ms at the 200 maximum. Cheaper on the
# event loop than a threadpool hop, and sixteen concurrent requests no longer fight over the GIL.
# The impression is a local SQLite commit (tens of microseconds, shared with concurrent requests); the
# user's state one SQLite read or one Redis round trip.
@router.post("/recommend", response_model=RecommendOut, responses={**NO_MODEL, **UNREADABLE_BODY})
async def recommend(
    body: RecommendIn,
    service: RecommendServiceDep,
    events: EventLogDep,
    request_id: RequestIdDep,
    users: UsersDep,
) -> Response:
    """k movies for someone who liked these (most recent last); popularity when nothing is known.

    With a `user_id` the server's history of that user (POST /feedback) comes first, in time order, and
    `liked` (optional then) is appended as the most recent; what the user disliked, watched or rated never
    comes back. `source` says what was ranked from (`user`, `request`, `fallback`), `history` how many
    stored positives, `cached` whether the answer is the user's precomputed list (made by the production
    version for the user's current history). `pool: "new"` ranks only movies the recommender had no
    interactions with in training (each item's `new` says which are). The response's request_id
    identifies what was shown: send it back with feedback (POST /feedback). While an experiment runs, a
    `user_id` always lands in the same `arm` (production or the candidate recommender), and
    `model_version` is the version that ranked.
    """
    # Retry-stable like /feedback's ids: nginx's retry on the other replica logs the same impression id,
    # which online evaluation counts once.
    content = {"route": "recommend", **body.model_dump(mode="json")} if request_id else {}
    shown_id = event_id(request_id, 0, content)
    # A store that is down answers as if the user were unknown: source "request" or "fallback".
    user, _ = users.get(body.user_id) if body.user_id else (None, True)
    out = service.recommend(body.liked, body.k, shown_id, body.pool, body.user_id, user)
    if service.metrics is not None:
        service.metrics.observe_source(out.source, out.cached)
    # An impression that cannot be spooled is counted and logged, but never costs the user the answer.
    events.record("impressions", [service.impression(out, body.user_id, utc_now())])
    # Built by the service from validated parts: serialise once instead of FastAPI re-validating it.
    return Response(out.model_dump_json(), media_type="application/json")
