"""Prometheus metrics of one app: request counts and latency per route, model versions, predictions."""

from __future__ import annotations

from time import perf_counter
from typing import Any

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram
from starlette.types import ASGIApp, Message, Receive, Scope, Send

LATENCY_BUCKETS = (0.001, 0.0025, 0.005, 0.0075, 0.01, 0.015, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0)
RATING_BUCKETS = tuple(x / 2 for x in range(1, 21))  # 0.5 .. 10.0
ARMS = ("production", "candidate")  # services.core.experiments.Arm


class ServeMetrics:
    """The collectors, in a registry of their own so every app (and every test) starts from zero."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        self.requests = Counter(
            "movie_intel_http_requests", "HTTP requests served.", ["method", "route", "status"],
            registry=self.registry,
        )  # fmt: skip
        self.latency = Histogram(
            "movie_intel_http_request_duration_seconds", "Time to answer a request, per route.",
            ["method", "route"], buckets=LATENCY_BUCKETS, registry=self.registry,
        )  # fmt: skip
        self.model_info = Gauge(
            "movie_intel_model_info", "The model versions being served (value 1).",
            ["model", "version", "algorithm", "source"], registry=self.registry,
        )  # fmt: skip
        self.predicted_rating = Histogram(
            "movie_intel_predicted_rating", "Distribution of predicted ratings (0-10).",
            buckets=RATING_BUCKETS, registry=self.registry,
        )  # fmt: skip
        self.translations = Counter(
            "movie_intel_translations", "Overview translations by outcome.", ["outcome"],
            registry=self.registry,
        )  # fmt: skip
        self.reloads = Counter(
            "movie_intel_model_reloads", "Model reloads by outcome.", ["outcome"], registry=self.registry
        )
        # The event path (feedback, impressions, prediction logs): the stream is a label, not a metric name.
        self.events_accepted = Counter(
            "movie_intel_events_accepted", "Events spooled, per stream.", ["stream"], registry=self.registry
        )
        self.events_duplicates = Counter(
            "movie_intel_events_duplicates", "Events whose id was already accepted.", ["stream"],
            registry=self.registry,
        )  # fmt: skip
        self.events_refused = Counter(
            "movie_intel_events_refused", "Events refused with a 503 (or not logged), per reason.",
            ["stream", "reason"], registry=self.registry,
        )  # fmt: skip
        self.events_uploaded = Counter(
            "movie_intel_events_uploaded", "Events confirmed in S3, per stream.", ["stream"],
            registry=self.registry,
        )  # fmt: skip
        self.spool_pending = Gauge(
            "movie_intel_spool_pending", "Events in the local spool waiting for S3.", registry=self.registry
        )
        self.spool_flush_failures = Counter(
            "movie_intel_spool_flush_failures", "Failed attempts to upload spooled events.",
            registry=self.registry,
        )  # fmt: skip
        # Per arm of the recommender experiment: the guards on errors and latency compare the arms.
        self.arm_requests = Counter(
            "movie_intel_recommend_arm_requests", "/recommend rankings per experiment arm, by outcome.",
            ["arm", "outcome"], registry=self.registry,
        )  # fmt: skip
        self.arm_latency = Histogram(
            "movie_intel_recommend_arm_latency_seconds", "Time to rank a /recommend answer, per experiment arm.",
            ["arm"], buckets=LATENCY_BUCKETS, registry=self.registry,
        )  # fmt: skip
        # Every series exists from the start (a rate over a missing series is no rate), and the hot path
        # takes its child from a dict instead of labels()' lock and hashing.
        self._arm_counts = {(a, o): self.arm_requests.labels(a, o) for a in ARMS for o in ("ok", "error")}
        self._arm_times = {a: self.arm_latency.labels(a) for a in ARMS}

        # Users known by their id: store failures (never a failed request: the spool has the events), and
        # which input each /recommend answer came from (user history, the request's ids, popularity; cached).
        self.user_store_errors = Counter(
            "movie_intel_user_store_errors", "User store operations that failed or were skipped, per operation.",
            ["op"], registry=self.registry,
        )  # fmt: skip
        self.recommend_sources = Counter(
            "movie_intel_recommend_source", "/recommend answers by source and whether from a precomputed list.",
            ["source", "cached"], registry=self.registry,
        )  # fmt: skip
        self._sources = {
            (s, c): self.recommend_sources.labels(s, str(c).lower())
            for s in ("user", "request", "fallback")
            for c in (True, False)
        }

        # Monitoring, read from the DAG's daily reports (reports/rating, reports/drift): names fixed by the
        # dashboards and alert rules that read them, hence no movie_intel_ prefix.
        self.live_rmse = Gauge(
            "model_live_rmse", "RMSE of the production rating model on newly collected movies, last 7 days.",
            ["model", "version"], registry=self.registry,
        )  # fmt: skip
        self.validation_rmse = Gauge(
            "model_validation_rmse", "Validation RMSE recorded when that rating model version was trained.",
            ["model", "version"], registry=self.registry,
        )  # fmt: skip
        self.drift_share = Gauge(
            "model_drift_share", "Share of features Evidently found drifted on the last monitored day.",
            ["comparison"], registry=self.registry,
        )  # fmt: skip
        self.alert = Gauge(
            "model_alert", "1 when the last monitored day raised an alert, per reason.", ["reason"],
            registry=self.registry,
        )  # fmt: skip

    def observe_arm(self, arm: str, seconds: float, ok: bool) -> None:
        """Count one /recommend ranking of an arm and its time."""
        self._arm_counts[(arm, "ok" if ok else "error")].inc()
        self._arm_times[arm].observe(seconds)

    def observe_source(self, source: str, cached: bool) -> None:
        """Count one /recommend answer by its source."""
        self._sources[(source, cached)].inc()

    def set_models(self, infos: list[dict[str, str]]) -> None:
        """Replace the model info series with the versions now served."""
        self.model_info.clear()
        for info in infos:
            self.model_info.labels(**info).set(1)


class MetricsMiddleware:
    """Pure ASGI middleware (cheaper than BaseHTTPMiddleware) timing every HTTP request by route template."""

    def __init__(self, app: ASGIApp, metrics: ServeMetrics) -> None:
        self.app = app
        self.metrics = metrics
        # labels() takes a lock and hashes its arguments on every call: keep each series' child instead.
        self._latency: dict[tuple[str, str], Any] = {}
        self._requests: dict[tuple[str, str, int], Any] = {}

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        start = perf_counter()
        status = 500  # what the client gets when the app raises before answering

        async def send_with_status(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, send_with_status)
        finally:
            route = _route_template(scope)
            method = scope["method"]
            latency = self._latency.get((method, route))
            if latency is None:
                latency = self._latency[(method, route)] = self.metrics.latency.labels(method, route)
            latency.observe(perf_counter() - start)
            requests = self._requests.get((method, route, status))
            if requests is None:
                requests = self.metrics.requests.labels(method, route, str(status))
                self._requests[(method, route, status)] = requests
            requests.inc()


def _route_template(scope: dict[str, Any]) -> str:
    # The template (/movies/{tmdb_id}), never the raw path: one series per route, not per movie id.
    route = scope.get("route")
    return getattr(route, "path", None) or "unmatched"
