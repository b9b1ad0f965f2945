"""The registry's history: every version of each model with its metrics (the UI's Model page charts)."""

from __future__ import annotations

import anyio
from fastapi import APIRouter, HTTPException, status

from services.serve.deps import HistoryDep
from services.serve.history import FAILURE_TTL_S, HistoryUnavailable
from services.serve.schemas import ErrorOut, HistoryVersion

router = APIRouter(tags=["ops"])


@router.get(
    "/model/history",
    responses={503: {"model": ErrorOut, "description": "The registry on S3 cannot be read"}},
)
async def model_history(history: HistoryDep) -> dict[str, list[HistoryVersion]]:
    """Every complete version of 'rating' and 'recommender', oldest first, with a production flag.

    Read from S3 at most every 30 s; a version published since shows up within that time.
    """
    try:
        # S3 calls block: in a worker thread, so the event loop keeps serving predictions meanwhile.
        return await anyio.to_thread.run_sync(history.get, limiter=history.limiter)
    except HistoryUnavailable as exc:
        raise HTTPException(
            status.HTTP_503_SERVICE_UNAVAILABLE,
            detail=str(exc),
            headers={"Retry-After": str(int(FAILURE_TTL_S))},
        ) from exc
