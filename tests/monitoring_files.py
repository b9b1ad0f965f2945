"""What the monitoring tests share: the deploy/ files, and reading metric names out of PromQL."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

from services.serve.metrics import ServeMetrics
from tests import prerequisites

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


def binary(name: str) -> str:
    """Debian's prometheus or promtool (tests/prerequisites.py: a skip, or a failure under CI)."""
    return prerequisites.program(name)


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


def load_dashboard() -> dict[str, Any]:
    return json.loads(DASHBOARD.read_text())


def dashboard_panels(dashboard: dict[str, Any]) -> list[dict[str, Any]]:
    """Every panel, those nested in collapsed rows included."""
    out = []
    for panel in dashboard["panels"]:
        out.append(panel)
        out.extend(panel.get("panels", []))
    return out


def dashboard_expressions(dashboard: dict[str, Any]) -> list[tuple[str, str]]:
    return [
        (p["title"], t["expr"])
        for p in dashboard_panels(dashboard)
        if p["type"] != "row"
        for t in p["targets"]
    ]


def for_prometheus(expr: str) -> str:
    for macro, value in GRAFANA_MACROS.items():
        expr = expr.replace(macro, value)
    assert "$" not in expr, f"an unknown Grafana variable in {expr}"
    return expr
