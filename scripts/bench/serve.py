"""Load-test the serving API against the reference project's serving pattern; every claim with its interval.

Starts the real server (scripts/serve.sh: uvicorn on the configured S3; the embedded SeaweedFS by
default, started if needed) on a free port, unless --url points at a running one. When the configured
registry has no production rating model (or with --demo), it starts a throw-away SeaweedFS instead and
publishes a small rating model trained on the bundled snapshot and an untrained SASRec recommender of
the production architecture, so the benchmark needs nothing else.

In the same run, under the same load generator and concurrency, it measures the reference pattern
(yoon-chung/MLOps app/main.py: a FastAPI GET endpoint under uvicorn, one worker, that pickle.loads an
XGBoost model from disk on every request, builds a one-row pandas DataFrame from encoded query
parameters and predicts), GET /health as the framework's ceiling, and a second server with
PREDICTION_LOG_RATE=0 for the cost of logging every answer (--skip-log-off to leave it out).

Cells run in --repeats interleaved rounds (every cell once per round, the order reversed every other
round), so each ratio is a median over pairs measured side by side, with the order-statistics interval
of that median (scripts/bench/intervals.py); server CPU per request, steadier than throughput on a busy
machine, is judged the same way. A verdict is "met" only when the whole interval clears the target, "not
met" when it all misses, "inconclusive" otherwise or with fewer than 3 rounds. Error answers never count
as fast: a cell with any non-2xx answer counts as infinitely slow and, as a baseline, drops its pair.
Time to ready is timed over every serve.sh start (the server, the logging-off one and --ready-starts
more), each from a cold model cache. The figures and verdicts go to docs/results/serve.json.

Run time at the defaults (--seconds 4 --repeats 5 --concurrency 1,16): 10 cells x 5 rounds x 4 s plus
10 s of warm-up is 3.5 min of load; with the starts (throw-away S3, demo models, 5 serve.sh starts at
~3.5 s each on a quiet machine) about 4.5 min. Starts slow down with load: at load 10 on 2 cores each
took 20-36 s, and `--seconds 2 --repeats 3` took 4 min 50 s in all.

The load generator is wrk when installed (apt-get install wrk: C, one thread, a few microseconds of
CPU per request), else an httpx asyncio client, which costs more CPU per request than the server and
so caps what can be measured on a small machine. wrk's connections are the concurrency. With --pin
(the default on 2+ cores with one worker) the servers run on the first cores and the generator on the
last one, so they do not take turns on one.

--soak SECONDS loads /predict alone for that long instead and prints p99, server RSS and the spool's
size per window (--soak-window, default 60 s) with their slopes per hour (scripts/bench/soak.py).

    .venv/bin/python -m scripts.bench.serve [--demo] [--url URL] [--seconds 4] [--repeats 5] [--soak 3600]
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
from contextlib import ExitStack
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from scripts.bench import intervals, soak
from scripts.bench.record import write_record
from scripts.bench.serve_load import UNIQUE_LABEL, HttpxLoad, Planned, Target, Wrk, interleaved
from scripts.bench.serve_report import summary, table
from scripts.bench.serve_servers import (
    cpu_split,
    demo_s3,
    describe_models,
    has_production_rating,
    log_off_server,
    ready_times,
    reference_server,
    serve_sh,
)
from scripts.harness.processes import ROOT

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
    return [  # in the order a round runs them: each baseline next to the /predict cell it is compared with
        Target("movie-intel", "GET", "/health", [""]),
        Target("movie-intel", "POST", "/predict", [json.dumps(b) for b in bodies]),
        Target("reference", "GET", "/predict", [urlencode(p) for p in params]),
        Target("movie-intel", "POST", "/predict", [json.dumps(b) for b in fresh], UNIQUE_LABEL),
        Target("movie-intel", "POST", "/recommend", [json.dumps({"liked": ids, "k": 10}) for ids in liked]),
    ]


def _body(movie: dict[str, Any], suffix: str = "") -> dict[str, Any]:
    """A /predict body with the fields of the UI's form, from a snapshot movie."""
    return {
        "overview": movie["overview"][:1990] + suffix, "runtime": min(movie["runtime"], 1000),
        "genres": movie["genres"], "original_language": "en", "title": movie["title"],
        "release_date": movie["release_date"],
    }  # fmt: skip


def _plan(targets: list[Target], levels: list[int], urls: dict[str, str | None],
          pgids: dict[str, int | None]) -> list[Planned]:  # fmt: skip
    """The cells of one round, each level's baselines beside the /predict cell they are compared with."""
    plan = []
    for level in levels:
        for target in targets:
            url = urls.get(target.server)
            if url is not None and (not target.label or level == max(levels)):
                plan.append(Planned(url, target, level, pgids[target.server]))
    return plan


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m scripts.bench.serve",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--url", help="benchmark this running server instead of starting one")
    parser.add_argument(
        "--demo", action="store_true", help="throw-away S3 with demo models (no pipeline run)"
    )
    parser.add_argument("--seconds", type=float, default=4.0, help="measured seconds per cell (default 4)")
    parser.add_argument(
        "--repeats", type=int, default=5,
        help="rounds of every cell, interleaved (default 5: [min, max] of 5 is a 94%% interval of the median)",
    )  # fmt: skip
    parser.add_argument(
        "--ready-starts", type=int, default=3,
        help="extra serve.sh starts timed to /ready, beside the bench's own servers' (default 3)",
    )  # fmt: skip
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
        "--soak", type=float, default=0.0, metavar="SECONDS",
        help="instead of the table: load /predict at the top concurrency this long, print trends "
        f"(targets: {soak.TARGETS_HELP})",
    )  # fmt: skip
    parser.add_argument(
        "--soak-window", type=float, default=60.0, help="seconds per soak window (default 60)"
    )
    return parser


def main(argv: list[str] | None = None) -> int:
    """Parse options, start the servers, run every cell in interleaved rounds, print the table and verdicts."""
    args = _parser().parse_args(argv)
    argv = sys.argv[1:] if argv is None else argv
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
    predict = next(t for t in targets if t.path == "/predict")
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
        ready_s: list[float] = []
        urls: dict[str, str | None] = {"movie-intel": args.url, "reference": None, "log-off": None}
        pgids: dict[str, int | None] = {"movie-intel": None, "reference": None, "log-off": None}
        source, spool = "given URL", None
        if args.url is None:
            demo = args.demo or not has_production_rating()
            if demo and not args.demo:
                log.info("the configured registry has no production rating model: using demo models (--demo)")
            env = {**os.environ, **(demo_s3(stack, tmp) if demo else {}), "SERVE_WORKERS": str(args.workers)}
            source = "demo models on a throw-away S3" if demo else "the configured registry"
            spool = Path(env.get("SPOOL_DIR", ROOT / "var" / "spool"))
            log.info("starting scripts/serve.sh (%d worker(s))", args.workers)
            url, pgids["movie-intel"], seconds = serve_sh(stack, env, pin, tmp / "serve.log")
            urls["movie-intel"] = url
            ready_s.append(seconds)
            log.info("ready on %s after %.2f s", url, seconds)
            if not args.soak:
                ready_s += ready_times(env, pin, tmp, args.ready_starts)
                if not args.skip_log_off:
                    urls["log-off"], pgids["log-off"], seconds = log_off_server(stack, env, pin, tmp)
                    ready_s.append(seconds)
        url = urls["movie-intel"]
        assert url is not None
        if args.soak:
            windows = soak.run(generator, url, predict, max(levels), args.soak, args.soak_window,
                               pgids["movie-intel"], spool)  # fmt: skip
            print(f"serving soak, {started_at}: {source}; models: {describe_models(url)}")
            print(f"- load generator: {generator.name}; PREDICTION_LOG_RATE="
                  f"{os.environ.get('PREDICTION_LOG_RATE', 'default')}\n")  # fmt: skip
            report = soak.report(windows, max(levels), predict.name)
            print("\n".join(report.lines))
            write_record("serve-soak", argv, report.figures, report.verdicts,
                         {"windows": soak.table(windows), "verdicts": intervals.table(report.verdicts)})  # fmt: skip
            return 0
        if not args.skip_reference:
            urls["reference"], pgids["reference"] = reference_server(stack, tmp, movies, pin)
        models = describe_models(url)
        if urls["log-off"] is not None:
            targets.insert(
                targets.index(predict) + 1, Target("log-off", predict.method, predict.path, predict.lines)
            )
        cells = interleaved(generator, _plan(targets, levels, urls, pgids), args.repeats, args.seconds, log)
    load_end = os.getloadavg()
    pinning = f"servers on CPU {server_cpus}, generator on CPU {generator_cpus}" if server_cpus else "none"
    print(f"serving benchmark, {started_at}: {source}")
    print(f"- machine: {os.cpu_count()} CPUs, load average {load_start[0]:.2f} at start "
          f"({load_start[1]:.2f} over 5 min), {load_end[0]:.2f} at the end")  # fmt: skip
    print(f"- load generator: {generator.name}, on the same machine; pinning: {pinning}")
    print(f"- server: uvicorn, {args.workers if args.url is None else '?'} worker(s); models: {models}; "
          f"PREDICTION_LOG_RATE={os.environ.get('PREDICTION_LOG_RATE', 'default (1.0)')}")  # fmt: skip
    print(f"- {args.repeats} interleaved rounds of every cell, {args.seconds:g} s each (a 1 s warm-up in the "
          "first round); the reference runs under uvicorn, 1 worker")  # fmt: skip
    print("- each figure: median [interval] over the rounds (n, the interval's coverage of the median); "
          "a ratio pairs the cells of one round; a cell with error answers counts as infinitely slow\n")  # fmt: skip
    print(table(cells))
    print()
    report = summary(cells, ready_s, max(levels))
    print("\n".join(report.lines))
    write_record("serve", argv, report.figures, report.verdicts,
                 {"cells": table(cells), "verdicts": intervals.table(report.verdicts)})  # fmt: skip
    return 0


if __name__ == "__main__":
    sys.exit(main())
