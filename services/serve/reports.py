"""Reports the DAG writes under reports/<what>/dt=…/ (online evaluation, later monitoring), read for the API.

Read from S3 at most every 30 s: a report is written once a day, and the UI polls.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from time import monotonic
from typing import Any

import anyio
from botocore.exceptions import BotoCoreError, ClientError
from fastapi import HTTPException, status

from services.core.events import REPORTS_PREFIX, report_key
from services.core.storage import ObjectNotFound, ObjectStore

log = logging.getLogger(__name__)

REPORTS_TTL_S = 30.0
FAILURE_TTL_S = 5.0


class ReportsUnavailable(RuntimeError):
    """S3 could not be read."""


def unavailable(exc: ReportsUnavailable) -> HTTPException:
    """The 503 every report route answers when S3 cannot be read, with when to come back."""
    return HTTPException(
        status.HTTP_503_SERVICE_UNAVAILABLE, detail=str(exc), headers={"Retry-After": str(int(FAILURE_TTL_S))}
    )


class ReportReader:
    """The most recent days of one kind of daily report, cached briefly (a rerun may rewrite recent days)."""

    def __init__(
        self, store: ObjectStore, ttl_s: float = REPORTS_TTL_S, clock: Callable[[], float] = monotonic
    ):
        self.store = store
        self.ttl_s = ttl_s
        self.clock = clock
        self._cache: dict[tuple[str, str, int], tuple[float, list[dict[str, Any]] | None, str | None]] = {}
        self._lock = threading.Lock()
        self.limiter = anyio.CapacityLimiter(1)  # waiting requests hold no worker thread (see history.py)

    def recent(self, what: str, name: str, days: int) -> list[dict[str, Any]]:
        """The last `days` reports of a kind, oldest first; ReportsUnavailable when S3 cannot be read."""
        key = (what, name, days)
        with self._lock:
            cached = self._cache.get(key)
            if cached is None or self.clock() >= cached[0]:
                cached = self._read(what, name, days)
                self._cache[key] = cached
        _, reports, error = cached
        if reports is None:
            raise ReportsUnavailable(error or "reports unavailable")
        return reports

    def page(self, what: str, day: str, name: str) -> bytes | None:
        """One stored report file as bytes (not cached: pages are megabytes and rarely opened); None if absent."""
        try:
            return self.store.get_bytes(report_key(what, day, name))
        except ObjectNotFound:
            return None
        except (BotoCoreError, ClientError, OSError) as exc:
            log.warning("%s report %s for %s unavailable: %s", what, name, day, exc)
            raise ReportsUnavailable("reports on S3 cannot be read right now; try again shortly") from exc

    def _read(self, what: str, name: str, days: int) -> tuple[float, list[dict[str, Any]] | None, str | None]:
        try:
            dates = [d[3:] for d in self.store.list_dirs(f"{REPORTS_PREFIX}/{what}") if d.startswith("dt=")]
            reports: list[dict[str, Any]] = []
            for day in sorted(dates, reverse=True):  # newest first, until enough days have this report
                if len(reports) == days:
                    break
                try:
                    reports.append(self.store.get_json(report_key(what, day, name)))
                except ObjectNotFound:
                    continue  # that day's task wrote other reports, not this one
                except ValueError as exc:
                    log.warning("skipping unreadable report %s for %s: %s", what, day, exc)
        except (BotoCoreError, ClientError, OSError) as exc:
            log.warning("%s reports unavailable: %s: %s", what, type(exc).__name__, exc)
            error = f"reports on S3 cannot be read right now ({type(exc).__name__}); try again shortly"
            return self.clock() + FAILURE_TTL_S, None, error
        return self.clock() + self.ttl_s, reports[::-1], None
