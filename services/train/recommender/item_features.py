"""Content features of every catalog movie: what a movie nobody has rated is recommended from.

A movie's feature row is sparse: genres, release era, original language, production countries
and companies, collection, runtime, how many TMDB votes it has, and the words of its overview.
The vocabulary (the feature names) is fitted on the catalog's metadata only, never on
interactions, and is stored with the model (``item_features.json``), so a movie collected after
training is encoded exactly as the training movies were (``encode_items`` with the stored names).

Rows are returned as CSR arrays (crow, col, val) with row 0 for padding: with ~1,500 features a
dense table would be ~30 MB per model, the sparse one ~1 MB.
"""

from __future__ import annotations

import math
import re
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from services.core.movie import release_year

# Release eras: users often rate movies of one era in a row (browsing by decade).
ERA_EDGES = (1950, 1960, 1970, 1980, 1990, 1995, 2000, 2005, 2010)
RUNTIME_EDGES = (80, 95, 110, 130, 160)  # minutes
# TMDB's vote count says how widely a movie was seen: the strongest content signal of whether
# people will watch it. Not a leak here (the recommender's target is what people watch next,
# not the rating these votes average), and a collected movie has it on the day it arrives.
VOTE_EDGES = (10, 30, 100, 300, 1000, 3000)
VOTES_LOG = "votes:log"  # log1p(votes) / VOTES_LOG_SCALE: the new shelf's prior reads this column
VOTES_LOG_SCALE = math.log1p(10_000)  # log1p(votes) / this is about 1 for the most-voted movies
TOP_LANGUAGES = 12
MIN_MOVIES = {"country": 10, "company": 8, "collection": 2, "word": 8}
MAX_WORDS = 1000
_WORD = re.compile(r"[a-z]{3,}")
# Words too common in overviews to say anything (scikit-learn's English list plus plot filler).
_EXTRA_STOP = {"film", "movie", "story", "life", "new", "world", "man", "woman", "young", "finds", "years"}


def _stop_words() -> frozenset[str]:
    from sklearn.feature_extraction.text import ENGLISH_STOP_WORDS  # imported when first used

    return frozenset(ENGLISH_STOP_WORDS | _EXTRA_STOP)


@dataclass(frozen=True)
class FeatureRows:
    """Sparse feature rows (row 0 = padding, empty) with the vocabulary that encoded them."""

    crow: np.ndarray  # (rows + 1,) int64
    col: np.ndarray  # (nnz,) int64
    val: np.ndarray  # (nnz,) float32
    names: tuple[str, ...]

    @property
    def n_rows(self) -> int:
        """Rows, padding included."""
        return len(self.crow) - 1

    def dense(self) -> np.ndarray:
        """The rows as a dense (rows, features) float32 array (tests and the content baseline)."""
        out = np.zeros((self.n_rows, len(self.names)), dtype=np.float32)
        rows = np.repeat(np.arange(self.n_rows), np.diff(self.crow))
        out[rows, self.col] = self.val
        return out


def _bucket(value: float | None, edges: Sequence[float], group: str) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return f"{group}:unknown"
    k = int(np.searchsorted(edges, value, side="right"))
    return f"{group}:<{edges[0]}" if k == 0 else f"{group}:{edges[k - 1]}+"


def _words(text: str | None, stop: frozenset[str]) -> set[str]:
    return {w for w in _WORD.findall((text or "").lower()) if w not in stop}


def _groups(movie: Mapping[str, Any], stop: frozenset[str]) -> dict[str, list[str]]:
    """A movie's feature names per group, before the vocabulary filters them."""
    runtime = movie.get("runtime")
    return {
        "genre": [f"genre:{g}" for g in movie.get("genres") or []],
        "era": [_bucket(release_year(dict(movie)), ERA_EDGES, "era")],
        "lang": [f"lang:{movie.get('original_language') or ''}"],
        "country": [f"country:{c}" for c in movie.get("production_countries") or []],
        "company": [f"company:{c}" for c in movie.get("production_companies") or []],
        "collection": [f"collection:{movie['belongs_to_collection']}"]
        if movie.get("belongs_to_collection")
        else [],
        "runtime": [_bucket(runtime if runtime else None, RUNTIME_EDGES, "runtime")],
        "votes": [_bucket(movie.get("vote_count") or 0, VOTE_EDGES, "votes")],
        "word": [f"word:{w}" for w in sorted(_words(movie.get("overview"), stop))],
    }


def fit_vocabulary(movies: Iterable[Mapping[str, Any]]) -> tuple[str, ...]:
    """Feature names from the catalog's metadata (normalised records); rare values are dropped."""
    stop = _stop_words()
    counts: Counter[str] = Counter()
    for movie in movies:
        for names in _groups(movie, stop).values():
            counts.update(set(names))
    names: list[str] = []
    for group in ("genre", "era", "runtime", "votes"):
        names += sorted(n for n in counts if n.startswith(f"{group}:"))
    names.append(VOTES_LOG)
    languages = [n for n, _ in counts.most_common() if n.startswith("lang:") and n != "lang:"]
    names += sorted(languages[:TOP_LANGUAGES]) + ["lang:other"]
    for group in ("country", "company", "collection"):
        names += sorted(n for n, c in counts.items() if n.startswith(f"{group}:") and c >= MIN_MOVIES[group])
    words = [(n, c) for n, c in counts.items() if n.startswith("word:") and c >= MIN_MOVIES["word"]]
    names += sorted(n for n, _ in sorted(words, key=lambda nc: (-nc[1], nc[0]))[:MAX_WORDS])
    return tuple(names)


def encode_items(movies: Sequence[Mapping[str, Any] | None], names: Sequence[str]) -> FeatureRows:
    """CSR feature rows for movies (row i + 1 is movies[i]; None: no metadata, an empty row).

    Within a multi-valued group (genres, countries, companies, words) the values share a unit
    norm, so a long overview does not outweigh the genres; single-valued groups are 1.
    """
    column = {n: j for j, n in enumerate(names)}
    stop = _stop_words()
    crow, cols, vals = [0, 0], [], []
    for movie in movies:
        if movie is not None:
            for group, found in _groups(movie, stop).items():
                if group == "lang" and found[0] not in column:
                    found = ["lang:other"]
                hit = sorted({column[n] for n in found if n in column})
                if not hit:
                    continue
                cols += hit
                vals += [1.0 / math.sqrt(len(hit))] * len(hit)
            if VOTES_LOG in column:  # the buckets' finer companion: a popularity direction
                cols.append(column[VOTES_LOG])
                vals.append(math.log1p(float(movie.get("vote_count") or 0.0)) / VOTES_LOG_SCALE)
        crow.append(len(cols))
    return FeatureRows(
        crow=np.asarray(crow, dtype=np.int64),
        col=np.asarray(cols, dtype=np.int64),
        val=np.asarray(vals, dtype=np.float32),
        names=tuple(names),
    )


def catalog_movies(*sources: Iterable[Mapping[str, Any]]) -> dict[int, dict[str, Any]]:
    """Normalised movie records by tmdb id; a later source wins (the newest collected record)."""
    out: dict[int, dict[str, Any]] = {}
    for source in sources:
        for movie in source:
            if movie.get("id") is not None:
                out[int(movie["id"])] = dict(movie)
    return out


def rows_for(
    item_ids: Iterable[int], movies: Mapping[int, Mapping[str, Any]], names: Sequence[str]
) -> FeatureRows:
    """Feature rows of tmdb ids in order (an id without a record gets an empty row)."""
    return encode_items([movies.get(int(t)) for t in item_ids], names)
