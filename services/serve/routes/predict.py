"""Rating predictions: one movie (POST or GET with raw values) or a batch."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query, Request, Response
from fastapi.concurrency import run_in_threadpool
from fastapi.exceptions import RequestValidationError
from pydantic import TypeAdapter, ValidationError

from services.serve.deps import EventLogDep, RatingServiceDep, get_event_log, get_rating_service
from services.serve.event_log import EventLog
from services.serve.rating_service import RatingService
from services.serve.schemas import NO_MODEL, UNREADABLE_BODY, URL_TOO_LONG
from services.serve.schemas_predict import BatchIn, BatchOut, MovieIn, PredictionOut, PredictQuery

router = APIRouter(prefix="/predict", tags=["predict"])

ExplainQuery = Annotated[bool, Query(description="Add each feature's contribution (and the bias)")]

# One movie is ~0.25 ms of CPU: cheaper on the event loop than a threadpool hop, unless a translation has to
# wait on the network. A batch (up to 1000 movies) is real CPU work: a plain `def`, run in the threadpool.


EXPLAIN_PARAMETER = {
    "name": "explain", "in": "query", "required": False, "schema": {"type": "boolean", "default": False},
    "description": "Add each feature's contribution (and the bias)",
}  # fmt: skip
_FLAG = TypeAdapter(bool)


@router.post(
    "",
    response_model=PredictionOut,
    response_model_exclude_none=True,
    responses={**NO_MODEL, **UNREADABLE_BODY},
    openapi_extra={"parameters": [EXPLAIN_PARAMETER]},
)
async def predict(movie: MovieIn, request: Request) -> Response:
    """Predict the TMDB rating (0-10) of one movie."""
    # The hottest route takes only its body from FastAPI. Resolving the service and event log as
    # dependencies and `explain` as a declared query parameter cost ~25 us of the ~280 us of CPU a
    # prediction takes (bench.sh serve); the same functions are called directly, with the same errors.
    service = await get_rating_service(request)
    events = await get_event_log(request)
    return _json(await _predict_one(service, events, movie, _explain(request)))


@router.get(
    "",
    response_model=PredictionOut,
    response_model_exclude_none=True,
    responses={**NO_MODEL, **URL_TOO_LONG},
)
async def predict_get(
    query: Annotated[PredictQuery, Query()], service: RatingServiceDep, events: EventLogDep
) -> Response:
    """Predict from raw query values: ?runtime=&genre=&language=&overview= (genre may repeat)."""
    genres = [g.strip() for value in query.genre for g in value.split(",") if g.strip()]
    try:
        movie = MovieIn(
            overview=query.overview, runtime=query.runtime, genres=genres, original_language=query.language
        )
    except ValidationError as exc:  # e.g. 31 comma-separated genres: the caller's mistake, not a 500
        raise RequestValidationError(_as_query_errors(exc)) from exc
    return _json(await _predict_one(service, events, movie, query.explain))


@router.post("/batch", response_model_exclude_none=True, responses={**NO_MODEL, **UNREADABLE_BODY})
def predict_batch(
    batch: BatchIn, service: RatingServiceDep, events: EventLogDep, explain: ExplainQuery = False
) -> BatchOut:
    """Predict up to 1000 movies in one call; predictions come back in request order."""
    out, logged = service.predict_logged(batch.movies, explain=explain)
    events.record("predictions", logged)  # the spool is thread-safe; a refusal never costs the answer
    return BatchOut(predictions=out)


INLINE_MAX_CHARS = 2000  # a longer overview takes TextBlob milliseconds: too long to hold the event loop


async def _predict_one(
    service: RatingService, events: EventLog, movie: MovieIn, explain: bool
) -> PredictionOut:
    if len(movie.overview) > INLINE_MAX_CHARS or service.must_wait([movie]):
        out, logged = await run_in_threadpool(service.predict_logged, [movie], explain)
    else:
        out, logged = service.predict_logged([movie], explain)
    # The prediction log feeds drift monitoring: a refused one is counted and logged, never a failed answer.
    events.record("predictions", logged)
    return out[0]


def _explain(request: Request) -> bool:
    """The `explain` query flag, parsed as FastAPI parses a bool (422 naming it when it is not one)."""
    value = request.query_params.get("explain")
    if value is None:
        return False
    try:
        return _FLAG.validate_python(value)
    except ValidationError as exc:
        raise RequestValidationError(
            [{**e, "loc": ("query", "explain")} for e in exc.errors(include_url=False)]
        ) from exc


def _json(out: PredictionOut) -> Response:
    # The service built a valid PredictionOut already: serialising it ourselves skips FastAPI validating
    # it a second time against the response model (the model stays declared for the OpenAPI schema).
    return Response(out.model_dump_json(exclude_none=True), media_type="application/json")


def _as_query_errors(exc: ValidationError) -> list[dict]:
    # Name the query parameter the caller sent, not MovieIn's field.
    names = {"genres": "genre", "original_language": "language"}
    return [
        {**e, "loc": ("query", names.get(str(e["loc"][0]), e["loc"][0]), *e["loc"][1:])} for e in exc.errors()
    ]
