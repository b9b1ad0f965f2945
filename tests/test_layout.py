"""The house's layout rules that a reader relies on, checked: packages, one-line docstrings, file sizes, steps."""

from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
SOURCE = ("services", "scripts", "dags")
MAX_LINES = 300


def _modules() -> list[Path]:
    return sorted(p for top in SOURCE for p in (ROOT / top).rglob("*.py"))


def test_every_folder_of_python_code_is_a_regular_package() -> None:
    """A namespace package is left out of a non-editable install (setuptools' find), so every folder has one."""
    folders = {p.parent for p in _modules() if p.parent.name != "dags"}
    missing = sorted(str(f.relative_to(ROOT)) for f in folders if not (f / "__init__.py").exists())
    assert not missing, f"folders without __init__.py: {missing}"


def test_every_module_opens_with_a_one_line_docstring() -> None:
    bad = []
    for path in _modules():
        doc = ast.get_docstring(ast.parse(path.read_text()))
        if not doc or not doc.splitlines()[0].strip():
            bad.append(str(path.relative_to(ROOT)))
    assert not bad, f"modules without an opening one-line docstring: {bad}"


def test_source_files_stay_under_the_size_a_reader_can_hold() -> None:
    files = [*_modules(), *(ROOT / "scripts").rglob("*.sh")]
    long = {str(p.relative_to(ROOT)): n for p in files if (n := len(p.read_text().splitlines())) > MAX_LINES}
    assert not long, f"over {MAX_LINES} lines, split them on their seams: {long}"


def test_each_training_capability_has_the_steps_module_the_dag_calls() -> None:
    train = ROOT / "services" / "train"
    packages = sorted(p.parent.name for p in train.glob("*/__init__.py"))
    assert packages == ["experiments", "feedback", "monitoring", "movies", "rating", "recommender"]
    assert all((train / name / "steps.py").exists() for name in packages)
    assert (train / "rating" / "tuning" / "steps.py").exists()  # the weekly DAG's
