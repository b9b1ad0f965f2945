"""Feature code shared by training and serving: one movie record in, one float vector out.

Only fields known before a film's release are read. The encoders are fitted on the training rows,
saved as JSON next to the model, and loaded by serving, so a movie is encoded the same way in both
places. They hold vocabularies (index 0 is the unknown bucket) and, since feature set 2, what was
learned from the training labels: a linear text model and smoothed mean ratings per genre,
language, country, company and collection ("track records"). Those are fitted on the training
split only; the training rows themselves get out-of-fold values (featurize_training) so the trees
never see a feature computed from a row's own label.
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np

from services.core.movie import POST_RELEASE_FIELDS
from services.core.sentiment import sentiment
from services.core.text_features import TextModel, fit_text_model, movie_text

UNKNOWN = "<unknown>"
FEATURE_SET_VERSION = 2
TRACK_SMOOTHING = 10.0  # a value's mean rating is shrunk towards the overall mean as if by 10 more movies
OOF_FOLDS = 5
# Feature name -> the record field whose values' track records are averaged.
TRACK_RECORDS = {
    "genre_track_record": "genres",
    "language_track_record": "original_language",
    "country_track_record": "production_countries",
    "company_track_record": "production_companies",
    "collection_track_record": "belongs_to_collection",
}
ONE_HOT_PREFIXES = ("genre=", "country=", "company=")  # multi-hot indicator columns, named prefix + value
# Features learned from training labels, last in every vector (featurize_training replaces them).
LEARNED_FEATURES = ("text_signal", *TRACK_RECORDS)


class LeakageError(RuntimeError):
    """A post-release field (vote_count, vote_average, revenue, popularity) reached the inputs."""


@dataclass
class Encoders:
    """JSON-serialisable encoders: vocabularies (position is the code, 0 is unknown) and learned parts."""

    genres: list[str] = field(default_factory=lambda: [UNKNOWN])
    languages: list[str] = field(default_factory=lambda: [UNKNOWN])
    countries: list[str] = field(default_factory=lambda: [UNKNOWN])
    companies: list[str] = field(default_factory=lambda: [UNKNOWN])
    # Learned from training labels: TextModel.to_json(), and per field {value: mean rating - prior}.
    text_model: dict[str, Any] = field(default_factory=lambda: TextModel().to_json())
    track_records: dict[str, dict[str, float]] = field(default_factory=dict)
    label_rows: int = 0  # how many labelled training movies the learned parts were fitted on
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

    def text(self) -> TextModel:
        """The text model, built once from its JSON form."""
        cache = self.__dict__.setdefault("_cache", {})
        if "text_model" not in cache:
            cache["text_model"] = TextModel.from_json(self.text_model)
        return cache["text_model"]


def _vocab(values: Iterable[str], min_count: int, max_size: int) -> list[str]:
    counts = Counter(v for v in values if v)
    kept = [v for v, c in counts.most_common(max_size) if c >= min_count]
    return [UNKNOWN, *sorted(kept)]


def _values(movie: dict[str, Any], name: str) -> list[str]:
    """The distinct values of a list or single-valued field (empty when missing)."""
    value = movie.get(name)
    if isinstance(value, str):
        return [value] if value else []
    return sorted({v for v in value or [] if v})


def _learned(movies: Sequence[dict[str, Any]]) -> dict[str, Any]:
    """The label-derived parts of the encoders, fitted on the movies that have a vote_average."""
    rows = [m for m in movies if m.get("vote_average") is not None]
    if not rows:
        return {"text_model": TextModel().to_json(), "track_records": {}, "label_rows": 0}
    y = np.asarray([float(m["vote_average"]) for m in rows])
    prior = float(y.mean())
    tables: dict[str, dict[str, float]] = {}
    for name in sorted(set(TRACK_RECORDS.values())):
        sums: dict[str, float] = {}
        counts: dict[str, int] = {}
        for m, label in zip(rows, y, strict=True):
            for v in _values(m, name):
                sums[v] = sums.get(v, 0.0) + float(label)
                counts[v] = counts.get(v, 0) + 1
        tables[name] = {
            v: round((sums[v] + TRACK_SMOOTHING * prior) / (counts[v] + TRACK_SMOOTHING) - prior, 6)
            for v in sorted(counts)
        }
    text = fit_text_model([movie_text(m) for m in rows], y)
    return {"text_model": text.to_json(), "track_records": tables, "label_rows": len(rows)}


def fit_encoders(movies: Sequence[dict[str, Any]]) -> Encoders:
    """Fit on training movies only: vocabularies, plus the text model and track records.

    The learned parts read the records' vote_average (rows without one are skipped), so pass the
    training split and nothing else: anything passed here is treated as seen labels.
    """
    return Encoders(
        genres=_vocab((g for m in movies for g in m.get("genres") or []), 1, 40),
        languages=_vocab((m.get("original_language") or "" for m in movies), 5, 30),
        countries=_vocab((c for m in movies for c in m.get("production_countries") or []), 20, 12),
        companies=_vocab((c for m in movies for c in m.get("production_companies") or []), 15, 25),
        **_learned(movies),
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
    names += [f"{ONE_HOT_PREFIXES[0]}{g}" for g in enc.genres[1:]]
    names += [f"{ONE_HOT_PREFIXES[1]}{c}" for c in enc.countries[1:]]
    names += [f"{ONE_HOT_PREFIXES[2]}{c}" for c in enc.companies[1:]]
    names += list(LEARNED_FEATURES)
    return names


def is_one_hot(name: str) -> bool:
    """Whether a feature is a one-hot indicator (genre=..., country=..., company=...): 0 or 1, never missing."""
    return name.startswith(ONE_HOT_PREFIXES)


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
    learned = np.asarray(_learned_features(movie, enc), dtype=np.float64)
    return np.concatenate([np.asarray(head, dtype=np.float64), *multi, learned])


def _learned_features(movie: dict[str, Any], enc: Encoders) -> list[float]:
    """Text signal and track records (NaN when none of the movie's values was seen in training)."""
    out = [enc.text().score(movie_text(movie))]
    for name in TRACK_RECORDS.values():
        table = enc.track_records.get(name, {})
        known = [table[v] for v in _values(movie, name) if v in table]
        out.append(sum(known) / len(known) if known else math.nan)
    return out


def featurize(movies: Sequence[dict[str, Any]], enc: Encoders) -> np.ndarray:
    """The feature matrix of many movies, one row each."""
    width = len(feature_names(enc))
    if not movies:
        return np.zeros((0, width))
    return np.vstack([featurize_one(m, enc) for m in movies])


def featurize_training(movies: Sequence[dict[str, Any]], enc: Encoders, folds: int = OOF_FOLDS) -> np.ndarray:
    """The training matrix: like featurize, but the learned features of each row are out-of-fold.

    The rows are dealt into folds (fixed seed); each fold's text signal and track records come from
    encoders refitted on the other folds, so no row's features depend on its own label. Use it for
    the rows `enc` was fitted on; every other split (and serving) uses featurize / featurize_one.
    """
    x = featurize(movies, enc)
    # Fewer rows than folds: one row a fold (a single row learns from nothing, never from itself).
    folds = max(1, min(folds, len(movies)))
    fold_of = np.random.default_rng(0).permutation(len(movies)) % folds
    width = len(LEARNED_FEATURES)
    for k in range(folds):
        inside = np.flatnonzero(fold_of == k)
        outside = np.flatnonzero(fold_of != k)
        fold_enc = Encoders(**{**enc.to_json(), **_learned([movies[i] for i in outside])})
        for i in inside:
            x[i, -width:] = _learned_features(movies[i], fold_enc)
    return x


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
