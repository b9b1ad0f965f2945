"""The monitoring gauges, kept in step with the DAG's latest alert verdict (reports/alerts/dt=…/alert.json).

A background loop re-reads the verdict every minute, off the scrape path: a slow or unreachable S3 must never
make a Prometheus scrape of /metrics time out.
"""

from __future__ import annotations

import logging
from typing import Any

import anyio

from services.serve.metrics import ServeMetrics
from services.serve.reports import ReportReader, ReportsUnavailable

log = logging.getLogger(__name__)

REFRESH_S = 60.0


def set_gauges(metrics: ServeMetrics, verdict: dict[str, Any]) -> None:
    """Show one day's verdict: live and validation RMSE of its version, drift shares, alert reasons."""
    version = str(verdict.get("model_version"))
    for gauge, value in ((metrics.live_rmse, verdict.get("live_rmse")),
                         (metrics.validation_rmse, verdict.get("validation_rmse"))):  # fmt: skip
        gauge.clear()
        if value is not None:
            gauge.labels("rating", version).set(float(value))
    metrics.drift_share.clear()
    for comparison, share in (verdict.get("drift_share") or {}).items():
        metrics.drift_share.labels(comparison).set(float(share))
    metrics.alert.clear()
    metrics.alert.labels("any").set(1 if verdict.get("alert") else 0)
    for reason in verdict.get("reasons") or []:
        metrics.alert.labels(str(reason.get("reason"))).set(1)


def refresh(metrics: ServeMetrics, reports: ReportReader) -> None:
    """Read the latest verdict and show it (nothing changes when there is none yet)."""
    latest = reports.recent("alerts", "alert.json", 1)
    if latest:
        set_gauges(metrics, latest[-1])


async def keep_fresh(metrics: ServeMetrics, reports: ReportReader, every_s: float = REFRESH_S) -> None:
    """Refresh the gauges now and then every `every_s` seconds, until cancelled."""
    while True:
        try:
            await anyio.to_thread.run_sync(refresh, metrics, reports, limiter=reports.limiter)
        except ReportsUnavailable as exc:
            log.warning("monitoring gauges not refreshed: %s", exc)
        await anyio.sleep(every_s)
