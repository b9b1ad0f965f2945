"""The movies' steps: collect the data day's movies, then validate every partition into curated records.

The DAG (dags/movie_pipeline.py) calls these; each reads and writes S3 and returns keys for XCom.
"""

from __future__ import annotations

import logging
from datetime import date
from typing import Any

from services.core.movie import normalize_movie
from services.train import raw_store
from services.train.context import Context
from services.train.movies import validate as checks
from services.train.movies.collect import collect as collect_movies
from services.train.raw_store import day_key

log = logging.getLogger(__name__)


def collect(ctx: Context, logical_date: str) -> dict[str, Any]:
    """Today's movies into raw/tmdb/dt=<date>/."""
    return collect_movies(ctx.settings, ctx.store, logical_date)


def validate(ctx: Context, logical_date: str) -> dict[str, Any]:
    """Union of raw partitions -> normalised, checked records; bad rows quarantined with reasons."""
    raw, partitions = raw_store.load_union(ctx.store, until=logical_date)
    records, unreadable = [], []
    for movie in raw:
        try:
            records.append(normalize_movie(movie))
        except (KeyError, TypeError, ValueError) as exc:
            unreadable.append({"reason": f"unreadable record: {exc}", "record": movie})
    report = checks.validate(records, today=date.fromisoformat(logical_date))
    report.quarantined.extend(unreadable)
    raw_store.write_jsonl(ctx.store, day_key("quarantine", logical_date, "rows.jsonl.gz"), report.quarantined)
    summary = {
        "date": logical_date,
        "partitions": partitions,
        "rows": len(records) + len(unreadable),
        "good": len(report.good),
        "quarantined": len(report.quarantined),
        "reasons": report.reasons,
    }
    ctx.store.put_json(day_key("quarantine", logical_date, "report.json"), summary)
    log.info(
        "validation: %d good, %d quarantined %s", len(report.good), len(report.quarantined), report.reasons
    )
    checks.enforce(report, ctx.settings.max_bad_row_fraction)
    key = day_key("curated", logical_date, "movies.jsonl.gz")
    raw_store.write_jsonl(ctx.store, key, report.good)
    return {**summary, "curated": key}
