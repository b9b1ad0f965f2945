"""The daily error report: production and the challenger, banded residuals on the test rows, to S3 and W&B.

Written by select_and_publish before it publishes, so "production" is the version serving when the run
started. The rows are the run's test split (the most recent releases): the challenger was chosen on the
validation split, so only the test rows are unseen by both the training and the choice. Rows that the
production version's own run trained or validated on are left out, so both models are judged on the same
unseen movies.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Mapping
from typing import Any

import numpy as np

from services.core.events import report_key
from services.core.features import Encoders, featurize
from services.core.rating_model import load_rating_model
from services.train.context import Context
from services.train.rating.data import targets
from services.train.rating.error_analysis import DIMENSIONS, analyse, worst_bands
from services.train.rating.production import Production

log = logging.getLogger(__name__)

SPLIT = "test"
WHY = (
    "the run's test split: the most recent releases, never used to train either model nor to choose the "
    "challenger (that used the validation split), so the figures are what a new movie can expect"
)


def errors_key(logical_date: str) -> str:
    """Where a day's error report lives."""
    return report_key("rating", logical_date, "errors.json")


def write_error_report(
    ctx: Context,
    logical_date: str,
    rows: list[dict[str, Any]],
    algorithm: str,
    files: Mapping[str, bytes],
    prod: Production | None,
) -> dict[str, Any]:
    """Score the test rows with production (as the caller loaded it) and the challenger; write errors.json, W&B."""
    models: dict[str, dict[str, Any]] = {"challenger": {"algorithm": algorithm, "version": None}}
    excluded = 0
    if prod is not None:
        seen = set(prod.ids.get("train", [])) | set(prod.ids.get("val", []))
        kept = [m for m in rows if int(m["id"]) not in seen]
        excluded = len(rows) - len(kept)
        rows = kept
        models["production"] = {"algorithm": prod.manifest.algorithm, "version": prod.version,
                                "built_on": prod.built_on}  # fmt: skip
    challenger = load_rating_model(algorithm, dict(files))
    encoders = Encoders.from_json(json.loads(files["encoders.json"]))
    predictions = {"challenger": challenger.predict(featurize(rows, encoders)) if rows else np.zeros(0)}
    if prod is not None:
        predictions = {"production": prod.predict(rows) if rows else np.zeros(0), **predictions}
    analysis = analyse(rows, targets(rows), predictions)
    report = {
        "date": logical_date,
        "status": "ok" if rows else "no test rows to judge",
        "split": SPLIT,
        "why": WHY,
        "window": [rows[0]["release_date"], rows[-1]["release_date"]] if rows else None,
        "excluded_seen_by_production": excluded,
        "models": {name: models[name] for name in predictions},
        **analysis,
    }
    ctx.store.put_json(errors_key(logical_date), report)
    for name in predictions:
        log.info("error analysis, %s on %d test rows: overall %s; worst bands %s", name, analysis["rows"],
                 analysis["overall"][name], worst_bands(analysis, name))  # fmt: skip
    _track(ctx, logical_date, report)
    return report


def _track(ctx: Context, logical_date: str, report: dict[str, Any]) -> None:
    """One W&B run: overall figures in the summary, a table and a bar chart per dimension."""
    names = list(report["models"])
    config = {"date": logical_date, "split": SPLIT, "rows": report["rows"],
              "models": {n: report["models"][n].get("version") or n for n in names}}  # fmt: skip
    with ctx.tracker.run(f"rating-errors-{logical_date}", config, group=f"rating-{logical_date}",
                         job_type="analysis") as run:  # fmt: skip
        run.summary(
            {f"{n}_{k}": _nan(report["overall"][n][k]) for n in names for k in ("rmse", "bias", "mae")}
        )
        if run.run is None:  # tracking disabled: no tables, no figures to draw
            return
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
        import wandb

        columns = ["band", "count"] + [f"{n}_{k}" for n in names for k in ("bias", "rmse", "mae")]
        for dim in DIMENSIONS:
            bands = report["dimensions"][dim]["bands"]
            data = [[b["band"], b["count"]] + [b[n][k] for n in names for k in ("bias", "rmse", "mae")]
                    for b in bands]  # fmt: skip
            run.log({f"errors/{dim}": wandb.Table(columns=columns, data=data)})
            figure = band_figure(report["dimensions"][dim], names)
            run.log_figure(f"errors/{dim}_chart", figure)
            plt.close(figure)  # pyplot keeps every figure open until closed


def band_figure(dimension: dict[str, Any], names: list[str]) -> Any:
    """Bias and RMSE by band, one bar per model side by side (matplotlib, headless)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    bands = [b["band"] for b in dimension["bands"]]
    x = np.arange(len(bands))
    width = 0.8 / max(1, len(names))
    fig, axes = plt.subplots(1, 2, figsize=(11, 3.6))
    for ax, metric in zip(axes, ("bias", "rmse"), strict=True):
        for i, name in enumerate(names):
            values = [_nan(b[name][metric]) for b in dimension["bands"]]
            ax.bar(x + (i - (len(names) - 1) / 2) * width, values, width, label=name)
        ax.set_xticks(x, bands, rotation=30, ha="right")
        ax.set_title(f"{metric.upper() if metric == 'rmse' else 'bias (predicted - actual)'}")
        ax.axhline(0, color="#888", linewidth=0.8)
    axes[0].legend()
    fig.suptitle(dimension["title"])
    fig.tight_layout()
    return fig


def _nan(value: float | None) -> float:
    return float("nan") if value is None else float(value)
