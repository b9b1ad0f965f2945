"""Request and response bodies; the constraints here are what turns bad input into a 422 naming the field."""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field

from services.core.experiments import Experiment

MAX_LIKED = 200

# The movies a /recommend request ranks (services.core.recommender_runtime.Pool, not imported: that pulls torch).
Pool = Literal["all", "new"]


def _integral_float(value: object) -> object:
    # JSON Schema counts 1.0 as an integer and strict pydantic does not: an integral float becomes an int.
    return int(value) if isinstance(value, float) and value.is_integer() else value


# The bodies are strict (no true or "862" where the schema says integer), so their integers take this.
# After any constraints in an Annotated: placed before them, it makes pydantic drop them from the schema.
IntegralFloat = BeforeValidator(_integral_float)
TmdbId = Annotated[int, Field(ge=1, le=2**31 - 1), IntegralFloat]


class RecommendIn(BaseModel):
    """Movies the user liked, most recent last; with a user_id, the user's stored history comes first."""

    model_config = ConfigDict(strict=True)  # as MovieIn: what the schema says is a number is a JSON number

    liked: list[TmdbId] = Field(default_factory=list, max_length=MAX_LIKED, description="TMDB ids")
    k: Annotated[int, IntegralFloat] = Field(10, ge=1, le=100, description="How many recommendations")
    user_id: str | None = Field(
        None, min_length=1, max_length=128, description="Pseudonymous user id, logged with what was shown"
    )
    pool: Pool = Field(
        "all",
        description="Which movies to rank: `all` ranks the whole catalog; `new` ranks only movies with no "
        'interactions in the model\'s training data (a "new for you" shelf)',
    )


class RecommendedMovie(BaseModel):
    """One recommendation."""

    tmdb_id: int
    title: str
    release_year: int | None
    overview: str
    poster_url: str | None
    score: float
    new: bool = Field(
        description="True when the movie had no interactions in the model's training data, so its score "
        "comes from its content alone"
    )


class RecommendOut(BaseModel):
    """Recommendations and how they were made."""

    items: list[RecommendedMovie]
    unknown: list[int] = Field(description="Liked ids the model does not know (ignored)")
    strategy: Literal["sequential", "popularity"]
    pool: Pool = Field(description="Which movies were ranked (the request's pool)")
    cold_start: bool = Field(description="True when no liked movie was known, so nothing is personalised")
    model_version: str | None = Field(description="The version that ranked (the arm's recommender)")
    request_id: str = Field(description="Send it back with feedback on these items (POST /feedback)")
    arm: Literal["production", "candidate"] = Field(
        "production", description="The experiment arm of the user (production when none runs or no user_id)"
    )
    history: int = Field(0, description="Positives of the user_id's stored history the ranking started from")
    source: Literal["user", "request", "fallback"] = Field(
        "fallback",
        description="What was ranked from: the user's stored history (`user`), only the request's `liked` "
        "(`request`), or nothing known (`fallback`: popularity)",
    )
    cached: bool = Field(False, description="True when answered from the user's precomputed list")


class MovieOut(BaseModel):
    """One catalog movie."""

    tmdb_id: int
    title: str
    release_year: int | None
    overview: str
    poster_url: str | None
    genres: list[str]
    original_language: str | None
    popularity: float


class SearchOut(BaseModel):
    """Catalog search hits, best first."""

    query: str
    items: list[MovieOut]


class HealthOut(BaseModel):
    """Liveness."""

    status: Literal["ok"]


class ReadyOut(BaseModel):
    """Readiness: whether model endpoints can answer."""

    ready: bool
    detail: str | None = None
    rating_version: str | None = None
    recommender_version: str | None = None
    source: Literal["s3", "cache"] | None = None
    recommender_candidate_version: str | None = Field(None, description="The canary's candidate, if served")
    rating_shadow_version: str | None = Field(None, description="The rating model in shadow, if served")
    experiments: dict[str, str] = Field(default_factory=dict, description="{model: experiment_id} served")


class VersionInfo(BaseModel):
    """What a served model version is."""

    version: str
    algorithm: str | None
    created_at: str
    metrics: dict[str, float]
    wandb_run: str | None
    git_commit: str | None
    n_features: int
    features: list[str]
    source: Literal["s3", "cache"]


class ModelOut(BaseModel):
    """The production versions being served and where they came from."""

    ready: bool
    source: Literal["s3", "cache"] | None
    loaded_at: str | None
    load_seconds: float | None
    detail: str | None
    rating: VersionInfo | None
    recommender: VersionInfo | None
    catalog_size: int
    recommender_candidate: VersionInfo | None = None
    rating_shadow: VersionInfo | None = None
    experiments: dict[str, Experiment] = Field(default_factory=dict, description="The experiments served")


class HistoryVersion(BaseModel):
    """One complete registry version of a model."""

    version: str
    created_at: str
    algorithm: str | None
    metrics: dict[str, float]
    production: bool = Field(description="Whether the production pointer names this version now")


class VocabularyOut(BaseModel):
    """Values the rating model has its own code for; anything else goes to the unknown bucket."""

    model_version: str
    genres: list[str]
    languages: list[str]
    countries: list[str]
    companies: list[str]


class ReloadOut(BaseModel):
    """The result of a reload."""

    changed: bool
    rating_version: str | None
    recommender_version: str | None
    previous_rating_version: str | None
    previous_recommender_version: str | None
    source: Literal["s3", "cache"] | None
    seconds: float
    recommender_candidate_version: str | None = None
    rating_shadow_version: str | None = None
    experiments: dict[str, str] = Field(default_factory=dict, description="{model: experiment_id} served")


class ErrorOut(BaseModel):
    """An error with a human-readable explanation."""

    detail: str


UNREADABLE_BODY = {400: {"model": ErrorOut, "description": "The body is not UTF-8 JSON"}}
# uvicorn (httptools) refuses a request line of over ~80 kB with a plain-text 400 before the app sees it:
# a GET /predict whose overview or genres run to thousands of characters, percent-encoded.
URL_TOO_LONG = {
    400: {
        "description": "The URL is too long for the server (about 80 kB): send long values with POST /predict",
        "content": {"text/plain": {"schema": {"type": "string"}}},
    }
}
NO_MODEL = {503: {"model": ErrorOut, "description": "No model loaded (the message says what to run)"}}
