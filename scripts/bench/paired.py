"""Paired per-user differences against one reference model, with bootstrap intervals: a markdown table and verdicts.

Shared by bench recommend (ours minus the peer's SASRec) and its item-cold-start table (ours minus the
best baseline). A row's verdict is "met" only when the NDCG@10 interval lies above zero.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from services.train.recommender.metrics import paired_bootstrap

RESAMPLES, BOOTSTRAP_SEED = 10_000, 0


def paired_table(
    ours: dict[str, dict[str, np.ndarray]],
    reference: dict[str, np.ndarray],
    against: str,
    metrics: Sequence[tuple[str, str]],
) -> tuple[list[str], list[dict[str, Any]]]:
    """Rows "label | first metric diff [95%] | ... | first interval above 0", and one verdict per label.

    ``metrics`` is ((key, column name), ...), NDCG first: its interval decides the verdict.
    """
    heads = " | ".join(f"{title} difference [95%]" for _, title in metrics)
    lines = [f"| model | {heads} | {metrics[0][1]} interval above 0 |", "|---" * (len(metrics) + 2) + "|"]
    verdicts = []
    for label, per_user in ours.items():
        cells = []
        for i, (key, title) in enumerate(metrics):
            diff, low, high = paired_bootstrap(per_user[key], reference[key], RESAMPLES, BOOTSTRAP_SEED)
            cells.append(f"{diff:+.4f} [{low:+.4f}, {high:+.4f}]")
            if i == 0:
                verdicts.append({"claim": f"{label} minus {against}, {title}", "target": "> 0 (interval above 0)",
                                 "value": diff, "low": low, "high": high,
                                 "verdict": "met" if low > 0 else "not met"})  # fmt: skip
        lines.append(
            f"| {label} | {' | '.join(cells)} | {'yes' if verdicts[-1]['verdict'] == 'met' else 'no'} |"
        )
    return lines, verdicts
