"""What the serving API answers, as typed records the pages read (the client builds them)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Literal

from services.ui.choices import LANGUAGE_NAMES, TMDB_GENRES

ErrorKind = Literal["down", "not_ready", "invalid", "not_found", "server", "bad_response"]
# What /recommend ranks: every movie, or only those without interactions in the model's training data.
Pool = Literal["all", "new"]
POOLS: tuple[Pool, ...] = ("all", "new")


@dataclass(frozen=True)
class ApiError:
    """Why a call failed, in words a user can act on."""

    kind: ErrorKind
    message: str
    status: int | None = None
    problems: tuple[str, ...] = ()
    retry_after_s: int | None = None  # a 503's Retry-After, when the API gave one in seconds


@dataclass(frozen=True)
class Sentiment:
    """The overview's mood as the API read it."""

    polarity: float
    subjectivity: float
    label: str


@dataclass(frozen=True)
class Prediction:
    """A predicted rating with what the model saw and why it said so."""

    rating: float
    model_version: str
    sentiment: Sentiment
    translated: bool
    notes: tuple[str, ...] = ()
    contributions: Mapping[str, float] = field(default_factory=dict)
    bias: float | None = None


@dataclass(frozen=True)
class Movie:
    """One catalog movie, as search, lookup and recommendations return it."""

    tmdb_id: int
    title: str
    release_year: int | None = None
    overview: str = ""
    poster_url: str | None = None
    genres: tuple[str, ...] = ()
    score: float | None = None
    new: bool = False  # no interactions in the recommender's training data: ranked by its content

    @property
    def label(self) -> str:
        """'Title (1995)', or the bare title when the year is unknown."""
        return f"{self.title} ({self.release_year})" if self.release_year else self.title


@dataclass(frozen=True)
class Recommendations:
    """Ten (or k) movies to watch next, and how they were chosen."""

    items: tuple[Movie, ...]
    strategy: str
    cold_start: bool
    model_version: str | None = None
    unknown: tuple[int, ...] = ()
    request_id: str | None = None  # names this answer in feedback on its cards
    pool: Pool | None = None  # what was ranked, as the API echoes it; None from an API without pools
    # Users known by id: "user" (ranked from the server's history), "request" or "fallback"; None each
    # from an API before users.
    source: str | None = None
    history: int | None = None  # stored positives the ranking used
    cached: bool | None = None  # answered from the precomputed list


@dataclass(frozen=True)
class ModelInfo:
    """The production version of one model as the API serves it."""

    name: str
    version: str | None
    metrics: Mapping[str, float] = field(default_factory=dict)
    created_at: str | None = None
    wandb_run: str | None = None
    source: str | None = None
    algorithm: str | None = None
    git_commit: str | None = None


@dataclass(frozen=True)
class HistoryPoint:
    """One registry version of a model with its metrics."""

    model: str
    version: str
    metrics: Mapping[str, float] = field(default_factory=dict)
    created_at: str | None = None
    production: bool = False


@dataclass(frozen=True)
class Vocabulary:
    """Choices for the rating form, and where they came from ('api' or 'fallback')."""

    genres: tuple[str, ...]
    languages: tuple[str, ...]
    source: Literal["api", "fallback"] = "fallback"


@dataclass(frozen=True)
class Readiness:
    """Whether the API can answer predictions now."""

    ready: bool
    detail: str = ""


FALLBACK_VOCABULARY = Vocabulary(genres=TMDB_GENRES, languages=tuple(LANGUAGE_NAMES), source="fallback")
