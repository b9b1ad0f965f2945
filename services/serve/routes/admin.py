"""Admin: hot reload of the production model versions (Bearer ADMIN_TOKEN)."""

from __future__ import annotations

import anyio
from fastapi import APIRouter, HTTPException, status

from services.serve import lifecycle
from services.serve.deps import AdminDep, LoaderDep, MetricsDep, ModelsDep
from services.serve.loader import ReloadError
from services.serve.schemas import ErrorOut, ReloadOut

router = APIRouter(prefix="/admin", tags=["admin"], dependencies=[AdminDep])


@router.post(
    "/reload",
    responses={
        401: {"model": ErrorOut, "description": "Missing or wrong bearer token"},
        403: {"model": ErrorOut, "description": "Admin is disabled: no ADMIN_TOKEN is configured"},
        503: {"model": ErrorOut, "description": "The reload failed; the served models are unchanged"},
    },
)
async def reload(models: ModelsDep, loader: LoaderDep, metrics: MetricsDep) -> ReloadOut:
    """Load the production versions from S3 in a worker thread, then swap them in atomically.

    Requests keep being answered by the old models while the new ones load; on failure nothing changes.
    """
    try:
        return await anyio.to_thread.run_sync(lifecycle.reload, models, loader, metrics)
    except ReloadError as exc:
        raise HTTPException(
            status.HTTP_503_SERVICE_UNAVAILABLE, detail=f"reload failed, still serving what was loaded: {exc}"
        ) from exc
