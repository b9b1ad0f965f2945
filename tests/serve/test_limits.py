"""The app's own limits: body caps per route (413), the batch text cap (422), retry-stable event ids.

TestClient on a real S3 for most; a real uvicorn (scripts/serve.sh) for bodies streamed without a length.
The same caps through nginx: tests/stack/test_nginx.py.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from fastapi.testclient import TestClient

from scripts.harness import processes
from services.core.registry import Registry
from services.core.settings import Settings
from services.serve.app import create_app
from services.serve.limits import BODY_LIMITS, human
from services.serve.schemas_predict import MAX_BATCH, MAX_BATCH_TEXT_CHARS
from tests.conftest import ROOT
from tests.serve_fixtures import (
    FakeTranslator,
    movie_payload,
    publish_rating,
    publish_recommender,
    recommender_ids,
)

KOREAN = "밤새 병원에서 일하는 간호사와 고집 센 환자가 음모를 밝혀낸다. "  # 3 bytes a character in UTF-8


@pytest.fixture
def client(s3_settings: Settings, registry: Registry) -> Iterator[TestClient]:
    publish_rating(registry)
    publish_recommender(registry)
    app = create_app(s3_settings, translator=FakeTranslator())
    with TestClient(app) as c:
        yield c


def _compact(body: object) -> bytes:
    return json.dumps(body, ensure_ascii=False, separators=(",", ":")).encode()


def _post(client: TestClient, path: str, body: bytes) -> httpx.Response:
    return client.post(path, content=body, headers={"Content-Type": "application/json"})


def _padded(size: int) -> bytes:
    # JSON no route takes (a list, not an object): 422 once read, so anything else means it was not read.
    return b"[]" + b" " * (size - 2)


# ---- body caps -------------------------------------------------------------------------------------------
@pytest.mark.parametrize("path", sorted(BODY_LIMITS))
def test_a_body_over_the_route_cap_is_a_413_naming_the_limit(client: TestClient, path: str) -> None:
    cap = BODY_LIMITS[path]
    headers = {"Content-Type": "application/json"}
    assert client.post(path, content=_padded(cap), headers=headers).status_code == 422
    over = client.post(path, content=_padded(cap + 1), headers=headers)
    assert over.status_code == 413
    assert over.json() == {"detail": f"request body over the {cap}-byte ({human(cap)}) limit of POST {path}"}


def test_a_route_without_a_body_takes_a_small_one_only(client: TestClient) -> None:
    assert client.post("/admin/reload", content=b" " * (16 * 1024 + 1)).status_code == 413


def test_the_largest_realistic_requests_fit_their_caps(client: TestClient) -> None:
    # One movie with the longest overview the schema allows, in a 3-byte script.
    overview = (KOREAN * 1000)[:20_000]
    movie = movie_payload(overview=overview, original_language="ko", title="밤" * 500, tagline="밤" * 1000)
    assert len(_compact(movie)) <= BODY_LIMITS["/predict"]
    r = _post(client, "/predict", _compact(movie))
    assert r.status_code == 200, r.text
    # A full batch at the text cap, in the same script.
    each = MAX_BATCH_TEXT_CHARS // MAX_BATCH
    batch = {
        "movies": [
            movie_payload(overview=KOREAN[:1] * (each - 20), title="밤" * 20) for _ in range(MAX_BATCH)
        ]
    }
    assert len(_compact(batch)) <= BODY_LIMITS["/predict/batch"]
    r = _post(client, "/predict/batch", _compact(batch))
    assert r.status_code == 200 and len(r.json()["predictions"]) == MAX_BATCH
    # 500 feedback events with UUID ids, a /recommend request id and a position.
    movies = recommender_ids()
    feedback = {
        "events": [
            {"event_id": str(uuid.uuid4()), "user_id": f"anon-{uuid.uuid4()}", "tmdb_id": movies[i % len(movies)],
             "kind": "watched", "request_id": uuid.uuid4().hex, "position": 100}
            for i in range(500)
        ]
    }  # fmt: skip
    assert 64 * 1024 < len(_compact(feedback)) <= BODY_LIMITS["/feedback"]
    assert _post(client, "/feedback", _compact(feedback)).status_code == 202
    # /recommend at every limit: 200 liked ids of 10 digits, a 128-character user id of 4-byte characters.
    recommend = {"liked": [2**31 - 1] * 200, "k": 100, "user_id": "\U0001f600" * 128, "pool": "all"}
    assert len(_compact(recommend)) <= BODY_LIMITS["/recommend"]
    assert _post(client, "/recommend", _compact(recommend)).status_code == 200


@pytest.mark.integration
def test_a_real_server_refuses_bodies_over_the_cap_streamed_or_declared(
    s3_settings: Settings, tmp_path: Path
) -> None:
    # Without a Content-Length (chunked) the app counts what arrives. No model is needed to refuse a body.
    port = processes.free_port()
    env = processes.serve_env(s3_settings, tmp_path, port)
    proc = processes.start([str(ROOT / "scripts" / "serve.sh")], env, tmp_path / "serve.log")
    cap = BODY_LIMITS["/recommend"]

    def chunks(size: int) -> Iterator[bytes]:
        body = _padded(size)
        for i in range(0, size, 1000):
            yield body[i : i + 1000]

    try:
        processes.wait_ok(f"http://127.0.0.1:{port}/health", proc, tmp_path / "serve.log", timeout_s=120)
        with httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=30) as http:
            over = http.post(
                "/recommend", content=chunks(cap + 1), headers={"Content-Type": "application/json"}
            )
            under = http.post("/recommend", content=chunks(cap), headers={"Content-Type": "application/json"})
            declared = http.post(
                "/recommend", content=_padded(cap + 1), headers={"Content-Type": "application/json"}
            )
            after = http.get("/health")  # the refused request left the server (and the client) usable
    finally:
        processes.stop(proc)
    assert (
        "content-length" not in over.request.headers
        and over.request.headers["transfer-encoding"] == "chunked"
    )
    assert over.status_code == 413 and "16 KiB" in over.json()["detail"]
    assert under.status_code in (422, 503)  # read in full: refused as JSON, or for want of a model
    assert declared.status_code == 413 and declared.headers["connection"] == "close"
    assert after.status_code == 200


def test_the_openapi_document_states_each_cap(client: TestClient) -> None:
    spec = client.get("/openapi.json").json()
    for path, cap in BODY_LIMITS.items():
        operation = spec["paths"][path]["post"]
        assert operation["x-body-limit"] == cap
        assert f"at most {cap} bytes ({human(cap)})" in operation["description"]
        assert "413" in operation["responses"]
    movies = spec["components"]["schemas"]["BatchIn"]["properties"]["movies"]
    assert f"{MAX_BATCH_TEXT_CHARS:,} characters" in movies["description"]


# ---- the batch text cap ----------------------------------------------------------------------------------
def test_a_batch_over_the_text_cap_is_a_422_naming_the_field(client: TestClient) -> None:
    each = MAX_BATCH_TEXT_CHARS // MAX_BATCH
    movies = [movie_payload(overview="x" * (each - 10), title="y" * 10) for _ in range(MAX_BATCH)]
    assert client.post("/predict/batch", json={"movies": movies}).status_code == 200  # exactly at the cap
    movies[-1]["tagline"] = "z"
    r = client.post("/predict/batch", json={"movies": movies})
    assert r.status_code == 422
    (error,) = r.json()["detail"]
    assert error["loc"] == ["body", "movies"]
    assert f"total {MAX_BATCH_TEXT_CHARS + 1:,} characters; at most {MAX_BATCH_TEXT_CHARS:,}" in error["msg"]


# ---- retry-stable event ids ------------------------------------------------------------------------------
def _events(n: int = 2, **extra: object) -> dict:
    movies = recommender_ids()
    return {"events": [{"user_id": "u-1", "tmdb_id": movies[i], "kind": "like", **extra} for i in range(n)]}


def test_a_request_retried_with_its_request_id_is_stored_once(client: TestClient) -> None:
    first = client.post("/feedback", json=_events(), headers={"X-Request-ID": "req-1"}).json()
    again = client.post("/feedback", json=_events(), headers={"X-Request-ID": "req-1"}).json()
    assert again["event_ids"] == first["event_ids"] and len(set(first["event_ids"])) == 2
    assert (first["accepted"], again["accepted"], again["duplicates"]) == (2, 0, 2)


def test_other_requests_or_other_events_get_other_ids(client: TestClient) -> None:
    one = client.post("/feedback", json=_events(), headers={"X-Request-ID": "req-2"}).json()["event_ids"]
    other_request = client.post("/feedback", json=_events(), headers={"X-Request-ID": "req-3"}).json()
    # A client that reuses a request id for different events: they are new events, not repeats.
    reused = client.post("/feedback", json=_events(kind="watched"), headers={"X-Request-ID": "req-2"}).json()
    no_header = [client.post("/feedback", json=_events()).json()["event_ids"] for _ in range(2)]
    assert other_request["accepted"] == 2 and reused["accepted"] == 2
    ids = [*one, *other_request["event_ids"], *reused["event_ids"], *no_header[0], *no_header[1]]
    assert len(set(ids)) == len(ids) == 10


def test_a_malformed_request_id_is_a_422_naming_the_header(client: TestClient) -> None:
    r = client.post("/feedback", json=_events(), headers={"X-Request-ID": "a b"})
    assert r.status_code == 422
    assert r.json()["detail"][0]["loc"] == ["header", "x-request-id"]


def test_a_recommend_retried_with_its_request_id_names_the_same_impression(client: TestClient) -> None:
    body = {"liked": recommender_ids()[:2], "k": 3}
    first = client.post("/recommend", json=body, headers={"X-Request-ID": "rec-1"}).json()["request_id"]
    again = client.post("/recommend", json=body, headers={"X-Request-ID": "rec-1"}).json()["request_id"]
    other = client.post("/recommend", json={**body, "k": 4}, headers={"X-Request-ID": "rec-1"}).json()
    plain = {client.post("/recommend", json=body).json()["request_id"] for _ in range(2)}
    assert first == again  # nginx's retry on the other replica: one impression id, counted once
    assert other["request_id"] != first and len(plain) == 2
