"""Request and response bodies; the constraints here are what turns bad input into a 422 naming the field."""

from __future__ import annotations

from datetime import date
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, StringConstraints, field_validator

MAX_OVERVIEW_CHARS = 20_000
MAX_RUNTIME_MIN = 1000
MAX_BATCH = 1000
MAX_LIKED = 200

LanguageCode = Annotated[str, StringConstraints(pattern=r"^[a-z]{2}$")]  # ISO 639-1
CountryCode = Annotated[str, StringConstraints(pattern=r"^[A-Z]{2}$")]  # ISO 3166-1 alpha-2
Name = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=200)]
TmdbId = Annotated[int, Field(ge=1, le=2**31 - 1)]

EXAMPLE_MOVIE = {
    "title": "The Long Night Shift",
    "overview": "A tired nurse and a stubborn patient uncover a hospital conspiracy over one long night.",
    "runtime": 104,
    "genres": ["Drama", "Thriller"],
    "original_language": "en",
    "release_date": "2024-03-15",
    "budget": 12000000,
}


class MovieIn(BaseModel):
    """One movie, with TMDB movie-details field names (extra TMDB fields are ignored)."""

    model_config = ConfigDict(extra="ignore", json_schema_extra={"examples": [EXAMPLE_MOVIE]})

    overview: str = Field(
        min_length=1, max_length=MAX_OVERVIEW_CHARS, description="Plot summary, any language"
    )
    runtime: float = Field(gt=0, le=MAX_RUNTIME_MIN, allow_inf_nan=False, description="Minutes")
    genres: list[Name] = Field(max_length=30, description='Genre names, e.g. ["Drama", "Comedy"]')
    original_language: LanguageCode = Field(description="ISO 639-1 code, two lowercase letters")
    title: str | None = Field(None, max_length=500)
    tagline: str | None = Field(None, max_length=1000)
    release_date: str | None = Field(None, pattern=r"^\d{4}-\d{2}-\d{2}$", description="YYYY-MM-DD")
    budget: float | None = Field(None, ge=0, le=1e10, allow_inf_nan=False, description="US dollars")
    production_companies: list[Name] = Field(default_factory=list, max_length=100)
    production_countries: list[CountryCode] = Field(default_factory=list, max_length=100)
    spoken_languages: list[LanguageCode] = Field(default_factory=list, max_length=100)
    belongs_to_collection: str | None = Field(None, max_length=300, description="Collection name")

    @field_validator("overview")
    @classmethod
    def _not_blank(cls, value: str) -> str:
        if not value.strip():
            raise ValueError("overview must not be blank")
        return value

    @field_validator("release_date")
    @classmethod
    def _real_date(cls, value: str | None) -> str | None:
        if value is None:
            return None
        try:
            day = date.fromisoformat(value)
        except ValueError as exc:
            raise ValueError(f"{value!r} is not a calendar date") from exc
        if not 1870 <= day.year <= 2100:
            raise ValueError("release year must be between 1870 and 2100")
        return value


class BatchIn(BaseModel):
    """Up to 1000 movies in one request."""

    movies: list[MovieIn] = Field(min_length=1, max_length=MAX_BATCH)


class PredictQuery(BaseModel):
    """The raw-value GET form of /predict."""

    runtime: float = Field(gt=0, le=MAX_RUNTIME_MIN, allow_inf_nan=False, description="Minutes")
    genre: list[str] = Field(
        min_length=1, max_length=30, description="Genre name; repeat or comma-separate for several"
    )
    language: LanguageCode = Field(description="Original language, ISO 639-1")
    overview: str = Field(min_length=1, max_length=MAX_OVERVIEW_CHARS)
    explain: bool = False


class Sentiment(BaseModel):
    """TextBlob sentiment of the (translated) overview."""

    polarity: float = Field(description="-1 (negative) .. 1 (positive)")
    subjectivity: float = Field(description="0 (objective) .. 1 (subjective)")
    label: Literal["positive", "neutral", "negative"]


class PredictionOut(BaseModel):
    """One predicted rating and what went into it."""

    predicted_rating: float = Field(ge=0, le=10)
    model_version: str
    overview_sentiment: Sentiment
    translated: bool = Field(description="Whether the overview was machine-translated to English first")
    notes: list[str] = Field(
        description="Anything the caller should know (unknown genre, failed translation)"
    )
    contributions: dict[str, float] | None = Field(
        None, description="With ?explain=true: each feature's share of the prediction, plus 'bias'"
    )


class BatchOut(BaseModel):
    """Predictions in the order of the request's movies."""

    predictions: list[PredictionOut]


class RecommendIn(BaseModel):
    """Movies the user liked, most recent last."""

    liked: list[TmdbId] = Field(default_factory=list, max_length=MAX_LIKED, description="TMDB ids")
    k: int = Field(10, ge=1, le=100, description="How many recommendations")
    user_id: str | None = Field(
        None, min_length=1, max_length=128, description="Pseudonymous user id, logged with what was shown"
    )


class RecommendedMovie(BaseModel):
    """One recommendation."""

    tmdb_id: int
    title: str
    release_year: int | None
    overview: str
    poster_url: str | None
    score: float


class RecommendOut(BaseModel):
    """Recommendations and how they were made."""

    items: list[RecommendedMovie]
    unknown: list[int] = Field(description="Liked ids the model does not know (ignored)")
    strategy: Literal["sequential", "popularity"]
    cold_start: bool = Field(description="True when no liked movie was known, so nothing is personalised")
    model_version: str | None
    request_id: str = Field(description="Send it back with feedback on these items (POST /feedback)")


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


class ErrorOut(BaseModel):
    """An error with a human-readable explanation."""

    detail: str


UNREADABLE_BODY = {400: {"model": ErrorOut, "description": "The body is not UTF-8 JSON"}}
NO_MODEL = {503: {"model": ErrorOut, "description": "No model loaded (the message says what to run)"}}
