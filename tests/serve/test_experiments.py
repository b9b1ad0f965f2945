"""Serving online experiments: the candidate recommender's arm, the rating shadow, reloads, on a real S3."""

from __future__ import annotations

import json
import re
import threading
from pathlib import Path

import numpy as np
import pytest
import xgboost as xgb
from fastapi.testclient import TestClient
from pydantic import SecretStr

from services.core import events, experiments
from services.core.features import Encoders, feature_names, featurize, featurize_one, fit_encoders
from services.core.movie import normalize_movie
from services.core.rating_model import load_rating_model, save_rating_model
from services.core.registry import Manifest, Registry
from services.core.settings import Settings
from services.core.storage import ObjectStore
from services.serve.app import create_app
from tests.serve.test_api import _dead_endpoint
from tests.serve_fixtures import (
    FakeTranslator,
    catalog_json,
    movie_payload,
    publish_rating,
    publish_recommender,
    recommender_ids,
    snapshot_movies,
)

TOKEN = "experiments-admin-token-0123456789"
USERS = [f"user-{n}" for n in range(60)]
ADMIN = {"Authorization": f"Bearer {TOKEN}"}


def _settings(s3_settings: Settings, **changes: object) -> Settings:
    return s3_settings.model_copy(update={"admin_token": SecretStr(TOKEN), **changes})


def _client(settings: Settings) -> TestClient:
    app = create_app(settings, translator=FakeTranslator())
    return TestClient(app)


@pytest.fixture
def versions(registry: Registry) -> tuple[Manifest, Manifest, Manifest]:
    """A rating model and a recommender in production, and a candidate recommender ranking differently."""
    rating = publish_rating(registry)
    return rating, publish_recommender(registry, 1), publish_recommender(registry, -1, promote=False)


def _start(registry: Registry, candidate: Manifest, share: float = 0.5) -> experiments.Experiment:
    return experiments.start(registry, "recommender", candidate.version, share=share, started_by="test")


def _recommend(client: TestClient, user_id: str | None) -> dict:
    body = {"liked": recommender_ids()[5:6], "k": 3, **({"user_id": user_id} if user_id else {})}
    r = client.post("/recommend", json=body)
    assert r.status_code == 200, r.text
    return r.json()


def _logged(client: TestClient, store: ObjectStore, stream: str) -> list[dict]:
    client.app.state.events.flush()  # type: ignore[attr-defined]
    return [r for day in events.days(store, stream) for r in events.read_day(store, stream, day)]


def _reload(client: TestClient) -> dict:
    r = client.post("/admin/reload", headers=ADMIN)
    assert r.status_code == 200, r.text
    return r.json()


# ---- the recommender canary ----------------------------------------------------------------------
def test_each_user_always_gets_the_arm_arm_of_names_on_every_replica(
    s3_settings: Settings, registry: Registry, versions, tmp_path: Path
) -> None:
    _, production, candidate = versions
    experiment = _start(registry, candidate)
    liked = recommender_ids()[5]
    other = _settings(s3_settings, spool_dir=tmp_path / "spool-2", model_cache_dir=tmp_path / "cache-2")
    with _client(_settings(s3_settings)) as one, _client(other) as two:
        seen = {}
        for user in USERS:
            answers = [_recommend(c, user) for c in (one, two, one)]
            assert (
                len({json.dumps({k: a[k] for k in ("arm", "model_version", "items")}) for a in answers}) == 1
            )
            out = answers[0]
            assert out["arm"] == experiments.arm_of(experiment.experiment_id, user, 0.5)
            expected = candidate if out["arm"] == "candidate" else production
            assert out["model_version"] == expected.version
            seen[out["arm"]] = [i["tmdb_id"] for i in out["items"]]
        assert set(seen) == {"production", "candidate"}  # 60 users: both arms (all one arm: 2^-59)
        # Each arm ranks with its own recommender: next neighbours against previous ones.
        ids = recommender_ids()
        assert seen["production"] == [ids[ids.index(liked) + j] for j in (1, 2, 3)]
        assert seen["candidate"] == [ids[ids.index(liked) - j] for j in (1, 2, 3)]
        anonymous = _recommend(one, None)
        assert anonymous["arm"] == "production" and anonymous["model_version"] == production.version


def test_impressions_carry_the_arm_the_experiment_and_the_version_that_ranked(
    s3_settings: Settings, registry: Registry, store: ObjectStore, versions
) -> None:
    _, production, candidate = versions
    experiment = _start(registry, candidate)
    with _client(_settings(s3_settings)) as c:
        shown = {user: _recommend(c, user) for user in USERS[:20]}
        anonymous = _recommend(c, None)
        by_request = {r["request_id"]: r for r in _logged(c, store, "impressions")}
        metrics = c.get("/metrics").text
    for user, out in shown.items():
        impression = by_request[out["request_id"]]
        assert impression["user_id"] == user and impression["arm"] == out["arm"]
        assert impression["experiment_id"] == experiment.experiment_id
        assert impression["model_version"] == out["model_version"]
        assert impression["items"] == [i["tmdb_id"] for i in out["items"]]
    # A request without a user id took no part in the experiment: production, no experiment id.
    outside = by_request[anonymous["request_id"]]
    assert (outside["arm"], outside["experiment_id"], outside["model_version"]) == (
        "production", None, production.version,
    )  # fmt: skip
    # The replica counts each arm's rankings (the anonymous one is production's).
    candidates = sum(out["arm"] == "candidate" for out in shown.values())
    assert _arm_count(metrics, "candidate") == candidates
    assert _arm_count(metrics, "production") == len(shown) - candidates + 1
    assert (
        f'movie_intel_recommend_arm_latency_seconds_count{{arm="candidate"}} {float(candidates)}' in metrics
    )


def _arm_count(metrics: str, arm: str) -> float:
    pattern = rf'^movie_intel_recommend_arm_requests_total{{arm="{arm}",outcome="ok"}} (\S+)$'
    return float(re.search(pattern, metrics, re.M).group(1))  # type: ignore[union-attr]


def test_ready_and_model_list_production_and_the_candidate(
    s3_settings: Settings, registry: Registry, versions
) -> None:
    rating, production, candidate = versions
    experiment = _start(registry, candidate)
    with _client(_settings(s3_settings)) as c:
        ready = c.get("/ready").json()
        model = c.get("/model").json()
    assert ready["recommender_version"] == production.version and ready["rating_version"] == rating.version
    assert ready["recommender_candidate_version"] == candidate.version
    assert ready["rating_shadow_version"] is None
    assert ready["experiments"] == {"recommender": experiment.experiment_id}
    assert model["recommender"]["version"] == production.version
    assert model["recommender_candidate"]["version"] == candidate.version
    assert model["recommender_candidate"]["algorithm"] == "item_knn"
    assert model["rating_shadow"] is None
    assert model["experiments"]["recommender"]["experiment_id"] == experiment.experiment_id
    assert model["experiments"]["recommender"]["share"] == 0.5


def test_a_started_then_ended_experiment_is_picked_up_by_reload_without_a_failed_request(
    s3_settings: Settings, registry: Registry, versions
) -> None:
    _, production, candidate = versions
    with _client(_settings(s3_settings)) as c:
        assert c.get("/ready").json()["experiments"] == {}
        failures: list[str] = []
        answered = [0]
        done = threading.Event()

        def traffic() -> None:  # users ask for recommendations all along the reloads
            n = 0
            while not done.is_set():
                r = c.post(
                    "/recommend", json={"liked": recommender_ids()[:2], "user_id": USERS[n % len(USERS)]}
                )
                if r.status_code != 200:
                    failures.append(f"{r.status_code}: {r.text[:200]}")
                n += 1
            answered[0] = n

        worker = threading.Thread(target=traffic)
        worker.start()
        try:
            experiment = _start(registry, candidate)
            started = _reload(c)
            assert (
                started["changed"] is True and started["recommender_candidate_version"] == candidate.version
            )
            assert started["experiments"] == {"recommender": experiment.experiment_id}
            arms = {u: _recommend(c, u)["arm"] for u in USERS}
            assert set(arms.values()) == {"production", "candidate"}
            held = c.app.state.models.current.recommender_candidate.model  # type: ignore[attr-defined]

            again = _reload(c)  # nothing moved: nothing downloaded or rebuilt
            assert again["changed"] is False
            assert c.app.state.models.current.recommender_candidate.model is held  # type: ignore[attr-defined]

            experiments.end(
                registry, "recommender", "rolled_back", "test", experiment_id=experiment.experiment_id
            )
            ended = _reload(c)
            assert ended["changed"] is True and ended["recommender_candidate_version"] is None
            assert ended["experiments"] == {} and ended["recommender_version"] == production.version
            assert {_recommend(c, u)["arm"] for u in USERS} == {"production"}
            assert c.get("/ready").json()["recommender_candidate_version"] is None

            # A promoted candidate becomes production from the copy already in memory.
            second = _start(registry, candidate)
            _reload(c)
            held = c.app.state.models.current.recommender_candidate.model  # type: ignore[attr-defined]
            experiments.end(registry, "recommender", "promoted", "test", experiment_id=second.experiment_id)
            promoted = _reload(c)
            assert promoted["recommender_version"] == candidate.version
            assert promoted["recommender_candidate_version"] is None
            assert c.app.state.models.current.recommender.model is held  # type: ignore[attr-defined]
            assert {_recommend(c, u)["model_version"] for u in USERS} == {candidate.version}
        finally:
            done.set()
            worker.join()
    assert failures == [] and answered[0] > 0


def test_a_candidate_failing_verification_leaves_production_serving_everyone(
    s3_settings: Settings, registry: Registry, store: ObjectStore, versions
) -> None:
    _, production, candidate = versions
    experiment = _start(registry, candidate)
    key = f"registry/recommender/versions/{candidate.version}/items.json"
    store.put_bytes(key, store.get_bytes(key).replace(b"1", b"2", 5))  # tampered after the start
    with _client(_settings(s3_settings)) as c:
        ready = c.get("/ready")
        assert ready.status_code == 200
        body = ready.json()
        assert body["recommender_version"] == production.version and body["source"] == "s3"
        assert body["recommender_candidate_version"] is None and body["experiments"] == {}
        assert candidate.version in body["detail"] and "sha256" in body["detail"]
        assert {_recommend(c, u)["arm"] for u in USERS} == {"production"}
        # A reload does not fail on it either: production stays, the detail still says why.
        reloaded = _reload(c)
        assert reloaded["recommender_version"] == production.version
        assert reloaded["recommender_candidate_version"] is None
        out = c.get("/model/experiments").json()
        assert out["running"][0]["experiment"]["experiment_id"] == experiment.experiment_id
        assert out["running"][0]["served"] is False


def test_no_experiment_is_served_when_production_comes_from_the_cache(
    s3_settings: Settings, registry: Registry, versions
) -> None:
    _, production, candidate = versions
    _start(registry, candidate)
    settings = _settings(s3_settings)
    with _client(settings) as c:
        assert c.get("/ready").json()["recommender_candidate_version"] == candidate.version
    with _client(settings.model_copy(update={"s3_endpoint_url": _dead_endpoint()})) as c:
        ready = c.get("/ready").json()
        assert ready["source"] == "cache" and ready["recommender_version"] == production.version
        assert ready["recommender_candidate_version"] is None and ready["experiments"] == {}
        assert {_recommend(c, u)["arm"] for u in USERS[:10]} == {"production"}


# ---- the rating shadow ---------------------------------------------------------------------------
def _other_encoders_rating(registry: Registry) -> Manifest:
    """A rating version whose encoders differ from production's (fitted on other movies)."""
    rows = [m for m in snapshot_movies() if m["vote_average"] is not None and (m["vote_count"] or 0) >= 10]
    rows = rows[600:1400]
    enc = fit_encoders(rows)
    x, y = featurize(rows, enc), np.array([m["vote_average"] for m in rows])
    booster = xgb.train({"max_depth": 3, "eta": 0.2, "seed": 3, "nthread": 1}, xgb.DMatrix(x, label=y), 20)
    files = {
        **save_rating_model(booster, "xgboost"),
        "encoders.json": json.dumps(enc.to_json()).encode(),
        "catalog.json": catalog_json(),
    }
    meta = {"algorithm": "xgboost", "features": feature_names(enc), "metrics": {"rmse": 0.9}}
    return registry.publish("rating", files, meta, promote=False)


def _offline(registry: Registry, manifest: Manifest, body: dict) -> float:
    files = {name: registry.read_file(manifest, name) for name in manifest.files}
    enc = Encoders.from_json(json.loads(files["encoders.json"]))
    model = load_rating_model("xgboost", files)
    return float(model.predict(featurize_one(normalize_movie(body), enc)[None, :])[0])


@pytest.mark.parametrize("encoders", ["same", "other"])
def test_the_shadow_prediction_is_logged_and_never_returned(
    s3_settings: Settings, registry: Registry, store: ObjectStore, encoders: str
) -> None:
    production = publish_rating(registry)
    if encoders == "same":
        shadow = publish_rating(registry, rounds=12, seed=4, promote=False)
    else:
        shadow = _other_encoders_rating(registry)
    experiment = experiments.start(registry, "rating", shadow.version, share=0.3, started_by="test")
    assert experiment.mode == "shadow" and experiment.share == 0.0
    bodies = [movie_payload(), movie_payload(runtime=80, genres=["Comedy"]), movie_payload(genres=["War"])]
    with _client(_settings(s3_settings, prediction_log_rate=1.0)) as c:
        ready = c.get("/ready").json()
        assert (
            ready["rating_shadow_version"] == shadow.version
            and ready["recommender_candidate_version"] is None
        )
        one = c.post("/predict", json=bodies[0])
        batch = c.post("/predict/batch", json={"movies": bodies[1:]})
        assert one.status_code == 200 and batch.status_code == 200
        answers = [one.json(), *batch.json()["predictions"]]
        logged = sorted(_logged(c, store, "predictions"), key=lambda r: r["input"]["runtime"])

        experiments.end(registry, "rating", "aborted", "test", experiment_id=experiment.experiment_id)
        assert _reload(c)["rating_shadow_version"] is None
        c.post("/predict", json=movie_payload(runtime=150))
        after = [r for r in _logged(c, store, "predictions") if r["input"]["runtime"] == 150]
    for answer in answers:  # production answers; nothing of the shadow
        assert answer["model_version"] == production.version
        assert not any("shadow" in key for key in answer)
    assert len(logged) == 3
    for record, body in zip(logged, sorted(bodies, key=lambda b: b["runtime"]), strict=True):
        assert record["model_version"] == production.version and record["shadow_version"] == shadow.version
        assert record["shadow_prediction"] == pytest.approx(_offline(registry, shadow, body), abs=1e-3)
        assert record["prediction"] == pytest.approx(_offline(registry, production, body), abs=1e-3)
        assert record["shadow_prediction"] != record["prediction"]
    assert len(after) == 1 and "shadow_version" not in after[0] and "shadow_prediction" not in after[0]


# ---- GET /model/experiments ----------------------------------------------------------------------
def test_model_experiments_shows_the_running_one_with_its_days_and_the_recent_ends(
    s3_settings: Settings, registry: Registry, store: ObjectStore, versions
) -> None:
    _, _, candidate = versions
    first = _start(registry, candidate)
    experiments.end(registry, "recommender", "rolled_back", "worse on hit rate", experiment_id=first.experiment_id,
                    figures={"hit_rate": {"low": -0.05, "high": -0.01}})  # fmt: skip
    running = _start(registry, candidate, share=0.2)
    for day, experiment_id in (("2025-01-01", first.experiment_id), ("2025-01-02", running.experiment_id),
                               ("2025-01-03", running.experiment_id)):  # fmt: skip
        report = {"date": day, "experiment_id": experiment_id, "verdict": "continue", "days_running": 1}
        store.put_json(f"reports/experiments/dt={day}/recommender.json", report)
    with _client(_settings(s3_settings)) as c:
        r = c.get("/model/experiments")
        assert r.status_code == 200, r.text
        out = r.json()
    [item] = out["running"]
    assert item["experiment"]["experiment_id"] == running.experiment_id and item["experiment"]["share"] == 0.2
    assert item["served"] is True
    assert [d["date"] for d in item["days"]] == ["2025-01-02", "2025-01-03"]  # its own days, oldest first
    [ended] = out["recent"]
    assert ended["experiment"]["experiment_id"] == first.experiment_id and ended["outcome"] == "rolled_back"
    assert ended["reason"] == "worse on hit rate" and ended["figures"]["hit_rate"]["high"] == -0.01
    assert out["updated_at"]


def test_model_experiments_is_empty_without_experiments_and_503_when_s3_is_down(
    s3_settings: Settings, registry: Registry, versions
) -> None:
    settings = _settings(s3_settings)
    with _client(settings) as c:
        assert c.get("/model/experiments").json()["running"] == []
    with _client(
        settings.model_copy(update={"s3_endpoint_url": _dead_endpoint(), "s3_max_attempts": 1})
    ) as c:
        r = c.get("/model/experiments")
        assert r.status_code == 503 and "Retry-After" in r.headers


def test_a_candidate_that_fails_at_request_time_costs_its_user_nothing(
    s3_settings: Settings, registry: Registry, store: ObjectStore, versions
) -> None:
    _, production, candidate = versions
    experiment = _start(registry, candidate, share=0.999)
    with _client(_settings(s3_settings)) as c:
        loaded = c.app.state.models.current  # type: ignore[attr-defined]

        def broken(*args: object, **kwargs: object) -> list:
            raise RuntimeError("candidate bug")

        loaded.recommender_candidate.model.recommend = broken
        user = next(u for u in USERS if experiments.arm_of(experiment.experiment_id, u, 0.999) == "candidate")
        out = _recommend(c, user)  # a 200 from production, not a 500
        impression = {r["request_id"]: r for r in _logged(c, store, "impressions")}[out["request_id"]]
        metrics = c.get("/metrics").text
    assert (out["arm"], out["model_version"]) == ("production", production.version)
    # The error counts against the candidate (the judge's guard); the impression takes no part.
    assert 'movie_intel_recommend_arm_requests_total{arm="candidate",outcome="error"} 1.0' in metrics
    assert (impression["arm"], impression["experiment_id"]) == ("production", None)
