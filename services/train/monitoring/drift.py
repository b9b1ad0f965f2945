"""Drift of model inputs and predictions against the training features, measured by Evidently.

Evidently runs the statistics and renders the report; this module only chooses the columns, the rows and
the tests, and reads Evidently's own verdicts back into a small JSON summary.

Why a verdict means the same on a quiet and a busy day (issue 18): both sides are capped at a fixed
number of rows (DRIFT_SAMPLE_ROWS, 5,000), a uniform sample with a fixed seed, the reference (production's
training features) as well as the day's requests; and each feature is judged by an effect size with a
fixed threshold, Evidently's normed Wasserstein / Jensen-Shannon distance >= 0.1, which must also be
significant at the rows compared (stattests.py). A day of 200,000 requests is judged on the same 5,000
rows a day of 5,000 is, at a bounded cost; a day of 50 cannot alert on noise.
"""

from __future__ import annotations

import os
import warnings
from typing import Any

import numpy as np
import pandas as pd

from services.train.monitoring.stattests import CAT_METHOD, NUM_METHOD, register

# The features of the fields every /predict request must carry (overview, runtime, genres, language), so
# requests and collected movies are compared on the same footing. Left out on purpose: optional fields
# (budget, companies... are absent from most requests, which would be "drift" every day) and the release
# year and month (new releases are newer than the training set by construction).
DRIFT_FEATURES: tuple[str, ...] = (
    "runtime",
    "overview_polarity",
    "overview_subjectivity",
    "overview_length",
    "overview_words",
    "main_genre",
    "n_genres",
    "original_language",
    "is_english",
    "text_signal",
    "genre_track_record",
    "language_track_record",
)
CATEGORICAL: tuple[str, ...] = ("main_genre", "original_language", "is_english")  # codes, not quantities
PREDICTION = "prediction"
REFERENCE_SEED = 0  # the same reference rows every day, for a given production version


def sample_rows(frame: pd.DataFrame, n: int, seed: int) -> pd.DataFrame:
    """At most n rows of a frame, uniformly without replacement and reproducibly (all when it has fewer)."""
    if len(frame) <= n:
        return frame.reset_index(drop=True)
    picked = np.sort(np.random.default_rng(seed).choice(len(frame), size=n, replace=False))
    return frame.iloc[picked].reset_index(drop=True)


def _evidently() -> Any:
    # Telemetry off before the first import (Evidently's switch, and the DO_NOT_TRACK of the
    # iterative-telemetry package it ships with): reports must never phone home.
    os.environ.setdefault("EVIDENTLY_DISABLE_TELEMETRY", "1")
    os.environ.setdefault("DO_NOT_TRACK", "1")
    import evidently

    register()
    return evidently


def drift_report(
    reference: pd.DataFrame, current: pd.DataFrame, drift_share: float = 0.5
) -> tuple[dict[str, Any], str]:
    """Per-feature data drift and prediction drift of `current` against `reference`: (summary, HTML).

    `drift_share` is the share of drifted features the report calls dataset drift (the alert threshold).
    """
    evidently = _evidently()
    from evidently.metrics import ValueDrift
    from evidently.presets import DataDriftPreset

    columns = [c for c in DRIFT_FEATURES if c in reference.columns and c in current.columns]
    definition = evidently.DataDefinition(
        numerical_columns=[c for c in columns if c not in CATEGORICAL] + [PREDICTION],
        categorical_columns=[c for c in columns if c in CATEGORICAL],
    )
    keep = [*columns, PREDICTION]
    report = evidently.Report(
        [
            DataDriftPreset(
                columns=columns, num_method=NUM_METHOD, cat_method=CAT_METHOD, drift_share=drift_share
            ),
            ValueDrift(column=PREDICTION, method=NUM_METHOD),
        ],
        include_tests=True,
    )
    # A category one side never had gives empty bins (log 0 in Jensen-Shannon): numpy warns, and the
    # answer is right. The warning would only repeat in every task log.
    with warnings.catch_warnings(), np.errstate(divide="ignore", invalid="ignore"):
        warnings.simplefilter("ignore", RuntimeWarning)
        snapshot = report.run(
            current_data=evidently.Dataset.from_pandas(current[keep], data_definition=definition),
            reference_data=evidently.Dataset.from_pandas(reference[keep], data_definition=definition),
        )
    summary = summarize(snapshot.dict(), columns)
    summary.update(rows_reference=len(reference), rows_current=len(current))
    return summary, snapshot.get_html_str(as_iframe=False)


def summarize(result: dict[str, Any], features: list[str]) -> dict[str, Any]:
    """Evidently's per-column scores and drift verdicts (its test statuses), features apart from prediction."""
    scores: dict[str, dict[str, Any]] = {}
    for metric in result.get("metrics", []):
        config = metric.get("config", {})
        if config.get("type", "").endswith("ValueDrift"):
            scores[config["column"]] = {
                "method": config.get("method"),
                "threshold": config.get("threshold"),
                "score": _number(metric.get("value")),
            }
    for test in result.get("tests", []):
        column = test.get("metric_config", {}).get("params", {}).get("column")
        if column in scores:
            scores[column]["drifted"] = test.get("status") == "FAIL"
    per_feature = {c: scores[c] for c in features if c in scores}
    drifted = [c for c, s in per_feature.items() if s.get("drifted")]
    return {
        "features": per_feature,
        "drifted": drifted,
        "share": round(len(drifted) / len(per_feature), 4) if per_feature else 0.0,
        "prediction": scores.get(PREDICTION),
    }


def _number(value: Any) -> float | None:
    try:
        return round(float(value), 6)
    except (TypeError, ValueError):
        return None
