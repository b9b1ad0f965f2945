"""Monitoring's steps: the production rating model's live error, the day's drift, and the alert they may raise.

They run before anything is published, so "production" is what users were served during the data day.
"""

from __future__ import annotations

from typing import Any

from services.train.context import Context
from services.train.monitoring import alerts, live_eval
from services.train.monitoring import monitor as drift_check


def evaluate_live(ctx: Context, day: str) -> dict[str, Any]:
    """Production's RMSE and MAE on the day's new labelled movies (and the reference recipe's, and the shadow's)."""
    return live_eval.evaluate_live(ctx, day)


def monitor(ctx: Context, day: str) -> dict[str, Any]:
    """Evidently drift reports: the day's /predict inputs and new movies against the training features."""
    return drift_check.monitor(ctx, day)


def alert(ctx: Context, day: str) -> dict[str, Any]:
    """The day's verdict; raises alerts.AlertRaised (after posting to ALERT_WEBHOOK_URL) on a bad day."""
    return alerts.raise_alerts(ctx.store, ctx.settings, day)
