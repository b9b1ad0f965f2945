"""Evidently's distance tests, required to be significant too: drift verdicts that do not depend on volume.

A p-value test alone (KS, chi-square) answers "is there any difference?", and with 10^5 rows every
difference is one: a normal busy day alerted. A distance alone (Evidently's normed Wasserstein and
Jensen-Shannon, its defaults for more than 1,000 rows, threshold 0.1) answers "how far apart are the
distributions?", which a large day estimates well, but on a quiet day of tens of rows sampling noise alone
reaches 0.1 (Jensen-Shannon over a few dozen languages most of all). So a feature drifts when both hold:

  distance >= threshold (0.1)    the shift is large enough to matter, whatever the volume;
  two-sample p < ALPHA (0.05)    the day's rows show it is not noise (KS; chi-square of the 2 x K table).

On a day of thousands of rows the second condition holds for any shift of 0.1, so the distance decides;
on a quiet day the test keeps noise out. Either way a verdict means "moved by at least 0.1".
"""

from __future__ import annotations

import warnings
from typing import Any

import numpy as np
import pandas as pd
from scipy import stats

ALPHA = 0.05
NUM_METHOD = "wasserstein_significant"
CAT_METHOD = "jensenshannon_significant"
_registered = False


def ks_pvalue(reference: pd.Series, current: pd.Series) -> float:
    """Two-sample Kolmogorov-Smirnov p-value (1.0 when a side is empty)."""
    if len(reference) == 0 or len(current) == 0:
        return 1.0
    return float(stats.ks_2samp(reference.to_numpy(), current.to_numpy()).pvalue)


def chi2_pvalue(reference: pd.Series, current: pd.Series) -> float:
    """Chi-square test of homogeneity of two samples' categories (a category one side lacks is evidence)."""
    counts = pd.concat(
        [reference.value_counts().rename("reference"), current.value_counts().rename("current")], axis=1
    ).fillna(0)
    if len(counts) < 2 or len(reference) == 0 or len(current) == 0:
        return 1.0
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        return float(stats.chi2_contingency(counts.to_numpy().T, correction=False).pvalue)


def register() -> None:
    """Register both tests with Evidently by name (once per process; Evidently must be importable)."""
    global _registered
    if _registered:
        return
    from evidently.legacy.calculations.stattests import jensenshannon_stat_test, wasserstein_stat_test
    from evidently.legacy.calculations.stattests.registry import StatTest, register_stattest
    from evidently.legacy.core import ColumnType

    def guarded(distance: StatTest, pvalue: Any) -> Any:
        def run(
            reference: pd.Series, current: pd.Series, feature_type: Any, threshold: float
        ) -> tuple[float, bool]:
            score = float(distance(reference, current, feature_type, threshold).drift_score)
            drifted = bool(np.isfinite(score) and score >= threshold and pvalue(reference, current) < ALPHA)
            return score, drifted

        return run

    register_stattest(
        StatTest(
            NUM_METHOD, f"Wasserstein distance (normed), if KS p < {ALPHA}", [ColumnType.Numerical], 0.1
        ),
        guarded(wasserstein_stat_test, ks_pvalue),
    )
    register_stattest(
        StatTest(
            CAT_METHOD, f"Jensen-Shannon distance, if chi-square p < {ALPHA}", [ColumnType.Categorical], 0.1
        ),
        guarded(jensenshannon_stat_test, chi2_pvalue),
    )
    _registered = True
