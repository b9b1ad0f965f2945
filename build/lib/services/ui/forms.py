"""Turn the rating form's widget values into the /predict request body (TMDB field names)."""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from typing import Any


def split_names(text: str | None) -> list[str]:
    """'A24, Neon ,' -> ['A24', 'Neon']: comma-separated names, blanks and repeats dropped."""
    return list(dict.fromkeys(part.strip() for part in (text or "").split(",") if part.strip()))


def movie_payload(
    *,
    overview: str,
    runtime: float,
    main_genre: str,
    original_language: str,
    more_genres: Sequence[str] = (),
    title: str = "",
    tagline: str = "",
    release_date: dt.date | None = None,
    budget: float | None = None,
    production_countries: Sequence[str] = (),
    production_companies: str = "",
    collection: str = "",
) -> dict[str, Any]:
    """The /predict body: required fields always, optional ones only when filled in."""
    body: dict[str, Any] = {
        "overview": overview.strip(),
        "runtime": runtime,
        "genres": list(dict.fromkeys([main_genre, *more_genres])),
        "original_language": original_language,
    }
    if title.strip():
        body["title"] = title.strip()
    if tagline.strip():
        body["tagline"] = tagline.strip()
    if release_date is not None:
        body["release_date"] = release_date.isoformat()
    if budget:
        body["budget"] = budget
    if production_countries:
        body["production_countries"] = list(production_countries)
    if companies := split_names(production_companies):
        body["production_companies"] = companies
    if collection.strip():
        body["belongs_to_collection"] = collection.strip()
    return body
