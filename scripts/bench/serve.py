"""Load-test the serving API against the reference project's serving pattern, as a markdown table.

Starts the real server (scripts/serve.sh: uvicorn on the configured S3; the embedded SeaweedFS by
default, started if needed) on a free port and measures its time to ready, unless --url points at a
running one. When the configured registry has no production rating model (or with --demo), it starts
a throw-away SeaweedFS instead and publishes a small rating model trained on the bundled snapshot and
an untrained SASRec recommender of the production architecture, so the benchmark needs nothing else.

In the same run, under the same load generator and concurrency, it starts the reference pattern
(yoon-chung/MLOps app/main.py: a FastAPI GET endpoint under uvicorn, one worker, that pickle.loads an
XGBoost model from disk on every request, builds a one-row pandas DataFrame from encoded query
parameters and predicts) and prints the ratio, and measures GET /health as the framework's ceiling.

The load generator is wrk when installed (apt-get install wrk: C, one thread, a few microseconds of
CPU per request), else an httpx asyncio client, which costs more CPU per request than the server and
so caps what can be measured on a small machine. Each cell runs for --seconds after a 1 s warm-up;
wrk's connections are the concurrency. With --pin (the default on 2+ cores with one worker) the
servers run on the first cores and the generator on the last one, so they do not take turns on one.

It also starts a second server with PREDICTION_LOG_RATE=0 and measures /predict on it, so the cost of
logging every answer (the default) is a ratio measured in the same run (--skip-log-off to leave out).
--soak SECONDS loads /predict alone for that long instead and prints p99, server RSS and the spool's
size per window (--soak-window, default 60 s) with their trends (scripts/bench/soak.py).

    .venv/bin/python -m scripts.bench.serve [--demo] [--url URL] [--seconds 8] [--soak 600]
"""

from __future__ import annotations

import argparse
import itertools
import json
import logging
import os
import shutil
import sys
import tempfile
import time
from contextlib import ExitStack
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from scripts.bench.serve_load import UNIQUE_LABEL, Cell, HttpxLoad, Target, Wrk, measure
from scripts.bench.serve_report import log_cost, summary, table
from scripts.bench.serve_servers import (
    cpu_split,
    demo_s3,
    describe_models,
    has_production_rating,
    log_off_server,
    reference_model,
)
from scripts.harness.processes import ROOT, free_port, process, wait_or_exit

log = logging.getLogger("bench_serve")
UNIQUE_BODIES = 10_000


def targets_for(movies: list[dict[str, Any]]) -> list[Target]:
    """The cells' endpoints and request lines (bodies or query strings) from the snapshot movies."""
    from urllib.parse import urlencode

    every = [m for m in movies if m["original_language"] == "en" and m["overview"] and m["runtime"]]
    english = every[:200]
    bodies = [_body(m) for m in english]
    # Serving remembers the sentiment and text score of its last 4,096 overviews: a cycle longer than
    # that never repeats one while it is remembered, so this cell measures the cost of new text.
    fresh = [_body(m, f" ({k // len(every)})" if k >= len(every) else "") for k, m in
             zip(range(UNIQUE_BODIES), itertools.cycle(every), strict=False)]  # fmt: skip
    liked = [[m["id"] for m in english[i : i + 5]] for i in range(0, 150, 5)]
    params = [
        {"runtime": int(b["runtime"]), "genre_encoded": i % 15, "lang_encoded": 5, "sentiment": 0.1,
         "overview_len": len(b["overview"])}
        for i, b in enumerate(bodies)
    ]  # fmt: skip
    return [
        Target("movie-intel", "GET", "/health", [""]),
        Target("movie-intel", "POST", "/predict", [json.dumps(b) for b in bodies]),
        Target("movie-intel", "POST", "/predict", [json.dumps(b) for b in fresh], UNIQUE_LABEL),
        Target("movie-intel", "POST", "/recommend", [json.dumps({"liked": ids, "k": 10}) for ids in liked]),
        Target("reference", "GET", "/predict", [urlencode(p) for p in params]),
    ]


def _body(movie: dict[str, Any], suffix: str = "") -> dict[str, Any]:
    """A /predict body with the fields of the UI's form, from a snapshot movie."""
    return {
        "overview": movie["overview"][:1990] + suffix, "runtime": min(movie["runtime"], 1000),
        "genres": movie["genres"], "original_language": "en", "title": movie["title"],
        "release_date": movie["release_date"],
    }  # fmt: skip


def _log_off_cell(generator: Wrk | HttpxLoad, env: dict[str, str], pin: list[str], tmp: Path,
                  target: Target, level: int, seconds: float) -> Cell:  # fmt: skip
    """Start serve.sh again with PREDICTION_LOG_RATE=0 (its own port and spool) and measure /predict."""
    with log_off_server(env, pin, tmp) as (url, proc):
        log.info("%s with logging off at concurrency %d", target.name, level)
        off = Target("log-off", target.method, target.path, target.lines)
        return measure(generator, url, off, level, seconds, proc.pid)


def main(argv: list[str] | None = None) -> int:
    """Parse options, start the servers, run every cell, print the table."""
    parser = argparse.ArgumentParser(
        prog="python -m scripts.bench.serve",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--url", help="benchmark this running server instead of starting one")
    parser.add_argument(
        "--demo", action="store_true", help="throw-away S3 with demo models (no pipeline run)"
    )
    parser.add_argument("--seconds", type=float, default=8.0, help="measured seconds per cell (default 8)")
    parser.add_argument("--concurrency", default="1,16", help="comma-separated levels (default 1,16)")
    parser.add_argument("--generator", choices=("auto", "wrk", "httpx"), default="auto")
    parser.add_argument(
        "--pin", choices=("auto", "yes", "no"), default="auto",
        help="taskset: servers on the first cores, generator on the last (auto: yes with one worker)",
    )  # fmt: skip
    parser.add_argument("--skip-reference", action="store_true", help="do not run the reference pattern")
    parser.add_argument(
        "--skip-log-off", action="store_true", help="do not measure /predict with logging off"
    )
    parser.add_argument(
        "--soak",
        type=float,
        default=0.0,
        metavar="SECONDS",
        help="instead of the table: load /predict at the top concurrency this long, print trends",
    )
    parser.add_argument(
        "--soak-window", type=float, default=60.0, help="seconds per soak window (default 60)"
    )
    args = parser.parse_args(argv)  # fmt: skip
    args.workers = 1  # serve.sh runs one worker per replica (each owns an event spool)
    logging.basicConfig(level=logging.INFO, format="%(message)s", stream=sys.stderr)
    logging.getLogger("httpx").setLevel(logging.WARNING)
    levels = [int(x) for x in args.concurrency.split(",")]
    load_start = os.getloadavg()
    started_at = datetime.now(UTC).isoformat(timespec="seconds")

    from services.core.movie import normalize_movie
    from services.train.movies.snapshot import load_movies

    movies = [normalize_movie(m) for m in load_movies(ROOT / "data" / "snapshot")]
    targets = targets_for(movies)
    wrk = shutil.which("wrk") if args.generator != "httpx" else None
    if args.generator == "wrk" and wrk is None:
        sys.exit("wrk is not installed: apt-get install -y wrk (or --generator httpx)")
    server_cpus, generator_cpus = cpu_split(args.pin, args.workers) if wrk else (None, None)
    pin = ["taskset", "-c", server_cpus] if server_cpus else []
    with ExitStack() as stack:
        tmp = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="bench-serve-")))
        generator: Wrk | HttpxLoad = Wrk(wrk, generator_cpus, tmp) if wrk else HttpxLoad()
        if not wrk:
            log.warning(
                "wrk not found (apt-get install -y wrk): using the httpx client, which caps the figures"
            )
        ready_s = None
        serve_env: dict[str, str] = {}
        url = args.url
        pgids: dict[str, int | None] = {"movie-intel": None, "reference": None}
        source = "given URL"
        if url is None:
            demo = args.demo or not has_production_rating()
            if demo and not args.demo:
                log.info("the configured registry has no production rating model: using demo models (--demo)")
            env = {**os.environ, **(demo_s3(stack, tmp) if demo else {})}
            env["SERVE_PORT"] = str(free_port())
            env["SERVE_WORKERS"] = str(args.workers)
            serve_env = env
            source = "demo models on a throw-away S3" if demo else "the configured registry"
            url = f"http://127.0.0.1:{env['SERVE_PORT']}"
            log.info("starting scripts/serve.sh on %s (%d worker(s))", url, args.workers)
            start = time.monotonic()
            cmd = [*pin, str(ROOT / "scripts" / "serve.sh")]
            proc = stack.enter_context(process(cmd, env, tmp / "serve.log"))
            pgids["movie-intel"] = proc.pid  # its own session: the group is uvicorn and any workers
            ready_s = wait_or_exit(f"{url}/ready", proc, tmp / "serve.log", start, 120)
            log.info("ready after %.2f s", ready_s)
        if args.soak:
            from scripts.bench import soak

            predict = next(t for t in targets if t.path == "/predict")
            spool = None if args.url else Path(serve_env.get("SPOOL_DIR", ROOT / "var" / "spool"))
            windows = soak.run(generator, url, predict, max(levels), args.soak, args.soak_window,
                                     pgids["movie-intel"], spool)  # fmt: skip
            print(f"serving soak, {started_at}: {source}; models: {describe_models(url)}")
            print(
                f"- load generator: {generator.name}; PREDICTION_LOG_RATE={os.environ.get('PREDICTION_LOG_RATE', 'default')}\n"
            )
            print("\n".join(soak.report(windows, max(levels), predict.name)))
            return 0
        reference_url = None
        if not args.skip_reference:
            model_path = reference_model(tmp, movies)
            port = free_port()
            reference_url = f"http://127.0.0.1:{port}"
            cmd = [*pin, sys.executable, "-m", "uvicorn", "reference_app:app",
                   "--app-dir", str(model_path.parent), "--port", str(port), "--no-access-log"]  # fmt: skip
            env = {**os.environ, "REFERENCE_MODEL_PATH": str(model_path)}
            proc = stack.enter_context(process(cmd, env, tmp / "reference.log"))
            pgids["reference"] = proc.pid
            wait_or_exit(f"{reference_url}/docs", proc, tmp / "reference.log", time.monotonic(), 60)
        models = describe_models(url)
        cells = []
        for target in targets:
            base = reference_url if target.server == "reference" else url
            if base is None:
                continue
            for level in [max(levels)] if target.label else levels:
                log.info("%s at concurrency %d", target.name, level)
                cells.append(measure(generator, base, target, level, args.seconds, pgids[target.server]))
        if args.url is None and not args.skip_log_off:
            predict = next(t for t in targets if t.path == "/predict")
            cells.append(_log_off_cell(generator, serve_env, pin, tmp, predict, max(levels), args.seconds))
    load_end = os.getloadavg()
    pinning = f"servers on CPU {server_cpus}, generator on CPU {generator_cpus}" if server_cpus else "none"
    print(f"serving benchmark, {started_at}: {source}")
    print(
        f"- machine: {os.cpu_count()} CPUs, load average {load_start[0]:.2f} at start "
        f"({load_start[1]:.2f} over 5 min), {load_end[0]:.2f} at the end"
    )
    print(f"- load generator: {generator.name}, on the same machine; pinning: {pinning}")
    print(f"- server: uvicorn, {args.workers if args.url is None else '?'} worker(s); models: {models}; "
          f"PREDICTION_LOG_RATE={os.environ.get('PREDICTION_LOG_RATE', 'default (1.0)')}")  # fmt: skip
    print(
        f"- each cell: {args.seconds:g} s after a 1 s warm-up; the reference runs under uvicorn, 1 worker\n"
    )
    print(table(cells))
    print()
    print("\n".join(summary(cells, ready_s, max(levels)) + log_cost(cells, max(levels))))
    return 0


if __name__ == "__main__":
    sys.exit(main())
