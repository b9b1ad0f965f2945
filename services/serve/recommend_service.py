"""The recommendation service: the sequential recommender when published, catalog popularity otherwise.

While a recommender experiment runs, a user's arm (a stable hash of the experiment and user ids) picks
the production recommender or the candidate; a request without a user id gets production.
"""

from __future__ import annotations

import logging
import math
import weakref
from collections.abc import Callable, Iterable
from itertools import islice
from time import perf_counter
from typing import Any

from services.core.catalog import Catalog
from services.core.user_store import UserState
from services.serve.metrics import ServeMetrics
from services.serve.schemas import MAX_LIKED, MovieOut, Pool, RecommendedMovie, RecommendOut
from services.serve.state import LoadedModels

log = logging.getLogger(__name__)


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

    def __init__(
        self, models: LoadedModels, poster_base_url: str, metrics: ServeMetrics | None = None
    ) -> None:
        self.models = models
        self.catalog: Catalog = models.catalog
        self.poster_base_url = poster_base_url
        self.metrics = metrics

    def recommend(
        self,
        liked: list[int],
        k: int,
        request_id: str,
        pool: Pool = "all",
        user_id: str | None = None,
        user: UserState | None = None,
    ) -> RecommendOut:
        """k movies of the pool from the user's arm (production without an experiment or a user id),
        counted and timed per arm. A known user's stored positives come first (time order, as trained),
        the request's liked after them; what the user disliked or has seen never comes back."""
        arm, _ = self.models.arm(user_id)
        stored = [i for i, _ in user.positives] if user is not None else []
        exclude = (user.dislikes | user.seen) if user is not None else set()
        start = perf_counter()
        try:
            out = self._from_cache(user, liked, k, request_id, pool, arm == "candidate")
            if out is None:
                out = self._live(stored, liked, exclude, k, request_id, pool, arm == "candidate")
        except Exception:
            if self.metrics is not None:
                self.metrics.observe_arm(arm, perf_counter() - start, ok=False)
            if arm != "candidate":
                raise
            # A failing candidate costs its user nothing: production answers, the error is counted for
            # the candidate arm (the judge's error guard rolls it back), and the impression takes no
            # part in the experiment (impression(): its arm is not the one the user was assigned).
            log.exception("candidate recommender failed; production answered instead")
            return self._live(stored, liked, exclude, k, request_id, pool, False)
        if self.metrics is not None:
            self.metrics.observe_arm(arm, perf_counter() - start, ok=True)
        return out

    def _live(
        self, stored: list[int], liked: list[int], exclude: set[int], k: int, request_id: str, pool: Pool,
        candidate: bool,
    ) -> RecommendOut:  # fmt: skip
        # The request's ids are the most recent: after the stored ones, and the sequence capped as a
        # request's liked is (the model reads the last max_seq_length of it anyway).
        sequence = list(dict.fromkeys(reversed(stored + liked)))[::-1][-MAX_LIKED:]
        out = self._recommend(sequence, k, request_id, pool, candidate, exclude)
        from_request, from_store = set(liked), set(stored)
        history = sum(1 for i in sequence if i in from_store)
        out.history = history
        out.source = "user" if history else ("request" if liked else "fallback")
        out.unknown = [i for i in out.unknown if i in from_request]  # what the client sent, as before
        return out

    def _from_cache(
        self, user: UserState | None, liked: list[int], k: int, request_id: str, pool: Pool, candidate: bool
    ) -> RecommendOut | None:
        """The user's precomputed list when it is the arm's version and nothing happened since; else None."""
        recs = user.cached_recs if user is not None else None
        rec = self.models.recommender_candidate if candidate else self.models.recommender
        if recs is None or rec is None or liked or pool != "all":
            return None
        if recs.model_version != rec.manifest.version or recs.seq_at != user.seq:
            return None
        is_new = _new_test(rec.model)
        items = self._items(_pairs(recs.items), user.excluded(), k, is_new)
        if len(items) < k:  # filtered below k (or a short list): rank live instead
            return None
        return RecommendOut(
            items=items,
            unknown=[],
            strategy="sequential",
            pool=pool,
            cold_start=False,
            model_version=rec.manifest.version,
            request_id=request_id,
            arm="candidate" if candidate else "production",
            history=len(user.positives),
            source="user",
            cached=True,
        )

    def _recommend(
        self, liked: list[int], k: int, request_id: str, pool: Pool, candidate: bool, exclude: set[int]
    ) -> RecommendOut:
        """k movies of the pool for someone who liked these (most recent last); liked ones never return.

        A movie is new when the recommender had no interactions with it in training (it knows the
        movie with a count of 0, or not at all): the new pool holds only those, and every item says
        whether it is one. Without a recommender no movie is new and the new pool is empty: "new" is
        relative to a model's training data, and a badge on every movie of the catalog would say
        nothing (the ranking is TMDB popularity, not content).
        """
        liked = list(dict.fromkeys(reversed(liked)))[::-1]  # drop repeats, keep each id's latest position
        rec = self.models.recommender_candidate if candidate else self.models.recommender
        is_new: Callable[[int], bool] = _never_new
        if rec is not None:
            is_new = _new_test(rec.model)
            known = [i for i in liked if rec.model.knows(i)]
            extra = k + len(liked) + len(exclude) + 20  # room for ids filtered out below
            # The pool goes to the runtime only when it narrows the ranking: an older runtime without
            # the argument still serves the whole catalog.
            narrow = {"pool": pool} if pool != "all" else {}
            if known:
                pairs, strategy = _pairs(rec.model.recommend(known, extra, **narrow)), "sequential"
            elif pool == "all":
                pairs, strategy = _pairs(rec.model.popular(extra, exclude=[*liked, *exclude])), "popularity"
            else:  # new movies have no training popularity: the top-up orders them by TMDB popularity
                pairs, strategy = [], "popularity"
            version = rec.manifest.version
        else:
            known = [i for i in liked if i in self.catalog]
            pairs, strategy = [], "popularity"
            version = self.models.version("rating")
        if pool == "new":  # the promise is the API's, so it is checked here whatever the runtime returns
            pairs = [p for p in pairs if is_new(p[0])]
        known_set = set(known)
        items = self._items(pairs, set(liked) | exclude, k, is_new)
        if len(items) < k:  # top up from popularity so a small model still fills the list
            seen = set(liked) | exclude | {i.tmdb_id for i in items}
            if pool == "all":
                popular = [
                    (e["tmdb_id"], _finite(e["popularity"])) for e in self.catalog.popular(k, exclude=seen)
                ]
            elif rec is not None:
                fresh = (i for i in _new_by_popularity(self.catalog, rec.model, is_new) if i not in seen)
                popular = [(i, _finite(self.catalog.by_id[i]["popularity"])) for i in islice(fresh, k)]
            else:
                popular = []
            items += self._items(popular, seen, k - len(items), is_new)
        return RecommendOut(
            items=items,
            unknown=[i for i in liked if i not in known_set],
            strategy=strategy,
            pool=pool,
            cold_start=not known,
            model_version=version,
            request_id=request_id,
            arm="candidate" if candidate else "production",
        )

    def impression(self, out: RecommendOut, user_id: str | None, ts: str) -> dict[str, Any]:
        """The impression event of a response: what was shown, in order, by which recommender version,
        in which arm of which experiment (none for a request without a user id: it took no part)."""
        assigned, experiment = self.models.arm(user_id)
        arm = out.arm
        if arm != assigned:  # production answered for a failing candidate: no part in the experiment
            experiment = None
        rec = self.models.recommender_candidate if arm == "candidate" else self.models.recommender
        return {
            "event_id": out.request_id,
            "request_id": out.request_id,
            "ts": ts,
            "user_id": user_id,
            "model_version": rec.manifest.version if rec is not None else None,
            "strategy": out.strategy,
            "fallback": out.strategy == "popularity",
            "pool": out.pool,
            "items": [i.tmdb_id for i in out.items],
            "catalog_size": len(rec.catalog) if rec is not None else len(self.catalog),
            "arm": arm,
            "experiment_id": experiment.experiment_id if experiment is not None else None,
            "source": out.source,
            "cached": out.cached,
            "history": out.history,
        }

    def _items(
        self, pairs: Iterable[tuple[int, float]], skip: set[int], k: int, is_new: Callable[[int], bool]
    ) -> list[RecommendedMovie]:
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
                    new=is_new(tmdb_id),
                )
            )
            if len(out) == k:
                break
        return out


def _never_new(tmdb_id: int) -> bool:
    return False


def _new_test(model: Any) -> Callable[[int], bool]:
    # A runtime without is_new (an older stand-in) has no cold items: what it knows had interactions.
    is_new = getattr(model, "is_new", None)
    return is_new if is_new is not None else (lambda tmdb_id: not model.knows(tmdb_id))


# Per serving catalog and per model (production, and a candidate while an experiment runs), the
# catalog's movies that are new for that model, most popular first. A service is built per request;
# this is built once per loaded version and dropped with its catalog.
_NEW_IN_CATALOG: weakref.WeakKeyDictionary[Catalog, dict[int, tuple[Any, tuple[int, ...]]]] = (
    weakref.WeakKeyDictionary()
)


def _new_by_popularity(catalog: Catalog, model: Any, is_new: Callable[[int], bool]) -> tuple[int, ...]:
    per_model = _NEW_IN_CATALOG.setdefault(catalog, {})
    cached = per_model.get(id(model))
    if cached is None or cached[0] is not model:  # the id of a freed model may be reused
        ids = tuple(int(e["tmdb_id"]) for e in catalog.popular(len(catalog)) if is_new(int(e["tmdb_id"])))
        cached = per_model[id(model)] = (model, ids)
    return cached[1]


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
