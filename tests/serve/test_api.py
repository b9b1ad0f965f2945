"""The serving API through TestClient, on models published to a real S3 (SeaweedFS)."""

from __future__ import annotations

import json
import logging
import re
import secrets
import socket
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import date
from pathlib import Path

import jsonschema
import numpy as np
import pytest
from fastapi.testclient import TestClient
from pydantic import BaseModel, SecretStr, ValidationError

from services.core.embedded_s3 import EmbeddedS3
from services.core.features import Encoders, featurize_one
from services.core.movie import normalize_movie
from services.core.rating_model import load_rating_model
from services.core.recommender_runtime import SequentialRecommender, load_recommender
from services.core.registry import Manifest, Registry
from services.core.settings import Settings
from services.core.storage import ObjectStore
from services.serve.app import create_app
from services.serve.event_schemas import FeedbackEventIn
from services.serve.rating_service import RatingService
from services.serve.schemas import RecommendIn
from services.serve.schemas_predict import RELEASE_DATE_PATTERN, MovieIn
from tests.serve_fixtures import (
    FakeTranslator,
    movie_payload,
    publish_rating,
    publish_recommender,
    publish_runtime_recommender,
    recommender_ids,
)

TOKEN = "test-admin-token-" + "x" * 16
FRENCH = "Une histoire merveilleuse d'amour et d'amitié entre deux enfants qui grandissent dans un village."
ENGLISH = "A wonderful, joyful and beautiful story of love and friendship between two children."


def _settings(s3_settings: Settings, **changes: object) -> Settings:
    return s3_settings.model_copy(update={"admin_token": SecretStr(TOKEN), **changes})


def _client(settings: Settings, translator: FakeTranslator | None = None, **kwargs: object) -> TestClient:
    app = create_app(settings, translator=translator or FakeTranslator(), **kwargs)
    return TestClient(app)


@pytest.fixture
def published(registry: Registry) -> Manifest:
    """A promoted rating model version."""
    return publish_rating(registry)


@pytest.fixture
def translator() -> FakeTranslator:
    return FakeTranslator({FRENCH: ENGLISH})


@pytest.fixture
def client(s3_settings: Settings, published: Manifest, translator: FakeTranslator) -> Iterator[TestClient]:
    """A server of its own, for tests that change state or count things."""
    with _client(_settings(s3_settings), translator) as c:
        yield c


@dataclass(frozen=True)
class Shared:
    """A bucket with one promoted rating model, shared by this module's read-only tests."""

    settings: Settings
    registry: Registry
    manifest: Manifest


@pytest.fixture(scope="module")
def shared(s3_server: EmbeddedS3, tmp_path_factory: pytest.TempPathFactory) -> Shared:
    settings = Settings(
        _env_file=None, s3_endpoint_url=s3_server.endpoint, s3_bucket="t-" + secrets.token_hex(6),
        aws_access_key_id=s3_server.access_key, aws_secret_access_key=s3_server.secret_key,
        model_cache_dir=tmp_path_factory.mktemp("model-cache"), admin_token=TOKEN,
        spool_dir=tmp_path_factory.mktemp("spool"),
    )  # fmt: skip
    store = ObjectStore.from_settings(settings)
    store.ensure_bucket()
    registry = Registry(store)
    return Shared(settings, registry, publish_rating(registry))


@pytest.fixture(scope="module")
def ro(shared: Shared) -> Iterator[TestClient]:
    """One server for the read-only tests: publishing and loading once saves most of the run time."""
    with _client(shared.settings, FakeTranslator()) as c:
        yield c


def _dead_endpoint() -> str:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return f"http://127.0.0.1:{s.getsockname()[1]}"  # closed again: connection refused


def _offline_prediction(registry: Registry, manifest: Manifest, body: dict) -> float:
    files = {name: registry.read_file(manifest, name) for name in manifest.files}
    enc = Encoders.from_json(json.loads(files["encoders.json"]))
    model = load_rating_model("xgboost", files)
    return float(model.predict(featurize_one(normalize_movie(body), enc)[None, :])[0])


# ---- /predict ------------------------------------------------------------------------------------
def test_predict_returns_the_published_models_rating(ro, shared) -> None:
    body = movie_payload()
    r = ro.post("/predict", json=body)
    assert r.status_code == 200, r.text
    out = r.json()
    assert 0 <= out["predicted_rating"] <= 10
    assert out["model_version"] == shared.manifest.version
    # Serving featurizes exactly as training does: same number as the model offline.
    assert out["predicted_rating"] == pytest.approx(
        _offline_prediction(shared.registry, shared.manifest, body), abs=1e-3
    )
    assert out["translated"] is False
    assert out["notes"] == []
    assert "contributions" not in out


def test_predict_answers_change_with_the_movie(ro) -> None:
    short = ro.post("/predict", json=movie_payload(runtime=70, genres=["Horror"])).json()
    long = ro.post("/predict", json=movie_payload(runtime=190, genres=["History", "War"])).json()
    assert short["predicted_rating"] != long["predicted_rating"]


def test_sentiment_label_follows_the_overview(ro) -> None:
    happy = ro.post("/predict", json=movie_payload(overview=ENGLISH)).json()["overview_sentiment"]
    grim = "A brutal, miserable and horrible war destroys a sad, cruel town where everyone is terrible."
    sad = ro.post("/predict", json=movie_payload(overview=grim)).json()["overview_sentiment"]
    assert happy["label"] == "positive" and happy["polarity"] > 0.1
    assert sad["label"] == "negative" and sad["polarity"] < -0.1
    assert 0 <= sad["subjectivity"] <= 1


def test_unknown_genre_and_rare_language_are_noted(ro) -> None:
    body = movie_payload(genres=["Drama", "Space Western Opera"], original_language="xh")
    out = ro.post("/predict", json=body).json()
    assert any("Space Western Opera" in n and "unknown" in n for n in out["notes"])
    assert any("'xh'" in n for n in out["notes"])
    assert not any("'Drama'" in n for n in out["notes"])


def test_explain_gives_contributions_that_add_up_to_the_rating(ro, shared) -> None:
    out = ro.post("/predict?explain=true", json=movie_payload()).json()
    contributions = out["contributions"]
    assert set(contributions) == {*shared.manifest.features, "bias"}
    assert sum(contributions.values()) == pytest.approx(out["predicted_rating"], abs=1e-3)
    assert contributions["runtime"] != 0


def test_explain_reads_like_any_boolean_query_flag(ro) -> None:
    assert "contributions" in ro.post("/predict?explain=1", json=movie_payload()).json()
    assert "contributions" not in ro.post("/predict?explain=false", json=movie_payload()).json()
    bad = ro.post("/predict?explain=maybe", json=movie_payload())
    assert bad.status_code == 422
    assert [(e["loc"], e["type"]) for e in bad.json()["detail"]] == [(["query", "explain"], "bool_parsing")]
    documented = ro.get("/openapi.json").json()["paths"]["/predict"]["post"]["parameters"]
    assert [(p["name"], p["in"], p["schema"]["type"]) for p in documented] == [
        ("explain", "query", "boolean")
    ]


def test_non_english_overview_is_translated_before_featurizing(client, translator) -> None:
    out = client.post("/predict", json=movie_payload(overview=FRENCH, original_language="fr")).json()
    assert translator.calls == [FRENCH]
    assert out["translated"] is True
    # The sentiment is the English text's (TextBlob reads English only).
    assert out["overview_sentiment"]["label"] == "positive"
    english = client.post("/predict", json=movie_payload(overview=ENGLISH, original_language="fr")).json()
    assert english["predicted_rating"] == out["predicted_rating"]
    assert translator.calls == [FRENCH]  # an English overview of a French film is not sent


def test_translation_failure_falls_back_to_the_original_text(s3_settings, published) -> None:
    with _client(_settings(s3_settings), FakeTranslator(fail=True)) as c:
        r = c.post("/predict", json=movie_payload(overview=FRENCH, original_language="fr"))
    assert r.status_code == 200
    assert r.json()["translated"] is False
    assert any("translation failed" in n for n in r.json()["notes"])


def test_slow_translation_is_cut_off_at_the_deadline(s3_settings, published) -> None:
    settings = _settings(s3_settings, translate_timeout_s=0.3)
    with _client(settings, FakeTranslator({FRENCH: ENGLISH}, delay_s=3)) as c:
        r = c.post("/predict", json=movie_payload(overview=FRENCH, original_language="fr"))
        assert r.elapsed.total_seconds() < 2
    assert r.status_code == 200
    assert r.json()["translated"] is False
    assert any("timed out" in n for n in r.json()["notes"])


def test_get_predict_with_raw_values_matches_post(ro) -> None:
    overview = movie_payload()["overview"]
    params = {"runtime": 104, "genre": "Drama,Thriller", "language": "en", "overview": overview}
    got = ro.get("/predict", params=params)
    assert got.status_code == 200, got.text
    posted = ro.post(
        "/predict", json={"runtime": 104, "genres": ["Drama", "Thriller"], "original_language": "en",
                          "overview": overview},
    )  # fmt: skip
    assert got.json()["predicted_rating"] == posted.json()["predicted_rating"]
    repeated = ro.get("/predict", params={**params, "genre": ["Drama", "Thriller"]})
    assert repeated.json()["predicted_rating"] == got.json()["predicted_rating"]


def test_batch_returns_predictions_in_request_order(ro) -> None:
    movies = [
        movie_payload(runtime=r, genres=[g]) for r, g in ((80, "Horror"), (150, "History"), (95, "Comedy"))
    ]
    singles = [ro.post("/predict", json=m).json()["predicted_rating"] for m in movies]
    r = ro.post("/predict/batch", json={"movies": movies})
    assert r.status_code == 200
    assert [p["predicted_rating"] for p in r.json()["predictions"]] == singles


def test_batch_of_1000_is_served(ro) -> None:
    movies = [movie_payload(runtime=60 + i % 120) for i in range(1000)]
    r = ro.post("/predict/batch", json={"movies": movies})
    assert r.status_code == 200
    assert len(r.json()["predictions"]) == 1000


# ---- bad input: 422 naming the field and the reason -------------------------------------------------
@pytest.mark.parametrize(
    ("change", "field", "reason"),
    [
        ({"runtime": -5}, "runtime", "greater than 0"),
        ({"runtime": 5000}, "runtime", "less than or equal to 1000"),
        ({"runtime": "long"}, "runtime", "valid number"),
        ({"overview": ""}, "overview", "at least 1 character"),
        ({"overview": "   "}, "overview", "blank"),
        ({"overview": "x" * 20_001}, "overview", "at most 20000 characters"),
        ({"original_language": "EN"}, "original_language", "pattern"),
        ({"original_language": "eng"}, "original_language", "pattern"),
        ({"genres": "Drama"}, "genres", "valid list"),
        ({"release_date": "2015-13-45"}, "release_date", "not a calendar date"),
        ({"budget": -1}, "budget", "greater than or equal to 0"),
    ],
)
def test_bad_movie_is_a_422_naming_the_field(ro, change, field, reason) -> None:
    r = ro.post("/predict", json=movie_payload(**change))
    assert r.status_code == 422
    errors = r.json()["detail"]
    assert any(e["loc"][-1] == field and reason in e["msg"] for e in errors), errors


def test_missing_required_field_is_named(ro) -> None:
    body = movie_payload()
    del body["runtime"]
    r = ro.post("/predict", json=body)
    assert r.status_code == 422
    assert r.json()["detail"][0]["loc"] == ["body", "runtime"]
    assert r.json()["detail"][0]["msg"] == "Field required"


def test_batch_over_1000_or_empty_is_rejected(ro) -> None:
    r = ro.post("/predict/batch", json={"movies": [movie_payload()] * 1001})
    assert r.status_code == 422
    assert r.json()["detail"][0]["loc"] == ["body", "movies"]
    assert "at most 1000" in r.json()["detail"][0]["msg"]
    assert ro.post("/predict/batch", json={"movies": []}).status_code == 422


def test_bad_movie_inside_a_batch_names_its_position(ro) -> None:
    r = ro.post("/predict/batch", json={"movies": [movie_payload(), movie_payload(runtime=0)]})
    assert r.status_code == 422
    assert r.json()["detail"][0]["loc"] == ["body", "movies", 1, "runtime"]


def test_bad_get_predict_names_the_query_parameter(ro) -> None:
    r = ro.get("/predict", params={"runtime": 90, "genre": "Drama", "language": "french", "overview": "x"})
    assert r.status_code == 422
    assert r.json()["detail"][0]["loc"] == ["query", "language"]


def test_validation_errors_do_not_echo_the_input(ro) -> None:
    r = ro.post("/predict", json=movie_payload(overview="y" * 20_001))
    assert r.status_code == 422
    assert "yyyy" not in r.text


# ---- the OpenAPI document says what is enforced ----------------------------------------------------
def test_the_release_date_pattern_is_exactly_the_calendar_from_1870_to_2100() -> None:
    # Every YYYY-MM-DD with months 00-13 and days 00-32 around the range: the published regex matches
    # exactly the real days of the accepted years (leap days included, 1900 and 2100 not leap years).
    for year in range(1860, 2111):
        for month in range(14):
            for day in range(33):
                text = f"{year:04d}-{month:02d}-{day:02d}"
                try:
                    real = 1870 <= date.fromisoformat(text).year <= 2100
                except ValueError:
                    real = False
                assert bool(re.fullmatch(RELEASE_DATE_PATTERN, text)) is real, text


@pytest.mark.parametrize(
    ("release_date", "accepted"),
    [
        ("2000-02-29", True), ("2100-12-31", True), ("1870-01-01", True), ("1937-06-52", False),
        ("1900-02-29", False), ("1869-12-31", False), ("20240315", False), ("2024-W11-5", False),
        ("2024-03-15\n", False),
    ],
)  # fmt: skip
def test_release_date_must_be_a_calendar_date(ro, release_date: str, accepted: bool) -> None:
    r = ro.post("/predict", json=movie_payload(release_date=release_date))
    assert r.status_code == (200 if accepted else 422), r.text
    if not accepted:
        (error,) = r.json()["detail"]
        assert error["loc"] == ["body", "release_date"] and "not a calendar date" in error["msg"]


MOVIE_CASES = [
    {"budget": False}, {"runtime": "104"}, {"runtime": True}, {"genres": ["\x1c"]}, {"genres": [" "]},
    {"genres": [" Drama "]}, {"genres": ["x" * 201]}, {"overview": "\u3000\t"}, {"overview": "\ufeff"},
    {"release_date": "1937-06-52"}, {"release_date": "2000-02-29"}, {"release_date": None},
]  # fmt: skip
FEEDBACK_CASES = [
    {"kind": "like"}, {"kind": "like", "value": None}, {"kind": "like", "value": 4.0},
    {"kind": "rating", "value": 4.5}, {"kind": "rating"}, {"kind": "rating", "value": None},
    {"kind": "like", "tmdb_id": 862.0}, {"kind": "like", "tmdb_id": True}, {"kind": "like", "position": "3"},
]  # fmt: skip
RECOMMEND_CASES = [{"k": 5.0}, {"k": True}, {"k": "5"}, {"liked": ["862"]}, {"liked": [862.0]}]


@pytest.mark.parametrize(
    ("model", "body"),
    [(MovieIn, movie_payload(**c)) for c in MOVIE_CASES]
    + [(FeedbackEventIn, {"user_id": "u", "tmdb_id": 862, **c}) for c in FEEDBACK_CASES]
    + [(RecommendIn, c) for c in RECOMMEND_CASES],
)
def test_the_json_schema_accepts_what_the_model_accepts(model: type[BaseModel], body: dict) -> None:
    # The schema is what clients and schemathesis go by: it must agree with validation on edge cases.
    by_schema = jsonschema.Draft202012Validator(model.model_json_schema()).is_valid(body)
    try:
        model.model_validate_json(json.dumps(body))
        by_model = True
    except ValidationError:
        by_model = False
    assert by_schema == by_model, body


def test_options_and_other_unserved_methods_hear_every_method_of_the_path(ro) -> None:
    # Starlette alone would answer OPTIONS /predict with Allow: POST, though GET /predict is served too.
    for path, item in ro.app.openapi()["paths"].items():
        concrete = re.sub(r"\{[^}]+\}", "1", path)
        for method in ("OPTIONS", "PATCH"):
            r = ro.request(method, concrete)
            assert r.status_code == 405, (method, path)
            assert r.headers["allow"] == ", ".join(sorted(m.upper() for m in item)), (method, path)
    assert ro.options("/predict").headers["allow"] == "GET, POST"


# ---- /recommend --------------------------------------------------------------------------------
def test_recommend_without_a_recommender_serves_popularity(ro) -> None:
    popular = ro.post("/recommend", json={"liked": [], "k": 5}).json()
    assert popular["strategy"] == "popularity" and popular["cold_start"] is True
    assert len(popular["items"]) == 5
    top = popular["items"][0]["tmdb_id"]
    known = ro.post("/recommend", json={"liked": [top, 999_999_999], "k": 5}).json()
    assert top not in [i["tmdb_id"] for i in known["items"]]
    assert known["unknown"] == [999_999_999]
    assert known["cold_start"] is False  # a liked movie is known to the catalog
    assert known["strategy"] == "popularity"
    item = known["items"][0]
    assert item["title"] and item["poster_url"].startswith("https://image.tmdb.org/")


def test_recommend_with_the_sequential_recommender(s3_settings, registry, published) -> None:
    rec = publish_recommender(registry)
    ids = recommender_ids()
    with _client(_settings(s3_settings)) as c:
        out = c.post("/recommend", json={"liked": [ids[0], ids[5], 424242], "k": 3}).json()
        assert out["strategy"] == "sequential" and out["cold_start"] is False
        assert out["model_version"] == rec.version
        got = [i["tmdb_id"] for i in out["items"]]
        assert got[:2] == [ids[1], ids[6]]  # each like's nearest neighbour (item-kNN), ties in item order
        assert ids[0] not in got and ids[5] not in got
        assert out["unknown"] == [424242]
        cold = c.post("/recommend", json={"liked": [424242], "k": 3}).json()
        assert cold["strategy"] == "popularity" and cold["cold_start"] is True
        assert [i["tmdb_id"] for i in cold["items"]] == ids[:3]
        assert c.get("/model").json()["recommender"]["version"] == rec.version


def test_liked_movies_are_never_recommended_even_if_the_model_returns_them(
    s3_settings, registry, published
) -> None:
    publish_recommender(registry)
    ids = recommender_ids()

    def leaky_loader(files: dict[str, bytes]) -> SequentialRecommender:
        """Fault injection: the real recommender, made to rank the liked movies first."""
        model = load_recommender(files)
        model.recommend = lambda liked, k, pool="all": [(i, 9.0) for i in liked] + [(ids[20], 1.0)]  # type: ignore[method-assign]
        return model

    with _client(_settings(s3_settings), recommender_loader=leaky_loader) as c:
        out = c.post("/recommend", json={"liked": [ids[0], ids[1]], "k": 3}).json()
    got = [i["tmdb_id"] for i in out["items"]]
    assert got[0] == ids[20] and len(got) == 3
    assert ids[0] not in got and ids[1] not in got


def test_recommend_with_the_real_recommender_runtime(s3_settings, registry, published) -> None:
    rec = publish_runtime_recommender(registry)
    ids = recommender_ids()
    with _client(_settings(s3_settings)) as c:  # no loader injected: services.core.recommender_runtime
        out = c.post("/recommend", json={"liked": [ids[1], ids[0]], "k": 4}).json()
    assert out["model_version"] == rec.version and out["strategy"] == "sequential"
    assert [i["tmdb_id"] for i in out["items"]] == ids[2:6]  # most popular first, liked masked


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"liked": list(range(1, 202)), "k": 10}, "liked"),
        ({"liked": [1], "k": 0}, "k"),
        ({"liked": [1], "k": 101}, "k"),
        ({"liked": ["toy story"], "k": 5}, 0),
        ({"liked": [-3], "k": 5}, 0),
        ({"liked": 862, "k": 5}, "liked"),
    ],
)
def test_bad_recommend_request_is_a_422(ro, body, field) -> None:
    r = ro.post("/recommend", json=body)
    assert r.status_code == 422
    assert r.json()["detail"][0]["loc"][-1] == field


# ---- /movies ----------------------------------------------------------------------------------------
def test_search_finds_titles_case_and_accent_insensitively(ro) -> None:
    r = ro.get("/movies/search", params={"q": "toy sto", "limit": 3})
    assert r.status_code == 200
    titles = [m["title"] for m in r.json()["items"]]
    assert titles[0].startswith("Toy Story") and len(titles) <= 3
    assert ro.get("/movies/search", params={"q": "TOY STORY"}).json()["items"][0]["title"] == "Toy Story"
    assert ro.get("/movies/search", params={"q": "zzzqqqxx"}).json()["items"] == []
    assert ro.get("/movies/search", params={"q": ""}).status_code == 422
    assert ro.get("/movies/search", params={"q": "a", "limit": 51}).status_code == 422


def test_movie_by_id_and_404(ro) -> None:
    r = ro.get("/movies/862")
    assert r.status_code == 200
    assert r.json()["title"] == "Toy Story" and r.json()["release_year"] == 1995
    missing = ro.get("/movies/999999999")
    assert missing.status_code == 404
    assert "999999999" in missing.json()["detail"]
    assert ro.get("/movies/abc").status_code == 422


# ---- ops -------------------------------------------------------------------------------------------
def test_health_ready_and_model(ro, shared) -> None:
    assert ro.get("/health").json() == {"status": "ok"}
    ready = ro.get("/ready")
    assert ready.status_code == 200 and ready.json()["rating_version"] == shared.manifest.version
    model = ro.get("/model").json()
    assert model["source"] == "s3"
    assert model["rating"]["version"] == shared.manifest.version
    assert model["rating"]["metrics"] == {"rmse": 0.9, "mae": 0.7}
    assert model["rating"]["created_at"] == shared.manifest.created_at
    assert model["rating"]["wandb_run"] == "test-run-0"
    assert model["recommender"] is None
    assert model["catalog_size"] > 4000
    vocabulary = ro.get("/model/vocabulary").json()
    assert "Drama" in vocabulary["genres"] and "<unknown>" not in vocabulary["genres"]
    assert "en" in vocabulary["languages"]
    assert f"genre={vocabulary['genres'][0]}" in model["rating"]["features"]


def test_metrics_count_requests_per_route_and_predictions(client, published) -> None:
    for _ in range(3):
        client.post("/predict", json=movie_payload())
    client.get("/movies/862")
    client.post("/predict", json=movie_payload(runtime=-1))
    text = client.get("/metrics").text
    assert 'movie_intel_http_requests_total{method="POST",route="/predict",status="200"} 3.0' in text
    assert 'movie_intel_http_requests_total{method="POST",route="/predict",status="422"} 1.0' in text
    assert 'route="/movies/{tmdb_id}"' in text and 'route="/movies/862"' not in text
    assert 'movie_intel_http_request_duration_seconds_count{method="POST",route="/predict"} 4.0' in text
    assert f'version="{published.version}"' in text and "movie_intel_model_info{" in text
    assert "movie_intel_predicted_rating_count 3.0" in text


def test_unexpected_error_is_a_clean_json_500(s3_settings, published, monkeypatch) -> None:
    def broken(self, movies, explain=False):
        raise RuntimeError("bug")

    monkeypatch.setattr(RatingService, "predict_logged", broken)
    app = create_app(_settings(s3_settings), translator=FakeTranslator())
    with TestClient(app, raise_server_exceptions=False) as c:
        r = c.post("/predict", json=movie_payload())
    assert r.status_code == 500
    assert r.json() == {"detail": "internal server error (logged)"}


# ---- admin reload -------------------------------------------------------------------------------------
def test_reload_requires_the_admin_token(ro) -> None:
    assert ro.post("/admin/reload").status_code == 401
    wrong = ro.post("/admin/reload", headers={"Authorization": "Bearer nope"})
    assert wrong.status_code == 401 and wrong.headers["www-authenticate"] == "Bearer"


def test_reload_is_disabled_without_a_configured_token(s3_settings, published) -> None:
    with _client(s3_settings.model_copy(update={"admin_token": None})) as c:
        r = c.post("/admin/reload", headers={"Authorization": "Bearer anything"})
    assert r.status_code == 403  # switched off, not an outage
    assert "ADMIN_TOKEN" in r.json()["detail"]


def test_reload_swaps_in_the_new_production_version(client, registry, published, caplog) -> None:
    auth = {"Authorization": f"Bearer {TOKEN}"}
    unchanged = client.post("/admin/reload", headers=auth).json()
    assert unchanged["changed"] is False and unchanged["rating_version"] == published.version
    newer = publish_rating(registry, rounds=60, seed=1)
    with caplog.at_level(logging.DEBUG):
        r = client.post("/admin/reload", headers=auth)
    assert r.status_code == 200
    assert r.json()["changed"] is True
    assert r.json()["previous_rating_version"] == published.version
    assert r.json()["rating_version"] == newer.version
    assert client.post("/predict", json=movie_payload()).json()["model_version"] == newer.version
    assert TOKEN not in caplog.text


def test_failed_reload_keeps_serving(s3_settings, published) -> None:
    settings = _settings(s3_settings)
    app = create_app(settings, translator=FakeTranslator())
    with TestClient(app) as c:
        # S3 goes away: the reload fails loudly, the served model stays.
        app.state.loader.registry.store = ObjectStore.from_settings(
            settings.model_copy(update={"s3_endpoint_url": _dead_endpoint(), "s3_max_attempts": 1})
        )
        r = c.post("/admin/reload", headers={"Authorization": f"Bearer {TOKEN}"})
        assert r.status_code == 503
        assert "still serving" in r.json()["detail"]
        assert c.post("/predict", json=movie_payload()).json()["model_version"] == published.version


# ---- startup: nothing published, S3 down, cache ------------------------------------------------------
def test_nothing_published_is_alive_but_not_ready(s3_settings) -> None:
    with _client(_settings(s3_settings)) as c:
        assert c.get("/health").status_code == 200
        ready = c.get("/ready")
        assert ready.status_code == 503 and "./scripts/pipeline.sh" in ready.json()["detail"]
        for r in (
            c.post("/predict", json=movie_payload()),
            c.post("/predict/batch", json={"movies": [movie_payload()]}),
            c.post("/recommend", json={"liked": []}),
            c.get("/movies/search", params={"q": "toy"}),
            c.get("/movies/862"),
            c.get("/model/vocabulary"),
        ):
            assert r.status_code == 503
            assert "./scripts/pipeline.sh" in r.json()["detail"]
        assert c.get("/model").json()["ready"] is False


def test_starts_from_the_cache_when_s3_is_down(s3_settings, published) -> None:
    settings = _settings(s3_settings)
    with _client(settings) as c:
        from_s3 = c.post("/predict", json=movie_payload()).json()
    down = settings.model_copy(update={"s3_endpoint_url": _dead_endpoint()})
    with _client(down) as c:
        assert c.get("/ready").status_code == 200
        model = c.get("/model").json()
        assert model["source"] == "cache" and model["rating"]["version"] == published.version
        assert "S3" in model["detail"]
        assert model["load_seconds"] < 5
        assert c.post("/predict", json=movie_payload()).json() == from_s3


def test_s3_down_and_no_cache_is_not_ready(s3_settings, published) -> None:
    down = _settings(s3_settings, s3_endpoint_url=_dead_endpoint())
    with _client(down) as c:
        ready = c.get("/ready")
        assert ready.status_code == 503
        assert "S3" in ready.json()["detail"] and "./scripts/pipeline.sh" in ready.json()["detail"]


def test_a_corrupt_cache_is_refused(s3_settings, published) -> None:
    settings = _settings(s3_settings)
    with _client(settings):
        pass
    model_file = Path(settings.model_cache_dir) / "rating" / published.version / "model.json"
    model_file.write_bytes(model_file.read_bytes().replace(b"0", b"1", 50))
    with _client(settings.model_copy(update={"s3_endpoint_url": _dead_endpoint()})) as c:
        assert c.get("/ready").status_code == 503
        assert "corrupt" in c.get("/ready").json()["detail"]


def test_a_tampered_s3_version_is_refused_and_the_cached_one_served(
    s3_settings, registry, store, published
) -> None:
    settings = _settings(s3_settings)
    with _client(settings):
        pass  # caches the published version
    bad = publish_rating(registry, rounds=10, seed=2)
    key = f"registry/rating/versions/{bad.version}/model.json"
    store.put_bytes(key, store.get_bytes(key).replace(b"0", b"1", 20))
    with _client(settings) as c:
        model = c.get("/model").json()
        assert model["rating"]["version"] == published.version and model["source"] == "cache"
        assert "sha256" in model["detail"]


def test_prediction_features_come_from_the_shared_feature_code(ro, shared) -> None:
    # A movie the encoders know well and one they do not: both must match the offline computation.
    for body in (movie_payload(genres=["Comedy"]), movie_payload(genres=[], budget=None, release_date=None)):
        served = ro.post("/predict", json=body).json()["predicted_rating"]
        assert served == pytest.approx(_offline_prediction(shared.registry, shared.manifest, body), abs=1e-3)
        assert np.isfinite(served)
