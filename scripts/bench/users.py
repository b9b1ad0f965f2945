"""Users known by their id: the precompute task's time per 10,000 users, and /recommend p99, cached and live.

On a throw-away SeaweedFS holding the demo models (an untrained SASRec of the production architecture
over the whole catalog, as `bench.sh serve --demo`), with a fresh local user store (SQLite):

1. 1,000 "cached" app users (20 likes each, taken from MovieLens sequences) post their feedback, which is
   curated (collect_feedback) and applied to the user store as /feedback would; 1,000 "live" users only
   reach the store. precompute_recs (services/train/recommender/precompute.py) then ranks the cached app users and
   the snapshot's MovieLens users, repeated under distinct ids until there are --users of them (the
   snapshot has ~650), writes the lists to S3 and loads them into the store. Its time per 10,000 users
   is printed (ranking alone, and in all: S3 write and store load included).
2. Unless --skip-serve, the real server (scripts/serve.sh, one worker) starts on that store and S3, and
   POST /recommend {"user_id": ...} is loaded for cached users (answered from their precomputed list)
   and for live users (same history length, ranked by the model), at each --concurrency level with
   the same generator (wrk pinned to the last core when installed), so the two p99s are comparable.

    .venv/bin/python -m scripts.bench.users [--users 10000] [--seconds 8] [--concurrency 1,16] [--skip-serve]
"""

from __future__ import annotations

import argparse
import json
import logging
import math
import os
import shutil
import subprocess
import sys
import tempfile
import time
from contextlib import ExitStack
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx

from scripts.bench.record import write_record
from scripts.bench.serve_load import Cell, HttpxLoad, Target, Wrk, measure
from scripts.bench.serve_report import table
from scripts.bench.serve_servers import cpu_split, demo_s3
from scripts.harness.processes import ROOT, free_port, process, wait_or_exit

log = logging.getLogger("bench_users")
APP_USERS, HISTORY = 1000, 20


def _settings(env: dict[str, str], tmp: Path) -> Any:
    from services.core.settings import Settings

    return Settings(
        _env_file=None, s3_endpoint_url=env["S3_ENDPOINT_URL"], s3_bucket=env["S3_BUCKET"],
        aws_access_key_id=env["AWS_ACCESS_KEY_ID"], aws_secret_access_key=env["AWS_SECRET_ACCESS_KEY"],
        user_store_path=tmp / "users.db", precompute_movielens=True, spool_dir=tmp / "spool",
    )  # fmt: skip


def _app_events(prefix: str, histories: list[list[int]], day: str) -> list[dict[str, Any]]:
    """Feedback records as /feedback builds them: HISTORY likes per user, a second apart."""
    out = []
    for u, liked in enumerate(histories):
        for n, tmdb_id in enumerate(liked):
            out.append({
                "event_id": f"{prefix}-{u}-{n}", "ts": f"{day}T10:{n // 60:02d}:{n % 60:02d}.000Z",
                "replica": "bench", "user_id": f"{prefix}-{u}", "tmdb_id": tmdb_id, "kind": "like",
                "value": None, "request_id": None, "position": None,
            })  # fmt: skip
    return out


def precompute(settings: Any, day: str, users_wanted: int) -> dict[str, Any]:
    """Seed cached and live app users, run precompute_recs over them and the repeated MovieLens users."""
    from services.core import events
    from services.core.storage import ObjectStore
    from services.core.user_store_open import open_user_store
    from services.train.feedback.curate import collect_feedback
    from services.train.recommender.precompute import movielens_inputs, precompute_recs

    store = ObjectStore.from_settings(settings)
    base = movielens_inputs(settings)
    long_enough = [u.liked[:HISTORY] for u in base if len(u.liked) >= HISTORY]
    histories = [long_enough[i % len(long_enough)] for i in range(2 * APP_USERS)]
    cached = _app_events("cached", histories[:APP_USERS], day)
    live = _app_events("live", histories[APP_USERS:], day)
    store.put_bytes(events.batch_key("feedback", day, "bench", 0), events.encode_lines(cached))
    collect_feedback(store, day)
    users = open_user_store(settings)
    try:
        for i in range(0, len(cached) + len(live), 2000):
            users.apply((cached + live)[i : i + 2000])
        copies = max(1, math.ceil(users_wanted / len(base)))
        result = precompute_recs(settings, store, day, users=users, movielens_copies=copies)
    finally:
        users.close()
    return result


def _targets() -> list[Target]:
    def body(user: str) -> str:
        return json.dumps({"user_id": user, "k": 10})

    return [
        Target("cached user", "POST", "/recommend", [body(f"cached-{u}") for u in range(APP_USERS)]),
        Target("live user", "POST", "/recommend", [body(f"live-{u}") for u in range(APP_USERS)]),
    ]


def serve(settings: Any, env: dict[str, str], tmp: Path, args: argparse.Namespace) -> list[Cell] | str:
    """Start serve.sh on the seeded store; the cells, or why the serving part was skipped."""
    wrk = shutil.which("wrk") if args.generator != "httpx" else None
    server_cpus, generator_cpus = cpu_split("auto", 1) if wrk else (None, None)
    generator: Wrk | HttpxLoad = Wrk(wrk, generator_cpus, tmp) if wrk else HttpxLoad()
    port = free_port()
    server_env = {**os.environ, **env, "SERVE_PORT": str(port), "SERVE_WORKERS": "1",
                  "USER_STORE_PATH": str(settings.user_store_path), "SPOOL_DIR": str(tmp / "spool")}  # fmt: skip
    server_env.pop("USER_STORE_URL", None)
    if generator_cpus:  # the throw-away S3 stands in for a remote one: off the server's core
        pid = (tmp / "s3" / "weed.pid").read_text().strip()
        subprocess.run(["taskset", "-a", "-p", "-c", generator_cpus, pid], capture_output=True, check=False)
    url = f"http://127.0.0.1:{port}"
    cmd = [*(["taskset", "-c", server_cpus] if server_cpus else []), str(ROOT / "scripts" / "serve.sh")]
    with process(cmd, server_env, tmp / "serve.log") as proc:
        wait_or_exit(f"{url}/ready", proc, tmp / "serve.log", time.monotonic(), 120)
        probe = {u: httpx.post(f"{url}/recommend", json={"user_id": u, "k": 10}, timeout=10).json()
                 for u in ("cached-0", "live-0")}  # fmt: skip
        if probe["cached-0"].get("cached") is not True or probe["live-0"].get("cached") is not False:
            return f"this API does not answer cached users from their list yet: {probe}"
        levels = [int(x) for x in args.concurrency.split(",")]
        cells = []
        for target in _targets():
            for level in levels:
                log.info("%s at concurrency %d", target.server, level)
                cells.append(measure(generator, url, target, level, args.seconds, proc.pid))
    log.info(
        "load generator: %s; pinning: server %s, generator %s", generator.name, server_cpus, generator_cpus
    )
    return cells


def main(argv: list[str] | None = None) -> int:
    """Parse options, run the precompute part, then the serving part; print the figures."""
    parser = argparse.ArgumentParser(
        prog="python -m scripts.bench.users",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--users", type=int, default=10_000, help="MovieLens users to rank (repeated ids)")
    parser.add_argument("--seconds", type=float, default=8.0, help="measured seconds per cell (default 8)")
    parser.add_argument("--concurrency", default="1,16", help="comma-separated levels (default 1,16)")
    parser.add_argument("--generator", choices=("auto", "wrk", "httpx"), default="auto")
    parser.add_argument("--skip-serve", action="store_true", help="only the precompute figures")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(message)s", stream=sys.stderr)
    for noisy in ("httpx", "botocore", "services"):
        logging.getLogger(noisy).setLevel(logging.WARNING)
    started_at = datetime.now(UTC).isoformat(timespec="seconds")
    day = datetime.now(UTC).date().isoformat()
    load_start = os.getloadavg()
    with ExitStack() as stack:
        tmp = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="bench-users-")))
        env = demo_s3(stack, tmp)
        settings = _settings(env, tmp)
        r = precompute(settings, day, args.users)
        cells = None if args.skip_serve else serve(settings, env, tmp, args)
    print(f"users benchmark, {started_at}: demo SASRec over the whole catalog, local user store (SQLite)")
    print(f"- machine: {os.cpu_count()} CPUs, load average {load_start[0]:.2f} at start, "
          f"{os.getloadavg()[0]:.2f} at the end\n")  # fmt: skip
    print(f"precompute_recs: {r['users']:,} users ({r['app_users']:,} app users, {r['movielens_users']:,} MovieLens "
          f"ids), k={r['k']}, model {r['algorithm']} {r['model_version']}")  # fmt: skip
    print(f"- ranking: {r['rank_seconds']:.2f} s, {r['rank_seconds_per_10k_users']:.2f} s per 10,000 users")
    print(f"- in all (registry load, inputs, ranking, S3 write, store load of {r['loaded']:,} lists): "
          f"{r['seconds']:.2f} s, {r['seconds_per_10k_users']:.2f} s per 10,000 users")  # fmt: skip
    keys = ("users", "app_users", "movielens_users", "k", "algorithm", "model_version", "rank_seconds",
            "rank_seconds_per_10k_users", "loaded", "seconds", "seconds_per_10k_users")  # fmt: skip
    figures: dict[str, Any] = {"precompute": {k: r[k] for k in keys}, "recommend": []}
    tables = {}
    if isinstance(cells, str):
        print(f"\n/recommend: skipped ({cells})")
        figures["recommend_skipped"] = cells
    elif cells:
        tables["recommend"] = table(cells)
        figures["recommend"] = [{"user": c.target.server, "endpoint": c.target.name, "concurrency": c.concurrency,
                                 "requests": c.sent, "errors": c.errors, "rps": c.rps, "p50_ms": c.p50_ms,
                                 "p99_ms": c.p99_ms, "server_cpu_ms": c.server_cpu_ms} for c in cells]  # fmt: skip
        print("\n/recommend with only a user_id (1,000 users each, 20 stored likes each):\n")
        print(table(cells))
        top = max(c.concurrency for c in cells)
        by = {c.target.server: c for c in cells if c.concurrency == top}
        if "cached user" in by and "live user" in by:
            print(f"\n- p99 at concurrency {top}: cached {by['cached user'].p99_ms:.2f} ms, "
                  f"live {by['live user'].p99_ms:.2f} ms")  # fmt: skip
    tables["precompute"] = ("| users | ranking s | ranking s per 10,000 users | in all s | in all s per 10,000 users |\n"
                            f"|---:|---:|---:|---:|---:|\n| {r['users']:,} | {r['rank_seconds']:.2f} | "
                            f"{r['rank_seconds_per_10k_users']:.2f} | {r['seconds']:.2f} | {r['seconds_per_10k_users']:.2f} |")  # fmt: skip
    write_record("users", sys.argv[1:] if argv is None else argv, figures, [], tables)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
