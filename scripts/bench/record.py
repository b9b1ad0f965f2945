"""Kept bench results: every bench writes its figures, command, commit and machine to docs/results/<bench>.json.

The README's and docs' results tables are generated from these files (scripts/bench/results.py), so no
figure is copied by hand. BENCH_RESULTS_DIR points the records elsewhere (tests, throw-away runs).

A record:

    {"bench", "command", "argv", "commit": {"sha", "dirty"}, "machine": {...}, "started", "finished",
     "figures": {...}, "verdicts": [{"claim", "target", "value", "low", "high", "verdict"}],
     "tables": {name: markdown}}
"""

from __future__ import annotations

import json
import logging
import math
import os
import platform
import re
import shlex
import subprocess
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2]
RESULTS_ENV = "BENCH_RESULTS_DIR"
VERDICT_KEYS = ("claim", "target", "value", "low", "high", "verdict")
TABLE_NAME = re.compile(r"[A-Za-z0-9_-]+")  # what a `<!-- results:BENCH.TABLE -->` marker can name

log = logging.getLogger(__name__)
# Taken when the bench imports this module, i.e. as it starts: a reader of a speed figure can see
# whether the machine was busy while it was measured. The commit is taken then too (at the end).
_LOAD_AT_IMPORT = os.getloadavg()


def results_dir(out_dir: Path | None = None) -> Path:
    """Where records go: out_dir, else $BENCH_RESULTS_DIR, else docs/results."""
    if out_dir is not None:
        return out_dir
    env = os.environ.get(RESULTS_ENV)
    return Path(env) if env else ROOT / "docs" / "results"


def write_record(
    bench: str,
    argv: list[str],
    figures: dict[str, Any],
    verdicts: list[dict[str, Any]],
    tables: dict[str, str],
    out_dir: Path | None = None,
    *,
    started: datetime | None = None,
) -> Path:
    """Write <bench>.json (atomically) with the figures, the command, commit and machine; its path."""
    for v in verdicts:
        if set(v) != set(VERDICT_KEYS):
            raise ValueError(f"a verdict has exactly the keys {VERDICT_KEYS}, not {sorted(v)}")
    bad = [name for name in tables if not TABLE_NAME.fullmatch(name)]
    if bad:
        raise ValueError(f"table names must match {TABLE_NAME.pattern} to be named by a marker: {bad}")
    folder = results_dir(out_dir)
    record = {
        "bench": bench,
        "command": command_line(bench, argv),
        "argv": list(argv),
        "commit": _COMMIT_AT_IMPORT,
        "machine": machine(),
        "started": _iso(started or process_start()),
        "finished": _iso(datetime.now(UTC)),
        "figures": figures,
        "verdicts": [{k: v[k] for k in VERDICT_KEYS} for v in verdicts],
        "tables": tables,
    }
    text = json.dumps(_plain(record), indent=2, ensure_ascii=False, allow_nan=False) + "\n"
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"{bench}.json"
    # A reader (the generator, a concurrent bench) sees the old record or the new one, never half of one.
    fd, tmp = tempfile.mkstemp(prefix=f".{bench}.", suffix=".tmp", dir=folder)
    try:
        with os.fdopen(fd, "w") as f:
            f.write(text)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    log.info("bench record written: %s", path)
    return path


def load_records(folder: Path | None = None) -> dict[str, dict[str, Any]]:
    """Every record in folder (default: results_dir()), by bench name (the file's stem)."""
    folder = results_dir(folder)
    return {p.stem: json.loads(p.read_text()) for p in sorted(folder.glob("*.json"))}


def bench_sh_names() -> set[str]:
    """The benches scripts/bench.sh runs by name (its case labels)."""
    text = (ROOT / "scripts" / "bench.sh").read_text()
    labels = re.findall(r"^\s*([a-z][a-z_|-]*)\)", text, flags=re.MULTILINE)
    return {name for label in labels for name in label.split("|")}


def command_line(bench: str, argv: list[str]) -> str:
    """The line that reproduces the run: `./scripts/bench.sh <bench> ...`, or the module for one it lacks."""
    name = bench.replace("_", "-")
    args = f" {shlex.join(argv)}" if argv else ""
    names = bench_sh_names()
    if name in names:
        return f"./scripts/bench.sh {name}{args}"
    if name.rsplit("-", 1)[0] in names:  # a mode of a bench, e.g. serve-soak: `bench.sh serve --soak …`
        return f"./scripts/bench.sh {name.rsplit('-', 1)[0]}{args}"
    return f".venv/bin/python -m scripts.bench.{bench.replace('-', '_')}{args}"


def commit(results: Path | None = None) -> dict[str, Any]:
    """HEAD's sha and whether tracked files differ from it (the results folders not counted)."""

    def git(*args: str) -> str:
        return subprocess.run(["git", *args], cwd=ROOT, capture_output=True, text=True, check=True).stdout

    # Records written earlier in the same session would otherwise mark every later run dirty.
    folders = {(ROOT / "docs" / "results").resolve(), *([results.resolve()] if results else [])}
    exclude = [f":(exclude){f.relative_to(ROOT)}" for f in sorted(folders) if f.is_relative_to(ROOT)]
    try:
        sha = git("rev-parse", "HEAD").strip()
        dirty = bool(git("status", "--porcelain", "--untracked-files=no", "--", ".", *exclude).strip())
    except (OSError, subprocess.CalledProcessError):
        return {"sha": None, "dirty": None}
    return {"sha": sha, "dirty": dirty}


def machine() -> dict[str, Any]:
    """CPU model, logical CPUs, memory, OS and kernel, Python, and the load average at start and now."""
    return {
        "cpu_model": _cpu_model(),
        "logical_cpus": os.cpu_count(),
        "usable_cpus": len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count(),
        "memory_gib": round(os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30, 1),
        "os": platform.platform(),
        "kernel": platform.release(),
        "python": platform.python_version(),
        "load_average_start": [round(x, 2) for x in _LOAD_AT_IMPORT],
        "load_average_end": [round(x, 2) for x in os.getloadavg()],
    }


def process_start() -> datetime:
    """When this process started (from /proc), else now."""
    try:
        ticks = int(Path("/proc/self/stat").read_text().rsplit(")", 1)[1].split()[19])
        boot = next(
            int(line.split()[1])
            for line in Path("/proc/stat").read_text().splitlines()
            if line.startswith("btime")
        )
        return datetime.fromtimestamp(boot + ticks / os.sysconf("SC_CLK_TCK"), UTC)
    except (OSError, ValueError, IndexError, StopIteration):
        return datetime.fromtimestamp(time.time(), UTC)


def _cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def _iso(t: datetime) -> str:
    return t.astimezone(UTC).isoformat(timespec="seconds").replace("+00:00", "Z")


def _plain(x: Any) -> Any:
    """JSON-able: numpy scalars and arrays as Python values, tuples as lists, NaN and infinities as null."""
    if isinstance(x, dict):
        return {str(k): _plain(v) for k, v in x.items()}
    if isinstance(x, list | tuple):
        return [_plain(v) for v in x]
    if hasattr(x, "tolist"):  # numpy scalar or array
        return _plain(x.tolist())
    if isinstance(x, float) and not math.isfinite(x):
        return None
    if isinstance(x, Path):
        return str(x)
    return x


# The code a bench runs is the code as it started: an edit made while it runs must not mark it dirty
# (or clean). Taken when the bench imports this module, like the load average above.
_COMMIT_AT_IMPORT = commit(results_dir())
