"""Figures tracked with the runs (matplotlib, headless)."""

from __future__ import annotations

from typing import Any


def importance_figure(importance: dict[str, float], title: str, top: int = 20) -> Any:
    """A horizontal bar chart of the top features by importance."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    items = list(importance.items())[:top][::-1]
    fig, ax = plt.subplots(figsize=(7, 0.3 * len(items) + 1))
    ax.barh([k for k, _ in items], [v for _, v in items], color="#3b7dd8")
    ax.set_xlabel("share of total gain")
    ax.set_title(f"{title}: feature importance")
    fig.tight_layout()
    return fig
