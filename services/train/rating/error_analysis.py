"""Where the rating model errs: residuals by band of vote count, release period, genre, language, overview.

Pure functions over normalised movie records, their labels and the predictions of one or more models.
A residual is predicted minus actual, so a positive bias means the model rates that band too high.
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import numpy as np

# Ordinal bands: (label, lower bound inclusive, upper bound exclusive).
VOTE_BANDS = ((("<10", 0, 10), ("10–50", 10, 50), ("50–200", 50, 200), ("200–1k", 200, 1000),
               ("1k–5k", 1000, 5000), ("5k+", 5000, math.inf)))  # fmt: skip
OVERVIEW_BANDS = (("empty", 0, 1), ("<150", 1, 150), ("150–300", 150, 300), ("300–500", 300, 500),
                  ("500+", 500, math.inf))  # fmt: skip
UNKNOWN = "unknown"
OTHER = "other"
# A genre or language with fewer rows than this goes to "other": an RMSE of three movies says nothing.
MIN_CATEGORY_ROWS = 10
# When the rows span at most this many years (a time holdout does), periods are single years.
YEARLY_SPAN = 8

DIMENSIONS = {
    "vote_count": "Vote count (how many ratings the label rests on)",
    "release_period": "Release period",
    "main_genre": "Main genre (first listed)",
    "original_language": "Original language",
    "overview_length": "Overview length (characters)",
}


def _ordinal(value: float | None, bands: Sequence[tuple[str, float, float]]) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return UNKNOWN
    return next((label for label, lo, hi in bands if lo <= value < hi), UNKNOWN)


def vote_band(movie: Mapping[str, Any]) -> str:
    """The vote-count band of a movie, e.g. "10–50"."""
    return _ordinal(movie.get("vote_count"), VOTE_BANDS)


def overview_band(movie: Mapping[str, Any]) -> str:
    """The overview-length band (characters), e.g. "150–300"."""
    return _ordinal(float(len(movie.get("overview") or "")), OVERVIEW_BANDS)


def _year(movie: Mapping[str, Any]) -> int | None:
    date = movie.get("release_date") or ""
    return int(date[:4]) if date[:4].isdigit() else None


def period_labeller(movies: Sequence[Mapping[str, Any]]) -> Callable[[Mapping[str, Any]], str]:
    """Single years when the rows span a few years (a time holdout), else five-year blocks like "2013–17"."""
    years = [y for y in map(_year, movies) if y is not None]
    yearly = bool(years) and max(years) - min(years) < YEARLY_SPAN

    def label(movie: Mapping[str, Any]) -> str:
        year = _year(movie)
        if year is None:
            return UNKNOWN
        if yearly:
            return str(year)
        start = year - (year - 3) % 5  # blocks 2013–17, 2018–22: the periods
        return f"{start}–{(start + 4) % 100:02d}"

    return label


def _category_labeller(values: Sequence[str]) -> Callable[[str], str]:
    counts = Counter(values)
    return lambda v: v if counts[v] >= MIN_CATEGORY_ROWS or v == UNKNOWN else OTHER


def band_labels(movies: Sequence[Mapping[str, Any]]) -> dict[str, list[str]]:
    """Each dimension's band of every movie, in row order."""
    genres = [(m.get("genres") or [UNKNOWN])[0] for m in movies]
    languages = [(m.get("original_language") or UNKNOWN) for m in movies]
    genre_of, language_of, period_of = (
        _category_labeller(genres),
        _category_labeller(languages),
        period_labeller(movies),
    )
    return {
        "vote_count": [vote_band(m) for m in movies],
        "release_period": [period_of(m) for m in movies],
        "main_genre": [genre_of(g) for g in genres],
        "original_language": [language_of(x) for x in languages],
        "overview_length": [overview_band(m) for m in movies],
    }


def residual_stats(y: np.ndarray, predicted: np.ndarray) -> dict[str, Any]:
    """Count, bias (mean of predicted minus actual), RMSE and MAE of some rows."""
    diff = np.asarray(predicted, dtype=np.float64) - np.asarray(y, dtype=np.float64)
    if len(diff) == 0:
        return {"count": 0, "bias": None, "rmse": None, "mae": None}
    return {
        "count": len(diff),
        "bias": round(float(diff.mean()), 4),
        "rmse": round(float(np.sqrt(np.mean(diff**2))), 4),
        "mae": round(float(np.mean(np.abs(diff))), 4),
    }


def _order(dimension: str, labels: Sequence[str]) -> list[str]:
    """Ordinal bands in their natural order; categories by row count, "other" and "unknown" last."""
    present = set(labels)
    if dimension == "vote_count":
        return [b for b, _, _ in VOTE_BANDS if b in present] + ([UNKNOWN] if UNKNOWN in present else [])
    if dimension == "overview_length":
        return [b for b, _, _ in OVERVIEW_BANDS if b in present] + ([UNKNOWN] if UNKNOWN in present else [])
    if dimension == "release_period":
        return sorted(present - {UNKNOWN}) + ([UNKNOWN] if UNKNOWN in present else [])
    counts = Counter(labels)
    tail = [b for b in (OTHER, UNKNOWN) if b in present]
    return sorted(present - set(tail), key=lambda b: (-counts[b], b)) + tail


def analyse(
    movies: Sequence[Mapping[str, Any]], y: np.ndarray, predictions: Mapping[str, np.ndarray]
) -> dict[str, Any]:
    """Residual statistics of each model, overall and per band of every dimension, on the same rows.

    `predictions` maps a model's name ("production", "challenger") to its predictions, row for row.
    """
    y = np.asarray(y, dtype=np.float64)
    for name, p in predictions.items():
        if len(p) != len(y):
            raise ValueError(f"{name}: {len(p)} predictions for {len(y)} rows")
    labels = band_labels(movies)
    dimensions = {}
    for dim, title in DIMENSIONS.items():
        column = np.asarray(labels[dim], dtype=object)
        bands = []
        for band in _order(dim, labels[dim]):
            rows = column == band
            stats = {name: residual_stats(y[rows], np.asarray(p)[rows]) for name, p in predictions.items()}
            bands.append({"band": band, "count": int(rows.sum()), **stats})
        dimensions[dim] = {"title": title, "bands": bands}
    overall = {name: residual_stats(y, p) for name, p in predictions.items()}
    spread = {"labels_std": round(float(y.std()), 4) if len(y) else None} | {
        f"{name}_std": round(float(np.std(p)), 4) if len(p) else None for name, p in predictions.items()
    }
    return {"rows": len(y), "overall": overall, "spread": spread, "dimensions": dimensions}


def worst_bands(
    report: Mapping[str, Any], model: str, top: int = 3, min_rows: int = 20
) -> list[dict[str, Any]]:
    """The bands with the highest RMSE for one model (ignoring bands under min_rows), for the log line."""
    found = [
        {"dimension": dim, "band": b["band"], "count": b["count"], **b[model]}
        for dim, d in report["dimensions"].items()
        for b in d["bands"]
        if model in b and b["count"] >= min_rows and b[model]["rmse"] is not None
    ]
    return sorted(found, key=lambda b: -b["rmse"])[:top]
