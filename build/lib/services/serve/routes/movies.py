"""The movie catalog: search (the UI's picker) and lookup by TMDB id."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, HTTPException, Path, Query, status

from services.serve.deps import CatalogDep, SettingsDep
from services.serve.recommend_service import movie_out
from services.serve.schemas import NO_MODEL, ErrorOut, MovieOut, SearchOut

router = APIRouter(prefix="/movies", tags=["movies"])


@router.get("/search", responses=NO_MODEL)
def search(
    catalog: CatalogDep,
    settings: SettingsDep,
    q: Annotated[str, Query(min_length=1, max_length=200, description="Part of a title, any case/accents")],
    limit: Annotated[int, Query(ge=1, le=50)] = 10,
) -> SearchOut:
    """Titles matching q: exact, prefix, word prefix, then substring matches; popular first."""
    hits = catalog.search(q, limit)
    return SearchOut(query=q, items=[movie_out(e, settings.poster_base_url) for e in hits])


@router.get(
    "/{tmdb_id}", responses={404: {"model": ErrorOut, "description": "Not in the catalog"}, **NO_MODEL}
)
async def get_movie(
    catalog: CatalogDep, settings: SettingsDep, tmdb_id: Annotated[int, Path(ge=1, le=2**31 - 1)]
) -> MovieOut:
    """One catalog movie by TMDB id."""
    entry = catalog.get(tmdb_id)
    if entry is None:
        raise HTTPException(status.HTTP_404_NOT_FOUND, detail=f"movie {tmdb_id} is not in the catalog")
    return movie_out(entry, settings.poster_base_url)
