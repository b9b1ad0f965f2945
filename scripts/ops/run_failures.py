"""Print the task ids that failed in an `airflow dags test` run, one per line (nothing when none did).

Usage: python -m scripts.ops.run_failures LOGFILE — reads the run id from the log's "Created dag run"
line, like airflow_fail_run.py. pipeline.sh uses it to tell a bad day (only `alert` failed) from a broken
run.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from scripts.ops.airflow_fail_run import run_in_log


def main() -> int:
    """Print the failed (or upstream-failed) task ids of the run named in the log."""
    parser = argparse.ArgumentParser(
        prog="python -m scripts.ops.run_failures", description=__doc__.splitlines()[0]
    )
    parser.add_argument("log", type=Path)
    args = parser.parse_args()
    found = run_in_log(args.log)
    if found is None:
        print("unknown")  # no run was created: a broken run, whatever its tasks
        return 0
    dag_id, run_id = found
    from airflow.models.dagrun import DagRun
    from airflow.utils.session import create_session
    from airflow.utils.state import TaskInstanceState

    bad = (TaskInstanceState.FAILED, TaskInstanceState.UPSTREAM_FAILED)
    with create_session() as session:
        run = session.query(DagRun).filter(DagRun.dag_id == dag_id, DagRun.run_id == run_id).one_or_none()
        if run is None:
            print("unknown")
            return 0
        for ti in run.get_task_instances(session=session):
            if ti.state in bad:
                print(ti.task_id)
    return 0


if __name__ == "__main__":
    sys.exit(main())
