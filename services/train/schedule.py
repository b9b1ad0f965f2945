"""What day a pipeline run processes: the data day, stated once for the DAG, the scripts and the tests.

The DAG runs on `CronTriggerTimetable("0 0 * * *", interval=1 day)`. The run the scheduler fires at
2026-12-03T00:00Z has the data interval [12-02 00:00, 12-03 00:00) (and, in Airflow 3.3, the logical
date 12-02, the interval's start):
it processes the **data day** 2026-12-02, the day that has just ended. Every task of the run (TMDB
collection, feedback, impressions, predictions, online evaluation, live error, drift) reads and
writes that day's partitions (`dt=2026-12-02`).

A run triggered by hand at 14:35 gets the interval [yesterday 14:35, today 14:35) and processes
yesterday; `./scripts/pipeline.sh --date D` runs data day D (it passes the logical date D + 1).
"""

from __future__ import annotations

from datetime import date, datetime, timedelta

DATA_INTERVAL = timedelta(days=1)


def data_day(data_interval_start: datetime | None, run_after: datetime | None) -> str:
    """The data day (YYYY-MM-DD) of a run: its data interval's first day, else the day before it ran."""
    if data_interval_start is not None:
        return data_interval_start.strftime("%Y-%m-%d")
    if run_after is None:
        raise ValueError("a run with neither a data interval nor a run_after time has no data day")
    return (run_after - DATA_INTERVAL).strftime("%Y-%m-%d")


def logical_date_for(day: str) -> str:
    """The date to give `airflow dags test` for data day `day`: its inferred interval is [day, day + 1)."""
    return (date.fromisoformat(day) + DATA_INTERVAL).isoformat()


def window(day: str, days_back: int) -> list[str]:
    """The data day and the `days_back` days before it, oldest first (the re-curation window)."""
    end = date.fromisoformat(day)
    return [(end - timedelta(days=n)).isoformat() for n in range(max(days_back, 0), -1, -1)]
