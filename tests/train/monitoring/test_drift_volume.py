"""Drift verdicts that do not depend on how busy the day was: 200,000 requests on real S3 through monitor."""

from __future__ import annotations

import io

import numpy as np
import pandas as pd
import pytest

from services.core.events import batch_key, encode_lines, report_key
from services.core.settings import Settings
from services.core.storage import ObjectStore
from services.train.context import Context
from services.train.monitoring.alerts import AlertRaised, raise_alerts
from services.train.monitoring.drift import CATEGORICAL, DRIFT_FEATURES, drift_report, sample_rows
from services.train.monitoring.monitor import monitor
from services.train.monitoring.predictions_log import sample_predictions
from services.train.monitoring.stattests import chi2_pvalue, ks_pvalue
from tests.drift_volume_data import log_lines, publish_production, world, write_day

DAY = "2026-12-02"
BUSY = 200_000

pytestmark = pytest.mark.integration


@pytest.fixture
def ctx(s3_settings: Settings) -> Context:
    return Context.from_settings(s3_settings)


def _p_value_drifted(reference: pd.DataFrame, current: pd.DataFrame) -> list[str]:
    """The old rule (KS / chi-square at p < 0.05 on every row of the day), feature by feature."""
    test = {c: (chi2_pvalue if c in CATEGORICAL else ks_pvalue) for c in DRIFT_FEATURES}
    return [c for c in DRIFT_FEATURES if test[c](reference[c].dropna(), current[c].dropna()) < 0.05]


def test_a_busy_unshifted_day_does_not_alert_though_p_values_alone_would(ctx: Context) -> None:
    version = publish_production(ctx.store)
    assert write_day(ctx.store, DAY, log_lines(version), BUSY) == BUSY // 5000
    monitor(ctx, DAY)
    summary = ctx.store.get_json(report_key("drift", DAY, "summary.json"))
    requests = summary["comparisons"]["requests"]
    assert requests["status"] == "ok" and requests["rows_day"] == BUSY
    assert requests["rows_current"] == ctx.settings.drift_sample_rows  # a fixed-size sample of the day
    assert summary["request_versions"] == {version: BUSY}
    # The README's claim: 200,000 unshifted requests drift nothing (not merely fewer than the alert share).
    assert requests["drifted"] == [] and requests["share"] == 0, requests["drifted"]
    assert requests["prediction"]["drifted"] is False
    verdict = raise_alerts(ctx.store, ctx.settings, DAY)  # raises AlertRaised on a bad day
    assert verdict["alert"] is False and verdict["drift_share"]["requests"] == requests["share"]

    # The same day under the old rule: with 200,000 rows every small difference is "significant".
    names = list(world().names)
    everything = sample_predictions(ctx.store, DAY, names, BUSY).frame
    reference = pd.read_parquet(io.BytesIO(ctx.store.get_bytes("features/dt=2026-11-30/train.parquet")))
    old = _p_value_drifted(reference, everything)
    assert len(old) / len(DRIFT_FEATURES) > ctx.settings.alert_drift_share, old


def test_a_busy_shifted_day_alerts_on_the_features_that_moved(ctx: Context) -> None:
    version = publish_production(ctx.store)
    write_day(ctx.store, DAY, log_lines(version, shift=True), BUSY)
    monitor(ctx, DAY)
    requests = ctx.store.get_json(report_key("drift", DAY, "summary.json"))["comparisons"]["requests"]
    assert {"overview_length", "overview_words", "main_genre", "original_language"} <= set(
        requests["drifted"]
    )
    assert "runtime" not in requests["drifted"]  # runtimes were not touched
    assert requests["features"]["overview_length"]["score"] >= 0.1
    with pytest.raises(AlertRaised, match="features drifted in requests"):
        raise_alerts(ctx.store, ctx.settings, DAY)
    assert b"<html" in ctx.store.get_bytes(requests["report"])[:2000].lower()


def _frames(n: int, seed: int) -> tuple[pd.DataFrame, pd.DataFrame]:
    from services.core.features import featurize, featurize_training

    w = world()
    reference = pd.DataFrame(featurize_training(list(w.train), w.encoders), columns=list(w.names))
    current = pd.DataFrame(featurize(list(w.requests), w.encoders), columns=list(w.names))
    for frame in (reference, current):
        frame["prediction"] = w.booster.inplace_predict(frame[list(w.names)].to_numpy())
    return reference, sample_rows(current, n, seed)


def test_a_quiet_day_does_not_alert_on_noise_that_distances_alone_call_drift() -> None:
    from evidently.legacy.calculations.stattests import jensenshannon_stat_test, wasserstein_stat_test
    from evidently.legacy.core import ColumnType

    reference, current = _frames(40, seed=3)
    summary, _ = drift_report(reference, current)
    assert summary["share"] <= Settings(_env_file=None).alert_drift_share, summary["drifted"]

    # Evidently's plain distance defaults on the same 40 rows: sampling noise passes 0.1 on most features.
    def distance(c: str) -> float:
        kind, test = (ColumnType.Categorical, jensenshannon_stat_test) if c in CATEGORICAL else (
            ColumnType.Numerical, wasserstein_stat_test)  # fmt: skip
        return test(reference[c].dropna(), current[c].dropna(), kind, 0.1).drift_score

    noisy = [c for c in DRIFT_FEATURES if distance(c) >= 0.1]
    assert len(noisy) / len(DRIFT_FEATURES) > Settings(_env_file=None).alert_drift_share, noisy


def test_the_day_sample_is_uniform_reproducible_and_counts_every_version(store: ObjectStore) -> None:
    names = ["runtime", "main_genre"]
    # Three batches of two replicas; each row's runtime is its place in the day (0..5999).
    for replica, version, first, base, size in (("a", "v1", 0, 0, 3000), ("b", "v2", 0, 3000, 2000),
                                                 ("a", "v1", 3000, 5000, 1000)):  # fmt: skip
        rows = [{"event_id": f"{replica}{first + i}", "ts": f"{DAY}T01:00:00Z", "model_version": version,
                 "prediction": 5.0, "features": {"runtime": float(base + i), "main_genre": 1.0}}
                for i in range(size)]  # fmt: skip
        store.put_bytes(batch_key("predictions", DAY, replica, first), encode_lines(rows), "application/gzip")
    one = sample_predictions(store, DAY, names, 1000)
    assert one.rows == 6000 and one.objects == 3 and one.versions == {"v1": 4000, "v2": 2000}
    assert len(one.frame) == 1000 and one.frame["runtime"].is_unique  # without replacement
    assert one.frame.equals(sample_predictions(store, DAY, names, 1000).frame)  # a rerun draws the same rows
    # Uniform over the whole day, not the first batches read: a sixth of it from each thousand.
    counts = np.bincount((one.frame["runtime"] // 1000).astype(int), minlength=6)
    assert counts.min() > 120 and counts.max() < 215, counts


def test_rows_the_reader_cannot_read_are_left_out_not_fatal(store: ObjectStore) -> None:
    rows = [{"features": "junk"}, {"prediction": 5.0}, {"features": {}, "prediction": 6}, "not an object"]
    store.put_bytes(batch_key("predictions", DAY, "a", 0), encode_lines(rows), "application/gzip")  # type: ignore[arg-type]
    sample = sample_predictions(store, DAY, ["runtime"], 100)
    assert sample.rows == 1 and sample.skipped == 3 and sample.versions == {"None": 1}
    assert sample.frame.shape == (1, 2) and np.isnan(sample.frame["runtime"][0])


def test_parquet_batches_are_read_beside_json_lines(store: ObjectStore) -> None:
    import pyarrow as pa
    import pyarrow.parquet as pq

    features = [
        {"runtime": 90.0, "main_genre": 2.0, "budget": 1e6},
        {"runtime": None, "main_genre": 1.0, "budget": 0.0},
    ]
    table = pa.table({"event_id": ["p1", "p2"], "model_version": ["v2", "v2"], "prediction": [5.0, 6.0],
                      "features": features})  # fmt: skip
    buf = io.BytesIO()
    pq.write_table(table, buf)
    store.put_bytes(
        f"events/predictions/dt={DAY}/b-000000000000.parquet", buf.getvalue(), "application/octet-stream"
    )
    rows = [{"event_id": "j1", "model_version": "v1", "prediction": 7.0, "features": {"runtime": 100.0}}]
    store.put_bytes(batch_key("predictions", DAY, "a", 0), encode_lines(rows), "application/gzip")
    sample = sample_predictions(store, DAY, ["runtime", "main_genre"], 10)
    assert sample.objects == 2 and sample.versions == {"v1": 1, "v2": 2}
    assert sorted(sample.frame["prediction"]) == [5.0, 6.0, 7.0]
    assert sorted(sample.frame["runtime"].dropna()) == [90.0, 100.0]
