"""Guards of a recommender canary, from the replicas' own Prometheus metrics: errors and latency per arm.

Each API replica counts its /recommend answers per arm and outcome and times them per arm. The judge
scrapes every replica named in SERVE_URL (the replicas themselves, not the load balancer, which would
answer for one), sums the series over replicas (p99 from the summed histogram buckets, as
Prometheus' `histogram_quantile(sum by (le))` does) and compares the candidate arm with production.

The counters are cumulative since each replica started, so the guards judge the candidate over the
whole experiment (and, on a replica that was not restarted, the candidate arms of earlier experiments
too): a guard catches a candidate that is broken or slow, not a blip of the last hour. Small counts
decide nothing: below MIN_REQUESTS per arm a guard is not judged, and latency must also be worse by
LATENCY_FLOOR_S, so microseconds of noise on fast answers cannot fail it.

No SERVE_URL, or no replica answering: the guards are "not measured", which lets the statistics decide
(and the report says so).
"""

from __future__ import annotations

import logging
import math
from dataclasses import dataclass, field
from typing import Any

import httpx

from services.core.settings import Settings
from services.train.notify import serving_urls

log = logging.getLogger(__name__)

# The serving host's names (services/serve/metrics.py).
REQUESTS = "movie_intel_recommend_arm_requests_total"
LATENCY_BUCKET = "movie_intel_recommend_arm_latency_seconds_bucket"
ARMS = ("production", "candidate")
SCRAPE_TIMEOUT_S = 5.0
MIN_REQUESTS = 50  # per arm: fewer answers cannot fail a guard
LATENCY_FLOOR_S = 0.005  # the candidate's p99 must also be this much slower than production's
QUANTILE = 0.99


@dataclass
class ArmCounts:
    """One arm's answers summed over replicas: by outcome, and the cumulative latency buckets."""

    ok: float = 0.0
    error: float = 0.0
    buckets: dict[float, float] = field(default_factory=dict)  # upper bound (s) -> answers at or below

    @property
    def requests(self) -> float:
        """Every answer counted, failed ones included."""
        return self.ok + self.error

    @property
    def error_rate(self) -> float | None:
        """Failed answers over all answers (None without answers)."""
        return self.error / self.requests if self.requests else None


def parse_metrics(text: str, into: dict[str, ArmCounts] | None = None) -> dict[str, ArmCounts]:
    """Add one replica's /metrics text to per-arm totals."""
    from prometheus_client.parser import text_string_to_metric_families

    arms = into if into is not None else {a: ArmCounts() for a in ARMS}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            arm = sample.labels.get("arm")
            if arm not in arms:
                continue
            if sample.name == REQUESTS:
                outcome = sample.labels.get("outcome")
                if outcome == "ok":
                    arms[arm].ok += sample.value
                elif outcome == "error":
                    arms[arm].error += sample.value
            elif sample.name == LATENCY_BUCKET:
                le = float(sample.labels["le"])
                arms[arm].buckets[le] = arms[arm].buckets.get(le, 0.0) + sample.value
    return arms


def quantile(buckets: dict[float, float], q: float) -> float | None:
    """The q-quantile of a cumulative histogram, interpolated within its bucket like histogram_quantile."""
    bounds = sorted(buckets)
    if not bounds or buckets[bounds[-1]] <= 0:
        return None
    total = buckets[bounds[-1]]  # the +Inf bucket: every observation
    rank = q * total
    below, lower = 0.0, 0.0
    for le in bounds:
        count = buckets[le]
        if count >= rank:
            if math.isinf(le):  # above the largest finite bound: that bound is all that can be said
                return lower
            return lower + (le - lower) * ((rank - below) / (count - below) if count > below else 1.0)
        below, lower = count, le
    return lower


def assess(
    arms: dict[str, ArmCounts], *, max_latency_ratio: float, max_error_rate_gap: float,
    min_requests: int = MIN_REQUESTS,
) -> dict[str, Any]:  # fmt: skip
    """Whether the candidate arm's error rate and p99 stay within the settings' limits (pure)."""
    prod, cand = arms["production"], arms["candidate"]
    enough = min(prod.requests, cand.requests) >= min_requests
    errors = {
        a: {"requests": int(c.requests), "errors": int(c.error), "rate": c.error_rate}
        for a, c in arms.items()
    }
    errors_ok = not (enough and (cand.error_rate or 0.0) > (prod.error_rate or 0.0) + max_error_rate_gap)
    p99 = {a: quantile(c.buckets, QUANTILE) for a, c in arms.items()}
    slow = (
        enough and p99["candidate"] is not None and p99["production"] is not None
        and p99["candidate"] > p99["production"] * max_latency_ratio
        and p99["candidate"] - p99["production"] > LATENCY_FLOOR_S
    )  # fmt: skip
    problems = []
    if not errors_ok:
        problems.append(
            f"candidate error rate {cand.error_rate:.2%} > production {prod.error_rate or 0.0:.2%} "
            f"+ {max_error_rate_gap:.2%}"
        )
    if slow:
        problems.append(
            f"candidate p99 {1000 * p99['candidate']:.1f} ms > {max_latency_ratio:g} x production "
            f"{1000 * p99['production']:.1f} ms"
        )
    if problems:
        detail = "; ".join(problems)
    elif not enough:
        detail = f"fewer than {min_requests} answers in an arm ({int(prod.requests)}, {int(cand.requests)}): not judged"
    else:
        detail = (
            f"error rate {cand.error_rate:.2%} vs {prod.error_rate:.2%}, p99 "
            f"{_ms(p99['candidate'])} vs {_ms(p99['production'])}: within limits"
        )
    return {
        "ok": not problems,
        "judged": bool(enough),
        "detail": detail,
        "errors": {"ok": errors_ok, "max_gap": max_error_rate_gap, **errors},
        "latency": {
            "ok": not slow, "max_ratio": max_latency_ratio, "floor_s": LATENCY_FLOOR_S,
            **{a: {"p99_s": v} for a, v in p99.items()},
        },
    }  # fmt: skip


def check_guards(settings: Settings) -> dict[str, Any]:
    """Scrape every replica's /metrics and assess the arms; "not measured" (ok) when none answers."""
    urls = serving_urls(settings.serve_url)
    arms = {a: ArmCounts() for a in ARMS}
    scraped, unreachable = [], {}
    for url in urls:
        try:
            resp = httpx.get(url + "/metrics", timeout=SCRAPE_TIMEOUT_S)
            resp.raise_for_status()
            parse_metrics(resp.text, arms)
        except (httpx.HTTPError, ValueError) as exc:  # ValueError: not a Prometheus text
            log.warning("guards: replica %s metrics unreadable: %s", url, exc)
            unreachable[url] = f"{type(exc).__name__}: {exc}"
            continue
        scraped.append(url)
    replicas = {"scraped": scraped, "unreachable": unreachable}
    if not scraped:
        why = "SERVE_URL not set" if not urls else f"no replica answered ({len(urls)} tried)"
        return {"ok": True, "measured": False, "detail": f"not measured: {why}", "replicas": replicas,
                "errors": {}, "latency": {}}  # fmt: skip
    result = assess(
        arms, max_latency_ratio=settings.experiment_max_latency_ratio,
        max_error_rate_gap=settings.experiment_max_error_rate_gap,
    )  # fmt: skip
    if unreachable:
        result["detail"] += f" ({len(scraped)} of {len(urls)} replicas measured)"
    return {"measured": True, "replicas": replicas, **result}


def _ms(seconds: float | None) -> str:
    return "n/a" if seconds is None else f"{1000 * seconds:.1f} ms"
