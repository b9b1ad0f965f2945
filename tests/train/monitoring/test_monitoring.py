"""Monitoring pieces on real parts: the predictions stream, Evidently's drift verdicts, the alert rules."""

from __future__ import annotations

import random
from collections.abc import Iterator

import httpx
import pandas as pd
import pytest
from fastapi.testclient import TestClient
from pydantic import SecretStr

from services.core import events
from services.core.features import feature_names, featurize, fit_encoders
from services.core.registry import Registry
from services.core.settings import Settings
from services.core.storage import ObjectStore
from services.serve.app import create_app
from services.train.monitoring.alerts import AlertRaised, assess, raise_alerts, webhook_message
from services.train.monitoring.drift import PREDICTION, drift_report
from services.train.monitoring.predictions_log import sample_predictions
from services.train.monitoring.stattests import NUM_METHOD
from services.train.rating.data import first_run_rows
from tests.conftest import SNAPSHOT
from tests.fakes.webhook_server import webhook_server
from tests.serve_fixtures import FakeTranslator, movie_payload, publish_rating
from tests.waiting import wait_until

SHIFTED = ("runtime", "main_genre", "n_genres", "is_english")


@pytest.fixture
def client(s3_settings: Settings, registry: Registry) -> Iterator[TestClient]:
    publish_rating(registry)
    app = create_app(s3_settings, translator=FakeTranslator())
    with TestClient(app) as c:
        yield c


def _predictions(c: TestClient, store: ObjectStore) -> list[dict]:
    c.app.state.events.flush()  # type: ignore[attr-defined]
    return [
        r for day in events.days(store, "predictions") for r in events.read_day(store, "predictions", day)
    ]


def test_each_prediction_is_logged_with_its_features_but_not_its_overview(
    client: TestClient, store: ObjectStore
) -> None:
    body = movie_payload(overview="A secret plot nobody should store.")
    answer = client.post("/predict", json=body).json()
    batch = client.post("/predict/batch", json={"movies": [body, body]})
    assert batch.status_code == 200
    logged = _predictions(client, store)
    assert len(logged) == 3
    first = logged[0]
    assert first["prediction"] == answer["predicted_rating"]
    assert first["model_version"] == answer["model_version"]
    assert first["features"]["runtime"] == body["runtime"]
    assert first["input"]["overview_length"] == len(body["overview"])
    assert "secret plot" not in str(logged)  # the text itself stays out unless PREDICTION_LOG_TEXT asks
    # What the drift check reads back from S3: every feature the serving host logged, and the prediction.
    names = list(first["features"])
    sample = sample_predictions(store, events.day_of(first["ts"]), names, 100)
    assert sample.frame.shape == (3, len(names) + 1) and sample.versions == {answer["model_version"]: 3}
    assert sorted(sample.frame[PREDICTION]) == sorted(r["prediction"] for r in logged)
    assert sample.frame["runtime"].tolist() == [body["runtime"]] * 3


def test_the_log_keeps_one_hot_columns_only_where_they_are_one(
    client: TestClient, store: ObjectStore
) -> None:
    body = movie_payload(genres=["Drama"])
    assert client.post("/predict", json=body).status_code == 200
    (logged,) = _predictions(client, store)
    names = client.get("/model").json()["rating"]["features"]
    hot = [n for n in names if n.startswith(("genre=", "country=", "company="))]
    assert {n for n in hot if n in logged["features"]} == {"genre=Drama", "country=US"}  # the movie's own
    assert logged["features"]["genre=Drama"] == logged["features"]["country=US"] == 1.0
    assert set(names) - set(hot) <= set(logged["features"])  # every other column is there, null when missing
    # Drift reads the absent indicators back as 0, not as missing.
    frame = sample_predictions(store, events.day_of(logged["ts"]), names, 10).frame
    assert frame["genre=Drama"].tolist() == frame["country=US"].tolist() == [1.0]
    rest = [n for n in hot if n not in ("genre=Drama", "country=US")]
    assert frame[rest].to_numpy().tolist() == [[0.0] * len(rest)]


def test_prediction_log_rate_zero_logs_nothing(
    s3_settings: Settings, registry: Registry, store: ObjectStore
) -> None:
    publish_rating(registry)
    settings = s3_settings.model_copy(update={"prediction_log_rate": 0.0})
    app = create_app(settings, translator=FakeTranslator())
    with TestClient(app) as c:
        assert c.post("/predict", json=movie_payload()).status_code == 200
        assert _predictions(c, store) == []


@pytest.fixture(scope="module")
def frames() -> tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame]:
    """Reference and current rows from one population: the snapshot's labelled movies, dealt at random."""
    rows = first_run_rows(SNAPSHOT, holdback=0, min_vote_count=10)
    random.Random(0).shuffle(rows)
    reference_rows, current_rows = rows[:-80], rows[-80:]
    encoders = fit_encoders(reference_rows)
    names = feature_names(encoders)
    frame = {}
    for name, part in (("reference", reference_rows), ("current", current_rows)):
        frame[name] = pd.DataFrame(featurize(part, encoders), columns=names)
        frame[name][PREDICTION] = [float(m["vote_average"]) for m in part]
    shifted_rows = [
        {**m, "runtime": 200 + i, "genres": ["Horror"], "original_language": "en"}
        for i, m in enumerate(current_rows)
    ]
    shifted = pd.DataFrame(featurize(shifted_rows, encoders), columns=names)
    shifted[PREDICTION] = frame["current"][PREDICTION]
    return frame["reference"], frame["current"], shifted


def test_unshifted_inputs_are_not_flagged(frames: tuple[pd.DataFrame, ...]) -> None:
    reference, current, _ = frames
    summary, html = drift_report(reference, current)
    assert not set(SHIFTED) & set(summary["drifted"]), summary["drifted"]
    assert summary["drifted"] == [] and summary["share"] == 0, summary["drifted"]
    assert summary["prediction"]["drifted"] is False
    assert "<html" in html.lower()


def test_shifted_inputs_are_flagged_feature_by_feature(frames: tuple[pd.DataFrame, ...]) -> None:
    reference, _, shifted = frames
    summary, _ = drift_report(reference, shifted)
    assert set(SHIFTED) <= set(summary["drifted"]), summary["drifted"]
    assert summary["share"] > Settings(_env_file=None).alert_drift_share
    # Scored by Evidently's normed Wasserstein distance: far past its 0.1 threshold.
    assert (
        summary["features"]["runtime"]["method"] == NUM_METHOD and summary["features"]["runtime"]["score"] > 1
    )
    assert summary["rows_current"] == len(shifted)


def _live(rmse: float, count: int, validation: float = 0.7) -> dict:
    return {"model_version": "v1", "validation_rmse": validation,
            "window": {"rmse": rmse, "count": count, "days_back": 7}}  # fmt: skip


def _drift(share: float, name: str = "requests") -> dict:
    drifted = ["runtime", "main_genre"] if share else []
    return {"comparisons": {name: {"status": "ok", "share": share, "drifted": drifted, "features": {"a": 1}}}}


def test_alert_rules_follow_the_thresholds() -> None:
    s = Settings(_env_file=None, alert_rmse_margin=0.5, alert_live_min_count=20, alert_drift_share=0.3)
    assert not assess(s, "d", _live(1.1, 50), _drift(0.1))["alert"]
    assert [r["reason"] for r in assess(s, "d", _live(1.3, 50), None)["reasons"]] == ["live_rmse"]
    assert not assess(s, "d", _live(3.0, 5), None)["alert"]  # five movies are too few to judge
    assert [r["reason"] for r in assess(s, "d", None, _drift(0.5))["reasons"]] == ["drift_requests"]
    # New releases differ from the catalogue every day: "collected" is reported, not alerted on, by default.
    assert not assess(s, "d", None, _drift(0.9, "collected"))["alert"]
    both = s.model_copy(update={"alert_drift_comparisons": "requests,collected"})
    assert assess(both, "d", None, _drift(0.9, "collected"))["alert"]


def test_a_bad_day_posts_to_the_webhook_and_raises(store: ObjectStore, s3_settings: Settings) -> None:
    store.put_json(events.report_key("drift", "2026-01-02", "summary.json"), _drift(0.5))
    with webhook_server() as (url, received):
        settings = s3_settings.model_copy(update={"alert_webhook_url": SecretStr(url)})
        with pytest.raises(AlertRaised, match="features drifted in requests"):
            raise_alerts(store, settings, "2026-01-02")
    verdict = store.get_json(events.report_key("alerts", "2026-01-02", "alert.json"))
    assert verdict["alert"] and verdict["webhook"] == "sent"
    assert len(received) == 1 and "2026-01-02" in received[0]["body"]["text"]
    assert url not in str(verdict)  # the webhook URL carries its token: never stored


def test_a_good_day_stores_its_verdict_and_posts_nothing(store: ObjectStore, s3_settings: Settings) -> None:
    store.put_json(events.report_key("drift", "2026-01-03", "summary.json"), _drift(0.0))

    def refuse(*args: object, **kwargs: object) -> httpx.Response:
        raise AssertionError("no webhook call on a good day")

    settings = s3_settings.model_copy(update={"alert_webhook_url": SecretStr("http://127.0.0.1:9/hook")})
    verdict = raise_alerts(store, settings, "2026-01-03", post=refuse)
    assert verdict["alert"] is False and verdict["drift_share"] == {"requests": 0.0}


def test_webhook_message_is_slack_text() -> None:
    verdict = {
        "date": "2026-01-02",
        "model_version": "v1",
        "reasons": [{"reason": "x", "message": "too high"}],
    }
    body = webhook_message(verdict)
    assert isinstance(body["text"], str) and "too high" in body["text"] and "2026-01-02" in body["text"]


def _reports(store: ObjectStore, day: str) -> dict:
    verdict = {"date": day, "alert": True, "model_version": "v7", "live_rmse": 1.4, "validation_rmse": 0.7,
               "drift_share": {"requests": 0.5, "collected": 0.25},
               "reasons": [{"reason": "drift_requests", "message": "6 of 12 features drifted"}]}  # fmt: skip
    store.put_json(events.report_key("alerts", day, "alert.json"), verdict)
    store.put_json(events.report_key("rating", day, "live.json"), {"date": day, "model_version": "v7"})
    store.put_json(events.report_key("drift", day, "summary.json"), {"date": day, "comparisons": {}})
    store.put_bytes(events.report_key("drift", day, "requests.html"), b"<html>evidently</html>", "text/html")
    return verdict


def test_monitoring_endpoints_serve_the_reports_and_the_drift_page(
    client: TestClient, store: ObjectStore
) -> None:
    _reports(store, "2026-01-02")
    body = client.get("/model/monitoring", params={"days": 7}).json()
    assert [d["date"] for d in body["live"]] == ["2026-01-02"] and body["alerts"][0]["alert"] is True
    page = client.get("/model/monitoring/drift/2026-01-02")
    assert page.status_code == 200 and page.headers["content-type"].startswith("text/html")
    assert page.text == "<html>evidently</html>"
    missing = client.get("/model/monitoring/drift/2026-01-02", params={"comparison": "collected"})
    assert missing.status_code == 404 and "no collected drift report" in missing.json()["detail"]
    bad = client.get("/model/monitoring/drift/2026-13-45")
    assert bad.status_code == 422 and bad.json()["detail"][0]["loc"] == ["path", "day"]


def test_gauges_show_the_latest_verdict(
    s3_settings: Settings, registry: Registry, store: ObjectStore
) -> None:
    publish_rating(registry)
    _reports(store, "2026-01-02")
    app = create_app(s3_settings, translator=FakeTranslator())
    with TestClient(app) as c:
        # The lifespan's background refresh reads the verdict right after start-up.
        def gauges() -> str | None:
            text = c.get("/metrics").text
            return text if "model_live_rmse{" in text else None

        text = wait_until(gauges, 30, "the verdict's gauges")
    assert 'model_live_rmse{model="rating",version="v7"} 1.4' in text
    assert 'model_validation_rmse{model="rating",version="v7"} 0.7' in text
    assert 'model_drift_share{comparison="requests"} 0.5' in text
    assert 'model_alert{reason="any"} 1.0' in text and 'model_alert{reason="drift_requests"} 1.0' in text
