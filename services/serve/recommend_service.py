"""The recommendation service: the sequential recommender when published, catalog popularity otherwise."""

from __future__ import annotations

import math
from collections.abc import Iterable
from typing import Any

from services.core.catalog import Catalog
from services.serve.schemas import MovieOut, RecommendedMovie, RecommendOut
from services.serve.state import LoadedModels


def poster_url(entry: dict[str, Any], base_url: str) -> str | None:
    """The full poster URL of a catalog entry, or None."""
    path = entry.get("poster_path")
    return f"{base_url.rstrip('/')}/{path.lstrip('/')}" if path else None


def movie_out(entry: dict[str, Any], base_url: str) -> MovieOut:
    """A catalog entry as the API shows it."""
    return MovieOut(
        tmdb_id=int(entry["tmdb_id"]),
        title=entry["title"],
        release_year=entry.get("release_year"),
        overview=entry.get("overview") or "",
        poster_url=poster_url(entry, base_url),
        genres=list(entry.get("genres") or []),
        original_language=entry.get("original_language"),
        popularity=_finite(entry.get("popularity")),
    )


class RecommendService:
    """Recommends from the loaded models it is handed."""

    def __init__(self, models: LoadedModels, poster_base_url: str) -> None:
        self.models = models
        self.catalog: Catalog = models.catalog
        self.poster_base_url = poster_base_url

    def recommend(self, liked: list[int], k: int, request_id: str) -> RecommendOut:
        """k movies for someone who liked these (most recent last); liked movies are never returned."""
        liked = list(dict.fromkeys(reversed(liked)))[::-1]  # drop repeats, keep each id's latest position
        rec = self.models.recommender
        if rec is not None:
            known = [i for i in liked if rec.model.knows(i)]
            extra = k + len(liked) + 20  # room for ids filtered out below
            if known:
                pairs, strategy = _pairs(rec.model.recommend(known, extra)), "sequential"
            else:
                pairs, strategy = _pairs(rec.model.popular(extra, exclude=liked)), "popularity"
            version = rec.manifest.version
        else:
            known = [i for i in liked if i in self.catalog]
            pairs, strategy = [], "popularity"
            version = self.models.version("rating")
        known_set = set(known)
        items = self._items(pairs, set(liked), k)
        if len(items) < k:  # top up from popularity so a small model still fills the list
            seen = set(liked) | {i.tmdb_id for i in items}
            popular = [
                (e["tmdb_id"], _finite(e["popularity"])) for e in self.catalog.popular(k, exclude=seen)
            ]
            items += self._items(popular, seen, k - len(items))
        return RecommendOut(
            items=items,
            unknown=[i for i in liked if i not in known_set],
            strategy=strategy,
            cold_start=not known,
            model_version=version,
            request_id=request_id,
        )

    def impression(self, out: RecommendOut, user_id: str | None, ts: str) -> dict[str, Any]:
        """The impression event of a response: what was shown, in order, by which recommender version."""
        rec = self.models.recommender
        return {
            "event_id": out.request_id,
            "request_id": out.request_id,
            "ts": ts,
            "user_id": user_id,
            "model_version": rec.manifest.version if rec is not None else None,
            "strategy": out.strategy,
            "fallback": out.strategy == "popularity",
            "items": [i.tmdb_id for i in out.items],
            "catalog_size": len(rec.catalog) if rec is not None else len(self.catalog),
        }

    def _items(self, pairs: Iterable[tuple[int, float]], skip: set[int], k: int) -> list[RecommendedMovie]:
        out: list[RecommendedMovie] = []
        skip = set(skip)
        for tmdb_id, score in pairs:
            entry = self.catalog.get(tmdb_id)
            if tmdb_id in skip or entry is None:
                continue
            skip.add(tmdb_id)
            out.append(
                RecommendedMovie(
                    tmdb_id=tmdb_id,
                    title=entry["title"],
                    release_year=entry.get("release_year"),
                    overview=entry.get("overview") or "",
                    poster_url=poster_url(entry, self.poster_base_url),
                    score=round(score, 6),
                )
            )
            if len(out) == k:
                break
        return out


def _pairs(result: Iterable[Any]) -> list[tuple[int, float]]:
    # (tmdb_id, score) pairs; a bare id gets score 0 so a runtime returning ids only still works.
    out = []
    for item in result:
        if isinstance(item, tuple | list):
            out.append((int(item[0]), _finite(item[1])))
        else:
            out.append((int(item), 0.0))
    return out


def _finite(value: Any) -> float:
    try:
        x = float(value)
    except (TypeError, ValueError):
        return 0.0
    return x if math.isfinite(x) else 0.0
