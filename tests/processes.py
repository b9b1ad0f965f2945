"""Real servers as subprocesses for the tests: start, wait until an URL answers 200, stop."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import time
from pathlib import Path
from typing import Any

import httpx

ROOT = Path(__file__).resolve().parents[1]


def free_port() -> int:
    """A free TCP port on loopback."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start(command: list[str], env: dict[str, str], log: Path) -> subprocess.Popen:
    """Start a command in its own process group (so stop() takes its children too), output to log."""
    with open(log, "wb") as out:
        return subprocess.Popen(
            command, cwd=ROOT, env=env, stdout=out, stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL, start_new_session=True,
        )  # fmt: skip


def wait_ok(
    url: str, proc: subprocess.Popen, log: Path, timeout_s: float = 60, since: float | None = None
) -> float:
    """Block until url answers 200; returns seconds since `since` (default: now). Fails with the log."""
    since = time.monotonic() if since is None else since
    while time.monotonic() - since < timeout_s:
        if proc.poll() is not None:
            raise RuntimeError(f"{proc.args[0]} exited with {proc.returncode}:\n{log.read_text()[-3000:]}")
        try:
            if httpx.get(url, timeout=1).status_code == 200:
                return time.monotonic() - since
        except httpx.HTTPError:
            pass
        time.sleep(0.05)
    raise TimeoutError(f"{url} not OK after {timeout_s}s:\n{log.read_text()[-3000:]}")


def stop(proc: subprocess.Popen, timeout_s: float = 15) -> None:
    """SIGTERM the process group, SIGKILL it if it does not exit in time."""
    if proc.poll() is not None:
        return
    os.killpg(proc.pid, signal.SIGTERM)
    try:
        proc.wait(timeout=timeout_s)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()


def serve_env(settings: Any, home: Path, port: int, **extra: str) -> dict[str, str]:
    """The environment of scripts/serve.sh on a test's S3 settings, with its own cache and spool under home."""
    return {
        **os.environ,
        "S3_EMBEDDED": "0",
        "S3_ENDPOINT_URL": settings.s3_endpoint_url or "",
        "S3_BUCKET": settings.s3_bucket,
        "AWS_ACCESS_KEY_ID": settings.aws_access_key_id.get_secret_value(),
        "AWS_SECRET_ACCESS_KEY": settings.aws_secret_access_key.get_secret_value(),
        "MODEL_CACHE_DIR": str(home / "model-cache"),
        "SPOOL_DIR": str(home / "spool"),
        "SERVE_PORT": str(port),
        **extra,
    }
