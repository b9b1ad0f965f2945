"""The real API over HTTP, on the models the real pipeline published: what a REST user sees."""

from __future__ import annotations

import httpx
import pytest

from services.core.registry import Registry
from services.core.storage import ObjectStore
from tests.pipeline_run import PipelineRun

pytestmark = [pytest.mark.integration, pytest.mark.slow]

KOREAN = {
    "overview": "가족을 지키기 위해 모든 것을 건 한 남자의 감동적인 이야기. 사랑과 용기, 그리고 희생.",
    "runtime": 118,
    "genres": ["Drama", "Thriller"],
    "original_language": "ko",
    "release_date": "2013-06-01",
}


def test_predict_serves_the_production_rating_model(
    live_api: str, pipeline_run: PipelineRun, translator_stand_in: tuple[str, list[str]]
) -> None:
    production = Registry(ObjectStore.from_settings(pipeline_run.settings)).production_version("rating")
    r = httpx.post(f"{live_api}/predict", params={"explain": "true"}, json=KOREAN, timeout=30)
    assert r.status_code == 200, r.text
    body = r.json()
    assert 0 <= body["predicted_rating"] <= 10
    assert body["model_version"] == production
    assert body["translated"] is True  # deep-translator's real client, against the local stand-in
    assert any("가족" in text for text in translator_stand_in[1])
    assert body["contributions"]


def test_recommend_serves_the_sequential_model(live_api: str) -> None:
    liked = [862, 603, 949]  # Toy Story, The Matrix, Heat
    r = httpx.post(f"{live_api}/recommend", json={"liked": liked, "k": 10}, timeout=30)
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["strategy"] == "sequential" and not body["cold_start"]
    ids = [item["tmdb_id"] for item in body["items"]]
    assert len(ids) == 10 and not set(ids) & set(liked)


def test_bad_input_is_a_422_naming_the_field(live_api: str) -> None:
    r = httpx.post(f"{live_api}/predict", json={**KOREAN, "runtime": -3}, timeout=30)
    assert r.status_code == 422
    assert "runtime" in r.text
