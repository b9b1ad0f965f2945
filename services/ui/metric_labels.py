"""Human labels, units and precision for the metrics a model version records (the Models page's cards).

A key as the pipeline publishes it is a split, a metric and maybe a cut-off: `test_rmse`,
`val_within_0_5`, `valid_ndcg@10`, `train_seconds`. Each known metric has a label, a formatter with its
unit and precision, and a one-line explanation; an unknown key still reads as words with a sane number.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass

SPLITS = {"test": "test", "val": "validation", "valid": "validation", "train": "train"}
SPLIT_ORDER = ("test", "validation", "train")
ACRONYMS = {"rmse", "mae", "mape", "ndcg", "mrr", "map", "auc", "r2", "hr"}
MISSING = "n/a"


def points(value: float) -> str:
    """Rating points on the 0-10 scale, two decimals: 0.7229 -> '0.72 pts'."""
    return f"{value:.2f} pts"


def signed_points(value: float) -> str:
    """A difference in rating points: 0.1239 -> '+0.12 pts'."""
    return f"{value:+.2f} pts"


def percent(value: float) -> str:
    """A share as a percentage, one decimal: 0.5425 -> '54.2%'."""
    return f"{value * 100:.1f}%"


def decimals3(value: float) -> str:
    """A score between 0 and 1 that is not a share (NDCG, MRR): 0.06223 -> '0.062'."""
    return f"{value:.3f}"


def duration(seconds: float) -> str:
    """8.149 -> '8.1 s', 162.4 -> '2 min 42 s', 4000 -> '1 h 07 min'."""
    if seconds < 1:
        return f"{seconds * 1000:.0f} ms"
    if round(seconds, 1) < 60:
        return f"{seconds:.1f} s"
    total = round(seconds)
    if total < 3600:
        return f"{total // 60} min {total % 60} s"
    minutes = round(seconds / 60)
    return f"{minutes // 60} h {minutes % 60:02d} min"


def plain(value: float) -> str:
    """An unknown metric: whole numbers as such, thousands separated, otherwise three significant digits."""
    if abs(value) >= 1000:
        return f"{value:,.0f}"
    if value == int(value):
        return f"{value:.0f}"
    return f"{value:.3g}"


@dataclass(frozen=True)
class Kind:
    """How one metric reads: its label ({k} is the cut-off), its value's format, and what it means."""

    label: str
    format: Callable[[float], str]
    help: str


# In the order the cards show them. {k} is the cut-off of a ranking metric (hr@10 -> 10).
KINDS: dict[str, Kind] = {
    "rmse": Kind("RMSE", points, "Root mean squared error of the predicted rating, in points of the 0-10 scale. Lower is better."),
    "mae": Kind("MAE", points, "Mean absolute error of the predicted rating, in points of the 0-10 scale. Lower is better."),
    "within_0_5": Kind("Within ±0.5 pts", percent, "Share of movies whose predicted rating is within half a point of the real one."),
    "gap": Kind("Overfitting gap", signed_points, "Validation RMSE minus train RMSE: how much worse the model does on movies it was not trained on."),
    "hr": Kind("HR@{k}", percent, "Hit rate: share of held-out users whose next movie is among the top {k} recommended."),
    "ndcg": Kind("NDCG@{k}", decimals3, "Normalised discounted cumulative gain of the top {k}: 1 when the next movie is always first."),
    "mrr": Kind("MRR@{k}", decimals3, "Mean reciprocal rank of the next movie within the top {k} (0 when it is not there)."),
    "coverage": Kind("Coverage@{k}", percent, "Share of the catalog recommended to at least one user in a top {k}."),
    "train_seconds": Kind("Training time", duration, "Wall-clock time the training run took."),
}  # fmt: skip
ALIASES = {"hit_rate": "hr", "within_half": "within_0_5", "training_seconds": "train_seconds"}
_KEY = re.compile(r"(?:(?P<split>test|val|valid|train)_)?(?P<base>.+?)(?:@(?P<k>\d+))?")


@dataclass(frozen=True)
class MetricCard:
    """One metric as a card shows it."""

    key: str
    label: str
    value: str
    help: str
    split: str  # test, validation, train, or "" for a metric of the whole version (gap, training time)
    rank: int  # position of its kind in KINDS (unknown kinds last)


def _parse(key: str) -> tuple[str, str, str]:
    """(split, base, cut-off) of a key; a whole known key (train_seconds) has no split."""
    key = key.strip().lower().replace("_at_", "@")
    whole, _, k = key.partition("@")
    if ALIASES.get(whole, whole) in KINDS:
        return "", ALIASES.get(whole, whole), k
    m = _KEY.fullmatch(key)
    if m is None:  # an empty key
        return "", key, ""
    split = SPLITS.get(m.group("split") or "", "")
    base = m.group("base")
    return split, ALIASES.get(base, base), m.group("k") or ""


def _words(base: str, k: str) -> str:
    words = [w.upper() if w in ACRONYMS else w for w in base.split("_") if w]
    text = " ".join(words) or base
    text = text[:1].upper() + text[1:]
    return f"{text}@{k}" if k else text


def metric_card(key: str, value: float) -> MetricCard:
    """The card of one metric: 'test_within_0_5', 0.5425 -> 'Within ±0.5 pts (test)', '54.2%'."""
    split, base, k = _parse(key)
    kind = KINDS.get(base)
    if kind is None:
        label, help_text, rank = _words(base, k), f"`{key}` as the training run recorded it.", len(KINDS)
        fmt = duration if base.endswith("seconds") else plain
    else:
        cut = k or "k"
        label, help_text, rank = kind.label.format(k=cut), kind.help.format(k=cut), list(KINDS).index(base)
        fmt = kind.format
    if split:
        label = f"{label} ({split})"
    number = float(value)
    text = MISSING if math.isnan(number) or math.isinf(number) else fmt(number)
    return MetricCard(key, label, text, help_text, split, rank)


def metric_label(key: str) -> str:
    """The human label of a metric key: 'valid_ndcg@10' -> 'NDCG@10 (validation)'."""
    return metric_card(key, 0.0).label


def card_layout(metrics: Mapping[str, float]) -> tuple[list[MetricCard], list[list[MetricCard]]]:
    """The headline cards (test metrics and those of the whole version) and the rest, a row per split.

    Without test metrics, the first split there is (validation, then train) makes the headline.
    """
    cards = [metric_card(k, v) for k, v in metrics.items()]
    by_split = {
        s: sorted((c for c in cards if c.split == s), key=lambda c: (c.rank, c.label)) for s in SPLIT_ORDER
    }
    whole = sorted((c for c in cards if not c.split), key=lambda c: (c.rank, c.label))
    rows = [by_split[s] for s in SPLIT_ORDER if by_split[s]]
    if by_split["test"] or not rows:
        headline = by_split["test"] + whole
        rest = rows[1:] if by_split["test"] else rows
    else:
        headline, rest = rows[0] + whole, rows[1:]
    return headline, rest


def rest_title(rest: list[list[MetricCard]]) -> str:
    """What the rows beyond the headline hold: 'Validation and train metrics', 'Validation metrics'."""
    splits = [row[0].split for row in rest if row]
    text = " and ".join(splits) or "other"
    return f"{text[:1].upper()}{text[1:]} metrics"
