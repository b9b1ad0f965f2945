"""Replay the bundled snapshot like a live feed: a backfill first, then ~100 new releases a day."""

from __future__ import annotations

from collections.abc import Collection, Sequence
from typing import Any


def release_order(movies: Sequence[dict[str, Any]]) -> list[dict[str, Any]]:
    """Movies oldest release first; undated ones first of all (they cannot be placed in time)."""
    return sorted(movies, key=lambda m: (m.get("release_date") or "", int(m["id"])))


def next_batch(
    movies: Sequence[dict[str, Any]],
    seen_ids: Collection[int],
    *,
    holdback: int,
    daily: int,
) -> list[dict[str, Any]]:
    """What the feed delivers next, given the ids already stored.

    Against an empty store: every movie but the `holdback` most recent releases (the history a
    new deployment starts from). After that: the next `daily` unseen movies in release order,
    and an empty list once the snapshot is exhausted. Deterministic for a given store.
    """
    ordered = release_order(movies)
    if not seen_ids:
        return ordered[: max(len(ordered) - holdback, 0)]
    unseen = [m for m in ordered if int(m["id"]) not in seen_ids]
    return unseen[:daily]
