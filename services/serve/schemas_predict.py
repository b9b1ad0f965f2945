"""Request and response bodies of /predict: one movie's TMDB fields in, a predicted rating out."""

from __future__ import annotations

import re
from typing import Annotated, Literal

from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    StringConstraints,
    WithJsonSchema,
    field_validator,
)

MAX_OVERVIEW_CHARS = 20_000
MAX_RUNTIME_MIN = 1000
MAX_BATCH = 1000
# The free text of a whole /predict/batch (overview, title, tagline): its CPU cost (sentiment, translation)
# grows with it. 500 characters a movie at the full 1,000 movies; ~1.5 MB in a 3-byte script, under the
# route's 2 MiB body cap (services/serve/limits.py).
MAX_BATCH_TEXT_CHARS = 500_000

LanguageCode = Annotated[str, StringConstraints(pattern=r"^[a-z]{2}$")]  # ISO 639-1
CountryCode = Annotated[str, StringConstraints(pattern=r"^[A-Z]{2}$")]  # ISO 3166-1 alpha-2

# What str.strip() strips, spelled out: JSON Schema's \s (ECMA-262) is a slightly different set.
_WHITESPACE = r"\t-\r\x1c- \x85\xa0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000"
# The schema's way of saying "not blank": somewhere a character that strip() keeps.
NOT_BLANK = {"pattern": f"[^{_WHITESPACE}]"}


def _stripped(value: str) -> str:
    # Constraints apply to the value as sent (as the schema says), then it is stored stripped.
    if not value.strip():
        raise ValueError("must not be blank")
    return value.strip()


Name = Annotated[
    str,
    StringConstraints(min_length=1, max_length=200),
    Field(json_schema_extra=NOT_BLANK),
    AfterValidator(_stripped),
]


# Every day from 1870-01-01 to 2100-12-31 and nothing else, as one regex, so that the OpenAPI schema says
# exactly what is accepted (`format: date` would promise the years 0001 to 9999 as well). February 29th
# only in leap years: every fourth year, but not 1900 or 2100.
_YEAR = r"(18[7-9][0-9]|19[0-9]{2}|20[0-9]{2}|2100)"
_DAY_31 = r"(0[13578]|1[02])-(0[1-9]|[12][0-9]|3[01])"
_DAY_30 = r"(0[469]|11)-(0[1-9]|[12][0-9]|30)"
_DAY_28 = r"02-(0[1-9]|1[0-9]|2[0-8])"
_LEAP_DAY = r"(18(7[26]|8[048]|9[26])|19(0[48]|[2468][048]|[13579][26])|20([02468][048]|[13579][26]))-02-29"
RELEASE_DATE_PATTERN = rf"^({_YEAR}-({_DAY_31}|{_DAY_30}|{_DAY_28})|{_LEAP_DAY})$"


def _calendar_date(value: str) -> str:
    # A check of our own rather than a pattern constraint: pydantic's message would quote the whole regex.
    # The value is not quoted either: it may be 20,000 characters long.
    if not re.fullmatch(RELEASE_DATE_PATTERN, value):
        raise ValueError("not a calendar date from 1870 to 2100 (YYYY-MM-DD)")
    return value


ReleaseDate = Annotated[
    str, AfterValidator(_calendar_date), WithJsonSchema({"type": "string", "pattern": RELEASE_DATE_PATTERN})
]

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

    # strict: a number is a JSON number, not true or "104", which is what the schema says.
    model_config = ConfigDict(extra="ignore", strict=True, json_schema_extra={"examples": [EXAMPLE_MOVIE]})

    overview: str = Field(
        min_length=1, max_length=MAX_OVERVIEW_CHARS, description="Plot summary, any language",
        json_schema_extra=NOT_BLANK,
    )  # fmt: skip
    runtime: float = Field(gt=0, le=MAX_RUNTIME_MIN, allow_inf_nan=False, description="Minutes")
    genres: list[Name] = Field(max_length=30, description='Genre names, e.g. ["Drama", "Comedy"]')
    original_language: LanguageCode = Field(description="ISO 639-1 code, two lowercase letters")
    title: str | None = Field(None, max_length=500)
    tagline: str | None = Field(None, max_length=1000)
    release_date: ReleaseDate | None = Field(
        None, description="YYYY-MM-DD, a calendar date from 1870 to 2100"
    )
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


class BatchIn(BaseModel):
    """Up to 1000 movies in one request."""

    model_config = ConfigDict(strict=True)

    movies: list[MovieIn] = Field(
        min_length=1, max_length=MAX_BATCH,
        description=f"At most {MAX_BATCH_TEXT_CHARS:,} characters of overview, title and tagline in all",
    )  # fmt: skip

    @field_validator("movies")
    @classmethod
    def _text_cap(cls, movies: list[MovieIn]) -> list[MovieIn]:
        total = sum(len(m.overview) + len(m.title or "") + len(m.tagline or "") for m in movies)
        if total > MAX_BATCH_TEXT_CHARS:
            raise ValueError(
                f"the movies' overview, title and tagline total {total:,} characters; at most "
                f"{MAX_BATCH_TEXT_CHARS:,} per request (split the batch)"
            )
        return movies


class PredictQuery(BaseModel):
    """The raw-value GET form of /predict."""

    runtime: float = Field(gt=0, le=MAX_RUNTIME_MIN, allow_inf_nan=False, description="Minutes")
    genre: list[str] = Field(
        min_length=1, max_length=30, description="Genre name; repeat or comma-separate for several"
    )
    language: LanguageCode = Field(description="Original language, ISO 639-1")
    overview: str = Field(min_length=1, max_length=MAX_OVERVIEW_CHARS, json_schema_extra=NOT_BLANK)
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
