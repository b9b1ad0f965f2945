"""The app's feedback as extra training sequences for the recommender (docs/recommender.md).

A like, a watched mark or a rating of at least 3.5 stars is a positive interaction
(`events.is_positive`); a dislike or a lower rating never is. Each app user becomes a user of
their own, `fb:<user_id>`, so they never merge with a MovieLens user. Their positives, in time
order and once per movie, are training-only: they join `train_sequences()` and the popularity
counts, never the leave-one-out inputs or targets, so the offline evaluation of the MovieLens
users stays exactly comparable from one run to the next.
"""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Collection, Iterable
from dataclasses import dataclass, replace
from typing import Any

import numpy as np

from services.core import events
from services.train.feedback.curated import event_time
from services.train.recommender.data import SequenceSplits

log = logging.getLogger(__name__)

FEEDBACK_USER_PREFIX = "fb:"


@dataclass(frozen=True)
class FeedbackRow:
    """One positive (user, movie) interaction from the app: the earliest positive event wins."""

    user_id: str  # prefixed with FEEDBACK_USER_PREFIX
    tmdb_id: int
    ts: str


def positive_rows(feedback: Iterable[dict[str, Any]]) -> list[FeedbackRow]:
    """Positive curated feedback, one row per (user, movie), sorted by user, time, then a hash of both ids."""
    # Events of one request share a timestamp: among them, the protocol's uninformative hash order
    # (as for same-second MovieLens ratings), never the tmdb id, which a model would learn.
    ordered = sorted(
        (r for r in feedback if events.is_positive(r)),
        key=lambda r: (
            r["user_id"],
            event_time(r["ts"]),
            _tie(r["user_id"], int(r["tmdb_id"])),
            r["event_id"],
        ),
    )
    seen: set[tuple[str, int]] = set()
    out = []
    for r in ordered:
        pair = (r["user_id"], int(r["tmdb_id"]))
        if pair not in seen:  # a second like of the same movie adds no new interaction
            seen.add(pair)
            out.append(FeedbackRow(FEEDBACK_USER_PREFIX + r["user_id"], int(r["tmdb_id"]), r["ts"]))
    return out


def _tie(user_id: str, tmdb_id: int) -> int:
    return int(hashlib.sha256(f"{user_id}:{tmdb_id}".encode()).hexdigest()[:16], 16)


def combined_fingerprint(movielens: str, rows: list[FeedbackRow]) -> str:
    """The dataset fingerprint: MovieLens's alone without feedback, else sha256 of both tables."""
    if not rows:
        return movielens
    csv = "user_id,tmdb_id,ts\n" + "".join(f"{r.user_id},{r.tmdb_id},{r.ts}\n" for r in rows)
    return hashlib.sha256(f"movielens:{movielens}\nfeedback:\n{csv}".encode()).hexdigest()


def with_feedback(
    splits: SequenceSplits, feedback: Iterable[dict[str, Any]], catalog: Collection[int] = ()
) -> tuple[SequenceSplits, dict[str, int]]:
    """The splits with the feedback users' sequences added for training only, and what went in.

    A liked movie outside MovieLens but in ``catalog`` (a new release from the "new" shelf)
    joins the item index after the protocol's items, so the next model trains on it.
    """
    rows = positive_rows(feedback)
    index = {int(t): i + 1 for i, t in enumerate(splits.item_ids)}
    added = sorted({r.tmdb_id for r in rows if r.tmdb_id not in index and r.tmdb_id in catalog})
    for t in added:
        index[t] = len(index) + 1
    # Movies outside the item index and the catalog cannot be trained on: nothing describes them.
    known = [r for r in rows if r.tmdb_id in index]
    by_user: dict[str, list[int]] = {}
    for r in known:
        by_user.setdefault(r.user_id, []).append(index[r.tmdb_id])
    users = tuple(by_user)
    info = {
        "feedback_interactions": len(known),
        "feedback_users": len(users),
        "feedback_unknown_items": len(rows) - len(known),
        "feedback_new_items": len(added),
        # Sequences of one movie add to popularity only: there is no next movie to predict.
        "feedback_train_targets": sum(len(s) - 1 for s in by_user.values()),
    }
    if rows:
        log.info("feedback for the recommender: %s", info)
    out = replace(
        splits,
        item_ids=np.r_[splits.item_ids, np.asarray(added, dtype=np.int64)],
        extra_items=splits.extra_items + len(added),
        extra_train=tuple(np.array(by_user[u], dtype=np.int64) for u in users),
        extra_user_ids=users,
        fingerprint=combined_fingerprint(splits.fingerprint, known),
    )
    return out, info
