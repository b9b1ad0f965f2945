"""What both simulations share: the drawn users, the API calls they make, the API and pipeline they run."""

from __future__ import annotations

import logging
import random
import subprocess
import time
from contextlib import ExitStack
from pathlib import Path
from typing import Any

import httpx

from scripts.harness.processes import ROOT, free_port, process, wait_or_exit

log = logging.getLogger("simulate")
MIN_TRAIN = 12  # users with fewer training movies have too short a future to like anything in

User = tuple[str, list[int], set[int]]  # (user id, what they have seen, their future)


def draw_users(n: int, seed: int) -> list[User]:
    """(user id, what they have seen, their future) for n bundled users, drawn with a fixed seed."""
    from services.core.settings import get_settings
    from services.train.recommender.data import load_snapshot_data

    splits = load_snapshot_data(get_settings().snapshot_dir).splits
    pool = []
    for user, seq in zip(splits.user_ids, splits.train_sequences(), strict=False):
        if len(seq) >= MIN_TRAIN:
            movies = [int(splits.item_ids[i - 1]) for i in seq]
            pool.append((f"sim-{int(user)}", movies[: len(movies) // 2], set(movies[len(movies) // 2 :])))
    return random.Random(seed).sample(pool, min(n, len(pool)))


def post(http: httpx.Client, path: str, body: dict[str, Any]) -> dict[str, Any]:
    """POST a JSON body and return the answer, coming back when the API asks to (503 with Retry-After)."""
    for _ in range(5):
        r = http.post(path, json=body)
        if r.status_code == 503 and "retry-after" in r.headers:  # the API asks to come back: do as told
            time.sleep(float(r.headers["retry-after"]))
            continue
        r.raise_for_status()
        return r.json()
    r.raise_for_status()
    return r.json()


def run_pipeline(day: str, env: dict[str, str], log_path: Path) -> int:
    """scripts/pipeline.sh for one data day, its output to log_path; 0 also when only its alert fired."""
    log.info("    running the pipeline for %s (progress in %s)", day, log_path)
    with open(log_path, "w") as out:
        proc = subprocess.run(
            [str(ROOT / "scripts" / "pipeline.sh"), "--date", day],
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    if proc.returncode == 3:  # the run went through; its alert task marked the day bad (see pipeline.sh)
        log.warning("    the pipeline's alert task marked %s bad: see %s", day, log_path)
        return 0
    return proc.returncode


def start_api(stack: ExitStack, env: dict[str, str], var: Path, log_path: Path, timeout_s: float) -> str:
    """scripts/serve.sh on a free port with its own spool under var, until the stack closes; its URL."""
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    api_env = {**env, "SERVE_PORT": str(port), "SPOOL_DIR": str(var / "spool-simulate"), "S3_EMBEDDED": "0"}
    log.info("==> starting the API on %s (log %s)", url, log_path)
    proc = stack.enter_context(process([str(ROOT / "scripts" / "serve.sh")], api_env, log_path))
    wait_or_exit(f"{url}/ready", proc, log_path, time.monotonic(), timeout_s)
    return url
