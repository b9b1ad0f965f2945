"""GET /model/errors as the UI reads it: where the rating model errs, band by band, in each model.

The answer is the report select_and_publish writes each run (production against the day's challenger);
the reader turns it into small frozen types, and services/ui/errors_view.py draws them.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

# The report's JSON has its keys sorted; the page offers the dimensions in the order the analysis reads.
DIMENSION_ORDER = ("vote_count", "release_period", "main_genre", "original_language", "overview_length")


@dataclass(frozen=True)
class Band:
    """One band of one dimension: its rows, and per model its bias, RMSE and MAE."""

    band: str
    count: int
    stats: Mapping[str, Mapping[str, float | None]]  # model -> {"bias", "rmse", "mae"}


@dataclass(frozen=True)
class ErrorReport:
    """A run's error analysis: which rows, which models, and every dimension's bands."""

    date: str
    split: str
    rows: int
    models: Mapping[str, str]  # model -> version (or algorithm for the challenger)
    dimensions: Mapping[str, tuple[str, tuple[Band, ...]]]  # key -> (title, bands)
    window: tuple[str, str] | None


def _num(value: Any) -> float | None:
    return None if value is None else float(value)


def _dimension_rank(item: tuple[str, Any]) -> tuple[int, str]:
    key = item[0]
    return (DIMENSION_ORDER.index(key) if key in DIMENSION_ORDER else len(DIMENSION_ORDER), key)


def read_errors(body: Any) -> ErrorReport:
    """Parse /model/errors' answer (KeyError/TypeError/ValueError when it has another shape)."""
    if not isinstance(body, Mapping):
        raise TypeError("expected an object")
    models = {
        str(name): str(m.get("version") or m.get("algorithm") or name)
        for name, m in (body.get("models") or {}).items()
    }
    dimensions = {
        str(key): (
            str(d.get("title") or key),
            tuple(
                Band(
                    band=str(b["band"]),
                    count=int(b["count"]),
                    stats={
                        n: {k: _num(b[n].get(k)) for k in ("bias", "rmse", "mae")} for n in models if n in b
                    },
                )
                for b in d["bands"]
            ),
        )
        for key, d in sorted(body["dimensions"].items(), key=_dimension_rank)
    }
    window = body.get("window")
    return ErrorReport(
        date=str(body["date"]),
        split=str(body.get("split") or "test"),
        rows=int(body.get("rows") or 0),
        models=models,
        dimensions=dimensions,
        window=(str(window[0]), str(window[1])) if window else None,
    )
