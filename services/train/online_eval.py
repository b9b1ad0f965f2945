"""Online evaluation: did the people shown recommendations like what they were shown?

Each /recommend response is an impression (`events/impressions`): its request_id, the recommender
version that ranked it, and the tmdb ids shown, in order. A feedback event answers an impression
when it names the same request_id, is positive (`events.is_positive`), is about a movie that was
shown, and arrives within `events.ANSWER_WINDOW_MIN` minutes after it. Per recommender version:

- hit_rate: share of responses with at least one answering positive;
- mrr: mean over responses of 1 / rank of the best-ranked answered movie (0 when none);
- coverage: distinct movies served / the movies the version can rank (catalog_size).

The report goes to reports/online/dt=YYYY-MM-DD/recommender.json and to W&B.
"""

from __future__ import annotations

import logging
from collections import defaultdict
from datetime import date, timedelta
from typing import Any

from services.core import events
from services.core.storage import ObjectStore
from services.train.feedback import event_time, read_curated_day
from services.train.schedule import window
from services.train.tracking import Tracker

log = logging.getLogger(__name__)

NO_VERSION = "none"  # impressions served with no recommender loaded
REPORT_NAME = "recommender.json"


def _usable(r: Any) -> bool:
    if not isinstance(r, dict) or not isinstance(r.get("request_id"), str) or not r["request_id"]:
        return False
    items, size = r.get("items"), r.get("catalog_size")
    return (
        event_time(r.get("ts")) is not None
        and isinstance(items, list)
        and all(isinstance(t, int) for t in items)
        and isinstance(size, int)
        and size >= 0
    )


def usable_impressions(records: list[Any]) -> tuple[list[dict[str, Any]], int]:
    """Impressions fit to join, one per request_id (the earliest wins), and how many were dropped."""
    by_request: dict[str, dict[str, Any]] = {}
    for r in filter(_usable, records):
        when = event_time(r["ts"])
        known = by_request.get(r["request_id"])
        if known is None or when < event_time(known["ts"]):
            by_request[r["request_id"]] = r
    return list(by_request.values()), len(records) - len(by_request)


def answers(
    impression: dict[str, Any], feedback: list[dict[str, Any]], window_minutes: int = events.ANSWER_WINDOW_MIN
) -> list[dict[str, Any]]:
    """The positive feedback events that answer one impression (same request, shown movie, in time)."""
    shown = set(impression["items"])
    start = event_time(impression["ts"])
    if start is None:
        return []
    end = start + timedelta(minutes=window_minutes)
    out = []
    for f in feedback:
        if f.get("request_id") != impression["request_id"] or f["tmdb_id"] not in shown:
            continue
        when = event_time(f["ts"])
        if when is not None and start <= when <= end and events.is_positive(f):
            out.append(f)
    return out


def version_metrics(
    impressions: list[dict[str, Any]],
    feedback: list[dict[str, Any]],
    window_minutes: int = events.ANSWER_WINDOW_MIN,
) -> list[dict[str, Any]]:
    """Per-version and per-pool online metrics of impressions joined with the feedback answering them (pure).

    The "new for you" shelf (pool "new") is judged apart from the main list (pool "all"; impressions
    from before pools existed count as "all"): a shelf of unrated movies gets fewer hits, and mixing
    its responses in would lower the main list's figures for nothing it did.
    """
    by_request: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for f in feedback:
        if f.get("request_id"):
            by_request[f["request_id"]].append(f)
    groups: dict[tuple[str, str], list[dict[str, Any]]] = defaultdict(list)
    for imp in impressions:
        groups[(imp.get("model_version") or NO_VERSION, imp.get("pool") or "all")].append(imp)
    out = []
    for version, pool in sorted(groups):
        rows = groups[(version, pool)]
        hits, reciprocal, positives, fallbacks = 0, 0.0, 0, 0
        served: set[int] = set()
        for imp in rows:
            items = imp["items"]
            served.update(items)
            fallbacks += bool(imp.get("fallback"))
            found = answers(imp, by_request.get(imp["request_id"], []), window_minutes)
            positives += len(found)
            if found:
                hits += 1
                answered = {f["tmdb_id"] for f in found}
                reciprocal += 1.0 / (1 + min(i for i, t in enumerate(items) if t in answered))
        catalog = max(imp["catalog_size"] for imp in rows)
        n = len(rows)
        out.append(
            {
                "version": version,
                "pool": pool,
                "responses": n,
                "hit_rate": hits / n,
                "mrr": reciprocal / n,
                "coverage": len(served) / catalog if catalog else 0.0,
                "distinct_items": len(served),
                "catalog_size": catalog,
                "fallback_share": fallbacks / n,
                "positives": positives,
            }
        )
    return out


def answer_feedback(store: ObjectStore, day: str) -> list[dict[str, Any]]:
    """Valid, deduplicated feedback of a day and the next one (answers to late impressions land after midnight)."""
    following = (date.fromisoformat(day) + timedelta(days=1)).isoformat()
    seen: set[str] = set()
    out = []
    for d in (day, following):
        # request_id is kept here only: the training interactions do not need it.
        for row in read_curated_day(store, d, keep=("request_id", "position")).interactions:
            if row["event_id"] not in seen:
                seen.add(row["event_id"])
                out.append(row)
    return out


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
    impressions, dropped = usable_impressions(events.read_day(store, "impressions", logical_date))
    feedback = answer_feedback(store, logical_date)
    report = {
        "date": logical_date,
        "window_minutes": events.ANSWER_WINDOW_MIN,
        "impressions": len(impressions),
        "feedback_events": len(feedback),
        "versions": version_metrics(impressions, feedback),
    }
    key = events.report_key("online", logical_date, REPORT_NAME)
    store.put_json(key, report)
    if dropped:
        log.warning("online %s: %d impressions dropped (duplicate or malformed)", logical_date, dropped)
    if not impressions:
        log.info("online %s: no impressions, nothing to evaluate (report %s)", logical_date, key)
        return {**report, "report": key}
    for v in report["versions"]:
        log.info("online %s version %s pool %s: %s", logical_date, v["version"], v["pool"], v)
    config = {k: report[k] for k in ("date", "window_minutes", "impressions", "feedback_events")}
    with tracker.run(f"online-{logical_date}", config, group="online", job_type="evaluate") as run:
        run.summary(
            {
                f"{_run_key(v)}/{k}": x
                for v in report["versions"]
                for k, x in v.items()
                if k not in ("version", "pool")
            }
        )
    return {**report, "report": key}


def _run_key(row: dict[str, Any]) -> str:
    # The main list keeps the version alone as its W&B key, as before pools existed.
    return row["version"] if row["pool"] == "all" else f"{row['version']}/{row['pool']}"
