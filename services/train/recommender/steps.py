"""The recommender's steps: train and publish on MovieLens plus the curated feedback, then precompute users' lists."""

from __future__ import annotations

from typing import Any

from services.train import raw_store
from services.train.context import Context
from services.train.feedback.curated import load_curated_feedback
from services.train.recommender.precompute import precompute_recs as precompute
from services.train.recommender.task import run_recommender_task


def train_recommender(ctx: Context, day: str, validated: dict[str, Any]) -> dict[str, Any]:
    """Baselines and SASRec on every curated interaction up to the day; publish (or start a canary of) the winner."""
    return run_recommender_task(
        ctx.settings, ctx.registry, ctx.tracker,
        logical_date=day, max_epochs=ctx.settings.recommender_max_epochs,
        feedback=load_curated_feedback(ctx.store, day),
        collected=raw_store.read_jsonl(ctx.store, validated["curated"]),
    )  # fmt: skip


def precompute_recs(ctx: Context, day: str) -> dict[str, Any]:
    """Top-k for every user active in PRECOMPUTE_DAYS: to recs/dt=…/ on S3 and into the user store."""
    return precompute(ctx.settings, ctx.store, day)
