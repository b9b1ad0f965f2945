"""Where the suite's outside programs live, and what a missing one does: skip, or fail under the CI switch.

One place answers "where is nginx / chromium / prometheus / promtool / faketime / postgres" (so no two tests
look in different places), and one hook decides what a skip means. With `REQUIRE_ALL_TESTS=1` (set by
`.ci/run`) every skip, whatever raised it (these helpers, a `skipif` mark, `importorskip`, a module-level
skip), is reported as a failure with its reason: a CI run cannot go green with a whole layer missing.
Without the switch a developer's machine without, say, Chromium still runs the rest and says what it skipped.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Generator
from pathlib import Path
from typing import Any

import pytest

SWITCH = "REQUIRE_ALL_TESTS"
# Debian's places, looked at when PATH lacks them (a non-root PATH often has no /usr/sbin).
_DEBIAN = {
    "nginx": "/usr/sbin/nginx",
    "chromium": "/usr/bin/chromium",
    "prometheus": "/usr/bin/prometheus",
    "promtool": "/usr/bin/promtool",
    "faketime": "/usr/bin/faketime",
    "runuser": "/usr/sbin/runuser",
    "strace": "/usr/bin/strace",
}
_INSTALL = {
    "nginx": "Debian's nginx",
    "chromium": "Debian's chromium (Playwright's own browser is not used)",
    "prometheus": "Debian's prometheus",
    "promtool": "Debian's prometheus (it ships promtool)",
    "faketime": "Debian's faketime",
    "runuser": "util-linux's runuser",
    "strace": "Debian's strace",
}
POSTGRES_BIN = Path("/usr/lib/postgresql/15/bin")


def required() -> bool:
    """True when a missing prerequisite must fail the run instead of skipping (REQUIRE_ALL_TESTS=1)."""
    return os.environ.get(SWITCH, "") not in ("", "0")


def program(name: str) -> str:
    """The path of one of the suite's outside programs, or a skip naming the package that provides it."""
    path = shutil.which(name) or (p if (p := _DEBIAN.get(name)) and os.access(p, os.X_OK) else None)
    if path is None:
        pytest.skip(
            f"{name} is not installed: {_INSTALL.get(name, name)} (./scripts/test.sh installs it as root)"
        )
    return path


def root(why: str) -> None:
    """Skip unless this process runs as root (what `runuser -u postgres` and prod.sh need)."""
    if os.geteuid() != 0:
        pytest.skip(f"needs root: {why}")


def postgres_bin() -> Path:
    """Debian's PostgreSQL 15 binaries, with root and runuser to run them as the postgres user."""
    root("runuser -u postgres (PostgreSQL itself refuses to run as root)")
    program("runuser")
    if not (POSTGRES_BIN / "initdb").exists():
        pytest.skip("no PostgreSQL 15 binaries: Debian's postgresql (./scripts/test.sh installs it as root)")
    return POSTGRES_BIN


# ---- the switch, as a pytest plugin (tests/conftest.py loads this module) ----------------------------------
def _as_failure(report: Any, where: str) -> None:
    """Rewrite a skipped report (not an xfail) as a failure carrying the skip's reason."""
    if not report.skipped or hasattr(report, "wasxfail"):
        return
    longrepr = report.longrepr
    reason = longrepr[2] if isinstance(longrepr, tuple) and len(longrepr) == 3 else str(longrepr)
    report.outcome = "failed"
    report.longrepr = f"skipped ({where}) but {SWITCH}=1 allows no skip: {reason.removeprefix('Skipped: ')}"


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]) -> Generator[None, Any, None]:
    """Under the switch, a test skipped in setup (skipif, a fixture's skip) or in its body fails instead."""
    outcome = yield
    if required():
        _as_failure(outcome.get_result(), f"test {call.when}")


@pytest.hookimpl(hookwrapper=True)
def pytest_make_collect_report(collector: pytest.Collector) -> Generator[None, Any, None]:
    """Under the switch, a module skipped at collection (importorskip, allow_module_level) fails too."""
    outcome = yield
    if required():
        _as_failure(outcome.get_result(), "module, at collection")


def pytest_report_header(config: pytest.Config) -> str:
    """Say in the run's header which meaning a skip has."""
    return f"{SWITCH}={'1: a skip fails' if required() else '0: a missing prerequisite skips'}"
