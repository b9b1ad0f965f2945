"""Choosing a challenger among the candidates, and deciding whether it replaces production."""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class Decision:
    """Whether to promote, and why (logged, tracked, and written to the pointer)."""

    promote: bool
    reason: str


def choose_challenger(candidates: Sequence[dict[str, Any]], max_gap: float) -> dict[str, Any]:
    """The candidate with the best validation RMSE among those whose train/val gap is within bound.

    Each candidate is a dict with "algorithm" and "metrics" (val_rmse, gap). When every candidate
    overfits beyond the bound, the one with the smallest gap is taken (and the reason says so).
    """
    if not candidates:
        raise ValueError("no candidates to choose from")
    usable = [c for c in candidates if not math.isnan(c["metrics"]["val_rmse"])]
    within = [c for c in usable if c["metrics"]["gap"] <= max_gap]
    if within:
        best = min(within, key=lambda c: (c["metrics"]["val_rmse"], c["algorithm"]))
        return {**best, "why": f"best validation RMSE among {len(within)} within gap {max_gap}"}
    best = min(usable, key=lambda c: c["metrics"]["gap"])
    return {**best, "why": f"every candidate's gap exceeds {max_gap}; took the smallest gap"}


def decide(challenger_rmse: float, production_rmse: float | None, min_improvement: float = 0.0) -> Decision:
    """Promote when there is no production model, or when the challenger beats it on the same rows."""
    if production_rmse is None:
        return Decision(True, f"no production model yet; challenger RMSE {challenger_rmse:.4f}")
    if challenger_rmse < production_rmse - min_improvement:
        return Decision(True, f"challenger RMSE {challenger_rmse:.4f} beats production {production_rmse:.4f}")
    return Decision(
        False,
        f"kept production: its RMSE {production_rmse:.4f} <= challenger {challenger_rmse:.4f}",
    )
