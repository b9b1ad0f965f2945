"""Whether a day's events are all in S3: each replica's flush watermark against the end of the day."""

from __future__ import annotations

from services.train.feedback.completeness import completeness

DAY = "2026-12-02"


def _mark(replica: str, complete_before: str, updated_at: str | None = None) -> dict[str, str]:
    return {"replica_id": replica, "epoch": "e1", "updated_at": updated_at or complete_before,
            "complete_before": complete_before}  # fmt: skip


def test_a_day_is_complete_once_every_replica_has_flushed_past_its_end() -> None:
    verdict = completeness(
        [_mark("api-1", "2026-12-03T00:00:02.000Z"), _mark("api-2", "2026-12-03T00:10:00.000Z")], DAY
    )
    assert verdict["complete"] is True and verdict["behind"] == []
    assert "every replica" in verdict["note"]


def test_a_replica_still_holding_events_of_the_day_is_named() -> None:
    # api-2 still has an event of 23:59 in its spool (S3 down): its batches of the day may be missing.
    marks = [
        _mark("api-1", "2026-12-03T00:00:02.000Z"),
        _mark("api-2", "2026-12-02T23:59:00.000Z", "2026-12-03T00:05:00.000Z"),
    ]
    verdict = completeness(marks, DAY)
    assert verdict["complete"] is False and verdict["behind"] == ["api-2"]
    assert "api-2" in verdict["note"] and "may still be missing" in verdict["note"]


def test_with_no_watermark_at_all_the_verdict_says_it_cannot_tell() -> None:
    verdict = completeness([], DAY)
    assert verdict["complete"] is False and "cannot tell" in verdict["note"]


def test_a_replica_retired_weeks_ago_is_not_flagged_forever() -> None:
    marks = [_mark("api-1", "2026-12-03T00:00:02.000Z"), _mark("old-replica", "2026-11-01T10:00:00.000Z")]
    verdict = completeness(marks, DAY)
    assert verdict["complete"] is True and "old-replica" not in verdict["replicas"]


def test_an_unreadable_watermark_is_skipped_not_fatal() -> None:
    verdict = completeness([{"replica_id": "x"}, _mark("api-1", "2026-12-03T00:00:02.000Z")], DAY)
    assert verdict["complete"] is True and list(verdict["replicas"]) == ["api-1"]
