"""The results generator: blocks rendered from the records, and --check failing on a stale or unbacked block."""

from __future__ import annotations

from pathlib import Path

import pytest

from scripts.bench import results
from scripts.bench.record import write_record

VERDICTS = [
    {"claim": "ratio to the recipe", "target": "<= 0.90", "value": 0.873, "low": 0.851, "high": 0.894,
     "verdict": "met"},
    {"claim": "every event once", "target": "yes", "value": "yes", "low": None, "high": None, "verdict": "met"},
]  # fmt: skip
TABLE = "| model | test RMSE |\n|---|---|\n| lightgbm | 0.7234 |"
PAGE = """# Results

Prose the generator leaves alone.

<!-- results:rating -->
<!-- /results:rating -->

Between the blocks.

<!-- results:rating.comparison -->
stale text from last time
<!-- /results:rating.comparison -->

```markdown
<!-- results:nosuch -->
```
"""


@pytest.fixture
def records(tmp_path: Path) -> Path:
    folder = tmp_path / "results"
    write_record("rating", ["--seed", "7"], {"ratio": 0.873}, VERDICTS, {"comparison": TABLE}, out_dir=folder)
    return folder


def _run(page: Path, records: Path, *extra: str) -> int:
    return results.main(["--files", str(page), "--results-dir", str(records), *extra])


def test_blocks_are_rendered_from_the_record_with_their_provenance(tmp_path: Path, records: Path) -> None:
    page = tmp_path / "README.md"
    page.write_text(PAGE)
    assert _run(page, records) == 0
    text = page.read_text()
    verdicts, table = (
        text.split("<!-- results:rating -->")[1],
        text.split("<!-- results:rating.comparison -->")[1],
    )
    assert "| ratio to the recipe | <= 0.90 | 0.873 [0.851, 0.894] | met |" in verdicts
    assert "| every event once | yes | yes (no interval) | met |" in verdicts
    assert TABLE in table and "stale text" not in text
    sha = results.load_records(records)["rating"]["commit"]["sha"][:10]
    provenance = [line for line in text.splitlines() if line.startswith("*`")]
    assert len(provenance) == 2
    assert provenance[0].startswith(f"*`./scripts/bench.sh rating --seed 7` at commit {sha}")
    assert "CPUs (" in provenance[0] and "load average" in provenance[0]
    # What is outside the blocks (prose, the fenced example) is untouched.
    assert text.startswith("# Results\n\nProse the generator leaves alone.\n")
    assert text.endswith("\n```markdown\n<!-- results:nosuch -->\n```\n")
    # Rendering is stable: a second run changes nothing and the check passes.
    assert _run(page, records) == 0 and page.read_text() == text
    assert _run(page, records, "--check") == 0


def test_check_fails_with_a_diff_when_a_figure_was_edited_by_hand(
    tmp_path: Path, records: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    page = tmp_path / "README.md"
    page.write_text(PAGE)
    _run(page, records)
    edited = page.read_text().replace("| lightgbm | 0.7234 |", "| lightgbm | 0.7034 |")
    page.write_text(edited)
    capsys.readouterr()
    assert _run(page, records, "--check") == 1
    out = capsys.readouterr().out
    assert "-| lightgbm | 0.7034 |" in out and "+| lightgbm | 0.7234 |" in out
    assert page.read_text() == edited  # --check changes nothing


def test_check_fails_on_a_block_that_was_never_rendered(tmp_path: Path, records: Path) -> None:
    page = tmp_path / "README.md"
    page.write_text(PAGE)
    assert _run(page, records, "--check") == 1
    assert page.read_text() == PAGE


@pytest.mark.parametrize("check", [True, False])
def test_a_marker_without_a_record_names_its_file_and_line(
    tmp_path: Path, records: Path, capsys: pytest.CaptureFixture[str], check: bool
) -> None:
    page = tmp_path / "docs.md"
    page.write_text("# Docs\n\n<!-- results:serve -->\n<!-- /results:serve -->\n")
    assert _run(page, records, *(["--check"] if check else [])) == 1
    out = capsys.readouterr().out
    assert f"{page}:3:" in out and "serve.json" in out


@pytest.mark.parametrize(
    ("page", "message"),
    [
        ("<!-- results:rating.nosuch -->\n<!-- /results:rating.nosuch -->\n", "has no table 'nosuch'"),
        ("a\n<!-- results:rating -->\n", ":2: results block is never closed"),
        (
            "<!-- results:rating -->\n<!-- /results:rating.comparison -->\n",
            ":2: <!-- /results:rating.comparison",
        ),
        ("<!-- results:rating -->\n<!-- results:rating -->\n", ":2: results block opened inside"),
    ],
)
def test_broken_markers_fail_with_the_line(
    tmp_path: Path, records: Path, capsys: pytest.CaptureFixture[str], page: str, message: str
) -> None:
    path = tmp_path / "page.md"
    path.write_text(page)
    assert _run(path, records, "--check") == 1
    assert message in capsys.readouterr().out


def test_a_record_without_verdicts_must_be_shown_by_a_named_table(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    write_record("drift", [], {}, [], {"steps": "| step |\n|---|\n| read |"}, out_dir=tmp_path)
    page = tmp_path / "page.md"
    page.write_text("<!-- results:drift -->\n<!-- /results:drift -->\n")
    assert _run(page, tmp_path) == 1
    assert "drift has no verdicts; name one of its tables: ['steps']" in capsys.readouterr().out


def test_an_interval_the_bench_printed_beside_its_value_is_not_printed_twice() -> None:
    """The serving benches write "75.8 ms [51.0, 160.0] (n=5, 94%)" as the value; others give low/high apart."""
    printed = {"claim": "p99", "target": "<= 15 ms", "value": "75.8 ms [51.0, 160.0] (n=5, 94%)",
               "low": 51.0, "high": 160.0, "verdict": "not met"}  # fmt: skip
    apart = {**printed, "value": "75.8 ms"}
    table = results.verdicts_table([printed, apart])
    assert "| 75.8 ms [51.0, 160.0] (n=5, 94%) | not met |" in table
    assert "| 75.8 ms [51, 160] | not met |" in table
