"""Lenient readers of the API's JSON answers: extra fields are ignored, missing ones become None."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from services.ui.api_types import ApiError, HistoryPoint, ModelInfo

MODEL_NAMES = ("rating", "recommender")


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
