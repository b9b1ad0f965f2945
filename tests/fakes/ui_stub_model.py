"""The stand-in API's answers about the models it serves: /ready, /model, /model/vocabulary and /predict.

Shapes are the real app's (services/serve/schemas.py), held to them by tests/ui/test_stub_contract.py; the
figures are made up. A running experiment that this replica serves is named in /ready and /model, as the
real app names the candidates it loaded.
"""

from __future__ import annotations

import re
from typing import Any

from services.serve.state import NOT_LOADED
from tests.fakes.ui_stub_data import CATALOG, GENRES, HISTORY, RATING_VERSION, RECOMMENDER_VERSION
from tests.fakes.ui_stub_http import validate_movie

HANGUL = re.compile(r"[\uac00-\ud7a3]")
# The rating model's features, as its manifest lists them (what /predict's contributions are keyed by).
RATING_FEATURES = [
    "runtime", "overview_polarity", "overview_subjectivity", "overview_length", "overview_words", "main_genre",
    "n_genres", "original_language", "is_english", "release_year", "log_budget", "in_collection", "genre=Drama",
    "genre=Horror", "genre=Animation", "genre=Comedy", "country=US",
]  # fmt: skip


def served(experiments: dict[str, Any] | None) -> dict[str, dict[str, Any]]:
    """{model: experiment} of the running experiments whose candidate this replica serves."""
    running = (experiments or {}).get("running", [])
    return {r["experiment"]["model"]: r["experiment"] for r in running if r.get("served")}


def ready_answer(ready: bool, with_recommender: bool, experiments: dict[str, Any] | None) -> tuple[int, Any]:
    """GET /ready: 200 with the versions served, or 503 before a rating model is loaded."""
    answer: dict[str, Any] = {
        "ready": ready, "detail": None if ready else NOT_LOADED, "rating_version": None,
        "recommender_version": None, "source": None, "recommender_candidate_version": None,
        "rating_shadow_version": None, "experiments": {},
    }  # fmt: skip
    if not ready:
        return 503, answer
    running = served(experiments)
    candidate, shadow = running.get("recommender"), running.get("rating")
    return 200, answer | {
        "rating_version": RATING_VERSION,
        "recommender_version": RECOMMENDER_VERSION if with_recommender else None,
        "source": "s3",
        "recommender_candidate_version": candidate["version"] if candidate else None,
        "rating_shadow_version": shadow["version"] if shadow else None,
        "experiments": {model: e["experiment_id"] for model, e in running.items()},
    }


def _info(model: str, version: str, algorithm: str, features: list[str]) -> dict[str, Any]:
    return {
        "version": version,
        "algorithm": algorithm,
        "created_at": HISTORY[model][-1]["created_at"],
        "metrics": HISTORY[model][-1]["metrics"],
        "wandb_run": f"offline-run-20250226_120000-{model[:4]}",
        "git_commit": "0123abcd",
        "n_features": len(features),
        "features": features,
        "source": "s3",
    }


def model_answer(ready: bool, with_recommender: bool, experiments: dict[str, Any] | None) -> dict[str, Any]:
    """GET /model: the versions served and where they came from."""
    if not ready:
        return {
            "ready": False, "source": None, "loaded_at": None, "load_seconds": None, "detail": NOT_LOADED,
            "rating": None, "recommender": None, "catalog_size": 0, "recommender_candidate": None,
            "rating_shadow": None, "experiments": {},
        }  # fmt: skip
    running = served(experiments)
    candidate, shadow = running.get("recommender"), running.get("rating")
    return {
        "ready": True,
        "source": "s3",
        "loaded_at": "2025-03-01T12:20:00Z",
        "load_seconds": 0.4,
        "detail": None,
        "rating": _info("rating", RATING_VERSION, "xgboost", RATING_FEATURES),
        "recommender": _info("recommender", RECOMMENDER_VERSION, "sasrec", []) if with_recommender else None,
        "catalog_size": len(CATALOG),
        "recommender_candidate": _info("recommender", candidate["version"], "sasrec", [])
        if candidate
        else None,
        "rating_shadow": _info("rating", shadow["version"], "lightgbm", RATING_FEATURES) if shadow else None,
        "experiments": running,
    }


def vocabulary_answer(ready: bool) -> tuple[int, Any]:
    """GET /model/vocabulary: what the rating model has its own code for (503 without one)."""
    if not ready:
        return 503, {"detail": NOT_LOADED}
    return 200, {
        "model_version": RATING_VERSION, "genres": list(GENRES), "languages": ["en", "fr", "ja", "ko"],
        "countries": ["FR", "GB", "KR", "US"], "companies": ["Pixar", "Studio Ghibli"],
    }  # fmt: skip


def predict_answer(ready: bool, body: Any, explain: bool) -> tuple[int, Any]:
    """POST /predict: a made-up rating from the movie's fields, with each feature's share when explained."""
    if not ready:
        return 503, {"detail": NOT_LOADED}
    problems = validate_movie(body)
    if problems:
        return 422, {"detail": problems}
    overview = body["overview"]
    translated = bool(HANGUL.search(overview))
    genres = body["genres"]
    contributions = {
        "runtime": round((float(body["runtime"]) - 100) / 120, 3),
        "overview_polarity": 0.21 if translated else 0.05,
        "overview_subjectivity": -0.04,
        "overview_length": round(min(len(overview), 400) / 2000, 3),
        "overview_words": 0.02,
        "main_genre": 0.12 if genres and genres[0] in ("Drama", "Animation") else -0.09,
        "n_genres": 0.03 * len(genres),
        "original_language": 0.18 if body["original_language"] == "ko" else 0.0,
        "is_english": -0.05 if body["original_language"] == "en" else 0.0,
        "release_year": -0.11 if body.get("release_date") else 0.0,
        "log_budget": 0.07 if body.get("budget") else -0.02,
        "in_collection": 0.0,
        "genre=Drama": 0.26 if "Drama" in genres else -0.06,
        "genre=Horror": -0.31 if "Horror" in genres else 0.01,
        "genre=Animation": 0.15 if "Animation" in genres else 0.0,
        "genre=Comedy": -0.12 if "Comedy" in genres else 0.02,
        "country=US": -0.03,
        "bias": 6.12,
    }
    rating = max(0.0, min(10.0, sum(contributions.values())))
    notes = ["The overview was translated from Korean to English before scoring."] if translated else []
    answer = {
        "predicted_rating": round(rating, 3),
        "model_version": RATING_VERSION,
        "overview_sentiment": {
            "polarity": 0.35 if translated else 0.1,
            "subjectivity": 0.5,
            "label": "positive" if translated else "neutral",
        },
        "translated": translated,
        "notes": notes,
    }
    # The real route leaves out what is None (response_model_exclude_none): no contributions unexplained.
    return 200, answer | ({"contributions": contributions} if explain else {})
