"""Bad days: live error above the margin or too many drifted features, said where people look.

The verdict goes to reports/alerts/dt=YYYY-MM-DD/alert.json (the API turns it into Prometheus gauges),
to a Slack-style webhook when ALERT_WEBHOOK_URL is set, and to the DAG's `alert` task, which fails.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

import httpx

from services.core.events import report_key
from services.core.settings import Settings
from services.core.storage import ObjectNotFound, ObjectStore

log = logging.getLogger(__name__)


class AlertRaised(RuntimeError):
    """The day is marked bad; the message says why."""


def assess(settings: Settings, logical_date: str, live: dict[str, Any] | None,
           drift: dict[str, Any] | None) -> dict[str, Any]:  # fmt: skip
    """The day's verdict from its live-error and drift reports, against the thresholds in settings."""
    reasons: list[dict[str, str]] = []
    live = live or {}
    window, validation = live.get("window") or {}, live.get("validation_rmse")
    live_rmse = window.get("rmse")
    # Judged only on enough new movies: a 7-day window of a handful of movies says little.
    judged = live_rmse is not None and validation is not None
    judged = judged and window.get("count", 0) >= settings.alert_live_min_count
    if judged and live_rmse > validation + settings.alert_rmse_margin:
        reasons.append({"reason": "live_rmse", "message": (
            f"live RMSE {live_rmse:.3f} over the last {window.get('days_back')} days ({window['count']} new "
            f"movies) exceeds validation RMSE {validation:.3f} by more than {settings.alert_rmse_margin}"
        )})  # fmt: skip
    shares = {}
    judged_drift = {c.strip() for c in settings.alert_drift_comparisons.split(",") if c.strip()}
    for name, comparison in ((drift or {}).get("comparisons") or {}).items():
        if comparison.get("status") != "ok":
            continue
        shares[name] = comparison["share"]
        if name in judged_drift and comparison["share"] > settings.alert_drift_share:
            reasons.append({"reason": f"drift_{name}", "message": (
                f"{len(comparison['drifted'])} of {len(comparison['features'])} features drifted in {name} "
                f"({', '.join(comparison['drifted'])}): share {comparison['share']:.2f} > {settings.alert_drift_share}"
            )})  # fmt: skip
    return {
        "date": logical_date,
        "alert": bool(reasons),
        "reasons": reasons,
        "model_version": live.get("model_version") or (drift or {}).get("model_version"),
        "live_rmse": live_rmse,
        "live_count": window.get("count", 0),
        "validation_rmse": validation,
        "drift_share": shares,
        "thresholds": {
            "rmse_margin": settings.alert_rmse_margin,
            "live_min_count": settings.alert_live_min_count,
            "drift_share": settings.alert_drift_share,
            "drift_comparisons": sorted(judged_drift),
        },
    }


def webhook_message(verdict: dict[str, Any]) -> dict[str, Any]:
    """A body Slack-style incoming webhooks accept: `text` (mrkdwn), with the verdict alongside."""
    lines = [
        f":rotating_light: *movie-intel*: {verdict['date']} needs a look (model {verdict['model_version']})"
    ]
    lines += [f"• {r['message']}" for r in verdict["reasons"]]
    return {"text": "\n".join(lines), "verdict": verdict}


def _read(store: ObjectStore, key: str) -> dict[str, Any] | None:
    try:
        return store.get_json(key)
    except ObjectNotFound:
        return None


def raise_alerts(
    store: ObjectStore,
    settings: Settings,
    logical_date: str,
    post: Callable[..., httpx.Response] = httpx.post,
) -> dict[str, Any]:
    """Judge the day, store the verdict, notify; AlertRaised when the day is bad."""
    live = _read(store, report_key("rating", logical_date, "live.json"))
    drift = _read(store, report_key("drift", logical_date, "summary.json"))
    verdict = assess(settings, logical_date, live, drift)
    if verdict["alert"] and settings.alert_webhook_url is not None:
        verdict["webhook"] = _notify(settings.alert_webhook_url.get_secret_value(), verdict, post)
    store.put_json(report_key("alerts", logical_date, "alert.json"), verdict)
    if verdict["alert"]:
        message = "; ".join(r["message"] for r in verdict["reasons"])
        log.error("ALERT for %s: %s", logical_date, message)
        raise AlertRaised(message)
    log.info("no alert for %s: live RMSE %s (validation %s), drift shares %s", logical_date,
             verdict["live_rmse"], verdict["validation_rmse"], verdict["drift_share"])  # fmt: skip
    return verdict


def _notify(url: str, verdict: dict[str, Any], post: Callable[..., httpx.Response]) -> str:
    # The URL is a secret (it carries the webhook's token): logged by outcome only, never by value.
    try:
        response = post(url, json=webhook_message(verdict), timeout=10.0)
        response.raise_for_status()
    except httpx.HTTPError as exc:
        log.error("alert webhook failed (%s): the alert task still fails and says why", type(exc).__name__)
        return f"failed: {type(exc).__name__}"
    return "sent"
