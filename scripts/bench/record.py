"""PLACEHOLDER, to be replaced at merge by the record engineer's scripts/bench/record.py (theirs wins).

Only here so the serving benches of branch i28-bench run: it keeps the agreed signature of
write_record and writes docs/results/<bench>.json with the command, commit, machine and date.
"""

from __future__ import annotations

import json
import os
import platform
import subprocess
import sys
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2]


def write_record(
    bench: str,
    argv: list[str],
    figures: dict[str, Any],
    verdicts: list[dict[str, Any]],
    tables: dict[str, str],
) -> Path:
    """Write docs/results/<bench>.json: figures, verdicts and tables with the command, commit and machine."""
    commit = subprocess.run(
        ["git", "rev-parse", "HEAD"], cwd=ROOT, capture_output=True, text=True, check=False
    ).stdout.strip()
    record = {
        "bench": bench,
        "command": " ".join([f"./scripts/bench.sh {bench}", *argv]),
        "commit": commit or None,
        "machine": {
            "cpus": os.cpu_count(),
            "platform": platform.platform(),
            "python": sys.version.split()[0],
        },
        "date": datetime.now(UTC).isoformat(timespec="seconds"),
        "figures": figures,
        "verdicts": verdicts,
        "tables": tables,
    }
    path = ROOT / "docs" / "results" / f"{bench}.json"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(record, indent=2, allow_nan=False) + "\n")
    return path
