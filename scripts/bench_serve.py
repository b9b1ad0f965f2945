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
size per window (--soak-window, default 60 s) with their trends (scripts/bench_soak.py).

    .venv/bin/python scripts/bench_serve.py [--demo] [--url URL] [--seconds 8] [--soak 600]
"""

from __future__ import annotations

import argparse
import asyncio
import itertools
import json
import logging
import os
import pickle
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

log = logging.getLogger("bench_serve")
UNIQUE_BODIES = 10_000
UNIQUE_LABEL = " (each overview new)"

REFERENCE_APP = '''\
"""The reference project's serving pattern (yoon-chung/MLOps app/main.py), reproduced for the benchmark."""
import os
import pickle

import pandas as pd
from fastapi import FastAPI

MODEL_PATH = os.environ["REFERENCE_MODEL_PATH"]
app = FastAPI()


@app.get("/predict")
def predict(runtime: int, genre_encoded: int, lang_encoded: int, sentiment: float, overview_len: int):
    if not os.path.exists(MODEL_PATH):
        return {"error": "model file missing"}
    with open(MODEL_PATH, "rb") as fh:
        model = pickle.load(fh)  # on every request, as the reference does
    input_data = pd.DataFrame(
        [[runtime, genre_encoded, lang_encoded, sentiment, overview_len]],
        columns=["runtime", "genre_encoded", "lang_encoded", "overview_sentiment", "overview_len"],
    )
    prediction = model.predict(input_data)
    return {"predicted_rating": float(prediction[0])}
'''

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

    @property
    def rps(self) -> float:
        return (self.sent - self.errors) / self.seconds if self.seconds else 0.0


# ---- servers -----------------------------------------------------------------------------------------
def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@contextmanager
def _process(cmd: list[str], env: dict[str, str], log_path: Path) -> Iterator[subprocess.Popen]:
    with open(log_path, "wb") as out:
        proc = subprocess.Popen(
            cmd, env=env, stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
            start_new_session=True,
        )  # fmt: skip
    try:
        yield proc
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGTERM)
            try:
                proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait()


def _wait(url: str, proc: subprocess.Popen, log_path: Path, start: float, timeout_s: float) -> float:
    """Seconds from start until url answers 200; exits with the reason when it never will."""
    while time.monotonic() - start < timeout_s:
        if proc.poll() is not None:
            sys.exit(f"server exited ({proc.returncode}); last log lines:\n{log_path.read_text()[-2000:]}")
        try:
            r = httpx.get(url, timeout=1)
            if r.status_code == 200:
                return time.monotonic() - start
            if r.status_code == 503:  # started, but nothing to serve: it will not get better on its own
                sys.exit(f"the server is up but not ready: {r.json().get('detail')}\n(or run with --demo)")
        except httpx.HTTPError:
            pass
        time.sleep(0.02)
    sys.exit(f"not ready after {timeout_s}s; see {log_path}")


def _group_cpu_s(pgid: int | None) -> float | None:
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


def _has_production_rating() -> bool:
    """Whether the configured registry (scripts/env.sh's S3) has a production rating model."""
    from services.core.registry import Registry
    from services.core.settings import Settings
    from services.core.storage import ObjectStore

    try:
        settings = Settings().model_copy(update={"s3_max_attempts": 1, "s3_connect_timeout_s": 2.0})
        return Registry(ObjectStore.from_settings(settings)).pointer("rating") is not None
    except Exception as exc:  # noqa: BLE001 - unreachable or misconfigured S3: fall back to the demo
        log.info("cannot read the configured registry (%s: %s)", type(exc).__name__, exc)
        return False


def _demo_s3(stack: ExitStack, tmp: Path) -> dict[str, str]:
    """A throw-away SeaweedFS with demo models published; the env that points serve.sh at it."""
    from services.core.embedded_s3 import EmbeddedS3, free_port_block
    from services.core.registry import Registry
    from services.core.settings import Settings
    from services.core.storage import ObjectStore
    from tests.serve_fixtures import publish_rating, publish_sasrec_recommender

    s3 = EmbeddedS3(
        tmp / "s3", free_port_block(), "bench" + secrets.token_hex(4), secrets.token_hex(16), "bench"
    )
    log.info("starting a throw-away SeaweedFS on %s", s3.endpoint)
    s3.start(timeout_s=60)
    stack.callback(s3.stop)
    settings = Settings(
        _env_file=None, s3_endpoint_url=s3.endpoint, s3_bucket=s3.bucket,
        aws_access_key_id=s3.access_key, aws_secret_access_key=s3.secret_key,
    )  # fmt: skip
    registry = Registry(ObjectStore.from_settings(settings))
    log.info("published demo rating model %s", publish_rating(registry).version)
    log.info("published demo SASRec recommender %s", publish_sasrec_recommender(registry).version)
    return {
        "S3_EMBEDDED": "0",
        "S3_ENDPOINT_URL": s3.endpoint,
        "S3_BUCKET": s3.bucket,
        "AWS_ACCESS_KEY_ID": s3.access_key,
        "AWS_SECRET_ACCESS_KEY": s3.secret_key,
        "MODEL_CACHE_DIR": str(tmp / "model-cache"),
        "SPOOL_DIR": str(tmp / "spool"),
    }


def _reference_model(tmp: Path, movies: list[dict[str, Any]]) -> Path:
    """The reference's model: an XGBRegressor on five encoded columns, pickled (bench-time only)."""
    from xgboost import XGBRegressor

    from services.core.features import sentiment

    rows = [m for m in movies if m["vote_average"] is not None and (m["vote_count"] or 0) >= 10][:1500]
    genres = sorted({(m["genres"] or ["none"])[0] for m in rows})
    languages = sorted({m["original_language"] or "none" for m in rows})
    x = np.array(
        [
            [
                m["runtime"] or 0,
                genres.index((m["genres"] or ["none"])[0]),
                languages.index(m["original_language"] or "none"),
                sentiment(m["overview"])[0],
                len(m["overview"]),
            ]
            for m in rows
        ]
    )
    model = XGBRegressor(n_estimators=100, max_depth=6, learning_rate=0.1, n_jobs=1)
    model.fit(x, np.array([m["vote_average"] for m in rows]))
    path = tmp / "reference" / "best_model.pkl"
    path.parent.mkdir(parents=True)
    path.write_bytes(pickle.dumps(model))
    (path.parent / "reference_app.py").write_text(REFERENCE_APP)
    return path


# ---- load generators -----------------------------------------------------------------------------
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
                    latencies.append((time.perf_counter() - t0) * 1000)
                    errors += not ok

            await asyncio.gather(*(worker(n) for n in range(concurrency)))
            elapsed = time.perf_counter() - start
        lat = np.array(latencies) if latencies else np.array([np.nan])
        return Measured(
            len(latencies), errors, elapsed, float(np.percentile(lat, 50)), float(np.percentile(lat, 99))
        )


def _measure(generator: Wrk | HttpxLoad, url: str, target: Target, level: int, seconds: float,
             pgid: int | None) -> Cell:  # fmt: skip
    generator.run(url, target, level, 1.0)  # warm-up: connections, caches, lazy imports
    cpu_before = _group_cpu_s(pgid)
    m = generator.run(url, target, level, seconds)
    cpu_after = _group_cpu_s(pgid)
    cpu_ms = None
    if cpu_before is not None and cpu_after is not None and m.sent:
        cpu_ms = (cpu_after - cpu_before) / m.sent * 1000
    return Cell(target, level, m.sent, m.errors, m.seconds, m.p50_ms, m.p99_ms, cpu_ms)


# ---- requests ----------------------------------------------------------------------------------------
def _targets(movies: list[dict[str, Any]]) -> list[Target]:
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


# ---- report ------------------------------------------------------------------------------------------
def _table(cells: list[Cell]) -> str:
    lines = [
        "| server | endpoint | concurrency | requests | errors | req/s | p50 ms | p99 ms "
        "| server CPU ms/req |",
        "|---|---|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for c in cells:
        cpu = f"{c.server_cpu_ms:.2f}" if c.server_cpu_ms is not None else "n/a"
        lines.append(
            f"| {c.target.server} | {c.target.name} | {c.concurrency} | {c.sent} | {c.errors} | {c.rps:.0f} "
            f"| {c.p50_ms:.2f} | {c.p99_ms:.2f} | {cpu} |"
        )
    return "\n".join(lines)


def _find(cells: list[Cell], name: str, concurrency: int) -> Cell | None:
    return next((c for c in cells if c.target.name == name and c.concurrency == concurrency), None)


def _check(what: str, value: str, ok: bool, target: str) -> str:
    return f"- {what}: {value}: {'met' if ok else 'NOT met'} ({target})"


def _summary(cells: list[Cell], ready_s: float | None, top: int) -> list[str]:
    out = []
    if ready_s is not None:
        out.append(
            _check(
                "time to ready (serve.sh started -> /ready 200)", f"{ready_s:.2f} s", ready_s <= 5, "<= 5 s"
            )
        )
    health, predict = _find(cells, "GET /health", top), _find(cells, "POST /predict", top)
    recommend = _find(cells, "POST /recommend", top)
    reference = _find(cells, "GET /predict (reference)", top)
    if predict:
        p99 = predict.p99_ms
        out.append(_check(f"/predict p99 at concurrency {top}", f"{p99:.1f} ms", p99 <= 15, "<= 15 ms"))
    if predict and reference and reference.rps:
        ratio = predict.rps / reference.rps
        out.append(
            _check(f"/predict throughput vs the reference pattern at concurrency {top}", f"{ratio:.1f}x",
                   ratio >= 10, ">= 10x")
            + f"; p99 {reference.p99_ms / predict.p99_ms:.1f}x lower"
        )  # fmt: skip
        ours, theirs = predict.server_cpu_ms, reference.server_cpu_ms
        if ours and theirs:
            out.append(
                f"- server CPU per prediction: reference {theirs:.2f} ms, ours {ours:.2f} ms "
                f"({theirs / ours:.1f}x less)"
            )
    fresh = _find(cells, f"POST /predict{UNIQUE_LABEL}", top)
    if fresh and reference and reference.rps:
        ratio = fresh.rps / reference.rps
        out.append(
            _check(f"/predict with a new overview each request vs the reference at concurrency {top}",
                   f"{ratio:.1f}x", ratio >= 10, ">= 10x")
            + f"; p99 {fresh.p99_ms:.1f} ms; server CPU {fresh.server_cpu_ms or 0:.2f} ms per prediction"
        )  # fmt: skip
    if predict and health and health.rps:
        share = predict.rps / health.rps
        out.append(
            _check(
                f"/predict throughput at concurrency {top} vs /health's",
                f"{share:.0%}",
                share >= 0.5,
                ">= 50%",
            )
        )
        if predict.server_cpu_ms and health.server_cpu_ms:
            out.append(
                f"- server CPU per request: /predict {predict.server_cpu_ms:.2f} ms, /health "
                f"{health.server_cpu_ms:.2f} ms (one core serves at most {1000 / predict.server_cpu_ms:.0f} "
                "predictions/s)"
            )
    if recommend:
        p99 = recommend.p99_ms
        out.append(_check(f"/recommend p99 at concurrency {top}", f"{p99:.1f} ms", p99 <= 30, "<= 30 ms"))
    return out


def _log_cost(cells: list[Cell], top: int) -> list[str]:
    """/predict with every answer logged against the same server with logging off, same run."""
    on, off = _find(cells, "POST /predict", top), _find(cells, "POST /predict (logging off)", top)
    if not (on and off and off.rps):
        return []
    ratio = on.rps / off.rps
    out = [
        _check(f"/predict throughput logged vs logging off at concurrency {top}", f"{ratio:.2f}x", ratio >= 0.9,
               ">= 0.9x") + f"; p99 {on.p99_ms:.1f} ms logged, {off.p99_ms:.1f} ms off",
    ]  # fmt: skip
    if on.server_cpu_ms and off.server_cpu_ms:
        out.append(
            f"- server CPU per prediction: {on.server_cpu_ms:.3f} ms logged, {off.server_cpu_ms:.3f} ms off "
            f"(logging costs {on.server_cpu_ms - off.server_cpu_ms:+.3f} ms)"
        )
    return out


def _log_off_cell(generator: Wrk | HttpxLoad, env: dict[str, str], pin: list[str], tmp: Path,
                  target: Target, level: int, seconds: float) -> Cell:  # fmt: skip
    """Start serve.sh again with PREDICTION_LOG_RATE=0 (its own port and spool) and measure /predict."""
    env = {
        **env,
        "PREDICTION_LOG_RATE": "0",
        "SERVE_PORT": str(_free_port()),
        "SPOOL_DIR": str(tmp / "spool-off"),
    }
    url = f"http://127.0.0.1:{env['SERVE_PORT']}"
    with _process([*pin, str(ROOT / "scripts" / "serve.sh")], env, tmp / "serve-off.log") as proc:
        _wait(f"{url}/ready", proc, tmp / "serve-off.log", time.monotonic(), 120)
        log.info("%s with logging off at concurrency %d", target.name, level)
        off = Target("log-off", target.method, target.path, target.lines)
        return _measure(generator, url, off, level, seconds, proc.pid)


def _describe_models(url: str) -> str:
    try:
        model = httpx.get(f"{url}/model", timeout=5).json()
    except (httpx.HTTPError, ValueError):
        return "unknown"
    parts = []
    for name in ("rating", "recommender"):
        info = model.get(name)
        parts.append(
            f"{name} {info['algorithm']} {info['version']}" if info else f"{name}: none (popularity)"
        )
    return ", ".join(parts)


def _cpu_split(pin: str, workers: int) -> tuple[str | None, str | None]:
    """(server cpus, generator cpus) for taskset, or (None, None) when not pinning."""
    n = os.cpu_count() or 1
    if pin == "no" or n < 2 or (pin == "auto" and workers > 1):
        return None, None
    return f"0-{n - 2}" if n > 2 else "0", str(n - 1)


def main(argv: list[str] | None = None) -> int:
    """Parse options, start the servers, run every cell, print the table."""
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
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
    from services.train.snapshot import load_movies

    movies = [normalize_movie(m) for m in load_movies(ROOT / "data" / "snapshot")]
    targets = _targets(movies)
    wrk = shutil.which("wrk") if args.generator != "httpx" else None
    if args.generator == "wrk" and wrk is None:
        sys.exit("wrk is not installed: apt-get install -y wrk (or --generator httpx)")
    server_cpus, generator_cpus = _cpu_split(args.pin, args.workers) if wrk else (None, None)
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
            demo = args.demo or not _has_production_rating()
            if demo and not args.demo:
                log.info("the configured registry has no production rating model: using demo models (--demo)")
            env = {**os.environ, **(_demo_s3(stack, tmp) if demo else {})}
            env["SERVE_PORT"] = str(_free_port())
            env["SERVE_WORKERS"] = str(args.workers)
            serve_env = env
            source = "demo models on a throw-away S3" if demo else "the configured registry"
            url = f"http://127.0.0.1:{env['SERVE_PORT']}"
            log.info("starting scripts/serve.sh on %s (%d worker(s))", url, args.workers)
            start = time.monotonic()
            cmd = [*pin, str(ROOT / "scripts" / "serve.sh")]
            proc = stack.enter_context(_process(cmd, env, tmp / "serve.log"))
            pgids["movie-intel"] = proc.pid  # its own session: the group is uvicorn and any workers
            ready_s = _wait(f"{url}/ready", proc, tmp / "serve.log", start, 120)
            log.info("ready after %.2f s", ready_s)
        if args.soak:
            from scripts import bench_soak

            predict = next(t for t in targets if t.path == "/predict")
            spool = None if args.url else Path(serve_env.get("SPOOL_DIR", ROOT / "var" / "spool"))
            windows = bench_soak.run(generator, url, predict, max(levels), args.soak, args.soak_window,
                                     pgids["movie-intel"], spool)  # fmt: skip
            print(f"serving soak, {started_at}: {source}; models: {_describe_models(url)}")
            print(
                f"- load generator: {generator.name}; PREDICTION_LOG_RATE={os.environ.get('PREDICTION_LOG_RATE', 'default')}\n"
            )
            print("\n".join(bench_soak.report(windows, max(levels), predict.name)))
            return 0
        reference_url = None
        if not args.skip_reference:
            model_path = _reference_model(tmp, movies)
            port = _free_port()
            reference_url = f"http://127.0.0.1:{port}"
            cmd = [*pin, sys.executable, "-m", "uvicorn", "reference_app:app",
                   "--app-dir", str(model_path.parent), "--port", str(port), "--no-access-log"]  # fmt: skip
            env = {**os.environ, "REFERENCE_MODEL_PATH": str(model_path)}
            proc = stack.enter_context(_process(cmd, env, tmp / "reference.log"))
            pgids["reference"] = proc.pid
            _wait(f"{reference_url}/docs", proc, tmp / "reference.log", time.monotonic(), 60)
        models = _describe_models(url)
        cells = []
        for target in targets:
            base = reference_url if target.server == "reference" else url
            if base is None:
                continue
            for level in [max(levels)] if target.label else levels:
                log.info("%s at concurrency %d", target.name, level)
                cells.append(_measure(generator, base, target, level, args.seconds, pgids[target.server]))
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
    print(_table(cells))
    print()
    print("\n".join(_summary(cells, ready_s, max(levels)) + _log_cost(cells, max(levels))))
    return 0


if __name__ == "__main__":
    sys.exit(main())
