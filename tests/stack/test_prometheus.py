"""A real Prometheus (Debian's package) scraping the real API with the repo's config, rules and dashboard queries.

Prometheus runs on loopback with a copy of deploy/prometheus/ and a targets file pointing at a real uvicorn
API on the session's SeaweedFS; every PromQL expression of the dashboard is evaluated by it.
"""

from __future__ import annotations

import json
import secrets
import shutil
import time
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import httpx
import pytest

from scripts.harness import processes
from services.core.embedded_s3 import EmbeddedS3
from services.core.events import report_key
from services.core.registry import Manifest, Registry
from services.core.settings import Settings
from services.core.storage import ObjectStore
from tests.monitoring_files import (
    JOB,
    PROMETHEUS_DIR,
    PROMETHEUS_OWN,
    ROOT,
    VERDICT,
    binary,
    dashboard_expressions,
    exported_names,
    for_prometheus,
    load_dashboard,
)
from tests.serve_fixtures import movie_payload, publish_rating

pytestmark = pytest.mark.integration


@dataclass
class Stack:
    api: str
    api_target: str
    prometheus: str
    published: Manifest

    def query(self, expr: str, context: str = "") -> list[dict[str, Any]]:
        """An instant query's result vector; fails on a PromQL error."""
        r = httpx.get(f"{self.prometheus}/api/v1/query", params={"query": expr}, timeout=10)
        body = r.json()
        assert r.status_code == 200 and body["status"] == "success", f"{context} {expr}: {body}"
        return body["data"]["result"]

    def wait_for(self, expr: str, timeout_s: float = 45) -> list[dict[str, Any]]:
        """The first non-empty result of expr (the first scrape is within one scrape interval)."""
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            result = self.query(expr)
            if result:
                return result
            time.sleep(0.5)
        raise AssertionError(f"{expr} still empty after {timeout_s}s; targets: {self.targets()}")

    def targets(self) -> Any:
        return httpx.get(f"{self.prometheus}/api/v1/targets", timeout=10).json()["data"]


@pytest.fixture(scope="module")
def stack(s3_server: EmbeddedS3, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    """The real API (scripts/serve.sh) on its own bucket, used once, then a real Prometheus scraping it."""
    prometheus = binary("prometheus")
    home = tmp_path_factory.mktemp("monitoring")
    settings = Settings(
        _env_file=None,
        s3_endpoint_url=s3_server.endpoint,
        s3_bucket="mon-" + secrets.token_hex(6),
        aws_access_key_id=s3_server.access_key,
        aws_secret_access_key=s3_server.secret_key,
        wandb_mode="disabled",
        tmdb_api_key=None,
    )
    store = ObjectStore.from_settings(settings)
    store.ensure_bucket()
    published = publish_rating(Registry(store))
    # A bad day's verdict, as services/train/monitoring/alerts.py stores it: the API turns it into gauges.
    store.put_json(report_key("alerts", datetime.now(UTC).date().isoformat(), "alert.json"), VERDICT | {
        "model_version": published.version})  # fmt: skip

    api_port = processes.free_port()
    api_log = home / "serve.log"
    api = processes.start(
        [str(ROOT / "scripts" / "serve.sh")], processes.serve_env(settings, home, api_port), api_log
    )
    procs = [api]
    try:
        api_url = f"http://127.0.0.1:{api_port}"
        processes.wait_ok(f"{api_url}/ready", api, api_log, timeout_s=120)
        # Requests before Prometheus starts: its first scrape already holds them.
        assert httpx.post(f"{api_url}/predict", json=movie_payload(), timeout=30).status_code == 200

        # The deployed config and rules, verbatim, beside a targets file of this test's API.
        config_dir = home / "prometheus"
        shutil.copytree(PROMETHEUS_DIR, config_dir, ignore=shutil.ignore_patterns("targets"))
        (config_dir / "targets").mkdir()
        target = f"127.0.0.1:{api_port}"
        (config_dir / "targets" / "api.json").write_text(
            json.dumps([{"targets": [target], "labels": {"deployment": "test", "replica": "api-test"}}])
        )
        prom_port = processes.free_port()
        prom_log = home / "prometheus.log"
        prom = processes.start(
            [
                prometheus,
                f"--config.file={config_dir / 'prometheus.yml'}",
                f"--storage.tsdb.path={home / 'tsdb'}",
                f"--web.listen-address=127.0.0.1:{prom_port}",
            ],
            {"PATH": "/usr/bin:/bin", "HOME": str(home)},
            prom_log,
        )
        procs.append(prom)
        prom_url = f"http://127.0.0.1:{prom_port}"
        processes.wait_ok(f"{prom_url}/-/ready", prom, prom_log, timeout_s=60)
        yield Stack(api_url, target, prom_url, published)
    finally:
        for proc in reversed(procs):
            processes.stop(proc)


def test_prometheus_scrapes_the_api_through_the_targets_file(stack: Stack) -> None:
    [up] = stack.wait_for(f'up{{job="{JOB}"}} == 1')
    assert up["metric"]["instance"] == stack.api_target and up["metric"]["deployment"] == "test"
    [predicted] = stack.wait_for(
        f'movie_intel_http_requests_total{{job="{JOB}", route="/predict", method="POST", status="200"}}'
    )
    assert float(predicted["value"][1]) >= 1
    [model] = stack.query('movie_intel_model_info{model="rating"}')
    assert model["metric"]["version"] == stack.published.version
    assert model["metric"]["instance"] == stack.api_target
    [count] = stack.query("sum(movie_intel_predicted_rating_count)")
    assert float(count["value"][1]) >= 1


def test_prometheus_loads_the_alert_rules(stack: Stack) -> None:
    body = httpx.get(f"{stack.prometheus}/api/v1/rules", timeout=10).json()
    alerts = {rule["name"] for group in body["data"]["groups"] for rule in group["rules"]}
    assert {"ApiReplicaDown", "ApiErrorRateHigh", "ModelMonitoringAlert"} <= alerts
    for group in body["data"]["groups"]:
        for rule in group["rules"]:
            assert rule["health"] in {"ok", "unknown"}, rule  # unknown: not evaluated yet


def test_every_dashboard_query_evaluates_in_prometheus(stack: Stack) -> None:
    stack.wait_for(f'up{{job="{JOB}"}} == 1')
    for title, expr in dashboard_expressions(load_dashboard()):
        stack.query(for_prometheus(expr), context=title)  # a PromQL error fails here
    # Queries that have data after one request and a scrape: the panels are not blank from the start.
    versions = stack.query(for_prometheus(_expr("Model version per replica")))
    assert {(r["metric"]["replica"], r["metric"]["model"], r["metric"]["version"]) for r in versions} >= {
        ("api-test", "rating", stack.published.version)
    }
    assert stack.query(for_prometheus(_expr("Replicas up")))


def test_prometheus_holds_the_monitoring_gauges_the_dashboard_plots(stack: Stack) -> None:
    live = stack.wait_for(for_prometheus(_expr("Live RMSE against validation RMSE")))
    assert [(r["metric"]["version"], float(r["value"][1])) for r in live] == [(stack.published.version, 0.97)]
    validation = stack.query("max by (model, version) (model_validation_rmse)")
    assert [float(r["value"][1]) for r in validation] == [0.9]
    drift = stack.query(for_prometheus(_expr("Drift share")))
    assert {r["metric"]["comparison"]: float(r["value"][1]) for r in drift} == {
        "requests": 0.625,
        "collected": 0.125,
    }


def _expr(title: str) -> str:
    return next(e for t, e in dashboard_expressions(load_dashboard()) if t == title)


def test_every_scraped_series_name_is_one_the_registry_declares(stack: Stack) -> None:
    # The registry is what the dashboard check trusts: a real scrape must agree with it.
    stack.wait_for(f'up{{job="{JOB}"}} == 1')
    scraped = {s["metric"]["__name__"] for s in stack.query(f'group by (__name__) ({{job="{JOB}"}})')}
    scraped = {n for n in scraped if not n.startswith("scrape_")} - PROMETHEUS_OWN
    assert "movie_intel_http_requests_total" in scraped and "movie_intel_model_info" in scraped
    assert scraped <= exported_names(), sorted(scraped - exported_names())
