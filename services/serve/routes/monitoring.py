"""How the production models hold up: the DAG's live-error, drift and alert reports, and the drift pages."""

from __future__ import annotations

import json
from datetime import date
from typing import Annotated, Any, Literal

import anyio
from fastapi import APIRouter, HTTPException, Query, Response, status
from fastapi.responses import HTMLResponse

from services.serve.deps import ReportsDep
from services.serve.reports import ReportReader, ReportsUnavailable, unavailable
from services.serve.schemas import ErrorOut

router = APIRouter(tags=["ops"])

UNAVAILABLE = {503: {"model": ErrorOut, "description": "The reports on S3 cannot be read"}}
Days = Annotated[int, Query(ge=1, le=365, description="How many recent days")]


async def _recent(reports: ReportReader, what: str, name: str, days: int) -> list[dict[str, Any]]:
    return await anyio.to_thread.run_sync(reports.recent, what, name, days, limiter=reports.limiter)


@router.get("/model/monitoring", responses=UNAVAILABLE)
async def model_monitoring(reports: ReportsDep, days: Days = 30) -> dict[str, list[dict[str, Any]]]:
    """Recent days' live error, drift summaries and alert verdicts, oldest first.

    `live`: RMSE and MAE of the production rating model (and of the reference recipe) on each day's new,
    labelled movies, with the 7-day pooled RMSE and the version's validation RMSE. `drift`: per comparison
    (`requests`: logged /predict inputs; `collected`: new movies), Evidently's drifted features and share.
    `alerts`: whether the day raised an alert, and why.
    """
    try:
        return {
            "live": await _recent(reports, "rating", "live.json", days),
            "drift": await _recent(reports, "drift", "summary.json", days),
            "alerts": await _recent(reports, "alerts", "alert.json", days),
        }
    except ReportsUnavailable as exc:
        raise unavailable(exc) from exc


@router.get(
    "/model/monitoring/drift/{day}",
    # Response, not HTMLResponse: only the 200 is HTML; the 404 and 503 are JSON like every error here.
    response_class=Response,
    responses={
        200: {"content": {"text/html": {"schema": {"type": "string"}}}, "description": "Evidently's report"},
        404: {"model": ErrorOut, "description": "No report for that day"},
        **UNAVAILABLE,
    },
)
async def drift_page(
    day: date,
    reports: ReportsDep,
    comparison: Annotated[
        Literal["requests", "collected"],
        Query(description="requests: /predict inputs; collected: new movies"),
    ] = "requests",
) -> Response:
    """The Evidently drift report of a day (an HTML page with its charts)."""
    try:
        page = await anyio.to_thread.run_sync(reports.page, "drift", day.isoformat(), f"{comparison}.html")
    except ReportsUnavailable as exc:
        raise unavailable(exc) from exc
    if page is None:
        raise HTTPException(
            status.HTTP_404_NOT_FOUND,
            detail=f"no {comparison} drift report for {day}: the monitor task writes one per day with enough rows",
        )
    return HTMLResponse(page)


@router.get(
    "/model/errors",
    responses={404: {"model": ErrorOut, "description": "No error report (for that day)"}, **UNAVAILABLE},
)
async def model_errors(
    reports: ReportsDep,
    day: Annotated[date | None, Query(alias="date", description="The run's day; unset: the latest")] = None,
) -> dict[str, Any]:
    """Where the rating model errs: the day's residuals by band, for production and the challenger.

    On the run's test split (the newest releases, used neither to train nor to choose): per dimension
    (vote count, release period, main genre, language, overview length), each band's count and, per model,
    bias (mean of predicted minus actual: positive means rated too high), RMSE and MAE.
    """
    try:
        if day is None:
            latest = await _recent(reports, "rating", "errors.json", 1)
            report = latest[-1] if latest else None
        else:
            page = await anyio.to_thread.run_sync(reports.page, "rating", day.isoformat(), "errors.json")
            report = json.loads(page) if page is not None else None
    except ReportsUnavailable as exc:
        raise unavailable(exc) from exc
    if report is None:
        where = f"for {day}" if day else "yet"
        raise HTTPException(
            status.HTTP_404_NOT_FOUND,
            detail=f"no error report {where}: select_and_publish writes one on each pipeline run",
        )
    return report
