"""Labels and formats for the Models page."""

from __future__ import annotations

from collections.abc import Iterable

MODEL_TITLES = {"rating": "⭐ Rating model", "recommender": "🍿 Recommender"}
SOURCES = {"s3": "the S3 registry", "cache": "the local cache (S3 was unreachable)"}
ACRONYMS = {"rmse", "mae", "mape", "ndcg", "mrr", "map", "auc", "r2"}


def model_order(names: Iterable[str]) -> list[str]:
    """Known models first in a fixed order, then any others alphabetically."""
    names = list(names)
    return [n for n in MODEL_TITLES if n in names] + sorted(n for n in names if n not in MODEL_TITLES)


def metric_label(name: str) -> str:
    """'ndcg_at_10' -> 'NDCG@10', 'rmse' -> 'RMSE', 'hit_rate_at_10' -> 'Hit rate@10'."""
    words = name.replace("_at_", "@").split("_")
    text = " ".join(w.upper() if w.split("@")[0] in ACRONYMS else w for w in words)
    return text[:1].upper() + text[1:]


def metric_value(value: float) -> str:
    """A metric as text: three decimals, or thousands separators for large numbers."""
    return f"{value:,.0f}" if abs(value) >= 1000 else f"{value:.3f}"


def wandb_markdown(run: str | None) -> str:
    """A link when the run is a URL, the id in code otherwise."""
    if not run:
        return "not recorded"
    if run.startswith(("http://", "https://")):
        return f"[open run]({run})"
    return f"`{run}`"
