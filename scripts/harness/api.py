"""Probes of a running API over HTTP that the benches and the simulations share."""

from __future__ import annotations

import re
import time

import httpx


def _counter(metrics: str, name: str, stream: str) -> float:
    match = re.search(rf'^{name}_total{{stream="{stream}"}} ([0-9.e+]+)$', metrics, re.M)
    return float(match.group(1)) if match else 0.0


def wait_flushed(url: str, timeout_s: float = 60) -> dict[str, float]:
    """Wait until the spool is empty; what was accepted and uploaded, per stream."""
    deadline = time.monotonic() + timeout_s
    while True:
        text = httpx.get(f"{url}/metrics", timeout=10).text
        pending = float(re.search(r"^movie_intel_spool_pending ([0-9.e+]+)$", text, re.M).group(1))  # type: ignore[union-attr]
        if pending == 0 or time.monotonic() > deadline:
            break
        time.sleep(0.5)
    out = {"pending": pending}
    for stream in ("feedback", "impressions"):
        out[f"{stream}_accepted"] = _counter(text, "movie_intel_events_accepted", stream)
        out[f"{stream}_uploaded"] = _counter(text, "movie_intel_events_uploaded", stream)
    return out
