"""Load generators for scripts/bench/serve.py: wrk when installed, else an httpx asyncio client, and the
targets, measurements and cells they share, measured in interleaved rounds.

Error answers never count as fast answers. wrk records the latency of every answer, non-2xx included
(its errors.status counts statuses above 399), so a cell with any error is invalid: its p99 counts as
infinitely slow in a verdict, and its throughput counts successful answers only. The httpx client keeps
the latencies of successful answers only.
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path

import httpx
import numpy as np

from scripts.harness.processes import group_cpu_s

UNIQUE_LABEL = " (each overview new)"  # the label of the /predict target whose overviews never repeat

# wrk script: cycles through one request line per request (a JSON body for POST, a query string for GET)
# and prints exact percentiles as JSON at the end (wrk's --latency table rounds them).
WRK_SCRIPT = r"""
local lines = {}
for line in io.lines(os.getenv("BENCH_LINES")) do lines[#lines + 1] = line end
local method, path, i = os.getenv("BENCH_METHOD"), os.getenv("BENCH_PATH"), 0
wrk.headers["Content-Type"] = "application/json"
request = function()
  i = i % #lines + 1
  if method == "GET" then
    return wrk.format("GET", lines[i] == "" and path or path .. "?" .. lines[i])
  end
  return wrk.format("POST", path, nil, lines[i])
end
done = function(summary, latency, requests)
  local e = summary.errors
  io.write(string.format('BENCH {"requests": %d, "us": %d, "p50": %d, "p99": %d, "errors": %d}\n',
    summary.requests, summary.duration, latency:percentile(50), latency:percentile(99),
    e.connect + e.read + e.write + e.status + e.timeout))
end
"""


@dataclass(frozen=True)
class Target:
    """One endpoint to load: requests cycle through `lines` (JSON bodies, or query strings for GET)."""

    server: str
    method: str
    path: str
    lines: list[str]
    label: str = ""  # set: a variant of the endpoint, measured at the top concurrency only

    @property
    def name(self) -> str:
        suffix = {"reference": " (reference)", "log-off": " (logging off)"}.get(self.server, "")
        return f"{self.method} {self.path}{suffix}{self.label}"


@dataclass
class Cell:
    """One measured (target, concurrency) combination."""

    target: Target
    concurrency: int
    sent: int
    errors: int
    seconds: float
    p50_ms: float
    p99_ms: float
    server_cpu_ms: float | None  # server CPU per request: unlike latency, little affected by a busy machine
    repeat: int = 0  # the round of an interleaved run it was measured in

    @property
    def rps(self) -> float:
        """Successful answers per second (an error answer is not throughput)."""
        return (self.sent - self.errors) / self.seconds if self.seconds else 0.0

    @property
    def valid(self) -> bool:
        """Whether every answer was a success: wrk's p99 of a cell with errors includes their latencies."""
        return self.errors == 0 and self.sent > 0


@dataclass(frozen=True)
class Measured:
    """What a generator saw in one cell."""

    sent: int
    errors: int
    seconds: float
    p50_ms: float
    p99_ms: float


class Wrk:
    """wrk (C, epoll): one thread, `concurrency` keep-alive connections, fixed duration."""

    def __init__(self, exe: str, cpus: str | None, tmp: Path) -> None:
        self.exe = exe
        self.prefix = ["taskset", "-c", cpus] if cpus else []
        self.script = tmp / "bench.lua"
        self.script.write_text(WRK_SCRIPT)
        self.tmp = tmp
        version = subprocess.run([exe, "-v"], capture_output=True, text=True).stdout.split()
        self.name = f"wrk {version[1] if len(version) > 1 else ''}".strip()

    def run(self, url: str, target: Target, concurrency: int, seconds: float) -> Measured:
        lines = self.tmp / f"lines-{abs(hash(target.name))}.txt"
        lines.write_text("\n".join(target.lines) + "\n")
        env = {
            **os.environ, "BENCH_LINES": str(lines), "BENCH_METHOD": target.method, "BENCH_PATH": target.path,
        }  # fmt: skip
        cmd = [*self.prefix, self.exe, "-t1", f"-c{concurrency}", f"-d{seconds:g}s", "--timeout", "10s",
               "-s", str(self.script), url]  # fmt: skip
        out = subprocess.run(cmd, env=env, capture_output=True, text=True, check=True).stdout
        data = json.loads(out.split("BENCH ", 1)[1].splitlines()[0])
        return Measured(
            data["requests"], data["errors"], data["us"] / 1e6, data["p50"] / 1e3, data["p99"] / 1e3
        )


class HttpxLoad:
    """The fallback: an httpx asyncio client in this process (costs more CPU per request than the server)."""

    name = "httpx (asyncio, in the benchmark process)"

    def run(self, url: str, target: Target, concurrency: int, seconds: float) -> Measured:
        return asyncio.run(self._run(url, target, concurrency, seconds))

    async def _run(self, url: str, target: Target, concurrency: int, seconds: float) -> Measured:
        limits = httpx.Limits(max_connections=concurrency, max_keepalive_connections=concurrency)
        headers = {"content-type": "application/json"}
        async with httpx.AsyncClient(base_url=url, limits=limits, timeout=30, headers=headers) as client:
            latencies: list[float] = []
            errors = 0
            start = time.perf_counter()
            deadline = start + seconds

            async def worker(offset: int) -> None:
                nonlocal errors
                i = offset
                while time.perf_counter() < deadline:
                    line = target.lines[i % len(target.lines)]
                    i += concurrency
                    t0 = time.perf_counter()
                    try:
                        if target.method == "GET":
                            r = await client.get(f"{target.path}?{line}")
                        else:
                            r = await client.post(target.path, content=line)
                        ok = 200 <= r.status_code < 300  # /feedback answers 202
                    except httpx.HTTPError:
                        ok = False
                    if ok:  # a fast 503 is not a fast answer: only successes have a latency here
                        latencies.append((time.perf_counter() - t0) * 1000)
                    errors += not ok

            await asyncio.gather(*(worker(n) for n in range(concurrency)))
            elapsed = time.perf_counter() - start
        lat = np.array(latencies) if latencies else np.array([np.nan])
        return Measured(
            len(latencies) + errors, errors, elapsed, float(np.percentile(lat, 50)),
            float(np.percentile(lat, 99)),
        )  # fmt: skip


def measure(generator: Wrk | HttpxLoad, url: str, target: Target, level: int, seconds: float,
            pgid: int | None, warm_up: bool = True, repeat: int = 0) -> Cell:  # fmt: skip
    """One cell: a 1 s warm-up (unless warm already), then `seconds` of load, with server CPU per request."""
    if warm_up:
        generator.run(url, target, level, 1.0)  # warm-up: connections, caches, lazy imports
    cpu_before = group_cpu_s(pgid)
    m = generator.run(url, target, level, seconds)
    cpu_after = group_cpu_s(pgid)
    cpu_ms = None
    if cpu_before is not None and cpu_after is not None and m.sent:
        cpu_ms = (cpu_after - cpu_before) / m.sent * 1000
    return Cell(target, level, m.sent, m.errors, m.seconds, m.p50_ms, m.p99_ms, cpu_ms, repeat)


@dataclass(frozen=True)
class Planned:
    """One cell of a run: which server (its URL and process group) and which target at which concurrency."""

    url: str
    target: Target
    level: int
    pgid: int | None


def interleaved(generator: Wrk | HttpxLoad, plan: list[Planned], repeats: int, seconds: float,
                log: logging.Logger | None = None) -> list[Cell]:  # fmt: skip
    """Every planned cell once per round, `repeats` rounds (A, B, A, B...), the order reversed every other
    round so a drifting machine weighs on both sides of a pair alike; warm-up in the first round only."""
    cells = []
    for r in range(repeats):
        for p in plan if r % 2 == 0 else plan[::-1]:
            if log is not None:
                log.info("round %d/%d: %s at concurrency %d", r + 1, repeats, p.target.name, p.level)
            cells.append(measure(generator, p.url, p.target, p.level, seconds, p.pgid, r == 0, r))
    return cells
