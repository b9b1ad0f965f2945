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

    .venv/bin/python -m scripts.bench.scale [--demo] [--seconds 5] [--concurrency 16,64]
"""

from __future__ import annotations

import argparse
import logging
import os
import shutil
import sys
import tempfile
import time
from contextlib import ExitStack
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from scripts.bench.serve import targets_for
from scripts.bench.serve_load import HttpxLoad, Target, Wrk
from scripts.bench.serve_servers import demo_s3, has_production_rating
from scripts.harness.processes import ROOT, free_port, group_cpu_s, process, wait_or_exit

log = logging.getLogger("bench_scale")


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

    @property
    def rps(self) -> float:
        return (self.sent - self.errors) / self.seconds if self.seconds else 0.0


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


def _table(rows: list[Row]) -> str:
    lines = [
        "| setup | endpoint | concurrency | requests | errors | req/s | p50 ms | p99 ms "
        "| replica CPU ms/req | nginx CPU ms/req |",
        "|---|---|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for r in rows:
        rep = f"{r.replica_cpu_ms:.2f}" if r.replica_cpu_ms is not None else "n/a"
        ngx = f"{r.nginx_cpu_ms:.2f}" if r.nginx_cpu_ms is not None else "-"
        lines.append(
            f"| {r.setup} | {r.endpoint} | {r.concurrency} | {r.sent} | {r.errors} | {r.rps:.0f} "
            f"| {r.p50_ms:.2f} | {r.p99_ms:.2f} | {rep} | {ngx} |"
        )
    return "\n".join(lines)


def _ceiling(rows: list[Row], server_cores: int) -> list[str]:
    out = []
    for endpoint in sorted({r.endpoint for r in rows}):
        top = max(r.concurrency for r in rows)
        cells = {r.setup: r for r in rows if r.endpoint == endpoint and r.concurrency == top}
        one, two = cells.get("1 replica via nginx"), cells.get("2 replicas via nginx")
        direct = cells.get("1 replica direct")
        if not (one and two and direct and one.replica_cpu_ms and one.nginx_cpu_ms):
            continue
        per_request = one.replica_cpu_ms + one.nginx_cpu_ms
        out.append(
            f"- {endpoint} at concurrency {top}: direct {direct.rps:.0f} req/s, 1 replica via nginx "
            f"{one.rps:.0f}, 2 replicas via nginx {two.rps:.0f} ({two.rps / one.rps:.2f}x of one). Per "
            f"request the servers spend {one.replica_cpu_ms:.2f} ms in the replica and {one.nginx_cpu_ms:.2f} "
            f"ms in nginx: {server_cores} server core(s) give at most "
            f"{server_cores * 1000 / per_request:.0f} req/s through nginx "
            f"({server_cores * 1000 / one.replica_cpu_ms:.0f} without it)."
        )
    return out


def main(argv: list[str] | None = None) -> int:
    """Start two replicas and two nginx, run every cell, print the table and the ceiling."""
    parser = argparse.ArgumentParser(
        prog="python -m scripts.bench.scale",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--demo", action="store_true", help="throw-away S3 with demo models")
    parser.add_argument("--seconds", type=float, default=5.0, help="measured seconds per cell (default 5)")
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
            ("1 replica direct", f"http://127.0.0.1:{ports[0]}", pgids[:1], None),
            ("1 replica via nginx", one_url, pgids[:1], one_pgid),
            ("2 replicas via nginx", two_url, pgids, two_pgid),
        ]
        rows = []
        for target in targets:
            for level in levels:
                for setup, url, replica_groups, nginx_group in setups:
                    log.info("%s: %s at concurrency %d", setup, target.name, level)
                    rows.append(
                        _measure(
                            generator, setup, url, target, level, args.seconds, replica_groups, nginx_group
                        )
                    )
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
    print(f"- each cell: {args.seconds:g} s after a 1 s warm-up\n")
    print(_table(rows))
    print()
    print("\n".join(_ceiling(rows, server_cores)))
    return 0


def _cpus(spec: str) -> set[int]:
    out: set[int] = set()
    for part in spec.split(","):
        lo, _, hi = part.partition("-")
        out.update(range(int(lo), int(hi or lo) + 1))
    return out


def _measure(generator: Wrk | HttpxLoad, setup: str, url: str, target: Target, level: int, seconds: float,
             replica_groups: list[int], nginx_group: int | None) -> Row:  # fmt: skip
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
        per_request(replicas_before, replicas_after), per_request(nginx_before, nginx_after),
    )  # fmt: skip


if __name__ == "__main__":
    sys.exit(main())
