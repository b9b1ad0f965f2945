"""How each recommender version did on what it served: the DAG's daily online evaluation."""

from __future__ import annotations

from typing import Annotated, Any

import anyio
from fastapi import APIRouter, Query

from services.serve.deps import ReportsDep
from services.serve.reports import ReportsUnavailable, unavailable
from services.serve.schemas import ErrorOut

router = APIRouter(tags=["ops"])


@router.get(
    "/model/online",
    responses={503: {"model": ErrorOut, "description": "The reports on S3 cannot be read"}},
)
async def model_online(
    reports: ReportsDep, days: Annotated[int, Query(ge=1, le=365, description="How many recent days")] = 30
) -> dict[str, list[dict[str, Any]]]:
    """Per day and recommender version: responses, hit rate, MRR, coverage, popularity-fallback share.

    A response is a hit when a shown movie got positive feedback (like, watched, rating ≥ 3.5) within
    30 minutes. Days are those the DAG's evaluate_online task has evaluated, oldest first.
    """
    try:
        found = await anyio.to_thread.run_sync(
            reports.recent, "online", "recommender.json", days, limiter=reports.limiter
        )
    except ReportsUnavailable as exc:
        raise unavailable(exc) from exc
    return {"days": found}
