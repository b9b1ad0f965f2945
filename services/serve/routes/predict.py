"""Rating predictions: one movie (POST or GET with raw values) or a batch."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query
from fastapi.exceptions import RequestValidationError
from pydantic import ValidationError

from services.serve.deps import RatingServiceDep
from services.serve.schemas import BatchIn, BatchOut, ErrorOut, MovieIn, PredictionOut, PredictQuery

router = APIRouter(prefix="/predict", tags=["predict"])

UNAVAILABLE = {
    503: {"model": ErrorOut, "description": "No rating model loaded (the message says what to run)"}
}
ExplainQuery = Annotated[bool, Query(description="Add each feature's contribution (and the bias)")]

# Plain `def` endpoints: featurizing and predicting is CPU work, run in the threadpool off the event loop.


@router.post("", response_model_exclude_none=True, responses=UNAVAILABLE)
def predict(movie: MovieIn, service: RatingServiceDep, explain: ExplainQuery = False) -> PredictionOut:
    """Predict the TMDB rating (0-10) of one movie."""
    return service.predict([movie], explain=explain)[0]


@router.get("", response_model_exclude_none=True, responses=UNAVAILABLE)
def predict_get(query: Annotated[PredictQuery, Query()], service: RatingServiceDep) -> PredictionOut:
    """Predict from raw query values: ?runtime=&genre=&language=&overview= (genre may repeat)."""
    genres = [g.strip() for value in query.genre for g in value.split(",") if g.strip()]
    try:
        movie = MovieIn(
            overview=query.overview, runtime=query.runtime, genres=genres, original_language=query.language
        )
    except ValidationError as exc:  # e.g. 31 comma-separated genres: the caller's mistake, not a 500
        raise RequestValidationError(_as_query_errors(exc)) from exc
    return service.predict([movie], explain=query.explain)[0]


@router.post("/batch", response_model_exclude_none=True, responses=UNAVAILABLE)
def predict_batch(batch: BatchIn, service: RatingServiceDep, explain: ExplainQuery = False) -> BatchOut:
    """Predict up to 1000 movies in one call; predictions come back in request order."""
    return BatchOut(predictions=service.predict(batch.movies, explain=explain))


def _as_query_errors(exc: ValidationError) -> list[dict]:
    # Name the query parameter the caller sent, not MovieIn's field.
    names = {"genres": "genre", "original_language": "language"}
    return [
        {**e, "loc": ("query", names.get(str(e["loc"][0]), e["loc"][0]), *e["loc"][1:])} for e in exc.errors()
    ]
