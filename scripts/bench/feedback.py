"""Load-test the event path: single-event POST /feedback, /recommend with impression logging, /health.

Starts the real server (scripts/serve.sh) with a spool of its own on a throw-away SeaweedFS holding
demo models (the same setup as `bench.sh serve --demo`), unless --url points at a running server.
Every cell uses the same load generator (wrk pinned to the last core, the server to the others) and
the same concurrency, so the three rows are comparable: /health is the framework's ceiling. The
throw-away S3 runs on the generator's core, as a remote S3 would not use the server's CPU.

Each /feedback request carries one `like` without an event id, so every request is a new event that
the server commits to its SQLite spool, with an fsync of the WAL (group commit: one fsync serves the
requests that arrived together), before answering 202. After the run the benchmark waits for the
flusher and reports how many accepted events reached S3.

Targets (issues 10 and 19): /feedback >= 3,000 req/s with p99 <= 10 ms at concurrency 16 on one
replica, fsynced; /recommend p99 <= 30 ms at concurrency 16 with impression logging.

The cells run in --repeats interleaved rounds and each target is judged on the median over the rounds
with its interval (scripts/bench/intervals.py): "met" only when the whole interval clears it. A 503
(the spool full, S3 out too long) or any other error answer is never a fast answer: a cell with one
counts as infinitely slow and its throughput counts the 202s only. Figures and verdicts go to
docs/results/feedback.json. At the defaults: 6 cells x 5 rounds x 4 s, about 2.5 min with the starts.

    .venv/bin/python -m scripts.bench.feedback [--url URL] [--seconds 4] [--repeats 5] [--concurrency 1,16]
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import shutil
import subprocess
import sys
import tempfile
import time
from contextlib import ExitStack
from datetime import UTC, datetime
from pathlib import Path

import httpx

from scripts.bench import intervals
from scripts.bench.intervals import median_interval, ratio_interval
from scripts.bench.record import write_record
from scripts.bench.serve_load import Cell, HttpxLoad, Planned, Target, Wrk, interleaved
from scripts.bench.serve_report import Report, cell_figures, p99s, rps, series, table
from scripts.bench.serve_servers import cpu_split, demo_s3
from scripts.harness.api import wait_flushed
from scripts.harness.processes import ROOT, free_port, process, wait_or_exit

log = logging.getLogger("bench_feedback")


def _targets(catalog_ids: list[int]) -> list[Target]:
    feedback = [
        json.dumps({"events": [{"user_id": f"bench-{n % 97}", "tmdb_id": t, "kind": "like"}]})
        for n, t in enumerate(catalog_ids[:200])
    ]
    recommend = [
        json.dumps({"liked": catalog_ids[i : i + 5], "k": 10, "user_id": f"bench-{i}"})
        for i in range(0, 150, 5)
    ]
    return [
        Target("movie-intel", "GET", "/health", [""]),
        Target("movie-intel", "POST", "/feedback", feedback),
        Target("movie-intel", "POST", "/recommend", recommend),
    ]


def main(argv: list[str] | None = None) -> int:
    """Parse options, start the server, run every cell, print the table and the targets."""
    parser = argparse.ArgumentParser(
        prog="python -m scripts.bench.feedback",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--url", help="benchmark this running server instead of starting one")
    parser.add_argument("--seconds", type=float, default=4.0, help="measured seconds per cell (default 4)")
    parser.add_argument("--repeats", type=int, default=5, help="interleaved rounds of every cell (default 5)")
    parser.add_argument("--concurrency", default="1,16", help="comma-separated levels (default 1,16)")
    parser.add_argument("--generator", choices=("auto", "wrk", "httpx"), default="auto")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(message)s", stream=sys.stderr)
    logging.getLogger("httpx").setLevel(logging.WARNING)
    levels = [int(x) for x in args.concurrency.split(",")]
    load_start = os.getloadavg()
    started_at = datetime.now(UTC).isoformat(timespec="seconds")
    wrk = shutil.which("wrk") if args.generator != "httpx" else None
    if args.generator == "wrk" and wrk is None:
        sys.exit("wrk is not installed: apt-get install -y wrk (or --generator httpx)")
    server_cpus, generator_cpus = cpu_split("auto", 1) if wrk else (None, None)
    with ExitStack() as stack:
        tmp = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="bench-feedback-")))
        generator: Wrk | HttpxLoad = Wrk(wrk, generator_cpus, tmp) if wrk else HttpxLoad()
        url, pgid = args.url, None
        if url is None:
            env = {
                **os.environ,
                **demo_s3(stack, tmp),
                "SERVE_PORT": str(free_port()),
                "SERVE_WORKERS": "1",
            }
            if generator_cpus:
                # The throw-away S3 stands in for a remote service: keep its CPU off the server's core,
                # beside the load generator, or every upload shows up in the server's p99.
                pid = (tmp / "s3" / "weed.pid").read_text().strip()
                subprocess.run(
                    ["taskset", "-a", "-p", "-c", generator_cpus, pid], capture_output=True, check=False
                )
            env["SPOOL_DIR"] = str(tmp / "spool")
            url = f"http://127.0.0.1:{env['SERVE_PORT']}"
            log.info("starting scripts/serve.sh on %s with a fresh spool", url)
            cmd = [
                *(["taskset", "-c", server_cpus] if server_cpus else []),
                str(ROOT / "scripts" / "serve.sh"),
            ]
            proc = stack.enter_context(process(cmd, env, tmp / "serve.log"))
            pgid = proc.pid
            wait_or_exit(f"{url}/ready", proc, tmp / "serve.log", time.monotonic(), 120)
        catalog = httpx.get(f"{url}/movies/search", params={"q": "the", "limit": 50}, timeout=10).json()[
            "items"
        ]
        ids = [m["tmdb_id"] for m in catalog]
        ids = (ids * (200 // max(len(ids), 1) + 1))[:200]
        plan = [Planned(url, target, level, pgid) for level in levels for target in _targets(ids)]
        cells = interleaved(generator, plan, args.repeats, args.seconds, log)
        log.info("waiting for the flusher to empty the spool")
        flushed = wait_flushed(url)
    load_end = os.getloadavg()
    top = max(levels)
    print(f"event-path benchmark, {started_at}: one replica, demo models, a fresh spool (feedback fsynced)")
    print(
        f"- machine: {os.cpu_count()} CPUs, load average {load_start[0]:.2f} at start, {load_end[0]:.2f} at the end"
    )
    pinning = f"server on CPU {server_cpus}, generator on CPU {generator_cpus}" if server_cpus else "none"
    print(
        f"- load generator: {generator.name}; pinning: {pinning}; {args.seconds:g} s per cell after a 1 s warm-up\n"
    )
    print(
        f"- {args.repeats} interleaved rounds; each figure: median [interval] over the rounds (n, coverage)\n"
    )
    print(table(cells))
    print()
    report = _judged(cells, top)
    print("\n".join(report.lines))
    for stream in ("feedback", "impressions"):
        acc, up = flushed[f"{stream}_accepted"], flushed[f"{stream}_uploaded"]
        print(f"- {stream}: {acc:,.0f} events accepted, {up:,.0f} confirmed in S3 after the run")
    if flushed["pending"]:
        print(f"- {flushed['pending']:,.0f} events still in the spool after 60 s")
    report.figures.update({f"spool_{k}": v for k, v in flushed.items()})
    argv = sys.argv[1:] if argv is None else argv
    write_record("feedback", argv, report.figures, report.verdicts,
                 {"cells": table(cells), "verdicts": intervals.table(report.verdicts)})  # fmt: skip
    return 0


def _judged(cells: list[Cell], top: int) -> Report:
    """The event path's targets, each judged on its interval over the rounds."""
    report = Report(figures=cell_figures(cells))
    fb, rec = series(cells, "POST /feedback", top), series(cells, "POST /recommend", top)
    health = series(cells, "GET /health", top)
    if fb:
        report.claim(f"feedback_rps_c{top}", f"/feedback throughput at concurrency {top}",
                     median_interval(rps(fb)), 3000.0, True, "{:,.0f}", " req/s")  # fmt: skip
        report.claim(f"feedback_p99_ms_c{top}", f"/feedback p99 at concurrency {top}",
                     median_interval(p99s(fb)), 10.0, False, "{:.2f}", " ms")  # fmt: skip
    if fb and health:
        report.figure(f"feedback_vs_health_rps_ratio_c{top}", f"/feedback throughput / /health's at {top}",
                      ratio_interval(rps(fb), rps(health, True)), "{:.2f}", "x")  # fmt: skip
    if rec:
        report.claim(f"recommend_p99_ms_c{top}", f"/recommend p99 at concurrency {top}, impressions logged",
                     median_interval(p99s(rec)), 30.0, False, "{:.2f}", " ms")  # fmt: skip
    return report


if __name__ == "__main__":
    raise SystemExit(main())
