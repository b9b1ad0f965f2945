"""Labels and formats for the Models page (the metrics' own are in services/ui/metric_labels.py)."""

from __future__ import annotations

from collections.abc import Iterable

MODEL_TITLES = {"rating": "⭐ Rating model", "recommender": "🍿 Recommender"}
SOURCES = {"s3": "the S3 registry", "cache": "the local cache (S3 was unreachable)"}


def model_order(names: Iterable[str]) -> list[str]:
    """Known models first in a fixed order, then any others alphabetically."""
    names = list(names)
    return [n for n in MODEL_TITLES if n in names] + sorted(n for n in names if n not in MODEL_TITLES)


def wandb_markdown(run: str | None) -> str:
    """A link when the run is a URL, the id in code otherwise."""
    if not run:
        return "not recorded"
    if run.startswith(("http://", "https://")):
        return f"[open run]({run})"
    return f"`{run}`"
