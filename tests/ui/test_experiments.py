"""The Model page's experiments section, run in process with AppTest against the stand-in API.

The stand-in is the real MovieApi client on an httpx.MockTransport (tests/fakes/ui_stub_api.py), so the
page reads GET /model/experiments exactly as it would from the serving API.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pandas as pd
import pytest
import streamlit as st
from streamlit.dataframe_util import convert_arrow_bytes_to_pandas_df
from streamlit.testing.v1 import AppTest

from services.ui import data
from services.ui.api.client import MovieApi
from tests.fakes.ui_stub_api import StubApi
from tests.fakes.ui_stub_data import RECOMMENDER_VERSION
from tests.fakes.ui_stub_experiments import (
    CANDIDATE_RECOMMENDER,
    POPULARITY_RECOMMENDER,
    RATING_SHADOW,
    RUNNING_DAYS,
    SHADOW_VERSION,
)

MODEL_PAGE = Path(__file__).resolve().parents[2] / "services" / "ui" / "views" / "model.py"
INTERVAL_TITLE = "Difference of hit rate, candidate − production, with its 95% interval"


@pytest.fixture(autouse=True)
def _fresh_caches() -> None:
    st.cache_data.clear()


def open_model_page(client: MovieApi) -> AppTest:
    at = AppTest.from_file(str(MODEL_PAGE), default_timeout=30)
    at.session_state[data.API_STATE_KEY] = client
    at.run()
    assert not at.exception, at.exception
    return at


def texts(elements: Any) -> list[str]:
    return [e.value for e in elements]


def interval_chart(at: AppTest) -> tuple[dict[str, Any], list[pd.DataFrame]]:
    """The experiment's chart: its Vega-Lite spec and every layer's data."""
    for chart in at.get("vega_lite_chart"):
        spec = json.loads(chart.proto.spec)
        if spec.get("title") == INTERVAL_TITLE:
            frames = [convert_arrow_bytes_to_pandas_df(d.data.data) for d in chart.proto.datasets]
            return spec, frames
    raise AssertionError("no experiment chart on the page")


def section(at: AppTest) -> tuple[int, int]:
    """Where the experiments header sits among the page's headers."""
    headers = texts(at.header)
    return headers.index("🧪 Experiments"), len(headers)


def test_running_experiment_shows_arms_days_interval_and_verdict() -> None:
    stub = StubApi()
    at = open_model_page(stub.client())
    assert ("GET", "/model/experiments") in [r[:2] for r in stub.requests]
    assert "🧪 Experiments" in texts(at.header)
    assert f"Running: recommender `{CANDIDATE_RECOMMENDER}`" in texts(at.subheader)
    metrics = {m.label: m.value for m in at.metric}
    assert metrics["Days running"] == "4 of 7"
    assert metrics["Users per arm"] == "703 / 182"
    assert metrics["Difference of hit rate"] == "+2.3 pts"
    assert metrics["Verdict"] == "Continue"
    [verdict] = [i for i in texts(at.info) if "Verdict on" in i]
    assert "Verdict on 2025-03-08: continue." in verdict
    assert (
        "182 candidate and 703 production users, 200 needed per arm" in verdict
        and "95% interval [−4.5 pts, +9.1 pts]" in verdict
    )

    arms = at.dataframe[0].value
    assert list(arms["arm"]) == ["production", "candidate"]
    assert list(arms["version"]) == [RECOMMENDER_VERSION, CANDIDATE_RECOMMENDER]
    assert list(arms["share of users"]) == ["80%", "20%"]
    assert list(arms["users"]) == [703, 182]
    assert list(arms["hit rate"]) == ["24.3%", "26.6%"]

    spec, frames = interval_chart(at)
    days = next(f for f in frames if "estimate" in f.columns)
    assert list(days["day"]) == [1, 2, 3, 4]
    widths = list(days["high"] - days["low"])
    assert widths == sorted(widths, reverse=True) and widths[-1] < widths[0] / 2  # it narrows day by day
    first = RUNNING_DAYS[0]["difference"]["hit_rate"]
    assert days["low"][0] == pytest.approx(first["low"] * 100) and days["high"][0] == pytest.approx(
        first["high"] * 100
    )
    guides = sorted(y for f in frames if list(f.columns[:1]) == ["y"] for y in f["y"])
    assert guides == pytest.approx([-1.0, 0.0])  # the −δ line and zero, in points
    x_domain = next(
        layer["encoding"]["x"]["scale"]["domain"] for layer in spec["layer"] if "x" in layer["encoding"]
    )
    assert x_domain == [1, 2, 3, 4, 5, 6, 7]  # the axis runs to max_days: the days left are visible
    captions = " ".join(texts(at.caption))
    assert "at least 200 users in each arm" in captions and "−1.0 pts" in captions


def test_recent_experiments_are_listed_with_outcome_reason_and_dates() -> None:
    at = open_model_page(StubApi().client())
    assert "Recent experiments" in texts(at.subheader)
    recent = at.dataframe[1].value
    assert list(recent["candidate"]) == [RECOMMENDER_VERSION, POPULARITY_RECOMMENDER]  # newest first
    assert list(recent["outcome"]) == ["✅ promoted", "↩️ rolled back"]
    assert recent["reason"][1].startswith("candidate worse: hit rate -0.0940")
    assert list(recent["ended"]) == ["2025-03-05 02:10", "2025-02-28 02:05"]
    assert list(recent["started"]) == ["2025-03-02 12:30", "2025-02-27 09:00"]
    # The deciding day's difference of hit rate with its 95% interval, and the users it took.
    assert list(recent["difference (95%)"]) == ["+5.8 pts [+1.8, +9.8]", "−9.4 pts [−13.1, −5.7]"]
    assert list(recent["users"]) == ["214 / 221", "229 / 236"]
    assert list(recent.columns)[-1] == "reason"


def test_no_experiment_ever_says_what_will_appear_and_how_to_start_one() -> None:
    stub = StubApi(experiments={"running": [], "recent": [], "updated_at": "2025-03-08T02:15:00Z"})
    at = open_model_page(stub.client())
    [info] = [i for i in texts(at.info) if "experiment" in i]
    assert "No online experiment has run yet" in info
    assert "./scripts/registry.sh canary recommender <version>" in info
    assert not [m for m in (*texts(at.error), *texts(at.warning)) if "experiment" in m]
    with pytest.raises(AssertionError):
        interval_chart(at)


def test_only_ended_experiments_show_the_table_and_say_none_runs() -> None:
    stub = StubApi()
    stub.experiments = {**stub.experiments, "running": []}
    at = open_model_page(stub.client())
    assert any("No experiment is running now" in c for c in texts(at.caption))
    assert "Recent experiments" in texts(at.subheader)
    assert "Days running" not in [m.label for m in at.metric]


def test_an_api_without_the_route_says_so_and_the_page_stands() -> None:
    at = open_model_page(StubApi(experiments=None).client())
    [warning] = [w for w in texts(at.warning) if "experiments" in w]
    assert "does not publish experiments" in warning and "GET /model/experiments" in warning
    index, count = section(at)
    assert index < count - 1  # the sections after it are still drawn
    assert "Live RMSE (latest day)" in [m.label for m in at.metric]


@pytest.mark.parametrize(
    ("status", "body", "expected"),
    [
        (503, None, "cannot read registry/recommender/candidate.json"),
        (200, {"running": [{"days": []}]}, "not in the expected shape"),
    ],
)
def test_a_failing_or_garbled_answer_is_a_clear_message(status: int, body: Any, expected: str) -> None:
    stub = StubApi(experiments_status=status)
    if body is not None:
        stub.experiments = body
    at = open_model_page(stub.client())
    [warning] = [w for w in texts(at.warning) if "experiments cannot be read" in w]
    assert expected in warning


def test_a_candidate_with_no_report_yet_shows_its_arms_and_when_it_will_be_judged() -> None:
    stub = StubApi()
    stub.experiments["running"][0]["days"] = []
    at = open_model_page(stub.client())
    assert any("No verdict yet" in i and "20% of users" in i for i in texts(at.info))
    assert list(at.dataframe[0].value["version"]) == [RECOMMENDER_VERSION, CANDIDATE_RECOMMENDER]


def test_a_decided_day_shows_the_verdict_in_its_colour() -> None:
    stub = StubApi()
    last = stub.experiments["running"][0]["days"][-1]
    last |= {"verdict": "rollback", "reason": "the upper bound of the hit rate difference is below 0"}
    at = open_model_page(stub.client())
    assert any("Verdict on 2025-03-08: roll back." in e for e in texts(at.error))
    assert {m.label: m.value for m in at.metric}["Verdict"] == "Roll back"


def test_a_rating_shadow_shows_both_errors_by_day_and_how_to_decide_it() -> None:
    stub = StubApi()
    stub.experiments["running"].append(RATING_SHADOW)
    at = open_model_page(stub.client())
    assert f"Running: rating `{SHADOW_VERSION}`" in texts(at.subheader)
    [info] = [i for i in texts(at.info) if "In shadow" in i]
    assert "never returned" in info and "./scripts/registry.sh promote rating" in info
    metrics = {m.label: m.value for m in at.metric}
    assert metrics["Days in shadow"] == "2" and metrics["Movies scored"] == "92"
    assert metrics["RMSE so far (production / shadow)"] == "1.240 / 1.140"
    days = at.dataframe[1].value  # after the canary's arms
    assert list(days["new labelled movies"]) == [74, 18]
    assert list(days["difference (95%)"]) == ["−0.130 [−0.220, −0.060]", "–"]  # no interval under 20 movies


def test_a_replica_that_does_not_serve_the_candidate_says_so() -> None:
    stub = StubApi()
    stub.experiments["running"][0]["served"] = False
    at = open_model_page(stub.client())
    assert any("serves production only" in w and "POST /admin/reload" in w for w in texts(at.warning))
    assert {m.label: m.value for m in at.metric}["Days running"] == "4 of 7"  # the figures still show
