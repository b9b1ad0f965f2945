"""GET /model/monitoring as the UI reads it: the production rating model's live error, drift and alerts.

The answer holds the DAG's evaluate_live, monitor and alert reports by day; the reader turns it into
small frozen types, oldest day first, and services/ui/monitoring_view.py draws them.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class LiveDay:
    """One day's live error of the production rating model on new, labelled movies."""

    date: str
    version: str
    count: int
    rmse: float | None
    recipe_rmse: float | None
    validation_rmse: float | None
    window_rmse: float | None
    status: str


@dataclass(frozen=True)
class DriftDay:
    """One day's drift verdict for one comparison."""

    date: str
    comparison: str
    status: str
    share: float | None
    drifted: tuple[str, ...]
    rows: int
    has_report: bool


@dataclass(frozen=True)
class Monitoring:
    """Recent monitoring reports, oldest day first, and the days that raised an alert."""

    live: tuple[LiveDay, ...]
    drift: tuple[DriftDay, ...]
    alerts: tuple[tuple[str, tuple[str, ...]], ...]  # (date, reason messages) of alerted days


def _number(value: Any) -> float | None:
    return None if value is None else float(value)


def read_monitoring(body: Any) -> Monitoring:
    """Parse /model/monitoring's answer (KeyError/TypeError/ValueError when it has another shape)."""
    if not isinstance(body, Mapping):
        raise TypeError("expected an object")
    live = tuple(
        LiveDay(
            date=str(d["date"]),
            version=str(d["model_version"]),
            count=int(d["model"]["count"]),
            rmse=_number(d["model"]["rmse"]),
            recipe_rmse=_number(d.get("reference_recipe", {}).get("rmse")),
            validation_rmse=_number(d.get("validation_rmse")),
            window_rmse=_number(d.get("window", {}).get("rmse")),
            status=str(d.get("status", "")),
        )
        for d in body.get("live", [])
        if "model" in d  # days before the first production model say so and carry no figures
    )
    drift = tuple(
        DriftDay(
            date=str(d["date"]),
            comparison=name,
            status=str(c.get("status", "")),
            share=_number(c.get("share")),
            drifted=tuple(c.get("drifted") or ()),
            # The day's volume (rows_day); reports written before sampling have only what was compared.
            rows=int(c.get("rows_day", c.get("rows_current")) or 0),
            has_report=bool(c.get("report")),
        )
        for d in body.get("drift", [])
        for name, c in (d.get("comparisons") or {}).items()
    )
    alerts = tuple(
        (str(a["date"]), tuple(str(r.get("message", r.get("reason"))) for r in a.get("reasons", [])))
        for a in body.get("alerts", [])
        if a.get("alert")
    )
    return Monitoring(live, drift, alerts)
