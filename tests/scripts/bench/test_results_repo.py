"""The repository's own README and docs: every results block has a kept record and is current."""

from __future__ import annotations

import subprocess
import sys

from scripts.bench import results
from scripts.bench.record import ROOT, load_records

RECORDS = ROOT / "docs" / "results"


def test_every_results_marker_in_the_readme_and_docs_has_its_record_and_table() -> None:
    records = load_records(RECORDS)
    for path in results.default_files():
        for block in results.find_blocks(path.read_text().split("\n"), path):
            assert block.bench in records, f"{block.where()}: no {RECORDS / (block.bench + '.json')}"
            if block.table:
                assert block.table in records[block.bench]["tables"], (
                    f"{block.where()}: no table {block.table}"
                )
            else:
                assert records[block.bench]["verdicts"], f"{block.where()}: {block.bench} has no verdicts"


def test_the_results_blocks_are_current_with_the_kept_records() -> None:
    """What CI runs: a hand-edited figure, or a record regenerated without its block, fails here."""
    out = subprocess.run([sys.executable, "-m", "scripts.bench.results", "--check", "--results-dir", str(RECORDS)],
                         cwd=ROOT, capture_output=True, text=True)  # fmt: skip
    assert out.returncode == 0, out.stdout + out.stderr
