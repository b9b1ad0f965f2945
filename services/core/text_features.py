"""A linear model of a movie's words (title, tagline, overview), small enough to live in JSON.

Training fits TF-IDF weights and ridge coefficients on the training split; serving scores one text
with a dictionary lookup per word (well under a millisecond), so no scikit-learn at request time.
The score is the model's predicted offset from the training mean rating.
"""

from __future__ import annotations

import math
import re
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from functools import lru_cache
from typing import Any

# The same token rule as scikit-learn's default: runs of two or more word characters.
_TOKEN = re.compile(r"(?u)\b\w\w+\b")
SCORE_CACHE_SIZE = 4096  # a repeated text (a form sent again, a batch rescored) is scored once

TEXT_ALPHA = 3.0  # ridge penalty; 1, 3 and 10 measured, 3 best out of fold (docs/rating.md)
TEXT_MIN_DF = 2  # a word must appear in two training movies to get a weight


def tokens(text: str) -> list[str]:
    """Lower-cased word tokens of a text."""
    return _TOKEN.findall(text.lower())


def movie_text(movie: dict[str, Any]) -> str:
    """The words a movie is known by before release: title, tagline and overview."""
    return " ".join(movie.get(k) or "" for k in ("title", "tagline", "overview"))


@dataclass
class TextModel:
    """TF-IDF (sublinear tf, L2-normalised) followed by a linear model; weights[word] = [idf, coef]."""

    intercept: float = 0.0
    weights: dict[str, list[float]] = field(default_factory=dict)

    def __post_init__(self) -> None:
        # Per instance, so a reloaded model never answers from the previous one's cache.
        self._cached_score = lru_cache(maxsize=SCORE_CACHE_SIZE)(self._score)

    def __getstate__(self) -> dict[str, Any]:
        # A copy or an unpickled model gets a cache of its own (the wrapper is bound to this instance).
        return {"intercept": self.intercept, "weights": self.weights}

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__dict__.update(state)
        self.__post_init__()

    def score(self, text: str) -> float:
        """The model's offset from the training mean for one text; 0 (the mean) when no word is known."""
        return self._cached_score(text)

    def _score(self, text: str) -> float:
        counts = Counter(t for t in tokens(text) if t in self.weights)
        if not counts:
            # An empty TF-IDF row would score the intercept, which is fitted for texts with words.
            return 0.0
        tfidf = [((1.0 + math.log(c)) * self.weights[t][0], self.weights[t][1]) for t, c in counts.items()]
        norm = math.sqrt(sum(v * v for v, _ in tfidf))
        return self.intercept + sum(v * coef for v, coef in tfidf) / norm

    def to_json(self) -> dict[str, Any]:
        """A plain dict for json.dumps."""
        return {"intercept": self.intercept, "weights": self.weights}

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> TextModel:
        """The inverse of to_json."""
        return cls(
            float(data.get("intercept", 0.0)), {k: list(v) for k, v in data.get("weights", {}).items()}
        )


def tfidf_matrix(texts: Sequence[str], min_df: int = TEXT_MIN_DF) -> tuple[list[str], Any, Any]:
    """(vocabulary, idf, rows): sublinear, L2-normalised TF-IDF of training texts, as TextModel scores one.

    The vocabulary is the words in at least min_df texts, English stop words left out; the idf is smoothed
    as scikit-learn's TfidfVectorizer computes it. scikit-learn and scipy are imported here: training only.
    """
    import numpy as np
    from scipy import sparse
    from sklearn.feature_extraction.text import ENGLISH_STOP_WORDS

    docs = [Counter(tokens(t)) for t in texts]
    df = Counter(w for d in docs for w in d)
    vocab = sorted(w for w, n in df.items() if n >= min_df and w not in ENGLISH_STOP_WORDS)
    index = {w: i for i, w in enumerate(vocab)}
    n = len(docs)
    idf = np.array([math.log((1 + n) / (1 + df[w])) + 1.0 for w in vocab])
    rows, cols, vals = [], [], []
    for r, d in enumerate(docs):
        known = [(index[w], (1.0 + math.log(c)) * idf[index[w]]) for w, c in d.items() if w in index]
        norm = math.sqrt(sum(v * v for _, v in known)) or 1.0
        for c, v in known:
            rows.append(r)
            cols.append(c)
            vals.append(v / norm)
    return vocab, idf, sparse.csr_matrix((vals, (rows, cols)), shape=(n, len(vocab)))


def fit_text_model(
    texts: Sequence[str], y: Sequence[float], alpha: float = TEXT_ALPHA, min_df: int = TEXT_MIN_DF
) -> TextModel:
    """Fit on training texts and ratings (scikit-learn is imported here: training hosts only)."""
    import numpy as np
    from sklearn.linear_model import Ridge

    if len(texts) < 2:
        return TextModel()
    vocab, idf, x = tfidf_matrix(texts, min_df)
    if not vocab:
        return TextModel()
    target = np.asarray(y, dtype=np.float64)
    ridge = Ridge(alpha=alpha).fit(x, target - target.mean())
    # Rounded so the JSON stays small; the in-memory model uses the same rounded numbers as serving.
    weights = {w: [round(float(idf[i]), 6), round(float(ridge.coef_[i]), 6)] for i, w in enumerate(vocab)}
    return TextModel(round(float(ridge.intercept_), 6), weights)
