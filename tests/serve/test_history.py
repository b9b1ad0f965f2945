"""GET /model/history: the registry's versions as the UI's Model page charts them, on a real S3."""

from __future__ import annotations

import socket
from collections.abc import Iterator

import httpx
import pytest
from fastapi.testclient import TestClient

from services.core.registry import Manifest, Registry
from services.core.settings import Settings
from services.core.storage import ObjectStore
from services.serve.app import create_app
from services.ui.api.client import MovieApi
from tests.serve_fixtures import FakeTranslator, publish_recommender, rating_files


class FakeClock:
    """A monotonic clock the test moves forward by hand."""

    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def _publish(registry: Registry, version: str, rmse: float, *, promote: bool) -> Manifest:
    # Explicit version ids and times: versions published within one second must still sort as published.
    files, meta = rating_files()
    meta = {**meta, "version": version, "created_at": f"2026-11-{version[6:8]}T03:00:00+00:00"}
    meta["metrics"] = {"rmse": rmse, "mae": rmse * 0.8}
    return registry.publish("rating", files, meta, promote=promote, reason="test")


def _dead_endpoint() -> str:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return f"http://127.0.0.1:{s.getsockname()[1]}"  # closed again: connection refused


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def client(s3_settings: Settings, registry: Registry, clock: FakeClock) -> Iterator[TestClient]:
    """A server over three rating versions (the second in production) and one recommender."""
    _publish(registry, "20261120T030000Z-aaaaaa", 0.95, promote=True)
    _publish(registry, "20261121T030000Z-bbbbbb", 0.91, promote=True)
    _publish(registry, "20261122T030000Z-cccccc", 0.93, promote=False)  # trained, not promoted: worse
    publish_recommender(registry)
    app = create_app(s3_settings, translator=FakeTranslator())
    with TestClient(app) as c:
        app.state.history.clock = clock
        yield c


def test_history_lists_every_version_oldest_first_with_production_flag(client, registry) -> None:
    r = client.get("/model/history")
    assert r.status_code == 200, r.text
    rating = r.json()["rating"]
    assert [v["version"] for v in rating] == [
        "20261120T030000Z-aaaaaa", "20261121T030000Z-bbbbbb", "20261122T030000Z-cccccc",
    ]  # fmt: skip
    assert [v["production"] for v in rating] == [False, True, False]
    assert [v["metrics"]["rmse"] for v in rating] == [0.95, 0.91, 0.93]
    assert rating[0]["created_at"] == "2026-11-20T03:00:00+00:00"
    assert {v["algorithm"] for v in rating} == {"xgboost"}
    recommender = r.json()["recommender"]
    assert len(recommender) == 1 and recommender[0]["production"] is True
    assert recommender[0]["algorithm"] == "item_knn"
    assert recommender[0]["version"] == registry.production_version("recommender")


def test_an_incomplete_version_is_not_listed(client, store) -> None:
    # A publish that crashed before its manifest: files only, invisible to readers.
    store.put_bytes("registry/rating/versions/20261123T030000Z-dddddd/model.json", b"{}")
    versions = [v["version"] for v in client.get("/model/history").json()["rating"]]
    assert "20261123T030000Z-dddddd" not in versions and len(versions) == 3


def test_new_versions_and_promotions_show_up_after_the_cache_expires(client, registry, clock) -> None:
    before = client.get("/model/history").json()
    _publish(registry, "20261124T030000Z-eeeeee", 0.85, promote=True)
    clock.now += 10
    assert client.get("/model/history").json() == before  # within 30 s: S3 is not read again
    clock.now += 25
    rating = client.get("/model/history").json()["rating"]
    assert rating[-1]["version"] == "20261124T030000Z-eeeeee"
    assert [v["production"] for v in rating] == [False, False, False, True]
    registry.rollback("rating")
    clock.now += 31
    rating = client.get("/model/history").json()["rating"]
    assert [v["production"] for v in rating] == [False, True, False, False]


def test_s3_unreachable_is_a_503_saying_so_then_recovers(client, s3_settings, clock) -> None:
    history = client.app.state.history
    live_store = history.registry.store
    history.registry.store = ObjectStore.from_settings(
        s3_settings.model_copy(update={"s3_endpoint_url": _dead_endpoint(), "s3_max_attempts": 1})
    )
    r = client.get("/model/history")
    assert r.status_code == 503
    assert "S3" in r.json()["detail"] and "try again" in r.json()["detail"]
    assert r.headers["retry-after"] == "5"
    assert client.post("/recommend", json={"liked": []}).status_code == 200  # serving is unaffected
    history.registry.store = live_store
    clock.now += 6
    r = client.get("/model/history")
    assert r.status_code == 200 and len(r.json()["rating"]) == 3


def test_server_started_without_s3_answers_503_not_500(s3_settings) -> None:
    down = s3_settings.model_copy(update={"s3_endpoint_url": _dead_endpoint()})
    with TestClient(create_app(down, translator=FakeTranslator())) as c:
        r = c.get("/model/history")
    assert r.status_code == 503
    assert "registry" in r.json()["detail"]


def test_empty_registry_has_empty_histories(s3_settings) -> None:
    with TestClient(create_app(s3_settings, translator=FakeTranslator())) as c:
        r = c.get("/model/history")
    assert r.status_code == 200
    assert r.json() == {"rating": [], "recommender": []}


class _Through(httpx.BaseTransport):
    """Sends the UI client's requests to a TestClient (the app in process)."""

    def __init__(self, client: TestClient) -> None:
        self.client = client

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        r = self.client.request(request.method, request.url.path, headers=dict(request.headers))
        return httpx.Response(r.status_code, headers=r.headers, content=r.content)


def test_the_ui_client_reads_the_history(client) -> None:
    api = MovieApi("http://api", transport=_Through(client))
    points = api.history()
    assert isinstance(points, list)
    rating = [p for p in points if p.model == "rating"]
    assert [p.metrics["rmse"] for p in rating] == [0.95, 0.91, 0.93]
    assert [p.production for p in rating] == [False, True, False]
    assert rating[0].created_at == "2026-11-20T03:00:00+00:00"
    assert any(p.model == "recommender" and p.production for p in points)
