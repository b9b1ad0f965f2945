"""The Grafana and Prometheus files, checked without a server: dashboard structure, PromQL names, promtool.

Grafana cannot run here, so its provisioning files and dashboard are checked for structure, and every
metric a dashboard query names must be one the API exports. promtool checks the config and the rules.
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from pathlib import Path
from typing import Any

import yaml

from tests.monitoring_files import (
    DATASOURCE_UID,
    GRAFANA_DIR,
    JOB,
    PROMETHEUS_DIR,
    PROMETHEUS_OWN,
    binary,
    dashboard_expressions,
    dashboard_panels,
    exported_names,
    for_prometheus,
    load_dashboard,
    metric_names,
)


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


def test_dashboard_structure_is_what_grafana_loads() -> None:
    dash = load_dashboard()
    assert dash["uid"] and dash["title"] and isinstance(dash["schemaVersion"], int)
    assert dash["templating"]["list"] == []  # nothing the provisioned dashboard would ask for
    panels = dashboard_panels(dash)
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
    joined = "\n".join(f"{title}: {expr}" for title, expr in dashboard_expressions(load_dashboard()))
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
    for title, expr in dashboard_expressions(load_dashboard()):
        names = metric_names(for_prometheus(expr))
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
    promtool = binary("promtool")
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
    promtool = binary("promtool")
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
    promtool = binary("promtool")
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
