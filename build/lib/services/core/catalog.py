"""The movie catalog: what serving knows about each movie, and the search behind the UI's picker."""

from __future__ import annotations

import unicodedata
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from services.core.movie import release_year


def fold(text: str) -> str:
    """Lower-case and strip accents, so 'Amélie' and 'amelie' compare equal."""
    decomposed = unicodedata.normalize("NFKD", text.casefold())
    return "".join(ch for ch in decomposed if not unicodedata.combining(ch))


def catalog_entry(movie: dict[str, Any]) -> dict[str, Any]:
    """The catalog fields of one normalised movie record."""
    return {
        "tmdb_id": int(movie["id"]),
        "title": movie.get("title") or movie.get("original_title") or f"TMDB {movie['id']}",
        "release_year": release_year(movie),
        "overview": movie.get("overview") or "",
        "poster_path": movie.get("poster_path"),
        "genres": list(movie.get("genres") or []),
        "original_language": movie.get("original_language") or None,
        "popularity": float(movie.get("popularity") or 0.0),
    }


@dataclass
class SearchHit:
    """One search result with its rank key."""

    entry: dict[str, Any]
    score: float


class Catalog:
    """An in-memory, read-only catalog with lookup, search and popularity order."""

    def __init__(self, entries: Iterable[dict[str, Any]]) -> None:
        self.by_id: dict[int, dict[str, Any]] = {int(e["tmdb_id"]): e for e in entries}
        self._folded = {i: fold(e["title"]) for i, e in self.by_id.items()}
        self._popular = sorted(self.by_id, key=lambda i: (-self.by_id[i]["popularity"], i))

    def __len__(self) -> int:
        return len(self.by_id)

    def __contains__(self, tmdb_id: object) -> bool:
        return tmdb_id in self.by_id

    def get(self, tmdb_id: int) -> dict[str, Any] | None:
        """One entry by TMDB id."""
        return self.by_id.get(tmdb_id)

    def popular(self, k: int, exclude: Iterable[int] = ()) -> list[dict[str, Any]]:
        """The k most popular movies, skipping excluded ids."""
        skip = set(exclude)
        out = []
        for i in self._popular:
            if i not in skip:
                out.append(self.by_id[i])
                if len(out) == k:
                    break
        return out

    def search(self, query: str, limit: int = 10) -> list[dict[str, Any]]:
        """Titles matching a query: exact, then prefix, then word-prefix, then substring; popular first."""
        q = fold(query.strip())
        if not q:
            return []
        hits: list[tuple[int, float, int]] = []
        for i, title in self._folded.items():
            if title == q:
                tier = 0
            elif title.startswith(q):
                tier = 1
            elif any(w.startswith(q) for w in title.split()):
                tier = 2
            elif q in title:
                tier = 3
            else:
                continue
            hits.append((tier, -self.by_id[i]["popularity"], i))
        hits.sort()
        return [self.by_id[i] for _, _, i in hits[:limit]]

    def to_json(self) -> list[dict[str, Any]]:
        """Entries as a JSON-ready list, sorted by id."""
        return [self.by_id[i] for i in sorted(self.by_id)]

    @classmethod
    def from_movies(cls, movies: Sequence[dict[str, Any]]) -> Catalog:
        """A catalog from normalised movie records."""
        return cls(catalog_entry(m) for m in movies)

    def merged(self, other: Catalog) -> Catalog:
        """A catalog holding both; entries of self win on conflicts."""
        return Catalog([*other.by_id.values(), *self.by_id.values()])
