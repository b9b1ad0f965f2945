"""Real servers as subprocesses: free ports, start a process group, wait until an URL answers 200, stop.

Shared by the tests (which want exceptions) and the benches and simulations (which exit with the reason).
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx

ROOT = Path(__file__).resolve().parents[2]


class Exited(RuntimeError):
    """The process ended before its URL answered 200."""


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


@contextmanager
def process(command: list[str], env: dict[str, str], log: Path) -> Iterator[subprocess.Popen]:
    """start() for the length of a with block, stop() at its end."""
    proc = start(command, env, log)
    try:
        yield proc
    finally:
        stop(proc)


def wait_ok(
    url: str,
    proc: subprocess.Popen,
    log: Path,
    timeout_s: float = 60,
    since: float | None = None,
    poll_s: float = 0.05,
    refuse: Callable[[httpx.Response], None] | None = None,
) -> float:
    """Block until url answers 200; returns seconds since `since` (default: now). Fails with the log.

    `refuse` sees every other answer and may raise to give up early (a state that will not get better).
    """
    since = time.monotonic() if since is None else since
    while time.monotonic() - since < timeout_s:
        if proc.poll() is not None:
            raise Exited(f"{proc.args[0]} exited with {proc.returncode}:\n{log.read_text()[-3000:]}")
        try:
            r = httpx.get(url, timeout=1)
            if r.status_code == 200:
                return time.monotonic() - since
            if refuse is not None:
                refuse(r)
        except httpx.HTTPError:
            pass
        time.sleep(poll_s)
    raise TimeoutError(f"{url} not OK after {timeout_s}s:\n{log.read_text()[-3000:]}")


def wait_or_exit(url: str, proc: subprocess.Popen, log: Path, start: float, timeout_s: float) -> float:
    """wait_ok for a program: seconds from start until url answers 200, or exit with the reason."""

    def refuse(r: httpx.Response) -> None:
        if r.status_code == 503:  # started, but nothing to serve: it will not get better on its own
            sys.exit(f"the server is up but not ready: {r.json().get('detail')}\n(or run with --demo)")

    try:
        return wait_ok(url, proc, log, timeout_s, since=start, poll_s=0.02, refuse=refuse)
    except Exited:
        sys.exit(f"server exited ({proc.returncode}); last log lines:\n{log.read_text()[-2000:]}")
    except TimeoutError:
        sys.exit(f"not ready after {timeout_s}s; see {log}")


def group_cpu_s(pgid: int | None) -> float | None:
    """CPU seconds (user + system) used so far by every live process in a process group (Linux /proc)."""
    if pgid is None:
        return None
    total = 0.0
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(fields[2]) == pgid:
            total += (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
    return total


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
