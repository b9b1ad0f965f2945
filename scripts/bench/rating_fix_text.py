"""TF-IDF of a movie's words reduced with SVD: a candidate fix measured by bench/rating_fixes.py.

The transform is written once in numpy (tokens -> sublinear tf x idf -> L2 norm -> dot with the SVD
components), so the training rows and a serving request would go through the same code;
per_request_us times it per holdout movie, beside featurize_one. It lives here, not in services/core/,
because the measurement did not keep it.
"""

from __future__ import annotations

import math
import time
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from services.core.features import Encoders, featurize_one, fit_encoders
from services.core.text_features import TEXT_MIN_DF, movie_text, tfidf_matrix, tokens
from services.train.rating.data import Split


@dataclass
class SvdText:
    """Vocabulary, idf and SVD components (dims x words): JSON-able lists, no pickle."""

    vocab: dict[str, int]
    idf: np.ndarray
    components: np.ndarray

    def transform(self, text: str) -> np.ndarray:
        """The reduced TF-IDF vector of one text (zeros when no word is known)."""
        counts = Counter(t for t in tokens(text) if t in self.vocab)
        if not counts:
            return np.zeros(self.components.shape[0])
        idx = np.fromiter((self.vocab[t] for t in counts), dtype=np.intp, count=len(counts))
        vals = (1.0 + np.log(np.fromiter(counts.values(), dtype=np.float64, count=len(counts)))) * self.idf[
            idx
        ]
        return self.components[:, idx] @ (vals / math.sqrt(float(vals @ vals)))

    def rows(self, movies: Sequence[dict[str, Any]]) -> np.ndarray:
        """One reduced vector per movie (title, tagline and overview, as the text signal reads)."""
        if not movies:
            return np.zeros((0, self.components.shape[0]))
        return np.vstack([self.transform(movie_text(m)) for m in movies])

    def to_json(self) -> dict[str, Any]:
        """What a registry would store: plain lists."""
        return {
            "vocab": self.vocab,
            "idf": self.idf.round(6).tolist(),
            "components": self.components.round(6).tolist(),
        }


def fit_svd_text(movies: Sequence[dict[str, Any]], dims: int, seed: int = 0) -> SvdText:
    """Fit the vocabulary, idf and components on the training movies only."""
    from sklearn.decomposition import TruncatedSVD

    # The same TF-IDF rows the text signal is fitted on.
    words, idf, x = tfidf_matrix([movie_text(m) for m in movies], TEXT_MIN_DF)
    vocab = {w: i for i, w in enumerate(words)}
    svd = TruncatedSVD(dims, random_state=seed).fit(x)
    return SvdText(vocab, idf, svd.components_)


def per_request_us(split: Split, svd_dims: int) -> tuple[list[float], list[float]]:
    """featurize_one and the SVD transform per holdout movie, in microseconds."""
    enc = Encoders.from_json(fit_encoders(split.train).to_json())
    svd = fit_svd_text(split.train, svd_dims)
    feat, text = [], []
    for m in split.test:
        t0 = time.perf_counter()
        featurize_one(m, enc)
        t1 = time.perf_counter()
        svd.rows([m])
        t2 = time.perf_counter()
        feat.append((t1 - t0) * 1e6)
        text.append((t2 - t1) * 1e6)
    return feat, text
