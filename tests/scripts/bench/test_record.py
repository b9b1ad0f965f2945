"""The kept bench records: what write_record writes, where, and that a half-written record is never seen."""

from __future__ import annotations

import json
import re
import subprocess
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
import pytest

from scripts.bench import record
from scripts.bench.record import ROOT, load_records, write_record

VERDICT = {"claim": "test RMSE / recipe's", "target": "<= 0.90", "value": 0.873, "low": 0.85, "high": 0.89,
           "verdict": "met"}  # fmt: skip


def test_a_record_round_trips_with_its_command_commit_and_machine(tmp_path: Path) -> None:
    figures = {"ratio": np.float64(0.873), "rows": np.int64(365), "missing": float("nan"), "pair": (1, 2)}
    path = write_record("rating", ["--seed", "7", "--algorithms", "a b"], figures, [VERDICT],
                        {"comparison": "| a |\n|---|\n| 1 |"}, out_dir=tmp_path)  # fmt: skip
    assert path == tmp_path / "rating.json"
    kept = load_records(tmp_path)["rating"]
    assert kept == json.loads(path.read_text())
    assert kept["bench"] == "rating"
    assert kept["command"] == "./scripts/bench.sh rating --seed 7 --algorithms 'a b'"
    assert kept["argv"] == ["--seed", "7", "--algorithms", "a b"]
    assert kept["figures"] == {"ratio": 0.873, "rows": 365, "missing": None, "pair": [1, 2]}
    assert kept["verdicts"] == [VERDICT]
    assert kept["tables"] == {"comparison": "| a |\n|---|\n| 1 |"}
    head = subprocess.run(
        ["git", "rev-parse", "HEAD"], cwd=ROOT, capture_output=True, text=True
    ).stdout.strip()
    assert kept["commit"]["sha"] == head and isinstance(kept["commit"]["dirty"], bool)
    machine = kept["machine"]
    assert machine["logical_cpus"] >= 1 and machine["memory_gib"] > 0 and machine["cpu_model"]
    assert machine["python"].count(".") == 2 and machine["kernel"] and machine["os"]
    assert len(machine["load_average_start"]) == len(machine["load_average_end"]) == 3
    started, finished = (
        datetime.fromisoformat(kept[k].replace("Z", "+00:00")) for k in ("started", "finished")
    )
    assert started <= finished <= datetime.now(UTC)


def test_a_bench_bench_sh_does_not_name_is_reproduced_by_its_module(tmp_path: Path) -> None:
    write_record("user_store", ["--users", "50"], {}, [], {}, out_dir=tmp_path)
    assert (
        load_records(tmp_path)["user_store"]["command"]
        == ".venv/bin/python -m scripts.bench.user_store --users 50"
    )
    assert record.command_line("rating-fixes", []) == "./scripts/bench.sh rating-fixes"


def test_bench_results_dir_keeps_records_out_of_the_repo(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(record.RESULTS_ENV, str(tmp_path / "throwaway"))
    assert write_record("drift", [], {"rows": 1}, [], {}) == tmp_path / "throwaway" / "drift.json"
    assert load_records() == {"drift": load_records(tmp_path / "throwaway")["drift"]}


def test_a_failed_write_leaves_the_previous_record_whole_and_no_temporary_file(tmp_path: Path) -> None:
    write_record("events", [], {"total_s": 10.0}, [], {}, out_dir=tmp_path)
    before = (tmp_path / "events.json").read_text()
    with pytest.raises(TypeError):
        write_record("events", [], {"total_s": object()}, [], {}, out_dir=tmp_path)
    assert (tmp_path / "events.json").read_text() == before
    assert [p.name for p in tmp_path.iterdir()] == ["events.json"]


@pytest.mark.parametrize(
    ("verdicts", "tables", "message"),
    [
        ([{"claim": "x", "value": 1, "verdict": "met"}], {}, "exactly the keys"),
        ([], {"two words": "| a |"}, "table names"),
    ],
)
def test_malformed_verdicts_and_unnamable_tables_are_refused(
    tmp_path: Path, verdicts: list, tables: dict, message: str
) -> None:
    with pytest.raises(ValueError, match=message):
        write_record("rating", [], {}, verdicts, tables, out_dir=tmp_path)
    assert not list(tmp_path.iterdir())


def test_every_bench_that_records_names_a_command_that_exists() -> None:
    """A record's command is what a reader runs again: a bench.sh name, else a module of scripts/bench."""
    names = {
        name
        for path in (ROOT / "scripts" / "bench").glob("*.py")
        for name in re.findall(r'write_record\(\s*"([^"]+)"', path.read_text())
    }
    assert {
        "rating",
        "rating-fixes",
        "recommend",
        "experiment",
        "drift",
        "events",
        "users",
        "user_store",
    } <= names
    for name in names:
        line = record.command_line(name, [])
        module = line.removeprefix(".venv/bin/python -m scripts.bench.")
        assert (
            line.startswith("./scripts/bench.sh ") or (ROOT / "scripts" / "bench" / f"{module}.py").exists()
        ), name
    assert record.command_line("serve-soak", ["--soak", "600"]) == "./scripts/bench.sh serve --soak 600"
