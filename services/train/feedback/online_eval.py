"""Online evaluation: did the people shown recommendations like what they were shown?

Each /recommend response is an impression (`events/impressions`): its request_id, the recommender
version that ranked it, and the tmdb ids shown, in order. A feedback event answers an impression
when it names the same request_id, is positive (`events.is_positive`), is about a movie that was
shown, and arrives within `events.ANSWER_WINDOW_MIN` minutes after it. Per recommender version:

- hit_rate: share of responses with at least one answering positive;
- mrr: mean over responses of 1 / rank of the best-ranked answered movie (0 when none);
- coverage: distinct movies served / the movies the version can rank (catalog_size).

The report goes to reports/online/dt=YYYY-MM-DD/recommender.json and to W&B.

Impressions and feedback are joined as Arrow tables (`services.core.event_table`): one hash join on
request_id, the answers' ranks found in the flattened shown lists, figures per group with numpy.
`impressions.usable_impressions` and `version_metrics` take dicts for small callers (tests, the simulator).
"""

from __future__ import annotations

import logging
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from services.core import event_table, events
from services.core.storage import ObjectStore
from services.train.feedback.curated import TS_US
from services.train.feedback.impressions import (
    JOIN_SCHEMA,
    answer_feedback,
    answers,
    read_impressions,
    usable_table,
    with_time,
)
from services.train.schedule import window
from services.train.tracking import Tracker

log = logging.getLogger(__name__)

NO_VERSION = "none"  # impressions served with no recommender loaded
REPORT_NAME = "recommender.json"
MAX_BITMAP_ID = 50_000_000  # TMDB ids are ~1.6 * 10^6 today


def metrics_table(
    imps: pa.Table, feedback: pa.Table, window_minutes: int = events.ANSWER_WINDOW_MIN, by_cache: bool = False
) -> list[dict[str, Any]]:
    """Per-version and per-pool online metrics of usable impressions and curated feedback tables (pure).

    The "new for you" shelf (pool "new") is judged apart from the main list (pool "all"; impressions
    from before pools existed count as "all"): a shelf of unrated movies gets fewer hits, and mixing
    its responses in would lower the main list's figures for nothing it did. `by_cache` splits each
    row by whether the answer came from the user's precomputed list (`cached`: true or false).
    """
    if imps.num_rows == 0:
        return []
    best, found = answers(imps, feedback, window_minutes)
    return group_metrics(imps, best, found, by_cache)


def group_metrics(
    imps: pa.Table, best: np.ndarray, found: np.ndarray, by_cache: bool = False
) -> list[dict[str, Any]]:
    """`metrics_table`'s rows from the answers already found (`answers`): one join serves both splits."""
    if imps.num_rows == 0:
        return []
    version = pc.fill_null(imps["model_version"], NO_VERSION).combine_chunks().dictionary_encode()
    pool = pc.fill_null(imps["pool"], "all").combine_chunks().dictionary_encode()
    n_pool = len(pool.dictionary)
    group = version.indices.to_numpy().astype(np.int64) * n_pool + pool.indices.to_numpy()
    # Null (served before the cache existed, or the column absent) is a live answer: nothing was cached.
    cached = (
        pc.fill_null(imps["cached"], False).to_numpy(zero_copy_only=False).astype(np.int64)
        if by_cache and "cached" in imps.column_names
        else np.zeros(imps.num_rows, dtype=np.int64)
    )
    splits = 2 if by_cache else 1
    group = group * splits + cached
    fallback = pc.fill_null(imps["fallback"], False).to_numpy(zero_copy_only=False)
    catalog = imps["catalog_size"].to_numpy()
    out = []
    distinct_by_group = _distinct_items(imps["items"], group)
    for g in np.unique(group):
        rows = np.flatnonzero(group == g)
        n, hit = len(rows), best[rows] >= 0
        distinct = distinct_by_group[g]
        size = int(catalog[rows].max())
        vp = int(g) // splits
        out.append(
            {
                "version": version.dictionary[vp // n_pool].as_py(),
                "pool": pool.dictionary[vp % n_pool].as_py(),
                **({"cached": bool(g % 2)} if by_cache else {}),
                "responses": n,
                "hit_rate": float(hit.sum()) / n,
                "mrr": float((1.0 / (1 + best[rows][hit])).sum()) / n,
                "coverage": distinct / size if size else 0.0,
                "distinct_items": distinct,
                "catalog_size": size,
                "fallback_share": float(fallback[rows].sum()) / n,
                "positives": int(found[rows].sum()),
            }
        )
    return sorted(out, key=lambda r: (r["version"], r["pool"], r.get("cached", False)))


def _distinct_items(items: pa.ChunkedArray, group: np.ndarray, slice_rows: int = 200_000) -> dict[int, int]:
    """Per group id, how many distinct movies its impressions showed (a presence bitmap per group)."""
    top = pc.max(pc.list_flatten(items)).as_py() or 0
    groups = np.unique(group)
    if top > MAX_BITMAP_ID:  # an absurd id would make the bitmap huge: count by hashing instead
        return {int(g): pc.count_distinct(pc.list_flatten(items.take(pa.array(np.flatnonzero(group == g))))).as_py()
                for g in groups}  # fmt: skip
    seen = np.zeros((int(group.max()) + 1, top + 1), dtype=bool)  # tmdb ids are ~10^6: a few MB per group
    flat_all = items.combine_chunks() if isinstance(items, pa.ChunkedArray) else items
    for start in range(0, len(flat_all), slice_rows):
        part = flat_all.slice(start, slice_rows)  # slices bound the parent-index array's memory
        values = pc.fill_null(pc.list_flatten(part), 0).to_numpy(zero_copy_only=False)
        parent = pc.list_parent_indices(part).to_numpy(zero_copy_only=False)
        seen[group[start + parent], np.maximum(values, 0)] = True
    return {int(g): int(seen[g, 1:].sum()) for g in groups}


def version_metrics(
    impressions: list[dict[str, Any]],
    feedback: list[dict[str, Any]],
    window_minutes: int = events.ANSWER_WINDOW_MIN,
    by_cache: bool = False,
) -> list[dict[str, Any]]:
    """`metrics_table` on impressions and raw feedback events given as dicts (tests, the simulator)."""
    table, off = event_table.from_records(impressions, JOIN_SCHEMA)
    imps, _ = usable_table(event_table.DayTable(with_time(table), off))
    fb, _ = event_table.from_records(feedback, event_table.FEEDBACK_SCHEMA)
    fb = fb.append_column("positive", pa.array([events.is_positive(f) for f in fb.to_pylist()], pa.bool_()))
    fb = fb.append_column(TS_US, pa.array(event_table.timestamps_us(fb["ts"])))
    return metrics_table(imps, fb, window_minutes, by_cache)


def evaluate_online(
    store: ObjectStore, tracker: Tracker, logical_date: str, window_days: int = 0
) -> dict[str, Any]:
    """Evaluate the data day, and again the `window_days` before it that have impressions (late batches)."""
    redone = []
    for day in window(logical_date, window_days)[:-1]:
        if store.list(events.stream_prefix("impressions", day)):
            redone.append({"date": day, "impressions": _evaluate_day(store, tracker, day)["impressions"]})
    return {**_evaluate_day(store, tracker, logical_date), "window": redone}


def _evaluate_day(store: ObjectStore, tracker: Tracker, logical_date: str) -> dict[str, Any]:
    """Join the day's impressions with the feedback answering them; write the report, log it to W&B."""
    impressions, dropped = usable_table(read_impressions(store, logical_date))
    event_table.release_memory()
    feedback, valid_feedback = answer_feedback(store, logical_date)
    best, found = answers(impressions, feedback, events.ANSWER_WINDOW_MIN)
    report = {
        "date": logical_date,
        "window_minutes": events.ANSWER_WINDOW_MIN,
        "impressions": impressions.num_rows,
        "feedback_events": valid_feedback,
        "versions": group_metrics(impressions, best, found),
        # The same rows split by answers from the precomputed list (cached) and ranked live.
        "cache": group_metrics(impressions, best, found, by_cache=True),
    }
    key = events.report_key("online", logical_date, REPORT_NAME)
    store.put_json(key, report)
    if dropped:
        log.warning("online %s: %d impressions dropped (duplicate or malformed)", logical_date, dropped)
    if not impressions.num_rows:
        log.info("online %s: no impressions, nothing to evaluate (report %s)", logical_date, key)
        return {**report, "report": key}
    for v in report["versions"]:
        log.info("online %s version %s pool %s: %s", logical_date, v["version"], v["pool"], v)
    for v in report["cache"]:
        if v["cached"]:
            log.info(
                "online %s version %s pool %s cached answers: %s", logical_date, v["version"], v["pool"], v
            )
    config = {k: report[k] for k in ("date", "window_minutes", "impressions", "feedback_events")}
    with tracker.run(f"online-{logical_date}", config, group="online", job_type="evaluate") as run:
        run.summary(
            {
                f"{_run_key(v)}/{k}": x
                for v in report["versions"]
                for k, x in v.items()
                if k not in ("version", "pool")
            }
            | {
                f"{_run_key(v)}/{'cached' if v['cached'] else 'live'}/{k}": x
                for v in report["cache"]
                for k, x in v.items()
                if k not in ("version", "pool", "cached")
            }
        )
    return {**report, "report": key}


def _run_key(row: dict[str, Any]) -> str:
    # The main list keeps the version alone as its W&B key, as before pools existed.
    return row["version"] if row["pool"] == "all" else f"{row['version']}/{row['pool']}"
