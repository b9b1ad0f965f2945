"""Where a model came from: git commit and library versions, for the manifest."""

from __future__ import annotations

import os
import subprocess
from importlib import metadata

from services.core.settings import PROJECT_ROOT

_LIBRARIES = ("numpy", "pandas", "scikit-learn", "xgboost-cpu", "xgboost", "lightgbm", "textblob", "torch")


def git_commit() -> str | None:
    """The checked-out commit (GIT_COMMIT wins, e.g. in a Docker image without .git)."""
    if os.environ.get("GIT_COMMIT"):
        return os.environ["GIT_COMMIT"]
    try:
        out = subprocess.run(
            ["git", "-C", str(PROJECT_ROOT), "rev-parse", "--short=12", "HEAD"],
            capture_output=True, text=True, timeout=5, check=True,
        )  # fmt: skip
        return out.stdout.strip() or None
    except (OSError, subprocess.SubprocessError):
        return None


def library_versions() -> dict[str, str]:
    """Installed versions of the libraries a model depends on."""
    out = {}
    for name in _LIBRARIES:
        try:
            out[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            continue
    return out
