"""Feature code shared by training and serving: one movie record in, one float vector out.

Only fields known before a film's release are read. The vocabularies ("encoders") are fitted on
the training rows, saved as JSON next to the model, and loaded by serving, so a movie is encoded
the same way in both places. Index 0 of every vocabulary is the unknown bucket.
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np
from textblob import TextBlob

from services.core.movie import POST_RELEASE_FIELDS

UNKNOWN = "<unknown>"
FEATURE_SET_VERSION = 1


class LeakageError(RuntimeError):
    """A post-release field (vote_count, vote_average, revenue, popularity) reached the inputs."""


@dataclass
class Encoders:
    """JSON-serialisable vocabularies; position in each list is the code, 0 is unknown."""

    genres: list[str] = field(default_factory=lambda: [UNKNOWN])
    languages: list[str] = field(default_factory=lambda: [UNKNOWN])
    countries: list[str] = field(default_factory=lambda: [UNKNOWN])
    companies: list[str] = field(default_factory=lambda: [UNKNOWN])
    feature_set_version: int = FEATURE_SET_VERSION

    def to_json(self) -> dict[str, Any]:
        """A plain dict for json.dumps."""
        return asdict(self)

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Encoders:
        """The inverse of to_json; refuses a feature set this code does not compute."""
        if data.get("feature_set_version") != FEATURE_SET_VERSION:
            raise ValueError(
                f"encoders are for feature set {data.get('feature_set_version')}, "
                f"this code computes {FEATURE_SET_VERSION}"
            )
        return cls(**data)

    def code(self, vocab: str, value: str | None) -> int:
        """The code of a value in a vocabulary, 0 when unseen."""
        index = self._index(vocab)
        return index.get(value or "", 0)

    def _index(self, vocab: str) -> dict[str, int]:
        cache = self.__dict__.setdefault("_cache", {})
        if vocab not in cache:
            cache[vocab] = {v: i for i, v in enumerate(getattr(self, vocab))}
        return cache[vocab]


def _vocab(values: Iterable[str], min_count: int, max_size: int) -> list[str]:
    counts = Counter(v for v in values if v)
    kept = [v for v, c in counts.most_common(max_size) if c >= min_count]
    return [UNKNOWN, *sorted(kept)]


def fit_encoders(movies: Sequence[dict[str, Any]]) -> Encoders:
    """Fit the vocabularies on training movies only."""
    return Encoders(
        genres=_vocab((g for m in movies for g in m.get("genres") or []), 1, 40),
        languages=_vocab((m.get("original_language") or "" for m in movies), 5, 30),
        countries=_vocab((c for m in movies for c in m.get("production_countries") or []), 20, 12),
        companies=_vocab((c for m in movies for c in m.get("production_companies") or []), 15, 25),
    )


def feature_names(enc: Encoders) -> list[str]:
    """Column names of the vectors featurize() returns, in order."""
    names = [
        "runtime",
        "overview_polarity",
        "overview_subjectivity",
        "overview_length",
        "overview_words",
        "tagline_length",
        "title_length",
        "main_genre",
        "n_genres",
        "original_language",
        "is_english",
        "release_year",
        "release_month",
        "log_budget",
        "in_collection",
        "n_companies",
        "n_countries",
        "n_spoken_languages",
    ]
    names += [f"genre={g}" for g in enc.genres[1:]]
    names += [f"country={c}" for c in enc.countries[1:]]
    names += [f"company={c}" for c in enc.companies[1:]]
    return names


def sentiment(text: str) -> tuple[float, float]:
    """TextBlob polarity (-1..1) and subjectivity (0..1) of an English text."""
    if not text:
        return 0.0, 0.0
    s = TextBlob(text).sentiment
    return float(s.polarity), float(s.subjectivity)


def _year_month(date: str | None) -> tuple[float, float]:
    if not date or len(date) < 7:
        return math.nan, math.nan
    try:
        return float(int(date[:4])), float(int(date[5:7]))
    except ValueError:
        return math.nan, math.nan


def featurize_one(movie: dict[str, Any], enc: Encoders) -> np.ndarray:
    """The feature vector of one normalised movie record (missing values are NaN)."""
    overview = movie.get("overview") or ""
    polarity, subjectivity = sentiment(overview)
    genres = movie.get("genres") or []
    countries = movie.get("production_countries") or []
    companies = movie.get("production_companies") or []
    language = (movie.get("original_language") or "").lower()
    year, month = _year_month(movie.get("release_date"))
    runtime = movie.get("runtime")
    budget = movie.get("budget")
    head = [
        float(runtime) if runtime else math.nan,
        polarity,
        subjectivity,
        float(len(overview)),
        float(len(overview.split())),
        float(len(movie.get("tagline") or "")),
        float(len(movie.get("title") or "")),
        float(enc.code("genres", genres[0] if genres else None)),
        float(len(genres)),
        float(enc.code("languages", language)),
        1.0 if language == "en" else 0.0,
        year,
        month,
        math.log1p(float(budget)) if budget else math.nan,
        1.0 if movie.get("belongs_to_collection") else 0.0,
        float(len(companies)),
        float(len(countries)),
        float(len(movie.get("spoken_languages") or [])),
    ]
    multi = []
    for vocab, values in (("genres", genres), ("countries", countries), ("companies", companies)):
        hot = np.zeros(len(getattr(enc, vocab)) - 1)
        for v in values:
            code = enc.code(vocab, v)
            if code:
                hot[code - 1] = 1.0
        multi.append(hot)
    return np.concatenate([np.asarray(head, dtype=np.float64), *multi])


def featurize(movies: Sequence[dict[str, Any]], enc: Encoders) -> np.ndarray:
    """The feature matrix of many movies, one row each."""
    width = len(feature_names(enc))
    if not movies:
        return np.zeros((0, width))
    return np.vstack([featurize_one(m, enc) for m in movies])


def assert_no_leakage(names: Sequence[str]) -> None:
    """Fail when a feature is named after a post-release field."""
    bad = [n for n in names if any(f in n.lower() for f in POST_RELEASE_FIELDS)]
    if bad:
        raise LeakageError(f"post-release fields among model inputs: {bad}")


def check_leakage(movies: Sequence[dict[str, Any]], enc: Encoders) -> None:
    """Fail when changing a post-release field changes any feature (names and values checked)."""
    assert_no_leakage(feature_names(enc))
    sample = list(movies[:50])
    base = featurize(sample, enc)
    for name in POST_RELEASE_FIELDS:
        perturbed = [{**m, name: (m.get(name) or 0) * 3 + 7} for m in sample]
        if not np.array_equal(featurize(perturbed, enc), base, equal_nan=True):
            raise LeakageError(f"{name} changes the model inputs")
