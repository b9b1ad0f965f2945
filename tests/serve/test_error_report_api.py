"""GET /model/errors on real S3: the latest error report, a given day's, and plain 404s when there is none."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from fastapi.testclient import TestClient

from services.core.registry import Registry
from services.core.settings import Settings
from services.core.storage import ObjectStore
from services.serve.app import create_app
from services.train.rating.error_report import errors_key
from tests.serve_fixtures import FakeTranslator, publish_rating


@pytest.fixture
def client(s3_settings: Settings, registry: Registry) -> Iterator[TestClient]:
    publish_rating(registry)
    app = create_app(s3_settings, translator=FakeTranslator())
    with TestClient(app) as c:
        yield c


def _report(day: str, bias: float) -> dict:
    band = {"band": "10–50", "count": 40, "production": {"count": 40, "bias": bias, "rmse": 0.9, "mae": 0.7}}
    return {"date": day, "status": "ok", "split": "test", "rows": 40,
            "dimensions": {"vote_count": {"title": "Vote count", "bands": [band]}}}  # fmt: skip


def test_errors_route_serves_the_latest_report_or_a_given_day(client: TestClient, store: ObjectStore) -> None:
    store.put_json(errors_key("2026-01-02"), _report("2026-01-02", 0.49))
    store.put_json(errors_key("2026-01-03"), _report("2026-01-03", 0.31))
    store.put_json("reports/rating/dt=2026-01-04/live.json", {"date": "2026-01-04"})  # a day without one
    latest = client.get("/model/errors").json()
    assert latest["date"] == "2026-01-03"
    assert latest["dimensions"]["vote_count"]["bands"][0]["production"]["bias"] == 0.31
    older = client.get("/model/errors", params={"date": "2026-01-02"}).json()
    assert older["dimensions"]["vote_count"]["bands"][0]["production"]["bias"] == 0.49
    missing = client.get("/model/errors", params={"date": "2026-01-04"})
    assert missing.status_code == 404 and "no error report for 2026-01-04" in missing.json()["detail"]
    assert client.get("/model/errors", params={"date": "2026-13-45"}).status_code == 422


def test_errors_route_says_what_writes_the_report_when_there_is_none(client: TestClient) -> None:
    missing = client.get("/model/errors")
    assert missing.status_code == 404 and "select_and_publish writes one" in missing.json()["detail"]
