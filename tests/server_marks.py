"""The `integration` marker means one thing, checked: the test starts a real server process (or Airflow).

Tests that use a fixture starting one are marked at collection (SERVER_FIXTURES). While tests run, every
process this interpreter launches is seen through Python's `subprocess.Popen` audit event; a test whose
setup or body launched a server without the marker fails. So `-m "not integration"` is a run with no
server process, and a new test that starts one cannot hide among the unit tests.
"""

from __future__ import annotations

import sys
from collections.abc import Generator, Sequence
from pathlib import PurePath
from typing import Any

import pytest

# Fixtures that start a real server (directly or through another fixture they use).
SERVER_FIXTURES = frozenset(
    {
        "s3_server",  # SeaweedFS, tests/conftest.py; every s3_settings/store/registry user
        "pipeline_run",  # airflow dags test, tests/pipeline_run.py
        "live_api",  # uvicorn, tests/pipeline_run.py
        "redis_srv",  # redis-server, scripts/harness/redis_server.py
        "postgres_url",  # postgres, tests/pg_cluster.py
    }
)
# Executables (or the scripts that start them) that are servers; config checks (`nginx -t`) are not.
SERVER_COMMANDS = frozenset(
    {"weed", "redis-server", "postgres", "pg_ctl", "initdb", "nginx", "prometheus", "airflow", "uvicorn",
     "streamlit", "celery", "chromium", "serve.sh", "ui.sh", "prod.sh", "demo.sh", "simulate.sh", "pipeline.sh"}
)  # fmt: skip
CHECK_FLAGS = frozenset({"-t", "-T", "--version", "-v", "-V", "--help"})

_launched: list[str] = []


def server_in(argv: str | bytes | Sequence[Any] | None) -> str | None:
    """The server a command line starts, or None (a config check or version query is not one)."""
    if argv is None:
        return None
    tokens = argv.split() if isinstance(argv, str | bytes) else list(argv)
    words = [str(t.decode() if isinstance(t, bytes) else t) for t in tokens]
    if CHECK_FLAGS & set(words[1:]):
        return None
    for word in words:
        name = PurePath(word).name
        if name in SERVER_COMMANDS:
            return name
    return None


def _audit(event: str, args: tuple[Any, ...]) -> None:
    if event == "subprocess.Popen":
        name = server_in(args[1])
        if name is not None:
            _launched.append(name)


def pytest_configure(config: pytest.Config) -> None:
    """Watch process launches for the whole session (an audit hook cannot be removed, and costs a compare)."""
    sys.addaudithook(_audit)


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Mark every test that uses a server-starting fixture as integration."""
    for item in items:
        if SERVER_FIXTURES & set(getattr(item, "fixturenames", ())):
            item.add_marker(pytest.mark.integration)


def _guard(item: pytest.Item) -> Generator[None, Any, Any]:
    start = len(_launched)
    result = yield
    started = sorted(set(_launched[start:]))
    if started and item.get_closest_marker("integration") is None:
        pytest.fail(
            f"{item.nodeid} started {', '.join(started)} without the integration marker: mark it "
            "(or add the fixture that starts it to tests/server_marks.py SERVER_FIXTURES)",
            pytrace=False,
        )
    return result


@pytest.hookimpl(wrapper=True)
def pytest_runtest_setup(item: pytest.Item) -> Generator[None, Any, Any]:
    """Fixtures set up for this test may start a server: only an integration test may."""
    return (yield from _guard(item))


@pytest.hookimpl(wrapper=True)
def pytest_runtest_call(item: pytest.Item) -> Generator[None, Any, Any]:
    """The test's body may start a server: only an integration test may."""
    return (yield from _guard(item))
