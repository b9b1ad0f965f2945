"""The canary's guards read real Prometheus text from real HTTP servers standing in for the replicas.

Each stand-in serves `generate_latest` of the serving host's own collectors (ServeMetrics), filled by
the same `observe_arm` the /recommend route calls, so a renamed metric breaks this test.
"""

from __future__ import annotations

import socket
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
from prometheus_client import generate_latest

from services.core.settings import Settings
from services.serve.metrics import ServeMetrics
from services.train.experiments.guards import ArmCounts, check_guards, quantile


@contextmanager
def replica(metrics: ServeMetrics) -> Iterator[str]:
    """An HTTP server answering GET /metrics with the collectors' current text; yields its base URL."""

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:  # noqa: N802 - http.server's naming
            body = generate_latest(metrics.registry) if self.path == "/metrics" else b"not found"
            self.send_response(200 if self.path == "/metrics" else 404)
            self.send_header("Content-Type", "text/plain; version=0.0.4")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, format: str, *args: object) -> None:  # noqa: A002 - quiet
            return

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()


def closed_port_url() -> str:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return f"http://127.0.0.1:{s.getsockname()[1]}"


def traffic(prod_ms: float, cand_ms: float, cand_errors: int = 0, n: int = 400) -> ServeMetrics:
    """A replica's collectors after n answers per arm at the given latencies (a few slow outliers)."""
    metrics = ServeMetrics()
    for i in range(n):
        slow = 3 if i % 100 == 0 else 1  # 1% of answers three times slower
        metrics.observe_arm("production", slow * prod_ms / 1000, True)
        metrics.observe_arm("candidate", slow * cand_ms / 1000, i >= cand_errors)
    return metrics


def settings(*urls: str) -> Settings:
    return Settings(
        _env_file=None, serve_url=",".join(urls) or None, experiment_max_latency_ratio=1.5,
        experiment_max_error_rate_gap=0.01,
    )  # fmt: skip


def test_healthy_arms_on_two_replicas_pass_and_a_down_replica_is_reported() -> None:
    with replica(traffic(3, 3.2)) as a, replica(traffic(4, 4)) as b:
        down = closed_port_url()
        guards = check_guards(settings(a, b, down))
    assert guards["ok"] and guards["measured"] and guards["judged"]
    assert guards["replicas"]["scraped"] == [a, b] and list(guards["replicas"]["unreachable"]) == [down]
    assert guards["errors"]["candidate"] == {"requests": 800, "errors": 0, "rate": 0.0}
    assert "within limits" in guards["detail"] and "2 of 3 replicas measured" in guards["detail"]


def test_a_slow_candidate_fails_the_latency_guard() -> None:
    with replica(traffic(8, 40)) as a:
        guards = check_guards(settings(a))
    assert not guards["ok"] and not guards["latency"]["ok"] and guards["errors"]["ok"]
    assert guards["latency"]["candidate"]["p99_s"] > 1.5 * guards["latency"]["production"]["p99_s"]
    assert "candidate p99" in guards["detail"]


def test_sub_millisecond_latencies_cannot_fail_it() -> None:
    # Twice as slow, but 0.4 ms against 0.2 ms: noise, below the 5 ms floor.
    with replica(traffic(0.2, 0.4)) as a:
        assert check_guards(settings(a))["latency"]["ok"]


def test_a_candidate_that_errors_fails_the_error_guard() -> None:
    with replica(traffic(3, 3, cand_errors=20)) as a:  # 5% of the candidate's answers failed
        guards = check_guards(settings(a))
    assert not guards["ok"] and not guards["errors"]["ok"]
    assert guards["errors"]["candidate"]["rate"] == pytest.approx(0.05)
    assert "candidate error rate 5.00% > production 0.00% + 1.00%" in guards["detail"]


def test_a_few_answers_decide_nothing() -> None:
    with replica(traffic(3, 50, cand_errors=10, n=20)) as a:
        guards = check_guards(settings(a))
    assert guards["ok"] and guards["measured"] and not guards["judged"] and "not judged" in guards["detail"]


def test_without_replicas_the_guards_are_not_measured() -> None:
    assert check_guards(settings()) | {"replicas": None} == {
        "ok": True, "measured": False, "detail": "not measured: SERVE_URL not set", "replicas": None,
        "errors": {}, "latency": {},
    }  # fmt: skip
    down = check_guards(settings(closed_port_url()))
    assert (
        down["ok"]
        and not down["measured"]
        and down["detail"] == "not measured: no replica answered (1 tried)"
    )


def test_quantile_interpolates_within_the_bucket_like_prometheus() -> None:
    # 100 answers: 50 under 10 ms, 49 in (10, 20], 1 above 50 ms.
    buckets = {0.01: 50.0, 0.02: 99.0, 0.05: 99.0, float("inf"): 100.0}
    assert quantile(buckets, 0.5) == pytest.approx(0.01)
    assert quantile(buckets, 0.99) == pytest.approx(0.02)
    assert quantile(buckets, 0.995) == pytest.approx(0.05)  # in +Inf: the largest finite bound
    assert quantile({}, 0.99) is None and ArmCounts().error_rate is None
