"""Schema and range checks on normalised movie records, with a quarantine for the bad ones."""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import date
from typing import Any

_LANG = re.compile(r"^[a-z]{2}$")
_DATE = re.compile(r"^\d{4}-\d{2}-\d{2}$")


class ValidationFailed(RuntimeError):
    """Too many rows failed their checks to train on this data."""


@dataclass
class ValidationReport:
    """Rows kept, rows quarantined with their reason, and counts by reason."""

    good: list[dict[str, Any]] = field(default_factory=list)
    quarantined: list[dict[str, Any]] = field(default_factory=list)

    @property
    def reasons(self) -> dict[str, int]:
        """How many rows failed each check."""
        return dict(Counter(q["reason"] for q in self.quarantined))

    @property
    def bad_fraction(self) -> float:
        """Share of rows quarantined."""
        total = len(self.good) + len(self.quarantined)
        return len(self.quarantined) / total if total else 0.0


def problems(movie: dict[str, Any], today: date | None = None) -> list[str]:
    """Every check a record fails (empty when it is fit to train on or to show)."""
    out = []
    if not isinstance(movie.get("id"), int) or movie["id"] <= 0:
        out.append("id: not a positive integer")
    if not movie.get("title"):
        out.append("title: empty")
    if not movie.get("overview"):
        out.append("overview: empty")
    elif len(movie["overview"]) > 20_000:
        out.append("overview: longer than 20,000 characters")
    runtime = movie.get("runtime")
    if runtime is None or not 1 <= runtime <= 1000:
        out.append("runtime: missing or outside 1-1000 minutes")
    if not _LANG.match(movie.get("original_language") or ""):
        out.append("original_language: not an ISO 639-1 code")
    released = movie.get("release_date") or ""
    if not _DATE.match(released):
        out.append("release_date: missing or not YYYY-MM-DD")
    else:
        try:
            day = date.fromisoformat(released)
            if today and (day.year < 1874 or day > date(today.year + 3, 12, 31)):
                out.append("release_date: implausible year")
        except ValueError:
            out.append("release_date: not a calendar date")
    if not isinstance(movie.get("genres"), list) or not all(isinstance(g, str) for g in movie["genres"]):
        out.append("genres: not a list of names")
    if movie.get("budget") is not None and movie["budget"] < 0:
        out.append("budget: negative")
    vote = movie.get("vote_average")
    if vote is not None and not 0 <= vote <= 10:
        out.append("vote_average: outside 0-10")
    count = movie.get("vote_count")
    if count is not None and count < 0:
        out.append("vote_count: negative")
    return out


def validate(movies: Sequence[dict[str, Any]], today: date | None = None) -> ValidationReport:
    """Split records into good ones and quarantined ones (with the first failed check as reason)."""
    report = ValidationReport()
    for movie in movies:
        found = problems(movie, today)
        if found:
            report.quarantined.append({"reason": found[0], "all_reasons": found, "record": movie})
        else:
            report.good.append(movie)
    return report


def enforce(report: ValidationReport, max_bad_fraction: float) -> None:
    """Fail with a clear message when too many rows are bad."""
    if report.bad_fraction > max_bad_fraction:
        top = ", ".join(f"{r} ({n})" for r, n in Counter(report.reasons).most_common(5))
        raise ValidationFailed(
            f"{report.bad_fraction:.1%} of {len(report.good) + len(report.quarantined)} rows failed "
            f"validation (limit {max_bad_fraction:.0%}); most common: {top}"
        )
