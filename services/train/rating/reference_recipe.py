"""The reference recipe (yoon-chung/MLOps), rebuilt to be measured side by side with our model.

Its five features: runtime, main genre and original language (label-encoded: codes in sorted
order, -1 when unseen, like scikit-learn's LabelEncoder with the recipe's fallback), TextBlob
polarity of the overview and the overview's length in characters. Its model: XGBoost with 200
trees, max_depth 4, learning rate 0.05, subsample 0.7, random_state 42, no early stopping.
Used by the benchmark and the quality tests only; never published.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from services.core.sentiment import sentiment

RECIPE_FEATURES = ("runtime", "genre_encoded", "lang_encoded", "overview_sentiment", "overview_len")
RECIPE_PARAMS: dict[str, Any] = {
    "n_estimators": 200,
    "learning_rate": 0.05,
    "max_depth": 4,
    "subsample": 0.7,
    "random_state": 42,
}
NO_GENRE = "Unknown"  # what the recipe writes for a movie without genres


def _main_genre(movie: dict[str, Any]) -> str:
    genres = movie.get("genres") or []
    return genres[0] if genres else NO_GENRE


@dataclass
class RecipeEncoders:
    """The recipe's two label encoders, as sorted class lists."""

    genres: list[str]
    languages: list[str]

    def codes(self, movie: dict[str, Any]) -> tuple[float, float]:
        """Label codes of the main genre and original language (-1 when unseen in training)."""
        genre, language = _main_genre(movie), movie.get("original_language") or ""
        g = self.genres.index(genre) if genre in self.genres else -1
        lang = self.languages.index(language) if language in self.languages else -1
        return float(g), float(lang)


def fit_recipe_encoders(movies: Sequence[dict[str, Any]]) -> RecipeEncoders:
    """Label encoders fitted on the training movies."""
    return RecipeEncoders(
        genres=sorted({_main_genre(m) for m in movies}),
        languages=sorted({m.get("original_language") or "" for m in movies}),
    )


def recipe_features(movies: Sequence[dict[str, Any]], enc: RecipeEncoders) -> np.ndarray:
    """The recipe's five-column matrix (runtime NaN when missing; XGBoost routes it)."""
    rows = []
    for m in movies:
        overview = m.get("overview") or ""
        runtime = m.get("runtime")
        genre, language = enc.codes(m)
        polarity = sentiment(overview)[0]
        rows.append(
            [float(runtime) if runtime is not None else math.nan, genre, language, polarity, len(overview)]
        )
    return np.asarray(rows, dtype=np.float64).reshape(len(rows), len(RECIPE_FEATURES))


@dataclass
class Recipe:
    """A trained reference recipe."""

    encoders: RecipeEncoders
    model: Any  # xgboost.XGBRegressor

    def predict(self, movies: Sequence[dict[str, Any]]) -> np.ndarray:
        """Predicted vote_average of each movie."""
        return self.model.predict(recipe_features(movies, self.encoders))


def train_recipe(movies: Sequence[dict[str, Any]], seed: int = 42) -> Recipe:
    """Fit the recipe's encoders and XGBoost on the given (training) movies' vote_average."""
    import xgboost as xgb

    enc = fit_recipe_encoders(movies)
    y = np.asarray([float(m["vote_average"]) for m in movies])
    model = xgb.XGBRegressor(**{**RECIPE_PARAMS, "random_state": seed}, n_jobs=2)
    model.fit(recipe_features(movies, enc), y)
    return Recipe(enc, model)
