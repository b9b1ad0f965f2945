"""The data day's curation steps: feedback and online evaluation over the re-curation window.

Both re-curate the data day and the RECURATION_DAYS before it (an idempotent overwrite), so batches
that reached S3 after their day's run (an S3 outage backlog, a replica restarted with a full spool)
still count, and both say which replicas may not have flushed the data day yet.
"""

from __future__ import annotations

from typing import Any

from services.core.events import report_key
from services.train.completeness import check_day
from services.train.context import Context


def collect_feedback_step(ctx: Context, day: str) -> dict[str, Any]:
    """Curate the window's feedback without erased users, rewrite older days that hold one, check flushes."""
    from services.train.erasure import erased_users, sweep_curated
    from services.train.feedback import collect_feedback
    from services.train.schedule import window

    erased = erased_users(ctx.store)
    summary = collect_feedback(ctx.store, day, window_days=ctx.settings.recuration_days, erased=erased)
    # The window's days were just curated without them; older days are rewritten when they hold one.
    swept = sweep_curated(ctx.store, erased, skip_days=tuple(window(day, ctx.settings.recuration_days)))
    verdict = check_day(ctx.store, day)
    ctx.store.put_json(report_key("events", day, "completeness.json"), verdict)
    return {**summary, "erasure": swept, "completeness": verdict}


def evaluate_online_step(ctx: Context, day: str) -> dict[str, Any]:
    """Online evaluation of the window's impressions, with the data day's completeness beside it."""
    from services.train.online_eval import evaluate_online

    summary = evaluate_online(ctx.store, ctx.tracker, day, window_days=ctx.settings.recuration_days)
    return {**summary, "completeness": check_day(ctx.store, day)["note"]}
