"""The CI switch: under REQUIRE_ALL_TESTS=1 every kind of skip fails with its reason; without it, a skip skips."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests import prerequisites

ROOT = Path(__file__).resolve().parents[1]

# One test per way a skip can arise: a prerequisite helper, a skipif mark, a fixture's skip, a module's.
SKIPPING = """
import pytest

from tests import prerequisites

@pytest.fixture
def server():
    pytest.skip("fixture: no server here")

def test_helper():
    prerequisites.program("no-such-program-anywhere")

@pytest.mark.skipif(True, reason="mark: never here")
def test_mark():
    pass

def test_fixture(server):
    pass

def test_passes():
    pass

@pytest.mark.xfail(reason="a known bug is not a skip", strict=True)
def test_xfails():
    assert False
"""
SKIPPED_MODULE = (
    'import pytest\n\npytest.importorskip("no_such_module_anywhere")\n\ndef test_never():\n    pass\n'
)


def _run(pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch, switch: str | None) -> pytest.RunResult:
    monkeypatch.setenv("PYTHONPATH", str(ROOT))
    if switch is None:
        monkeypatch.delenv(prerequisites.SWITCH, raising=False)
    else:
        monkeypatch.setenv(prerequisites.SWITCH, switch)
    pytester.makeconftest('pytest_plugins = ["tests.prerequisites"]\n')
    pytester.makepyfile(test_skipping=SKIPPING, test_skipped_module=SKIPPED_MODULE)
    # A module that fails at collection stops the session (as it should on CI); the flag lets the rest run.
    return pytester.runpytest_subprocess("-p", "no:cacheprovider", "-rA", "--continue-on-collection-errors")


def test_without_the_switch_a_missing_prerequisite_skips(
    pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch
) -> None:
    run = _run(pytester, monkeypatch, None)
    run.assert_outcomes(passed=1, skipped=4, xfailed=1)
    run.stdout.fnmatch_lines(["*REQUIRE_ALL_TESTS=0*", "*no-such-program-anywhere is not installed*"])


def test_under_the_switch_every_skip_fails_with_its_reason(
    pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch
) -> None:
    run = _run(pytester, monkeypatch, "1")
    # A skip in setup (mark, fixture) or at collection is an error, one in the body a failure; an xfail
    # stays an xfail (it is not a skip).
    run.assert_outcomes(passed=1, failed=1, errors=3, xfailed=1)
    run.stdout.fnmatch_lines_random(
        [
            "skipped (test call) but REQUIRE_ALL_TESTS=1 allows no skip: no-such-program-anywhere is not installed*",
            "skipped (test setup) but REQUIRE_ALL_TESTS=1 allows no skip: mark: never here",
            "skipped (test setup) but REQUIRE_ALL_TESTS=1 allows no skip: fixture: no server here",
            "skipped (module, at collection) but REQUIRE_ALL_TESTS=1 allows no skip: could not import*",
        ]
    )
    assert "skipped" not in run.outlines[-1]


def test_zero_turns_the_switch_off(pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch) -> None:
    _run(pytester, monkeypatch, "0").assert_outcomes(passed=1, skipped=4, xfailed=1)
