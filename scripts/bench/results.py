"""The results tables in README.md and docs/*.md, generated from the kept bench records (docs/results/*.json).

In a Markdown file, a block between two marker lines

    <!-- results:BENCH -->          the record's verdicts: claim | target | value [low, high] | verdict
    <!-- /results:BENCH -->

    <!-- results:BENCH.TABLE -->    one of the record's tables, by name
    <!-- /results:BENCH.TABLE -->

is replaced by the rendering of docs/results/BENCH.json and one italic line saying where it came from
(command, commit, machine, date). Markers inside fenced code blocks are left alone.

    python -m scripts.bench.results            rewrite the blocks in place
    python -m scripts.bench.results --check    exit 1 with a diff when a block is stale or has no record
"""

from __future__ import annotations

import argparse
import difflib
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from scripts.bench.record import ROOT, load_records, results_dir

OPEN = re.compile(r"^\s*<!--\s*results:(?P<bench>[A-Za-z0-9_-]+)(?:\.(?P<table>[A-Za-z0-9_-]+))?\s*-->\s*$")
CLOSE = re.compile(r"^\s*<!--\s*/results:(?P<name>[A-Za-z0-9_.-]+)\s*-->\s*$")
FENCE = re.compile(r"^\s*(```|~~~)")


class MarkerError(Exception):
    """A marker that cannot be rendered: unclosed, unmatched, or naming a record or table that does not exist."""


@dataclass(frozen=True)
class Block:
    """One marked block: its open and close line indices (0-based) and what it names."""

    path: Path
    open_line: int
    close_line: int
    bench: str
    table: str | None

    @property
    def name(self) -> str:
        """BENCH or BENCH.TABLE, as the marker spells it."""
        return f"{self.bench}.{self.table}" if self.table else self.bench

    def where(self) -> str:
        """file:line of the opening marker."""
        return f"{self.path}:{self.open_line + 1}"


def find_blocks(lines: list[str], path: Path) -> list[Block]:
    """The marked blocks of a file's lines, in order; a MarkerError names the file and line of a bad one."""
    blocks, current, fenced = [], None, False
    for i, line in enumerate(lines):
        if FENCE.match(line):
            fenced = not fenced
        if fenced:
            continue
        if m := OPEN.match(line):
            if current is not None:
                raise MarkerError(
                    f"{path}:{i + 1}: results block opened inside the one at line {current[0] + 1}"
                )
            current = (i, m["bench"], m["table"])
        elif m := CLOSE.match(line):
            name = current and (f"{current[1]}.{current[2]}" if current[2] else current[1])
            if current is None or m["name"] != name:
                raise MarkerError(
                    f"{path}:{i + 1}: <!-- /results:{m['name']} --> closes no open block of that name"
                )
            blocks.append(Block(path, current[0], i, current[1], current[2]))
            current = None
    if current is not None:
        raise MarkerError(f"{path}:{current[0] + 1}: results block is never closed")
    return blocks


def fmt(x: Any) -> str:
    """A figure as a cell: big numbers with separators, others to four significant digits, text as it is."""
    if x is None:
        return "n/a"
    if isinstance(x, bool) or not isinstance(x, int | float):
        return str(x)
    if isinstance(x, int) or abs(x) >= 1e4:
        return f"{x:,.0f}"
    return f"{x:.4g}"


def _cell(x: Any) -> str:
    return fmt(x).replace("|", r"\|").replace("\n", " ")


def verdicts_table(verdicts: list[dict[str, Any]]) -> str:
    """The default rendering: claim | target | value [low, high] | verdict."""
    lines = ["| claim | target | value [low, high] | verdict |", "|---|---|---|---|"]
    for v in verdicts:
        value = _cell(v["value"])
        if (
            "[" in value
        ):  # the bench already printed its interval beside the value (scripts/bench/intervals.py)
            pass
        elif v["low"] is not None or v["high"] is not None:
            value += f" [{_cell(v['low'])}, {_cell(v['high'])}]"
        else:
            value += " (no interval)"
        lines.append(f"| {_cell(v['claim'])} | {_cell(v['target'])} | {value} | {_cell(v['verdict'])} |")
    return "\n".join(lines)


def provenance(record: dict[str, Any]) -> str:
    """One italic line: command, commit, machine (with its load average), date."""
    sha = (record["commit"].get("sha") or "unknown")[:10]
    dirty = " with uncommitted changes" if record["commit"].get("dirty") else ""
    m = record["machine"]
    # The load average shows a reader of a speed figure whether the machine was busy (it is shared).
    load = f"load average {m['load_average_start'][0]:.1f} at start, {m['load_average_end'][0]:.1f} at end"
    return (
        f"*`{record['command']}` at commit {sha}{dirty}; {m['logical_cpus']} CPUs ({m['cpu_model']}), {load}; "
        f"{record['finished'][:10]}*"
    )


def render(record: dict[str, Any], table: str | None, where: str) -> list[str]:
    """The lines between a block's markers."""
    if table is None:
        if not record["verdicts"]:
            raise MarkerError(f"{where}: {record['bench']} has no verdicts; name one of its tables: "
                              f"{sorted(record['tables'])}")  # fmt: skip
        body = verdicts_table(record["verdicts"])
    elif table in record["tables"]:
        body = record["tables"][table].strip("\n")
    else:
        raise MarkerError(
            f"{where}: {record['bench']} has no table {table!r}; it has {sorted(record['tables'])}"
        )
    return ["", *body.splitlines(), "", provenance(record)]


def update(text: str, path: Path, records: dict[str, dict[str, Any]], folder: Path) -> str:
    """The file's text with every block rendered from its record."""
    lines = text.split("\n")
    out, done = [], 0
    for b in find_blocks(lines, path):
        if b.bench not in records:
            raise MarkerError(
                f"{b.where()}: <!-- results:{b.name} --> has no record {folder / (b.bench + '.json')}"
            )
        out += lines[done : b.open_line + 1] + render(records[b.bench], b.table, b.where())
        done = b.close_line
    return "\n".join(out + lines[done:])


def default_files() -> list[Path]:
    """README.md and docs/*.md."""
    return [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]


def run(files: list[Path], folder: Path, check: bool) -> tuple[int, str]:
    """Check or rewrite the files; (exit code, what to print)."""
    records = load_records(folder)
    report, failed = [], False
    for path in files:
        text = path.read_text()
        try:
            new = update(text, path, records, folder)
        except MarkerError as e:
            report.append(f"error: {e}")
            failed = True
            continue
        if new == text:
            continue
        if check:
            diff = difflib.unified_diff(text.splitlines(True), new.splitlines(True), f"{path} (as kept)",
                                        f"{path} (from the records)")  # fmt: skip
            report.append("".join(diff))
            failed = True
        else:
            path.write_text(new)
            report.append(f"rewrote {path}")
    if check and failed:
        report.append(
            "results blocks are stale or broken: run `python -m scripts.bench.results` to regenerate"
        )
    return int(failed), "\n".join(report)


def main(argv: list[str] | None = None) -> int:
    """Parse the options; check or rewrite the results blocks."""
    parser = argparse.ArgumentParser(prog="python -m scripts.bench.results", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)  # fmt: skip
    parser.add_argument("--check", action="store_true", help="change nothing; exit 1 with a diff when a block is "
                        "stale or names a missing record or table")  # fmt: skip
    parser.add_argument("--files", nargs="+", type=Path, help="Markdown files (default: README.md docs/*.md)")
    parser.add_argument("--results-dir", type=Path, help="records folder (default: $BENCH_RESULTS_DIR or "
                        "docs/results)")  # fmt: skip
    args = parser.parse_args(argv)
    code, report = run(args.files or default_files(), results_dir(args.results_dir), args.check)
    if report:
        print(report)
    return code


if __name__ == "__main__":
    raise SystemExit(main())
