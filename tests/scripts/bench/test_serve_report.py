"""Error answers never count as fast answers: scripts/bench/serve_report.py, feedback.py and serve_load.py."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from scripts.bench import feedback
from scripts.bench.intervals import MET, NOT_MET
from scripts.bench.serve_load import Cell, HttpxLoad, Target
from scripts.bench.serve_report import summary, table

PREDICT = Target("movie-intel", "POST", "/predict", ["{}"])
REFERENCE = Target("reference", "GET", "/predict", [""])
FEEDBACK = Target("movie-intel", "POST", "/feedback", ["{}"])


def _cells(target: Target, rps: float, p99_ms: float, errors: int = 0, repeats: int = 5) -> list[Cell]:
    return [Cell(target, 16, int(rps * 4), errors, 4.0, p99_ms / 2, p99_ms, 0.3, r) for r in range(repeats)]


def _verdict(records: list[dict], claim_start: str) -> str:
    return next(r["verdict"] for r in records if r["claim"].startswith(claim_start))


def test_a_cell_of_fast_503s_is_not_a_fast_cell() -> None:
    ok = summary(_cells(PREDICT, 2000, 5.0), [], 16)
    assert _verdict(ok.verdicts, "/predict p99") == MET
    fast_errors = summary(_cells(PREDICT, 8000, 0.5, errors=100), [], 16)
    assert _verdict(fast_errors.verdicts, "/predict p99") == NOT_MET
    assert "inf" in table(_cells(PREDICT, 8000, 0.5, errors=100))


def test_a_reference_cell_with_errors_drops_its_pair_instead_of_flattering_the_ratio() -> None:
    reference = _cells(REFERENCE, 150, 100.0)
    for c in reference[:3]:  # three reference cells answered errors: few successes, a 13x "ratio"
        c.errors = c.sent - 450
    report = summary(_cells(PREDICT, 1500, 5.0) + reference, [], 16)
    ratio = report.figures["predict_vs_reference_rps_ratio_c16"]
    assert ratio["n"] == 2 and ratio["median"] == pytest.approx(10.0)
    assert _verdict(report.verdicts, "/predict throughput / the reference") != MET


def test_feedback_p99_does_not_count_503s_as_fast() -> None:
    report = feedback._judged(_cells(FEEDBACK, 5000, 1.0, errors=2000), 16)
    assert _verdict(report.verdicts, "/feedback p99") == NOT_MET
    assert report.figures["feedback_rps_c16"]["median"] == pytest.approx(5000 - 2000 / 4)
    assert _verdict(feedback._judged(_cells(FEEDBACK, 5000, 1.0), 16).verdicts, "/feedback p99") == MET


class _Busy(BaseHTTPRequestHandler):
    def do_POST(self) -> None:  # noqa: N802 - http.server's name
        self.rfile.read(int(self.headers.get("content-length", 0)))
        self.send_response(503)
        self.send_header("content-length", "0")
        self.end_headers()

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture
def busy_url() -> Iterator[str]:
    """An in-process HTTP server (a thread) answering every POST with a fast 503."""
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Busy)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()


def test_the_httpx_generator_counts_503s_as_errors_without_a_latency(busy_url: str) -> None:
    m = HttpxLoad().run(busy_url, PREDICT, 2, 0.3)
    assert m.sent > 0 and m.errors == m.sent
    cell = Cell(PREDICT, 2, m.sent, m.errors, m.seconds, m.p50_ms, m.p99_ms, None)
    assert not cell.valid and cell.rps == 0
