"""A rating model's live scores: count, RMSE and MAE per day, with the sums that pool days exactly."""

from __future__ import annotations

import math
from typing import Any

import numpy as np


def errors(y: np.ndarray, predicted: np.ndarray) -> dict[str, Any]:
    """Count, RMSE and MAE, with the sums that let days be pooled exactly."""
    if len(y) == 0:
        return {"count": 0, "rmse": None, "mae": None, "sse": 0.0, "sae": 0.0}
    diff = np.asarray(predicted, dtype=np.float64) - np.asarray(y, dtype=np.float64)
    sse, sae = float(np.sum(diff**2)), float(np.sum(np.abs(diff)))
    n = len(y)
    return {
        "count": n,
        "rmse": round(math.sqrt(sse / n), 4),
        "mae": round(sae / n, 4),
        "sse": sse,
        "sae": sae,
    }


def pooled(days: list[dict[str, Any]]) -> dict[str, Any]:
    """RMSE and MAE over several days' movies together (not a mean of daily figures)."""
    n = sum(d["count"] for d in days)
    sse, sae = sum(d["sse"] for d in days), sum(d["sae"] for d in days)
    return {
        "count": n,
        "rmse": round(math.sqrt(sse / n), 4) if n else None,
        "mae": round(sae / n, 4) if n else None,
        "days": len([d for d in days if d["count"]]),
    }
