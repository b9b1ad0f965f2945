"""Whether a data day's events are all in S3 yet, from each replica's flush watermark.

Every API replica's flusher writes `events/_watermarks/<replica>.json` after each flush: every event it
accepted with a timestamp before `complete_before` is in S3. A day D is complete for a replica once its
`complete_before` has passed the end of D. A replica that is down, cut off from S3 or still uploading a
backlog shows as behind: its batches of D may still be missing, and the trailing re-curation window
(RECURATION_DAYS) picks them up when they land.
"""

from __future__ import annotations

import logging
from datetime import UTC, date, datetime, timedelta
from typing import Any

from services.core import events
from services.core.events import parse_ts
from services.core.storage import ObjectStore

log = logging.getLogger(__name__)

# A replica whose watermark stopped moving a week before the day began was retired (scaled down,
# renamed), not late: it is left out rather than flagged on every run forever.
RETIRED_AFTER = timedelta(days=7)


def _day_bounds(day: str) -> tuple[datetime, datetime]:
    start = datetime.combine(date.fromisoformat(day), datetime.min.time(), tzinfo=UTC)
    return start, start + timedelta(days=1)


def completeness(watermarks: list[dict[str, Any]], day: str) -> dict[str, Any]:
    """Per replica, whether its events of `day` are all in S3 (pure: watermarks in, verdict out)."""
    start, end = _day_bounds(day)
    replicas: dict[str, dict[str, Any]] = {}
    for mark in watermarks:
        try:
            replica, updated, done = (
                mark["replica_id"],
                parse_ts(mark["updated_at"]),
                parse_ts(mark["complete_before"]),
            )
        except (KeyError, TypeError, ValueError):
            log.warning("ignoring an unreadable flush watermark: %r", mark)
            continue
        if updated < start - RETIRED_AFTER:
            continue
        replicas[replica] = {
            "complete_before": mark["complete_before"],
            "updated_at": mark["updated_at"],
            "complete": done >= end,
        }
    behind = sorted(r for r, v in replicas.items() if not v["complete"])
    if not replicas:
        note = "no replica has reported a flush watermark: cannot tell whether batches are missing"
    elif behind:
        note = f"{', '.join(behind)} had not flushed all of {day} yet: its batches may still be missing"
    else:
        note = f"every replica has flushed all of {day}"
    return {
        "day": day,
        "complete": bool(replicas) and not behind,
        "behind": behind,
        "replicas": replicas,
        "note": note,
    }


def check_day(store: ObjectStore, day: str) -> dict[str, Any]:
    """Read every replica's watermark and judge the day; logs a warning when a replica is behind."""
    verdict = completeness(events.read_watermarks(store), day)
    (log.warning if not verdict["complete"] else log.info)("events of %s: %s", day, verdict["note"])
    for replica, v in sorted(verdict["replicas"].items()):
        log.info(
            "  replica %s: everything before %s is in S3 (watermark written %s)",
            replica, v["complete_before"], v["updated_at"],
        )  # fmt: skip
    return verdict
