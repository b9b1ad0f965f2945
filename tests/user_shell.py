"""A new user's shell for the scripts' tests: none of the project's variables, so each script derives its own."""

from __future__ import annotations

import subprocess
from pathlib import Path

# The system's PATH only: the scripts put .venv/bin first themselves (scripts/env.sh).
SYSTEM_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"


def user_env(home: Path, **extra: str) -> dict[str, str]:
    """The environment of a fresh login shell with its own HOME, plus `extra`."""
    home.mkdir(parents=True, exist_ok=True)
    return {"PATH": SYSTEM_PATH, "HOME": str(home), "LANG": "C.UTF-8", **extra}


def run(script: Path, *args: str, env: dict[str, str], timeout_s: float = 120) -> subprocess.CompletedProcess:
    """Run a script as a user types it; stdout and stderr together, as a terminal shows them."""
    return subprocess.run(
        [str(script), *args], env=env, cwd=script.parents[1], stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT, text=True, timeout=timeout_s,
    )  # fmt: skip
