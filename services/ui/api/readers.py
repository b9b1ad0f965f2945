"""Lenient readers of the API's JSON answers: extra fields are ignored, missing ones become None."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from services.ui.api.records import (
    POOLS,
    ApiError,
    HistoryPoint,
    ModelInfo,
    Movie,
    Prediction,
    Recommendations,
    Sentiment,
)
from services.ui.api.users import user_fields

MODEL_NAMES = ("rating", "recommender")
# /model's versions in trial beside production: the Experiments section shows them, not a model section each.
CANDIDATE_KEYS = ("recommender_candidate", "rating_shadow")


def float_map(value: Any) -> dict[str, float]:
    """The numeric entries of a JSON object; other values are dropped."""
    if not isinstance(value, Mapping):
        return {}
    out: dict[str, float] = {}
    for key, item in value.items():
        if isinstance(item, bool) or not isinstance(item, int | float):
            continue
        out[str(key)] = float(item)
    return out


def str_or_none(value: Any) -> str | None:
    """The value as text; None for null or an empty string."""
    if value is None or value == "":
        return None
    return str(value)


def read_movie(raw: Mapping[str, Any], poster_base_url: str) -> Movie:
    """One catalog movie (search, lookup, recommendations); a bare poster path is joined to poster_base_url."""
    poster = str_or_none(raw.get("poster_url"))
    path = str_or_none(raw.get("poster_path"))
    if poster is None and path:
        poster = path if path.startswith("http") else f"{poster_base_url}/{path.lstrip('/')}"
    year = raw.get("release_year")
    if year is None and isinstance(raw.get("release_date"), str) and raw["release_date"][:4].isdigit():
        year = raw["release_date"][:4]
    genres = raw.get("genres") or []
    score = raw.get("score")
    return Movie(
        tmdb_id=int(raw["tmdb_id"] if raw.get("tmdb_id") is not None else raw["id"]),
        title=str(raw.get("title") or raw.get("original_title") or f"TMDB {raw.get('tmdb_id')}"),
        release_year=int(year) if year not in (None, "") else None,
        overview=str(raw.get("overview") or ""),
        poster_url=poster,
        genres=tuple(g["name"] if isinstance(g, Mapping) else str(g) for g in genres),
        score=float(score) if isinstance(score, int | float) else None,
        new=raw.get("new") is True,
    )


def read_prediction(body: Any) -> Prediction:
    """POST /predict's answer (KeyError/TypeError/ValueError/AttributeError when it has another shape)."""
    raw_sent = body.get("overview_sentiment") or {}
    contributions = float_map(body.get("contributions"))
    bias = contributions.pop("bias", None)
    return Prediction(
        rating=float(body["predicted_rating"]),
        model_version=str(body.get("model_version") or "unknown"),
        sentiment=Sentiment(
            polarity=float(raw_sent.get("polarity") or 0.0),
            subjectivity=float(raw_sent.get("subjectivity") or 0.0),
            label=str(raw_sent.get("label") or "neutral"),
        ),
        translated=bool(body.get("translated")),
        notes=tuple(str(n) for n in body.get("notes") or []),
        contributions=contributions,
        bias=bias,
    )


def read_recommendations(body: Any, poster_base_url: str) -> Recommendations:
    """POST /recommend's answer (KeyError/TypeError/ValueError/AttributeError when it has another shape)."""
    return Recommendations(
        items=tuple(read_movie(item, poster_base_url) for item in body.get("items") or []),
        strategy=str(body.get("strategy") or "unknown"),
        cold_start=bool(body.get("cold_start")),
        model_version=str_or_none(body.get("model_version")),
        unknown=tuple(int(i) for i in body.get("unknown") or []),
        request_id=str_or_none(body.get("request_id")),
        pool=next((p for p in POOLS if p == body.get("pool")), None),
        **user_fields(body),
    )


def read_models(body: Any) -> dict[str, ModelInfo] | ApiError:
    """GET /model's answer: a ModelInfo per model, or why there is none."""
    if isinstance(body, Mapping) and isinstance(body.get("models"), Mapping | list):
        body = body["models"]
    if isinstance(body, list):
        body = {str(m.get("name")): m for m in body if isinstance(m, Mapping)}
    if not isinstance(body, Mapping):
        return ApiError("bad_response", "The API's model information was not in the expected shape.")
    source = str_or_none(body.get("source"))
    loaded = [raw for raw in body.values() if isinstance(raw, Mapping) and raw.get("version")]
    if body.get("ready") is False and not loaded:
        detail = body.get("detail")
        return ApiError("not_ready", str(detail) if detail else "The API has no model loaded.")
    out: dict[str, ModelInfo] = {}
    for name, raw in body.items():
        if name in CANDIDATE_KEYS:
            continue
        if raw is None and name in MODEL_NAMES:
            out[str(name)] = ModelInfo(name=str(name), version=None)
        elif isinstance(raw, Mapping) and ("version" in raw or "metrics" in raw):
            out[str(name)] = ModelInfo(
                name=str(name),
                version=str_or_none(raw.get("version")),
                metrics=float_map(raw.get("metrics")),
                created_at=str_or_none(raw.get("created_at")),
                wandb_run=str_or_none(raw.get("wandb_run")),
                source=str_or_none(raw.get("source")) or source,
                algorithm=str_or_none(raw.get("algorithm")),
                git_commit=str_or_none(raw.get("git_commit")),
            )
    return out


def read_history(body: Any) -> list[HistoryPoint]:
    """GET /model/history's answer (by model, or a flat list): every version that has a name."""
    if isinstance(body, Mapping) and isinstance(body.get("models"), Mapping | list):
        body = body["models"]
    rows: list[tuple[str, Any]] = []
    if isinstance(body, Mapping):
        for name, versions in body.items():
            rows += [(str(name), v) for v in versions or [] if isinstance(versions, list)]
    elif isinstance(body, list):
        rows = [(str(v.get("model") or v.get("name") or ""), v) for v in body if isinstance(v, Mapping)]
    points = []
    for name, raw in rows:
        if not isinstance(raw, Mapping) or raw.get("version") is None:
            continue
        points.append(
            HistoryPoint(
                model=name,
                version=str(raw["version"]),
                metrics=float_map(raw.get("metrics")),
                created_at=str_or_none(raw.get("created_at")),
                production=bool(raw.get("production") or raw.get("is_production")),
            )
        )
    return points
