"""The feedback's steps: curate the data day's feedback, then evaluate what was served, over the re-curation window.

Both re-curate the data day and the RECURATION_DAYS before it (an idempotent overwrite), so batches
that reached S3 after their day's run (an S3 outage backlog, a replica restarted with a full spool)
still count, and both say which replicas may not have flushed the data day yet.
"""

from __future__ import annotations

from typing import Any

from services.core.events import report_key
from services.train.context import Context
from services.train.feedback import curate, online_eval
from services.train.feedback.completeness import check_day
from services.train.feedback.erasure import erased_users, sweep_curated
from services.train.schedule import window


def collect_feedback(ctx: Context, day: str) -> dict[str, Any]:
    """Curate the window's feedback without erased users, rewrite older days that hold one, check flushes."""
    erased = erased_users(ctx.store)
    summary = curate.collect_feedback(ctx.store, day, window_days=ctx.settings.recuration_days, erased=erased)
    # The window's days were just curated without them; older days are rewritten when they hold one.
    swept = sweep_curated(ctx.store, erased, skip_days=tuple(window(day, ctx.settings.recuration_days)))
    verdict = check_day(ctx.store, day)
    ctx.store.put_json(report_key("events", day, "completeness.json"), verdict)
    return {**summary, "erasure": swept, "completeness": verdict}


def evaluate_online(ctx: Context, day: str) -> dict[str, Any]:
    """Online evaluation of the window's impressions, with the data day's completeness beside it."""
    summary = online_eval.evaluate_online(
        ctx.store, ctx.tracker, day, window_days=ctx.settings.recuration_days
    )
    return {**summary, "completeness": check_day(ctx.store, day)["note"]}
