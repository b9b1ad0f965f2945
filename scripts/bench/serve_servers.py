"""Servers for scripts/bench/serve.py: demo models on a throw-away S3, serve.sh starts, the reference pattern."""

from __future__ import annotations

import logging
import os
import pickle
import secrets
import sys
import time
from contextlib import ExitStack
from pathlib import Path
from typing import Any

import httpx
import numpy as np

from scripts.harness.processes import ROOT, free_port, process, wait_or_exit

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


def has_production_rating() -> bool:
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


def demo_s3(stack: ExitStack, tmp: Path) -> dict[str, str]:
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


def reference_model(tmp: Path, movies: list[dict[str, Any]]) -> Path:
    """The reference's model: an XGBRegressor on five encoded columns, pickled (bench-time only)."""
    from xgboost import XGBRegressor

    from services.core.sentiment import sentiment

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


def serve_sh(stack: ExitStack, env: dict[str, str], pin: list[str], log_file: Path,
             **extra: str) -> tuple[str, int, float]:  # fmt: skip
    """Start scripts/serve.sh on a port of its own until the stack closes: (URL, process group, seconds to ready).

    Each start gets a model cache of its own, next to its log: every time to ready is from a cold cache
    (the models downloaded from the S3), so the starts of one run are samples of the same thing.
    """
    cache = str(log_file.with_suffix(".model-cache"))
    env = {**env, "MODEL_CACHE_DIR": cache, **extra, "SERVE_PORT": str(free_port())}
    url = f"http://127.0.0.1:{env['SERVE_PORT']}"
    start = time.monotonic()
    proc = stack.enter_context(process([*pin, str(ROOT / "scripts" / "serve.sh")], env, log_file))
    return url, proc.pid, wait_or_exit(f"{url}/ready", proc, log_file, start, 120)


def log_off_server(
    stack: ExitStack, env: dict[str, str], pin: list[str], tmp: Path
) -> tuple[str, int, float]:
    """serve.sh again with PREDICTION_LOG_RATE=0 and its own spool, ready: (URL, process group, seconds to ready)."""
    return serve_sh(stack, env, pin, tmp / "serve-off.log", PREDICTION_LOG_RATE="0",
                    SPOOL_DIR=str(tmp / "spool-off"))  # fmt: skip


def ready_times(env: dict[str, str], pin: list[str], tmp: Path, starts: int) -> list[float]:
    """Seconds from serve.sh started to /ready 200, over `starts` starts one after another (each stopped)."""
    out = []
    for i in range(starts):
        with ExitStack() as stack:
            spool = str(tmp / f"spool-ready-{i}")
            _, _, seconds = serve_sh(stack, env, pin, tmp / f"serve-ready-{i}.log", SPOOL_DIR=spool)
        log.info("start %d/%d: ready after %.2f s", i + 1, starts, seconds)
        out.append(seconds)
    return out


def reference_server(
    stack: ExitStack, tmp: Path, movies: list[dict[str, Any]], pin: list[str]
) -> tuple[str, int]:
    """The reference pattern under uvicorn, one worker, until the stack closes: (URL, process group)."""
    model_path = reference_model(tmp, movies)
    port = free_port()
    cmd = [*pin, sys.executable, "-m", "uvicorn", "reference_app:app", "--app-dir", str(model_path.parent),
           "--port", str(port), "--no-access-log"]  # fmt: skip
    env = {**os.environ, "REFERENCE_MODEL_PATH": str(model_path)}
    proc = stack.enter_context(process(cmd, env, tmp / "reference.log"))
    url = f"http://127.0.0.1:{port}"
    wait_or_exit(f"{url}/docs", proc, tmp / "reference.log", time.monotonic(), 60)
    return url, proc.pid


def describe_models(url: str) -> str:
    """The models the server at url serves, as "rating <algorithm> <version>, recommender ..."."""
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


def cpu_split(pin: str, workers: int) -> tuple[str | None, str | None]:
    """(server cpus, generator cpus) for taskset, or (None, None) when not pinning."""
    n = os.cpu_count() or 1
    if pin == "no" or n < 2 or (pin == "auto" and workers > 1):
        return None, None
    return f"0-{n - 2}" if n > 2 else "0", str(n - 1)
