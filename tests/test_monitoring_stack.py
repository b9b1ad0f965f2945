"""The monitoring stack: a real Prometheus (Debian's package) scraping the real API, and the Grafana files.

Prometheus runs on loopback with a copy of deploy/prometheus/prometheus.yml (and its rules) and a
targets file pointing at a real uvicorn API on the session's SeaweedFS. Grafana cannot run here, so its
provisioning files and dashboard are checked for structure, and every PromQL expression of the dashboard
is evaluated by that Prometheus and must name only metrics the API exports.
"""

from __future__ import annotations

import json
import re
import secrets
import shutil
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml

from services.core.embedded_s3 import EmbeddedS3
from services.core.events import report_key
from services.core.registry import Manifest, Registry
from services.core.settings import Settings
from services.core.storage import ObjectStore
from services.serve.metrics import ServeMetrics
from tests import processes
from tests.serve_fixtures import movie_payload, publish_rating

pytestmark = pytest.mark.integration

ROOT = Path(__file__).resolve().parents[1]
PROMETHEUS_DIR = ROOT / "deploy" / "prometheus"
GRAFANA_DIR = ROOT / "deploy" / "grafana"
DASHBOARD = GRAFANA_DIR / "dashboards" / "movie-intel.json"
DATASOURCE_UID = "movie-intel-prometheus"
JOB = "movie-intel-api"
# Series Prometheus adds to every target on its own (not exported by the API).
PROMETHEUS_OWN = {"up"}
# Grafana's macros, replaced by what Grafana would put there before the query reaches Prometheus.
GRAFANA_MACROS = {"$__rate_interval": "1m", "$__interval": "1m", "$__range": "1h"}
VERDICT = {
    "alert": True,
    "reasons": [{"reason": "drift_requests", "message": "5 of 8 features drifted in requests"}],
    "live_rmse": 0.97,
    "live_count": 40,
    "validation_rmse": 0.9,
    "drift_share": {"requests": 0.625, "collected": 0.125},
}


def _binary(name: str) -> str:
    path = shutil.which(name)
    if path is None:
        pytest.skip(
            f"{name} is not installed (Debian's `prometheus` package; ./scripts/test.sh installs it as root)"
        )
    return path


# --- what the API exports ------------------------------------------------------------------------------
def exported_names() -> set[str]:
    """Every series name the API's registry can expose, labelled or not (a labelled series shows up in
    /metrics only once observed, so the collectors are the source, not a scrape)."""
    suffixes = {
        "counter": ("_total", "_created"),
        "histogram": ("_bucket", "_sum", "_count", "_created"),
        "summary": ("", "_sum", "_count", "_created"),
    }
    return {
        family.name + suffix
        for family in ServeMetrics().registry.collect()
        for suffix in suffixes.get(family.type, ("",))
    }


_STRING = re.compile(r'"(?:[^"\\]|\\.)*"')
_GROUPING = re.compile(r"\b(by|without|on|ignoring|group_left|group_right)\s*\([^)]*\)")
_IDENT = re.compile(r"[A-Za-z_:][A-Za-z0-9_:]*")
_KEYWORDS = {"and", "or", "unless", "bool", "offset", "by", "without", "on", "ignoring", "group_left",
             "group_right", "inf", "nan"}  # fmt: skip


def metric_names(expr: str) -> set[str]:
    """The metric names a PromQL expression selects: identifiers that are not functions, keywords,
    label names (in matchers or grouping clauses) or durations."""
    text = _STRING.sub('""', expr)
    text = re.sub(r"\{[^}]*\}", " ", text)  # label matchers
    text = re.sub(r"\[[^\]]*\]", " ", text)  # range durations
    text = _GROUPING.sub(" ", text)
    names = set()
    for m in _IDENT.finditer(text):
        rest = text[m.end() :].lstrip()
        if rest.startswith("(") or m.group().lower() in _KEYWORDS:
            continue  # a function call or an operator keyword
        if m.start() and text[m.start() - 1].isdigit():
            continue  # the unit of a number such as 1e3
        names.add(m.group())
    return names


def test_metric_names_reads_selectors_not_functions_labels_or_durations() -> None:
    expr = (
        "histogram_quantile(0.99, sum by (route, le) (rate(movie_intel_http_request_duration_seconds_bucket"
        '{route!="/metrics", status=~"5.."}[5m]))) / on (model) group_left up and bool model_alert offset 1h'
    )
    assert metric_names(expr) == {"movie_intel_http_request_duration_seconds_bucket", "up", "model_alert"}
    assert metric_names('sum(rate(x_total{a="b(c)"}[$__rate_interval])) * 60') == {"x_total"}


def test_the_registry_exports_the_monitoring_gauges_and_suffixed_counters() -> None:
    names = exported_names()
    assert {"model_live_rmse", "model_validation_rmse", "model_drift_share", "model_alert"} <= names
    assert {"movie_intel_http_requests_total", "movie_intel_http_request_duration_seconds_bucket"} <= names
    assert "movie_intel_http_requests" not in names  # counters are exposed with _total


# --- the dashboard -------------------------------------------------------------------------------------
def _dashboard() -> dict[str, Any]:
    return json.loads(DASHBOARD.read_text())


def _panels(dashboard: dict[str, Any]) -> list[dict[str, Any]]:
    """Every panel, those nested in collapsed rows included."""
    out = []
    for panel in dashboard["panels"]:
        out.append(panel)
        out.extend(panel.get("panels", []))
    return out


def _expressions(dashboard: dict[str, Any]) -> list[tuple[str, str]]:
    return [(p["title"], t["expr"]) for p in _panels(dashboard) if p["type"] != "row" for t in p["targets"]]


def _for_prometheus(expr: str) -> str:
    for macro, value in GRAFANA_MACROS.items():
        expr = expr.replace(macro, value)
    assert "$" not in expr, f"an unknown Grafana variable in {expr}"
    return expr


def test_dashboard_structure_is_what_grafana_loads() -> None:
    dash = _dashboard()
    assert dash["uid"] and dash["title"] and isinstance(dash["schemaVersion"], int)
    assert dash["templating"]["list"] == []  # nothing the provisioned dashboard would ask for
    panels = _panels(dash)
    ids = [p["id"] for p in panels]
    assert len(ids) == len(set(ids)), "panel ids must be unique"
    cells: set[tuple[int, int]] = set()
    for panel in panels:
        pos = panel["gridPos"]
        assert set(pos) == {"h", "w", "x", "y"} and all(isinstance(v, int) for v in pos.values()), panel[
            "title"
        ]
        assert pos["x"] >= 0 and pos["x"] + pos["w"] <= 24 and pos["h"] >= 1, panel["title"]
        taken = {
            (x, y) for x in range(pos["x"], pos["x"] + pos["w"]) for y in range(pos["y"], pos["y"] + pos["h"])
        }
        assert not taken & cells, f"{panel['title']} overlaps another panel"
        cells |= taken
        assert panel["title"], panel
        if panel["type"] == "row":
            continue
        assert panel["type"] in {"timeseries", "stat", "table", "heatmap", "bargauge", "gauge"}, panel["type"]
        assert panel["datasource"] == {"type": "prometheus", "uid": DATASOURCE_UID}, panel["title"]
        assert panel["description"], f"{panel['title']} says what it shows"
        assert panel["targets"], panel["title"]
        refs = [t["refId"] for t in panel["targets"]]
        assert len(refs) == len(set(refs)), panel["title"]
        for t in panel["targets"]:
            assert t["expr"].strip() and t["datasource"]["uid"] == DATASOURCE_UID, panel["title"]


def test_dashboard_shows_what_the_issue_asks_for() -> None:
    joined = "\n".join(f"{title}: {expr}" for title, expr in _expressions(_dashboard()))
    for needle in (
        "Request rate",
        "Error rate",
        "Latency p50",
        "Latency p99",
        "Predicted-rating distribution",
        "Translations",
        "Feedback events per minute",
        "Model version per replica",
        "Live RMSE",
        "Drift share",
    ):
        assert needle in joined, needle
    for name in ("model_live_rmse", "model_validation_rmse", "model_drift_share", "movie_intel_model_info",
                 "movie_intel_predicted_rating_bucket", "movie_intel_translations_total"):  # fmt: skip
        assert name in joined, name
    assert re.search(r"histogram_quantile\(0\.5,.*by \(route, le\)", joined)
    assert re.search(r"histogram_quantile\(0\.99,.*by \(route, le\)", joined)


def test_every_dashboard_query_names_only_metrics_the_api_exports() -> None:
    exported = exported_names() | PROMETHEUS_OWN
    for title, expr in _expressions(_dashboard()):
        names = metric_names(_for_prometheus(expr))
        assert names, f"{title}: no metric in {expr}"
        assert names <= exported, f"{title}: {sorted(names - exported)} not exported by the API"


def test_grafana_provisioning_points_at_the_dashboard_and_the_datasource() -> None:
    sources = yaml.safe_load((GRAFANA_DIR / "provisioning" / "datasources" / "prometheus.yml").read_text())
    [source] = sources["datasources"]
    assert sources["apiVersion"] == 1
    assert source["type"] == "prometheus" and source["uid"] == DATASOURCE_UID
    assert source["url"].startswith("http://") and source["access"] == "proxy"
    providers = yaml.safe_load((GRAFANA_DIR / "provisioning" / "dashboards" / "dashboards.yml").read_text())
    [provider] = providers["providers"]
    assert providers["apiVersion"] == 1 and provider["type"] == "file"
    assert provider["options"]["path"].startswith("/")  # the compose mount of deploy/grafana/dashboards


# --- promtool ------------------------------------------------------------------------------------------
def test_promtool_accepts_the_config_and_the_rules() -> None:
    promtool = _binary("promtool")
    config = subprocess.run(
        [promtool, "check", "config", str(PROMETHEUS_DIR / "prometheus.yml")], capture_output=True, text=True
    )
    assert config.returncode == 0, config.stdout + config.stderr
    rules = sorted((PROMETHEUS_DIR / "rules").glob("*.yml"))
    assert rules and re.search(r"SUCCESS: [1-9]\d* rule files found", config.stdout + config.stderr)
    checked = subprocess.run([promtool, "check", "rules", *map(str, rules)], capture_output=True, text=True)
    assert checked.returncode == 0, checked.stdout + checked.stderr


def _series(name: str, values: str, **labels: str) -> dict[str, str]:
    labels = {"job": JOB, "instance": "api-1:8000", **labels}
    return {"series": name + "{" + ", ".join(f'{k}="{v}"' for k, v in labels.items()) + "}", "values": values}


def _expect(alert: str, at: str, labels: dict[str, str] | None = None, **annotations: str) -> dict[str, Any]:
    """At `at`, `alert` fires once with these labels and annotations, or not at all when labels is None."""
    fired = [] if labels is None else [{"exp_labels": labels, "exp_annotations": annotations}]
    return {"eval_time": at, "alertname": alert, "exp_alerts": fired}


def test_promtool_unit_tests_of_the_alert_rules(tmp_path: Path) -> None:
    """The rules on synthetic series (promtool test rules): when each alert fires, and what it says."""
    promtool = _binary("promtool")
    rules = sorted(str(p) for p in (PROMETHEUS_DIR / "rules").glob("*.yml"))
    requests = "movie_intel_http_requests_total"
    ok, failed = {"method": "POST", "route": "/predict", "status": "200"}, {"status": "503"}
    tests = [
        {  # a bad day, seen by two replicas: one alert naming both reasons
            "input_series": [
                _series("model_alert", "0 0 1 1", reason="any"),
                _series("model_alert", "0 0 1 1", reason="any", instance="api-2:8000"),
                _series("model_alert", "_ _ 1 1", reason="drift_requests"),
                _series("model_alert", "_ _ 1 1", reason="live_rmse"),
            ],
            "alert_rule_test": [
                _expect("ModelMonitoringAlert", "1m"),
                _expect(
                    "ModelMonitoringAlert", "3m", {"severity": "ticket"},
                    summary="The last monitored day raised a model alert: drift_requests, live_rmse",
                    description="See reports/alerts, reports/rating and reports/drift for that day, and the "
                    "model page of the UI.",
                ),
            ],
        },
        {  # a replica stops answering: an alert after 2 minutes, not before
            "input_series": [_series("up", "1 0 0 0 0"), _series("up", "1 1 1 1 1", instance="api-2:8000")],
            "alert_rule_test": [
                _expect("ApiReplicaDown", "2m"),
                _expect(
                    "ApiReplicaDown", "4m", {"severity": "page", "job": JOB, "instance": "api-1:8000"},
                    summary="API replica api-1:8000 does not answer /metrics",
                ),
            ],
        },
        {  # 10% of requests fail: paged once it lasted 10 minutes
            "input_series": [_series(requests, "0+9x30", **ok), _series(requests, "0+1x30", **(ok | failed))],
            "alert_rule_test": [
                _expect("ApiErrorRateHigh", "8m"),
                _expect(
                    "ApiErrorRateHigh", "20m", {"severity": "page"},
                    summary="More than 5% of API requests answer 5xx (10%)",
                ),
            ],
        },
        {  # 2% fail: no page
            "input_series": [_series(requests, "0+49x30", **ok), _series(requests, "0+1x30", **(ok | failed))],
            "alert_rule_test": [_expect("ApiErrorRateHigh", "25m")],
        },
    ]  # fmt: skip
    cases = {
        "rule_files": rules,
        "evaluation_interval": "1m",
        "tests": [{"interval": "1m", **t} for t in tests],
    }
    (tmp_path / "rules_test.yml").write_text(yaml.safe_dump(cases, sort_keys=False))
    checked = subprocess.run(
        [promtool, "test", "rules", str(tmp_path / "rules_test.yml")], capture_output=True, text=True
    )
    assert checked.returncode == 0, checked.stdout + checked.stderr


def test_promtool_accepts_a_copy_of_the_config_alone(tmp_path: Path) -> None:
    # scripts/prod.sh copies only prometheus.yml beside its own targets/api.json: the rules glob then
    # matches nothing, which must not be an error.
    promtool = _binary("promtool")
    shutil.copy(PROMETHEUS_DIR / "prometheus.yml", tmp_path / "prometheus.yml")
    (tmp_path / "targets").mkdir()
    (tmp_path / "targets" / "api.json").write_text(json.dumps([{"targets": ["127.0.0.1:8001"]}]))
    checked = subprocess.run(
        [promtool, "check", "config", str(tmp_path / "prometheus.yml")], capture_output=True, text=True
    )
    assert checked.returncode == 0, checked.stdout + checked.stderr
    assert "does not exist" not in checked.stdout + checked.stderr


def test_compose_targets_file_is_file_sd_json() -> None:
    groups = json.loads((PROMETHEUS_DIR / "targets" / "compose.json").read_text())
    assert isinstance(groups, list) and groups
    for group in groups:
        assert set(group) <= {"targets", "labels"}
        assert group["targets"] and all(re.fullmatch(r"[\w.-]+:\d+", t) for t in group["targets"])
        assert all(isinstance(v, str) for v in group.get("labels", {}).values())


# --- a real Prometheus scraping the real API -----------------------------------------------------------
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
    prometheus = _binary("prometheus")
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
    # A bad day's verdict, as services/train/alerts.py stores it: the API turns it into the gauges.
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
    for title, expr in _expressions(_dashboard()):
        stack.query(_for_prometheus(expr), context=title)  # a PromQL error fails here
    # Queries that have data after one request and a scrape: the panels are not blank from the start.
    versions = stack.query(_for_prometheus(_expr("Model version per replica")))
    assert {(r["metric"]["replica"], r["metric"]["model"], r["metric"]["version"]) for r in versions} >= {
        ("api-test", "rating", stack.published.version)
    }
    assert stack.query(_for_prometheus(_expr("Replicas up")))


def test_prometheus_holds_the_monitoring_gauges_the_dashboard_plots(stack: Stack) -> None:
    live = stack.wait_for(_for_prometheus(_expr("Live RMSE against validation RMSE")))
    assert [(r["metric"]["version"], float(r["value"][1])) for r in live] == [(stack.published.version, 0.97)]
    validation = stack.query("max by (model, version) (model_validation_rmse)")
    assert [float(r["value"][1]) for r in validation] == [0.9]
    drift = stack.query(_for_prometheus(_expr("Drift share")))
    assert {r["metric"]["comparison"]: float(r["value"][1]) for r in drift} == {
        "requests": 0.625,
        "collected": 0.125,
    }


def _expr(title: str) -> str:
    return next(e for t, e in _expressions(_dashboard()) if t == title)


def test_every_scraped_series_name_is_one_the_registry_declares(stack: Stack) -> None:
    # The registry is what the dashboard check trusts: a real scrape must agree with it.
    stack.wait_for(f'up{{job="{JOB}"}} == 1')
    scraped = {s["metric"]["__name__"] for s in stack.query(f'group by (__name__) ({{job="{JOB}"}})')}
    scraped = {n for n in scraped if not n.startswith("scrape_")} - PROMETHEUS_OWN
    assert "movie_intel_http_requests_total" in scraped and "movie_intel_model_info" in scraped
    assert scraped <= exported_names(), sorted(scraped - exported_names())
