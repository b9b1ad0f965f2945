"""Recommendations for a user's recently liked movies."""

from __future__ import annotations

from fastapi import APIRouter

from services.serve.deps import RecommendServiceDep
from services.serve.schemas import NO_MODEL, UNREADABLE_BODY, RecommendIn, RecommendOut

router = APIRouter(tags=["recommend"])


@router.post("/recommend", responses={**NO_MODEL, **UNREADABLE_BODY})
def recommend(body: RecommendIn, service: RecommendServiceDep) -> RecommendOut:
    """k movies for someone who liked these (most recent last); popularity when nothing is known."""
    return service.recommend(body.liked, body.k)
