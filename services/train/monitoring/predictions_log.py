"""A day of the /predict log, read batch by batch into a fixed-size uniform sample: memory bounded by the sample.

Serving logs every answered prediction (PREDICTION_LOG_RATE) to events/predictions/dt=D/ as gzipped JSON
lines: {event_id, ts, model_version, prediction, translated, input: {...}, features: {name: value}}, where
a one-hot column (genre=..., country=..., company=...) is written only when it is 1: absent means 0.
Drift needs only the features and the prediction of a sample of them, and how many each version served.
So each batch is parsed by Arrow's JSON reader against a schema of just those columns (the rest is
skipped in C), and a reservoir keeps the n rows with the smallest seeded random keys: an exact uniform
sample without replacement, the same for a rerun of the same day, whatever the day's size.

Duplicates across replicas are not removed: a sample's shape does not change by a few repeated rows.
"""

from __future__ import annotations

import gzip
import io
import json
import logging
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.json as pa_json
import pyarrow.parquet as pq

from services.core.event_table import batch_keys
from services.core.features import is_one_hot
from services.core.storage import ObjectStore
from services.train.monitoring.drift import PREDICTION

log = logging.getLogger(__name__)


@dataclass
class PredictionSample:
    """A uniform sample of a day's readable prediction logs, with what the whole day held."""

    frame: pd.DataFrame  # the sampled rows: one column per feature (NaN when missing), then the prediction
    versions: Counter = field(default_factory=Counter)  # readable rows per model version, the whole day
    rows: int = 0  # readable rows in the day (a feature vector and a prediction)
    skipped: int = 0  # rows this code cannot read: left out, never a failed run
    objects: int = 0


def day_seed(day: str) -> int:
    """A sampling seed of the day itself, so rerunning a day draws the same rows."""
    return int(day.replace("-", ""))


def _schema(names: list[str]) -> pa.Schema:
    features = pa.struct([(n, pa.float64()) for n in names])
    return pa.schema([("model_version", pa.string()), ("prediction", pa.float64()), ("features", features)])


def _python_rows(raw: bytes, names: list[str]) -> tuple[np.ndarray, list[str], int]:
    # The slow path, for a batch Arrow cannot type (a line that is not an object, a string where a
    # number belongs): each row on its own, the readable ones kept.
    values, versions, skipped = [], [], 0
    for line in raw.decode(errors="replace").splitlines():
        if not line.strip():
            continue
        try:
            e = json.loads(line)
            features = e["features"]
            row = [_float(features.get(n)) for n in names] + [float(e["prediction"])]
        except (ValueError, TypeError, KeyError, AttributeError):
            skipped += 1
            continue
        values.append(row)
        versions.append(str(e.get("model_version")))
    return np.asarray(values, dtype=np.float64).reshape(-1, len(names) + 1), versions, skipped


def _arrow_rows(table: pa.Table, names: list[str]) -> tuple[np.ndarray, list[str], int]:
    features = table["features"].combine_chunks()
    prediction = table["prediction"].combine_chunks()
    readable = pc.and_(pc.is_valid(features), pc.is_valid(prediction))
    kept = table.filter(readable)
    flat = kept["features"].combine_chunks().flatten()
    columns = [f.to_numpy(zero_copy_only=False) for f in flat]
    columns.append(kept["prediction"].to_numpy())
    values = np.column_stack(columns).astype(np.float64) if kept.num_rows else np.zeros((0, len(names) + 1))
    versions = [str(v) for v in kept["model_version"].to_pylist()]
    return values, versions, table.num_rows - kept.num_rows


def _read(
    store: ObjectStore, key: str, names: list[str], schema: pa.Schema
) -> tuple[np.ndarray, list[str], int]:
    data = store.get_bytes(key)
    if key.endswith(".parquet"):
        table = pq.read_table(io.BytesIO(data))
        try:
            return _arrow_rows(table.select(schema.names).cast(schema), names)
        except (KeyError, pa.ArrowInvalid, pa.ArrowNotImplementedError):
            return np.zeros((0, len(names) + 1)), [], table.num_rows  # another schema: none readable
    raw = gzip.decompress(data)
    if not raw.strip():
        return np.zeros((0, len(names) + 1)), [], 0
    options = pa_json.ParseOptions(explicit_schema=schema, unexpected_field_behavior="ignore")
    try:
        return _arrow_rows(pa_json.read_json(io.BytesIO(raw), parse_options=options), names)
    except pa.ArrowInvalid:
        return _python_rows(raw, names)


def sample_predictions(store: ObjectStore, day: str, names: list[str], n: int) -> PredictionSample:
    """At most n of the day's logged predictions, uniformly and reproducibly, batch by batch."""
    schema, rng = _schema(names), np.random.default_rng(day_seed(day))
    keys = batch_keys(store, "predictions", day)
    kept, kept_keys = np.zeros((0, len(names) + 1)), np.zeros(0)
    out = PredictionSample(frame=pd.DataFrame(), objects=len(keys))
    for key in keys:
        values, versions, skipped = _read(store, key, names, schema)
        out.rows += len(values)
        out.skipped += skipped
        out.versions.update(versions)
        merged = np.concatenate([kept, values])
        merged_keys = np.concatenate([kept_keys, rng.random(len(values))])
        if len(merged) > n:
            top = np.argpartition(merged_keys, n - 1)[:n]
            merged, merged_keys = merged[top], merged_keys[top]
        kept, kept_keys = merged, merged_keys
    order = np.argsort(kept_keys, kind="stable")
    kept = kept[order]
    # Serving logs a one-hot column only where it is 1; older logs wrote the zeros too. Either way, 0.
    hot = [i for i, name in enumerate(names) if is_one_hot(name)]
    kept[:, hot] = np.nan_to_num(kept[:, hot], nan=0.0)
    out.frame = pd.DataFrame(kept, columns=[*names, PREDICTION])
    if out.skipped:
        log.warning("%d logged predictions of %s could not be read and were left out", out.skipped, day)
    return out


def _float(value: Any) -> float:
    try:
        return float(value) if value is not None else np.nan
    except (TypeError, ValueError):
        return np.nan
