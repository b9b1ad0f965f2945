"""The data day a run processes: the day that has just ended, for scheduled, manual and scripted runs."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from services.train.schedule import data_day, logical_date_for, window


def _utc(*args: int) -> datetime:
    return datetime(*args, tzinfo=UTC)


def test_the_midnight_run_processes_the_day_that_just_ended() -> None:
    # Fired at 2026-12-03T00:00Z, data interval [12-02, 12-03): the finished day, not the one just begun.
    assert data_day(_utc(2026, 12, 2), _utc(2026, 12, 3)) == "2026-12-02"


def test_a_manual_run_processes_the_day_before_it_was_triggered() -> None:
    assert data_day(_utc(2026, 12, 2, 14, 35), _utc(2026, 12, 3, 14, 35)) == "2026-12-02"
    assert data_day(None, _utc(2026, 12, 3, 14, 35)) == "2026-12-02"  # a run with no data interval


def test_a_run_with_no_time_at_all_is_refused() -> None:
    with pytest.raises(ValueError, match="no data day"):
        data_day(None, None)


def test_pipeline_sh_date_and_the_scheduled_logical_date_agree() -> None:
    assert logical_date_for("2026-12-31") == "2027-01-01"
    assert data_day(_utc(2026, 12, 31), _utc(2027, 1, 1)) == "2026-12-31"


def test_the_recuration_window_ends_on_the_data_day() -> None:
    assert window("2026-03-01", 3) == ["2026-02-26", "2026-02-27", "2026-02-28", "2026-03-01"]
    assert window("2026-03-01", 0) == ["2026-03-01"]
