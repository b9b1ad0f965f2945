"""Users known by their id: what the server holds for one, and the user's right to erasure."""

from __future__ import annotations

import logging

import anyio
from fastapi import APIRouter, HTTPException, Path, Response, status

from services.core.events import utc_now
from services.core.storage import ObjectStore
from services.core.user_store import erasure_key
from services.serve.deps import S3Dep, UsersDep
from services.serve.schemas import ErrorOut
from services.serve.schemas_users import UserOut

log = logging.getLogger(__name__)

router = APIRouter(tags=["users"])

UserIdPath = Path(min_length=1, max_length=128, description="The pseudonymous user id sent with feedback")
STORE_DOWN = "the user store cannot be reached right now; try again shortly"


@router.get(
    "/users/{user_id}",
    response_model=UserOut,
    responses={
        404: {"model": ErrorOut, "description": "Nothing is held for this user"},
        503: {"model": ErrorOut, "description": "The user store cannot be reached"},
    },
)
async def get_user(users: UsersDep, user_id: str = UserIdPath) -> UserOut:
    """What the server holds for a user: recent positives (the history /recommend ranks from), dislikes,
    seen movies, ratings, and the precomputed list if any."""
    try:
        state = await anyio.to_thread.run_sync(users.store.get, user_id)
    except Exception as exc:  # noqa: BLE001 - any store failure is the store's, not the request's
        log.warning("user store get failed: %s: %s", type(exc).__name__, exc)
        raise HTTPException(status.HTTP_503_SERVICE_UNAVAILABLE, detail=STORE_DOWN) from exc
    if state is None:
        raise HTTPException(
            status.HTTP_404_NOT_FOUND,
            detail=f"no state is held for user {user_id!r}: no feedback from this id yet, or it was "
            "deleted, or untouched for longer than USER_TTL_DAYS",
        )
    return UserOut.model_validate(state.to_json())


@router.delete(
    "/users/{user_id}",
    status_code=status.HTTP_204_NO_CONTENT,
    responses={503: {"model": ErrorOut, "description": "S3 or the user store cannot be reached; retry"}},
)
async def delete_user(users: UsersDep, s3: S3Dep, user_id: str = UserIdPath) -> Response:
    """Erase a user: the online state now, the curated data at the next pipeline run (an erasure marker
    on S3). Idempotent: 204 whether or not anything was held. The user's own call (no admin token),
    bounded by the API's rate limits."""
    # The marker first: it is the durable promise (curation drops the user's events from then on); a
    # failure after it is answered 503 and a retry completes the erasure.
    try:
        await anyio.to_thread.run_sync(_mark, s3, user_id)
    except Exception as exc:  # noqa: BLE001
        log.warning("erasure marker not written: %s: %s", type(exc).__name__, exc)
        raise HTTPException(
            status.HTTP_503_SERVICE_UNAVAILABLE,
            detail="S3 cannot be written right now; nothing was erased, retry",
        ) from exc
    try:
        held = await anyio.to_thread.run_sync(users.store.delete, user_id)
    except Exception as exc:  # noqa: BLE001
        log.warning("user store delete failed: %s: %s", type(exc).__name__, exc)
        raise HTTPException(status.HTTP_503_SERVICE_UNAVAILABLE, detail=STORE_DOWN) from exc
    log.info("user erased (online state %s, marker written)", "removed" if held else "none held")
    return Response(status_code=status.HTTP_204_NO_CONTENT)


def _mark(s3: ObjectStore, user_id: str) -> None:
    s3.put_json(erasure_key(user_id), {"user_id": user_id, "requested_at": utc_now()})
