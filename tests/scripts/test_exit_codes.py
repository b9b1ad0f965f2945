"""The scripts a user types say what went wrong and exit non-zero; --help exits 0 and does nothing else.

Each script runs as a user runs it (tests/user_shell.py: a fresh shell whose var/ is a temporary folder),
never with an argument that would install, train or serve.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
from collections.abc import Iterator
from pathlib import Path

import pytest

from services.core.embedded_s3 import free_port_block
from tests.conftest import ROOT
from tests.user_shell import run, user_env

SCRIPTS = ROOT / "scripts"


@pytest.fixture
def env(tmp_path: Path) -> Iterator[dict[str, str]]:
    """A user's shell whose var/ (S3 keys and data, Airflow home, logs) and S3 ports are this test's own."""
    yield user_env(tmp_path / "home", VAR_DIR=str(tmp_path / "var"), S3_PORT=str(free_port_block()))
    # A script that wrongly started the embedded S3 (what some tests check against) must not leave it running.
    pid_file = tmp_path / "var" / "s3" / "weed.pid"
    if pid_file.exists():
        with contextlib.suppress(ProcessLookupError):
            os.killpg(int(pid_file.read_text()), signal.SIGKILL)


@pytest.fixture
def setup_copy(tmp_path: Path) -> Path:
    """setup.sh in a checkout of its own with no .venv, so that a run which did install would show."""
    checkout = tmp_path / "checkout"
    (checkout / "scripts").mkdir(parents=True)
    shutil.copy2(SCRIPTS / "setup.sh", checkout / "scripts" / "setup.sh")
    shutil.copy2(ROOT / "pyproject.toml", checkout / "pyproject.toml")
    return checkout / "scripts" / "setup.sh"


def test_setup_help_exits_0_and_installs_nothing(setup_copy: Path, env: dict[str, str]) -> None:
    done = run(setup_copy, "--help", env=env)
    assert done.returncode == 0, done.stdout
    assert "Create .venv" in done.stdout and "--help" in done.stdout
    assert not (setup_copy.parents[1] / ".venv").exists()


def test_setup_refuses_an_unknown_argument(setup_copy: Path, env: dict[str, str]) -> None:
    done = run(setup_copy, "--bogus", env=env)
    assert done.returncode == 2, done.stdout
    assert "unknown argument: --bogus" in done.stdout
    assert not (setup_copy.parents[1] / ".venv").exists()


def test_setup_says_which_python_is_missing(setup_copy: Path, env: dict[str, str]) -> None:
    done = run(setup_copy, env={**env, "PYTHON": "/nonexistent/python3.11"})
    assert done.returncode == 1, done.stdout
    assert "no Python at '/nonexistent/python3.11'" in done.stdout and "PYTHON" in done.stdout
    assert not (setup_copy.parents[1] / ".venv").exists()


def test_s3_help_exits_0(env: dict[str, str]) -> None:
    done = run(SCRIPTS / "s3.sh", "--help", env=env)
    assert done.returncode == 0, done.stdout
    assert "s3.sh start" in done.stdout and "s3.sh status" in done.stdout


@pytest.mark.parametrize("external", [False, True], ids=["embedded", "external"])
def test_s3_refuses_an_unknown_action(env: dict[str, str], external: bool) -> None:
    # With an external S3 the script used to say "nothing to bogus here" and exit 0.
    if external:
        env = {**env, "S3_ENDPOINT_URL": "http://127.0.0.1:9"}
    done = run(SCRIPTS / "s3.sh", "bogus", env=env)
    assert done.returncode == 2, done.stdout
    assert "unknown action: bogus" in done.stdout


def test_s3_status_fails_when_the_server_is_not_running(env: dict[str, str], tmp_path: Path) -> None:
    done = run(SCRIPTS / "s3.sh", "status", env=env)
    assert done.returncode == 1, done.stdout
    assert "S3 not running" in done.stdout and str(tmp_path / "var" / "s3") in done.stdout


def test_tune_help_exits_0(env: dict[str, str]) -> None:
    done = run(SCRIPTS / "tune.sh", "--help", env=env)
    assert done.returncode == 0, done.stdout
    assert "--trials N" in done.stdout and "--algorithms" in done.stdout


@pytest.mark.parametrize(
    ("args", "says"),
    [
        (["--trials", "many"], "argument --trials: invalid int value: 'many'"),
        (["--algorithms", "xgboost,nope"], "unknown algorithms ['nope']"),
        (["--bogus"], "unrecognized arguments: --bogus"),
    ],
)
def test_tune_refuses_bad_options_before_starting_anything(
    env: dict[str, str], tmp_path: Path, args: list[str], says: str
) -> None:
    done = run(SCRIPTS / "tune.sh", *args, env=env)
    assert done.returncode == 2, done.stdout
    assert says in done.stdout and "usage: tune.sh" in done.stdout
    # The embedded S3 used to start first (and keep running) whatever the arguments were.
    assert not (tmp_path / "var" / "s3" / "weed.pid").exists()


def test_pipeline_help_exits_0(env: dict[str, str]) -> None:
    done = run(SCRIPTS / "pipeline.sh", "--help", env=env)
    assert done.returncode == 0, done.stdout
    assert "--date YYYY-MM-DD" in done.stdout and "Exits 1 when the run fails" in done.stdout


# Marked integration because the audit (tests/server_marks.py) counts any pipeline.sh command line as a
# server start; and if its argument check broke, it would go on to start S3 and Airflow.
@pytest.mark.integration
@pytest.mark.parametrize(
    ("args", "says"),
    [
        (["--date", "notadate"], "--date must be a day, YYYY-MM-DD, got notadate"),
        (["--date", "2026-02-30"], "--date must be a day, YYYY-MM-DD, got 2026-02-30"),
        (["--date"], "--date needs a day, YYYY-MM-DD"),
        (["--bogus"], "unknown argument: --bogus"),
    ],
)
def test_pipeline_refuses_bad_arguments_before_starting_anything(
    env: dict[str, str], tmp_path: Path, args: list[str], says: str
) -> None:
    done = run(SCRIPTS / "pipeline.sh", *args, env=env)
    assert done.returncode == 2, done.stdout
    assert says in done.stdout
    assert not (tmp_path / "var" / "s3" / "weed.pid").exists()
    assert not (tmp_path / "var" / "airflow" / "airflow.db").exists()
