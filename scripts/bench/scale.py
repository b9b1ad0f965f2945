"""Scale-out benchmark: one replica direct, one replica through nginx, two replicas through nginx.

/predict and /recommend at concurrency 16 and 64 (by default), all in one run, with the same load
generator as scripts/bench/serve.py (wrk when installed, else its httpx client). Two API replicas
(scripts/serve.sh, one uvicorn worker each, spools of their own) and two nginx instances run with
deploy/nginx/nginx.conf, the file scripts/prod.sh and docker-compose-serve.yaml use: one with only the
first replica upstream, one with both. The servers (replicas and nginx) are pinned to --server-cpus
(default: every CPU but the last), the generator to the last CPU, so they never take turns on a core.

Server CPU per request is measured from /proc for the replicas and nginx apart: it sets the ceiling
(cores for the servers / CPU per request), which a second replica on the same cores cannot raise.

Models: the configured registry's production versions when it has them (scripts/env.sh's S3), else a
throw-away SeaweedFS with demo models (--demo), as in scripts/bench/serve.py.

The cells run in --repeats interleaved rounds (the three setups side by side, the order reversed every
other round); each ratio is the median of the per-round pairs with its interval (scripts/bench/intervals.py).
No claim here has a target, so no verdict: the figures and their intervals go to docs/results/scale.json.
A cell with error answers drops its pairs (wrk's latency and counts include them). At the defaults: 12
cells x 5 rounds x 3 s, about 3.5 min with the starts.

    .venv/bin/python -m scripts.bench.scale [--demo] [--seconds 3] [--repeats 5] [--concurrency 16,64]
"""

from __future__ import annotations

import argparse
import logging
import math
import os
import re
import shutil
import sys
import tempfile
import time
from contextlib import ExitStack
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from scripts.bench.intervals import median_interval, ratio_interval
from scripts.bench.record import write_record
from scripts.bench.serve import targets_for
from scripts.bench.serve_load import HttpxLoad, Target, Wrk
from scripts.bench.serve_servers import demo_s3, has_production_rating
from scripts.harness.processes import ROOT, free_port, group_cpu_s, process, wait_or_exit

log = logging.getLogger("bench_scale")
SETUPS = ("1 replica direct", "1 replica via nginx", "2 replicas via nginx")


@dataclass
class Row:
    """One measured cell: a setup, an endpoint, a concurrency."""

    setup: str
    endpoint: str
    concurrency: int
    sent: int
    errors: int
    seconds: float
    p50_ms: float
    p99_ms: float
    replica_cpu_ms: float | None
    nginx_cpu_ms: float | None
    repeat: int = 0

    @property
    def rps(self) -> float:
        """Successful answers per second; NaN for a cell with error answers (it drops its pairs)."""
        if self.errors or not self.seconds:
            return math.nan
        return self.sent / self.seconds


def _nginx(stack: ExitStack, tmp: Path, name: str, ports: list[int], pin: list[str]) -> tuple[str, int]:
    """nginx with the shared nginx.conf, its two includes written for these replicas; (url, pgid)."""
    conf_dir = tmp / name
    conf_dir.mkdir()
    shutil.copy(ROOT / "deploy" / "nginx" / "nginx.conf", conf_dir / "nginx.conf")
    servers = "".join(f"  server 127.0.0.1:{p} max_fails=1 fail_timeout=5s;\n" for p in ports)
    (conf_dir / "upstream.conf").write_text(f"upstream api {{\n{servers}  keepalive 32;\n}}\n")
    port = free_port()
    (conf_dir / "listen.conf").write_text(f"listen 127.0.0.1:{port};\n")
    cmd = [*pin, "nginx", "-p", str(conf_dir), "-c", str(conf_dir / "nginx.conf"),
           "-e", str(conf_dir / "error.log"), "-g", f"daemon off; pid {conf_dir / 'nginx.pid'};"]  # fmt: skip
    proc = stack.enter_context(process(cmd, dict(os.environ), conf_dir / "nginx.log"))
    url = f"http://127.0.0.1:{port}"
    wait_or_exit(f"{url}/ready", proc, conf_dir / "nginx.log", time.monotonic(), 30)
    return url, proc.pid


def _cpu(pgids: list[int]) -> float | None:
    values = [group_cpu_s(p) for p in pgids]
    return None if any(v is None for v in values) else sum(v for v in values if v is not None)


def _med(values: list[float | None], fmt: str) -> str:
    i = median_interval([math.nan if v is None else v for v in values])
    return "n/a" if i.n == 0 else i.text(fmt).split(" (")[0]


def _groups(rows: list[Row]) -> dict[tuple[str, str, int], list[Row]]:
    out: dict[tuple[str, str, int], list[Row]] = {}
    for r in sorted(rows, key=lambda r: r.repeat):
        out.setdefault((r.setup, r.endpoint, r.concurrency), []).append(r)
    return out


def _table(rows: list[Row]) -> str:
    lines = [
        "| setup | endpoint | concurrency | repeats | requests | errors | req/s | p99 ms "
        "| replica CPU ms/req | nginx CPU ms/req |",
        "|---|---|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for (setup, endpoint, level), g in _groups(rows).items():
        p99 = [r.p99_ms if not r.errors else math.inf for r in g]
        lines.append(
            f"| {setup} | {endpoint} | {level} | {len(g)} | {sum(r.sent for r in g)} | {sum(r.errors for r in g)} "
            f"| {_med([r.rps for r in g], '{:.0f}')} | {_med(p99, '{:.2f}')} "
            f"| {_med([r.replica_cpu_ms for r in g], '{:.3f}')} | {_med([r.nginx_cpu_ms for r in g], '{:.3f}')} |"
        )
    return "\n".join(lines)


def _ceiling(rows: list[Row], server_cores: int) -> tuple[list[str], dict[str, Any]]:
    """Per endpoint at the top concurrency: the setups' ratios and the CPU ceiling, with intervals."""
    out, figures = [], {}
    top = max(r.concurrency for r in rows)
    groups = _groups(rows)
    for endpoint in sorted({r.endpoint for r in rows}):
        direct, one, two = (groups.get((s, endpoint, top), []) for s in SETUPS)
        if not (direct and one and two):
            continue
        key = re.sub(r"[^a-z0-9]+", "_", endpoint.lower()).strip("_") + f"_c{top}"
        two_vs_one = ratio_interval([r.rps for r in two], [r.rps for r in one])
        nginx_vs_direct = ratio_interval([r.rps for r in one], [r.rps for r in direct])
        per_request = median_interval(
            [
                (r.replica_cpu_ms or math.nan) + (r.nginx_cpu_ms or math.nan) if not r.errors else math.nan
                for r in one
            ]
        )
        replica = median_interval([(r.replica_cpu_ms or math.nan) if not r.errors else math.nan for r in one])
        figures.update({f"{key}_2_vs_1_replicas_rps_ratio": two_vs_one.figure(),
                        f"{key}_nginx_vs_direct_rps_ratio": nginx_vs_direct.figure(),
                        f"{key}_cpu_ms_per_req_via_nginx": per_request.figure(),
                        f"{key}_replica_cpu_ms_per_req": replica.figure()})  # fmt: skip
        out.append(
            f"- {endpoint} at concurrency {top}: 2 replicas / 1 via nginx {two_vs_one.text('{:.2f}', 'x')}; "
            f"1 via nginx / direct {nginx_vs_direct.text('{:.2f}', 'x')}. Per request the servers spend "
            f"{per_request.text('{:.3f}', ' ms')} in the replica and nginx together: {server_cores} server "
            f"core(s) give at most {server_cores * 1000 / per_request.estimate:.0f} req/s through nginx "
            f"({server_cores * 1000 / replica.estimate:.0f} without it)."
        )
    return out, figures


def main(argv: list[str] | None = None) -> int:
    """Start two replicas and two nginx, run every cell, print the table and the ceiling."""
    parser = argparse.ArgumentParser(
        prog="python -m scripts.bench.scale",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--demo", action="store_true", help="throw-away S3 with demo models")
    parser.add_argument("--seconds", type=float, default=3.0, help="measured seconds per cell (default 3)")
    parser.add_argument("--repeats", type=int, default=5, help="interleaved rounds of every cell (default 5)")
    parser.add_argument("--concurrency", default="16,64", help="comma-separated levels (default 16,64)")
    n = os.cpu_count() or 1
    parser.add_argument(
        "--server-cpus", default=f"0-{n - 2}" if n > 2 else "0",
        help="taskset CPUs for replicas and nginx (default: all but the last)",
    )  # fmt: skip
    parser.add_argument(
        "--generator-cpus", default=str(n - 1), help="taskset CPUs for wrk (default: the last)"
    )
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(message)s", stream=sys.stderr)
    logging.getLogger("httpx").setLevel(logging.WARNING)
    if shutil.which("nginx") is None:
        sys.exit("nginx is not installed: apt-get install -y nginx (scripts/bench.sh scale does it as root)")
    levels = [int(x) for x in args.concurrency.split(",")]
    pin = ["taskset", "-c", args.server_cpus] if n > 1 else []
    server_cores = len(os.sched_getaffinity(0) & _cpus(args.server_cpus)) if n > 1 else 1
    load_start = os.getloadavg()
    started_at = datetime.now(UTC).isoformat(timespec="seconds")

    from services.core.movie import normalize_movie
    from services.train.movies.snapshot import load_movies

    movies = [normalize_movie(m) for m in load_movies(ROOT / "data" / "snapshot")]
    targets = [
        t
        for t in targets_for(movies)
        if t.path in ("/predict", "/recommend") and t.server == "movie-intel" and not t.label
    ]
    wrk = shutil.which("wrk")
    with ExitStack() as stack:
        tmp = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="bench-scale-")))
        generator: Wrk | HttpxLoad = (
            Wrk(wrk, args.generator_cpus if n > 1 else None, tmp) if wrk else HttpxLoad()
        )
        if not wrk:
            log.warning(
                "wrk not found (apt-get install -y wrk): using the httpx client, which caps the figures"
            )
        demo = args.demo or not has_production_rating()
        env = {**os.environ, **(demo_s3(stack, tmp) if demo else {})}
        source = "demo models on a throw-away S3" if demo else "the configured registry"
        ports, pgids = [], []
        for i in (1, 2):
            port = free_port()
            replica_env = {
                **env, "SERVE_PORT": str(port), "SPOOL_DIR": str(tmp / f"spool-{i}"),
                "MODEL_CACHE_DIR": str(tmp / f"model-cache-{i}"), "REPLICA_ID": f"bench-scale-{i}",
            }  # fmt: skip
            log.info("starting replica %d on 127.0.0.1:%d (CPUs %s)", i, port, args.server_cpus)
            proc = stack.enter_context(
                process([*pin, str(ROOT / "scripts" / "serve.sh")], replica_env, tmp / f"serve-{i}.log")
            )
            wait_or_exit(
                f"http://127.0.0.1:{port}/ready", proc, tmp / f"serve-{i}.log", time.monotonic(), 120
            )
            ports.append(port)
            pgids.append(proc.pid)
        one_url, one_pgid = _nginx(stack, tmp, "nginx-1", ports[:1], pin)
        two_url, two_pgid = _nginx(stack, tmp, "nginx-2", ports, pin)
        setups = [
            (SETUPS[0], f"http://127.0.0.1:{ports[0]}", pgids[:1], None),
            (SETUPS[1], one_url, pgids[:1], one_pgid),
            (SETUPS[2], two_url, pgids, two_pgid),
        ]
        plan = [(s, t, level) for t in targets for level in levels for s in setups]
        rows = []
        for r in range(args.repeats):
            for (setup, url, replica_groups, nginx_group), target, level in (
                plan if r % 2 == 0 else plan[::-1]
            ):
                log.info(
                    "round %d/%d, %s: %s at concurrency %d", r + 1, args.repeats, setup, target.name, level
                )
                rows.append(_measure(generator, setup, url, target, level, args.seconds, replica_groups,
                                     nginx_group, r))  # fmt: skip
    load_end = os.getloadavg()
    print(f"scale-out benchmark, {started_at}: {source}")
    print(
        f"- machine: {n} CPUs, load average {load_start[0]:.2f} at start ({load_start[1]:.2f} over 5 min), "
        f"{load_end[0]:.2f} at the end"
    )
    print(
        f"- load generator: {generator.name}, CPUs {args.generator_cpus}; replicas (uvicorn, 1 worker each) "
        f"and nginx (deploy/nginx/nginx.conf, 1 worker process) on CPUs {args.server_cpus}"
    )
    print(f"- {args.repeats} interleaved rounds of {args.seconds:g} s per cell (a 1 s warm-up in the first); "
          "each figure: median [interval] over the rounds (n, coverage)\n")  # fmt: skip
    print(_table(rows))
    print()
    lines, figures = _ceiling(rows, server_cores)
    print("\n".join(lines))
    write_record("scale", sys.argv[1:] if argv is None else argv, figures, [], {"cells": _table(rows)})
    return 0


def _cpus(spec: str) -> set[int]:
    out: set[int] = set()
    for part in spec.split(","):
        lo, _, hi = part.partition("-")
        out.update(range(int(lo), int(hi or lo) + 1))
    return out


def _measure(generator: Wrk | HttpxLoad, setup: str, url: str, target: Target, level: int, seconds: float,
             replica_groups: list[int], nginx_group: int | None, repeat: int) -> Row:  # fmt: skip
    if repeat == 0:
        generator.run(url, target, level, 1.0)  # warm-up: connections, caches
    replicas_before = _cpu(replica_groups)
    nginx_before = _cpu([nginx_group]) if nginx_group else None
    m = generator.run(url, target, level, seconds)
    replicas_after = _cpu(replica_groups)
    nginx_after = _cpu([nginx_group]) if nginx_group else None

    def per_request(before: float | None, after: float | None) -> float | None:
        if before is None or after is None or not m.sent:
            return None
        return (after - before) / m.sent * 1000

    return Row(
        setup, target.name, level, m.sent, m.errors, m.seconds, m.p50_ms, m.p99_ms,
        per_request(replicas_before, replicas_after), per_request(nginx_before, nginx_after), repeat,
    )  # fmt: skip


if __name__ == "__main__":
    sys.exit(main())
