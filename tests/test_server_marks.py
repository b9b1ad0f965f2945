"""The integration marker's guard: a test that starts a server unmarked fails, and fixtures mark their users."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.server_marks import server_in

ROOT = Path(__file__).resolve().parents[1]


@pytest.mark.parametrize(
    ("argv", "server"),
    [
        (["/usr/bin/redis-server", "--port", "0"], "redis-server"),
        (["/x/.venv/bin/python", "-m", "uvicorn", "services.serve.app:app"], "uvicorn"),
        (["bash", "/repo/scripts/serve.sh"], "serve.sh"),
        ("weed mini -dir=/tmp/s3", "weed"),
        (["/usr/sbin/nginx", "-t", "-c", "nginx.conf"], None),  # a config check starts nothing
        (["promtool", "check", "config", "p.yml"], None),
        (["git", "rev-parse", "HEAD"], None),
    ],
)
def test_server_in_names_the_server_a_command_starts(argv: list[str] | str, server: str | None) -> None:
    assert server_in(argv) == server


def test_an_unmarked_test_that_starts_a_server_fails_and_fixtures_mark_their_users(
    pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch
) -> None:
    fake = pytester.path / "redis-server"  # named as a server; starts nothing
    fake.write_text("#!/bin/sh\nexit 0\n")
    fake.chmod(0o755)
    monkeypatch.setenv("PYTHONPATH", str(ROOT))
    pytester.makeini("[pytest]\nmarkers =\n    integration: starts a real server\n")
    pytester.makeconftest(
        'import pytest\npytest_plugins = ["tests.server_marks"]\n\n'
        "@pytest.fixture\ndef s3_server():\n    return 's3'\n"
    )
    pytester.makepyfile(
        f"""
        import subprocess
        import pytest

        def test_unmarked_starts_one():
            subprocess.run([{str(fake)!r}], check=True)

        @pytest.mark.integration
        def test_marked_starts_one():
            subprocess.run([{str(fake)!r}], check=True)

        def test_unmarked_starts_none():
            subprocess.run(["true"], check=True)

        def test_uses_a_server_fixture(s3_server):
            assert s3_server == "s3"
        """
    )
    run = pytester.runpytest_subprocess("-p", "no:cacheprovider")
    run.assert_outcomes(passed=3, failed=1)
    run.stdout.fnmatch_lines(
        ["*test_unmarked_starts_one started redis-server without the integration marker*"]
    )
    unit = pytester.runpytest_subprocess("-p", "no:cacheprovider", "-m", "not integration")
    unit.assert_outcomes(passed=1, failed=1, deselected=2)
