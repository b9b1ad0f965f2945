"""Turn `airflow dags test` output into progress lines and a per-task timing table.

Reads Airflow's log on stdin, prints our services' log lines and each task as it finishes, and at
the end a table of task durations. The full log is kept by the caller.
"""

from __future__ import annotations

import argparse
import re
import sys
from datetime import datetime

TS = re.compile(r"^(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d+)Z")
OURS = re.compile(r"\[(?:info|warning|error)\s*\]\s(.*?)\s+\[(services\.[\w.]+)\]")
XCOM = re.compile(r"task_id='(\w+)'.*?start_date=datetime\.datetime\(([\d, ]+)")
FAILED = re.compile(r"Task failed with exception")
EXC = re.compile(r"^[\w.]*(Error|Exception|Failed|Interrupt)\b.*:")


def main() -> int:
    """Filter stdin; exit 0 always (the caller owns the exit status)."""
    argparse.ArgumentParser(prog="python -m scripts.ops.pipeline_progress", description=__doc__).parse_args()
    durations: dict[str, float] = {}
    show_next = 0
    for line in sys.stdin:
        ts_match = TS.match(line)
        ts = datetime.fromisoformat(ts_match.group(1)) if ts_match else None
        clock = ts.strftime("%H:%M:%S") if ts else "        "
        if m := OURS.search(line):
            print(f"{clock}  {m.group(1)}", flush=True)
        elif (m := XCOM.search(line)) and ts:
            parts = [int(p) for p in m.group(2).split(",") if p.strip()]
            started = datetime(*parts[:6], parts[6] if len(parts) > 6 else 0)
            durations[m.group(1)] = (ts - started).total_seconds()
            print(f"{clock}  ✓ {m.group(1)} done in {durations[m.group(1)]:.1f} s", flush=True)
        elif FAILED.search(line):
            print(f"{clock}  ✗ a task failed:", flush=True)
            show_next = 80
        elif show_next:
            show_next -= 1
            if EXC.match(line):
                print(f"          {line.rstrip()[:300]}", flush=True)
                show_next = 0
    if durations:
        print("\ntask                        seconds")
        for task, secs in durations.items():
            print(f"{task:<28}{secs:7.1f}")
        print(f"{'(sum)':<28}{sum(durations.values()):7.1f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
