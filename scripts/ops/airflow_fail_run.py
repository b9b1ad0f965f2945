"""Mark an interrupted `airflow dags test` run as failed, so it does not count as active forever.

Usage: python -m scripts.ops.airflow_fail_run LOGFILE — reads the run id from the log's "Created dag run"
line.
"""

from __future__ import annotations

import argparse
import re
import sys
from pathlib import Path

RUN = re.compile(r"<DagRun (\w+) @ .*?: ((?:manual|scheduled|backfill|asset_triggered)__\S+?), state:")


def run_in_log(log: Path) -> tuple[str, str] | None:
    """(dag_id, run_id) of the run an `airflow dags test` log created, or None when it created none."""
    match = RUN.search(log.read_text(errors="replace"))
    return (match.group(1), match.group(2)) if match else None


def main() -> int:
    """Find the run in the log and set it (and its unfinished tasks) to failed."""
    parser = argparse.ArgumentParser(
        prog="python -m scripts.ops.airflow_fail_run", description=__doc__.splitlines()[0]
    )
    parser.add_argument("log", type=Path)
    args = parser.parse_args()
    found = run_in_log(args.log)
    if found is None:
        return 0
    dag_id, run_id = found
    from airflow.models.dagrun import DagRun
    from airflow.utils.session import create_session
    from airflow.utils.state import DagRunState, TaskInstanceState

    with create_session() as session:
        run = session.query(DagRun).filter(DagRun.dag_id == dag_id, DagRun.run_id == run_id).one_or_none()
        if run is None or run.state != DagRunState.RUNNING:
            return 0
        for ti in run.get_task_instances(session=session):
            if ti.state not in (
                TaskInstanceState.SUCCESS,
                TaskInstanceState.FAILED,
                TaskInstanceState.SKIPPED,
            ):
                ti.state = TaskInstanceState.FAILED
        run.state = DagRunState.FAILED
    print(f"marked {dag_id} {run_id} as failed")
    return 0


if __name__ == "__main__":
    sys.exit(main())
