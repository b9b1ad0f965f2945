"""Load-test the serving API against the reference project's serving pattern, as a markdown table.

Starts the real server (scripts/serve.sh: uvicorn on the configured S3; the embedded SeaweedFS by
default, started if needed) on a free port and measures its time to ready, unless --url points at a
running one. --demo instead starts a throw-away SeaweedFS and publishes a small rating model trained
on the bundled snapshot, so the benchmark needs nothing else.

In the same run and under the same load it starts the reference pattern (yoon-chung/MLOps app/main.py:
a FastAPI GET endpoint that pickle.loads an XGBoost model from disk on every request, builds a one-row
pandas DataFrame from encoded query parameters and predicts) on another port, and prints the ratio.

Every cell sends a fixed number of requests (bounded by --max-seconds) with httpx at concurrency 1 and
16. The load generator runs on the same machine, so its CPU use is part of every number.

    .venv/bin/python scripts/bench_serve.py [--demo] [--url URL] [--requests 2000]
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import os
import pickle
import secrets
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

log = logging.getLogger("bench_serve")

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

Request = Callable[[httpx.AsyncClient, int], Any]  # (client, i) -> awaitable response


@dataclass
class Cell:
    """One measured (target, endpoint, concurrency) combination."""

    target: str
    endpoint: str
    concurrency: int
    sent: int
    errors: int
    seconds: float
    latencies_ms: np.ndarray
    server_cpu_ms: float | None  # server CPU per request: unlike latency, not inflated by a busy machine

    @property
    def rps(self) -> float:
        return (self.sent - self.errors) / self.seconds if self.seconds else 0.0

    def pct(self, q: float) -> float:
        return float(np.percentile(self.latencies_ms, q)) if len(self.latencies_ms) else float("nan")


# ---- servers -----------------------------------------------------------------------------------------
def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@contextmanager
def _process(cmd: list[str], env: dict[str, str], log_path: Path) -> Iterator[subprocess.Popen]:
    with open(log_path, "wb") as out:
        proc = subprocess.Popen(
            cmd,
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            start_new_session=True,
        )
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
        time.sleep(0.05)
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


def _demo_s3(stack: ExitStack, tmp: Path) -> dict[str, str]:
    """A throw-away SeaweedFS with a small rating model published; the env that points serve.sh at it."""
    from services.core.embedded_s3 import EmbeddedS3, free_port_block
    from services.core.registry import Registry
    from services.core.settings import Settings
    from services.core.storage import ObjectStore
    from tests.serve_fixtures import publish_rating

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
    manifest = publish_rating(Registry(ObjectStore.from_settings(settings)))
    log.info("published demo rating model %s", manifest.version)
    return {
        "S3_ENDPOINT_URL": s3.endpoint,
        "S3_BUCKET": s3.bucket,
        "AWS_ACCESS_KEY_ID": s3.access_key,
        "AWS_SECRET_ACCESS_KEY": s3.secret_key,
        "MODEL_CACHE_DIR": str(tmp / "model-cache"),
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


# ---- load --------------------------------------------------------------------------------------------
async def _load(
    url: str, request: Request, concurrency: int, total: int, max_s: float, pgid: int | None
) -> tuple:
    limits = httpx.Limits(max_connections=concurrency, max_keepalive_connections=concurrency)
    async with httpx.AsyncClient(base_url=url, limits=limits, timeout=30) as client:
        for i in range(min(20, total)):  # warm-up: connections, caches, lazy imports
            await request(client, i)
        latencies: list[float] = []
        errors = 0
        counter = iter(range(total))
        cpu_before = _group_cpu_s(pgid)
        start = time.perf_counter()
        deadline = start + max_s

        async def worker() -> None:
            nonlocal errors
            for i in counter:
                if time.perf_counter() > deadline:
                    return
                t0 = time.perf_counter()
                try:
                    ok = (await request(client, i)).status_code == 200
                except httpx.HTTPError:
                    ok = False
                if ok:
                    latencies.append((time.perf_counter() - t0) * 1000)
                else:
                    errors += 1

        await asyncio.gather(*(worker() for _ in range(concurrency)))
        seconds = time.perf_counter() - start
        cpu_after = _group_cpu_s(pgid)
    cpu = cpu_after - cpu_before if cpu_before is not None and cpu_after is not None else None
    return len(latencies) + errors, errors, seconds, np.array(latencies), cpu


def _requests(movies: list[dict[str, Any]]) -> dict[str, Request]:
    english = [m for m in movies if m["original_language"] == "en" and m["overview"] and m["runtime"]][:200]
    bodies = [
        {
            "overview": m["overview"][:2000], "runtime": min(m["runtime"], 1000), "genres": m["genres"],
            "original_language": "en", "title": m["title"], "release_date": m["release_date"],
        }
        for m in english
    ]  # fmt: skip
    liked = [[m["id"] for m in english[i : i + 5]] for i in range(0, 150, 5)]
    params = [
        {"runtime": int(b["runtime"]), "genre_encoded": i % 15, "lang_encoded": 5, "sentiment": 0.1,
         "overview_len": len(b["overview"])}
        for i, b in enumerate(bodies)
    ]  # fmt: skip
    return {
        "GET /health": lambda c, i: c.get("/health"),
        "POST /predict": lambda c, i: c.post("/predict", json=bodies[i % len(bodies)]),
        "POST /recommend": lambda c, i: c.post("/recommend", json={"liked": liked[i % len(liked)], "k": 10}),
        "GET /predict (reference)": lambda c, i: c.get("/predict", params=params[i % len(params)]),
    }


# ---- report ------------------------------------------------------------------------------------------
def _table(cells: list[Cell]) -> str:
    lines = [
        "| server | endpoint | concurrency | requests | errors | req/s | p50 ms | p99 ms | server CPU ms/req |",
        "|---|---|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for c in cells:
        cpu = f"{c.server_cpu_ms:.2f}" if c.server_cpu_ms is not None else "n/a"
        lines.append(
            f"| {c.target} | {c.endpoint} | {c.concurrency} | {c.sent} | {c.errors} | {c.rps:.0f} "
            f"| {c.pct(50):.2f} | {c.pct(99):.2f} | {cpu} |"
        )
    return "\n".join(lines)


def _find(cells: list[Cell], endpoint: str, concurrency: int) -> Cell | None:
    return next((c for c in cells if c.endpoint == endpoint and c.concurrency == concurrency), None)


def _summary(cells: list[Cell], ready_s: float | None, top: int) -> list[str]:
    out = []
    if ready_s is not None:
        out.append(f"- time to ready (serve.sh started -> /ready 200): {ready_s:.2f} s (target <= 5 s)")
    health, predict = _find(cells, "GET /health", top), _find(cells, "POST /predict", top)
    reference = _find(cells, "GET /predict (reference)", top)
    if health and predict:
        out.append(
            f"- /predict at concurrency {top}: p99 {predict.pct(99):.2f} ms (target <= 15 ms), "
            f"{predict.rps / health.rps:.0%} of /health throughput (target >= 50%)"
        )
        if predict.server_cpu_ms and health.server_cpu_ms:
            out.append(
                f"- server CPU per request: /predict {predict.server_cpu_ms:.2f} ms, /health "
                f"{health.server_cpu_ms:.2f} ms (one core serves at most {1000 / predict.server_cpu_ms:.0f} "
                "predictions/s)"
            )
    if predict and reference:
        out.append(
            f"- /predict vs the reference pattern at concurrency {top}: {predict.rps / reference.rps:.1f}x the "
            f"throughput, p99 {reference.pct(99) / predict.pct(99):.1f}x lower"
        )
        if predict.server_cpu_ms and reference.server_cpu_ms:
            out.append(
                f"- server CPU per prediction: reference {reference.server_cpu_ms:.2f} ms, ours "
                f"{predict.server_cpu_ms:.2f} ms ({reference.server_cpu_ms / predict.server_cpu_ms:.1f}x less)"
            )
    return out


def main(argv: list[str] | None = None) -> int:
    """Parse options, start the servers, run every cell, print the table."""
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--url", help="benchmark this running server instead of starting one")
    parser.add_argument(
        "--demo", action="store_true", help="throw-away S3 with a demo model (no pipeline run)"
    )
    parser.add_argument("--requests", type=int, default=2000, help="requests per cell (default 2000)")
    parser.add_argument("--max-seconds", type=float, default=20.0, help="stop a cell after this long")
    parser.add_argument("--concurrency", default="1,16", help="comma-separated levels (default 1,16)")
    parser.add_argument("--skip-reference", action="store_true", help="do not run the reference pattern")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(message)s", stream=sys.stderr)
    logging.getLogger("httpx").setLevel(logging.WARNING)
    levels = [int(x) for x in args.concurrency.split(",")]

    from services.core.movie import normalize_movie
    from services.train.snapshot import load_movies

    movies = [normalize_movie(m) for m in load_movies(ROOT / "data" / "snapshot")]
    requests = _requests(movies)
    with ExitStack() as stack:
        tmp = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="bench-serve-")))
        ready_s = None
        url = args.url
        pgids: dict[str, int | None] = {"movie-intel": None, "reference": None}
        if url is None:
            env = {**os.environ, **(_demo_s3(stack, tmp) if args.demo else {})}
            env["SERVE_PORT"] = str(_free_port())
            url = f"http://127.0.0.1:{env['SERVE_PORT']}"
            log.info("starting scripts/serve.sh on %s", url)
            start = time.monotonic()
            cmd = [str(ROOT / "scripts" / "serve.sh"), "--no-access-log"]
            proc = stack.enter_context(_process(cmd, env, tmp / "serve.log"))
            pgids["movie-intel"] = proc.pid  # its own session: the group is uvicorn and any workers
            ready_s = _wait(f"{url}/ready", proc, tmp / "serve.log", start, 120)
            log.info("ready after %.2f s", ready_s)
        reference_url = None
        if not args.skip_reference:
            model_path = _reference_model(tmp, movies)
            port = _free_port()
            reference_url = f"http://127.0.0.1:{port}"
            cmd = [sys.executable, "-m", "uvicorn", "reference_app:app", "--app-dir", str(model_path.parent),
                   "--port", str(port), "--no-access-log"]  # fmt: skip
            env = {**os.environ, "REFERENCE_MODEL_PATH": str(model_path)}
            proc = stack.enter_context(_process(cmd, env, tmp / "reference.log"))
            pgids["reference"] = proc.pid
            _wait(f"{reference_url}/docs", proc, tmp / "reference.log", time.monotonic(), 60)
        cells = []
        for endpoint, request in requests.items():
            target_url = reference_url if "reference" in endpoint else url
            if target_url is None:
                continue
            target = "reference" if "reference" in endpoint else "movie-intel"
            for level in levels:
                log.info("%s at concurrency %d", endpoint, level)
                sent, errors, seconds, lat, cpu_s = asyncio.run(
                    _load(target_url, request, level, args.requests, args.max_seconds, pgids[target])
                )
                cpu_ms = cpu_s / sent * 1000 if cpu_s is not None and sent else None
                cells.append(Cell(target, endpoint, level, sent, errors, seconds, lat, cpu_ms))
    print(_table(cells))
    print()
    print("\n".join(_summary(cells, ready_s, max(levels))))
    print(
        f"\n(cpu count {os.cpu_count()}, load average {os.getloadavg()[0]:.1f}; client on the same machine)"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
