"""One canonical movie record, from TMDB movie-details JSON (live API or bundled snapshot)."""

from __future__ import annotations

import math
from typing import Any

# Fields that are only known after release. They may be stored and shown, never used as inputs.
POST_RELEASE_FIELDS = frozenset({"vote_average", "vote_count", "revenue", "popularity"})


def _names(value: Any, key: str = "name") -> list[str]:
    """Names from a TMDB list of objects, or a list of plain strings."""
    if not value:
        return []
    out = []
    for item in value:
        name = item.get(key) or item.get("name") if isinstance(item, dict) else item
        if isinstance(name, str) and name.strip():
            out.append(name.strip())
    return out


def _num(value: Any) -> float | None:
    """A finite float, or None for missing, empty or non-numeric values."""
    if value is None or value == "":
        return None
    try:
        x = float(value)
    except (TypeError, ValueError):
        return None
    return x if math.isfinite(x) else None


def _text(value: Any) -> str:
    return value.strip() if isinstance(value, str) else ""


def normalize_movie(raw: dict[str, Any]) -> dict[str, Any]:
    """Flatten a TMDB movie-details dict into the record every other module reads."""
    collection = raw.get("belongs_to_collection")
    if isinstance(collection, dict):
        collection = collection.get("name")
    budget = _num(raw.get("budget"))
    return {
        "id": int(raw["id"]) if raw.get("id") not in (None, "") else None,
        "imdb_id": raw.get("imdb_id") or None,
        "title": _text(raw.get("title")),
        "original_title": _text(raw.get("original_title")),
        "overview": _text(raw.get("overview")),
        "tagline": _text(raw.get("tagline")),
        "runtime": _num(raw.get("runtime")),
        "genres": _names(raw.get("genres")),
        "original_language": _text(raw.get("original_language")).lower(),
        "release_date": _text(raw.get("release_date")) or None,
        # TMDB writes 0 for an unknown budget.
        "budget": budget if budget and budget > 0 else None,
        "production_companies": _names(raw.get("production_companies")),
        "production_countries": _names(raw.get("production_countries"), key="iso_3166_1"),
        "spoken_languages": _names(raw.get("spoken_languages"), key="iso_639_1"),
        "belongs_to_collection": collection if isinstance(collection, str) and collection else None,
        "poster_path": raw.get("poster_path") or None,
        "status": _text(raw.get("status")) or None,
        "adult": bool(raw.get("adult"))
        if not isinstance(raw.get("adult"), str)
        else raw.get("adult") == "True",
        "popularity": _num(raw.get("popularity")),
        "vote_average": _num(raw.get("vote_average")),
        "vote_count": _num(raw.get("vote_count")),
        "revenue": _num(raw.get("revenue")),
    }


def release_year(movie: dict[str, Any]) -> int | None:
    """The year of release_date, or None."""
    date = movie.get("release_date") or ""
    return int(date[:4]) if len(date) >= 4 and date[:4].isdigit() else None
