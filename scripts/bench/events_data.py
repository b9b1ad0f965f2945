"""One day of synthetic events for the events bench (scripts/bench/events.py): impressions and feedback.

Vectorised with numpy and Arrow, so a day of millions of rows is written in seconds: impressions of
SHOWN movies from a long-tailed catalog, feedback answering some of them minutes later, and a share of
rows retried to another replica (the duplicates curation must drop).
"""

from __future__ import annotations

import binascii

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from services.core import event_table

DAY = "2026-11-20"
CATALOG, USERS = 5_000, 200_000
SHOWN = 10  # movies per /recommend response


def _times(rng: np.random.Generator, n: int, start_us: np.ndarray | None = None) -> np.ndarray:
    day0 = np.datetime64(DAY, "us").astype(np.int64)
    if start_us is None:
        return day0 + rng.integers(0, 86_400_000_000, n)
    # Answers come minutes after their response, most within the 30-minute window; never past midnight.
    return np.minimum(start_us + (rng.exponential(6 * 60, n) * 1e6).astype(np.int64), day0 + 86_399_999_000)


def _iso(us: np.ndarray) -> pa.Array:
    return pa.array(np.char.add(np.datetime_as_string(us.astype("datetime64[us]"), unit="ms"), "Z"))


def _uuids(rng: np.random.Generator, n: int) -> np.ndarray:
    """n random 32-hex-digit ids, as the API writes (uuid4().hex), without a Python loop."""
    return np.frombuffer(binascii.hexlify(rng.bytes(16 * n)), dtype="S32")


def _text(values: np.ndarray) -> pa.Array:
    return pa.array(values, pa.binary(32)).cast(pa.string())


def synthesize(n: int, feedback_share: float, dup_share: float, seed: int) -> dict[str, pa.Table]:
    """One day of impressions and feedback as Arrow tables (duplicates included), vectorised."""
    rng = np.random.default_rng(seed)
    n_fb = int(n * feedback_share / (1 + dup_share))
    n_imp = int(n / (1 + dup_share)) - n_fb
    popular = rng.zipf(1.3, (n_imp, SHOWN)) % CATALOG + 1  # a long tail, as real catalogs have
    imp_us = _times(rng, n_imp)
    request_ids = _uuids(rng, n_imp)
    fallback = rng.random(n_imp) < 0.05
    imps = pa.table(
        {
            "event_id": _text(request_ids),
            "ts": _iso(imp_us),
            "user_id": pa.array(np.char.add("u", rng.integers(0, USERS, n_imp).astype(str))),
            "model_version": pa.array(np.where(fallback, None, "20261119-a1b2c3")),
            "strategy": pa.array(np.where(fallback, "popularity", "sequential")),
            "fallback": pa.array(fallback),
            "pool": pa.array(np.where(rng.random(n_imp) < 0.15, "new", "all")),
            "items": pa.ListArray.from_arrays(np.arange(0, n_imp * SHOWN + 1, SHOWN), popular.ravel()),
            "catalog_size": pa.array(np.full(n_imp, CATALOG)),
        }
    )
    imps = imps.add_column(1, "request_id", imps["event_id"])
    # 70% of feedback answers a response (a movie it showed, ranked near the top); the rest comes
    # from browsing (no request_id).
    answering = rng.random(n_fb) < 0.7
    which = rng.integers(0, n_imp, n_fb)
    rank = np.minimum(rng.geometric(0.3, n_fb) - 1, SHOWN - 1)
    kind = rng.choice(["like", "watched", "rating", "dislike"], n_fb, p=[0.5, 0.2, 0.2, 0.1])
    stars = rng.integers(1, 11, n_fb) / 2
    fb = pa.table(
        {
            "event_id": _text(_uuids(rng, n_fb)),
            "ts": _iso(np.where(answering, _times(rng, n_fb, imp_us[which]), _times(rng, n_fb))),
            "user_id": pa.array(np.char.add("u", rng.integers(0, USERS, n_fb).astype(str))),
            "tmdb_id": pa.array(
                np.where(answering, popular[which, rank], rng.integers(1, CATALOG + 1, n_fb))
            ),
            "kind": pa.array(kind),
            "value": pa.array(np.where(kind == "rating", stars, np.nan), from_pandas=True),
            "request_id": pc.if_else(
                pa.array(answering), _text(request_ids[which]), pa.scalar(None, pa.string())
            ),
            "position": pc.if_else(pa.array(answering), pa.array(rank + 1), pa.scalar(None, pa.int64())),
        }
    )
    return {"impressions": _with_retries(rng, imps, dup_share), "feedback": _with_retries(rng, fb, dup_share)}


def _with_retries(rng: np.random.Generator, table: pa.Table, dup_share: float) -> pa.Table:
    """Some rows again, a little later: a retry (nginx or the client) that another replica also logged."""
    again = table.take(pa.array(np.flatnonzero(rng.random(table.num_rows) < dup_share)))
    us = event_table.timestamps_us(again["ts"])
    later = _iso(us + rng.integers(1_000, 2_000_000, again.num_rows))
    return pa.concat_tables([table, again.set_column(again.schema.get_field_index("ts"), "ts", later)])
