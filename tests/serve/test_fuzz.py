"""Schemathesis over the OpenAPI spec, every check it has: the API never answers 500, and says what it enforces."""

from __future__ import annotations

import secrets
from pathlib import Path

import pytest
import schemathesis
from fastapi import FastAPI
from fastapi.routing import APIRoute
from hypothesis import HealthCheck, settings

from services.core.embedded_s3 import EmbeddedS3
from services.core.registry import Registry
from services.core.settings import Settings
from services.core.storage import ObjectStore
from services.serve.app import create_app
from tests.serve_fixtures import FakeTranslator, publish_rating, publish_runtime_recommender, recommender_ids


@pytest.fixture(scope="module")
def fuzz_app(s3_server: EmbeddedS3, tmp_path_factory: pytest.TempPathFactory) -> FastAPI:
    """An app serving real published models, with an admin token the fuzzer does not know."""
    cfg = Settings(
        _env_file=None, s3_endpoint_url=s3_server.endpoint, s3_bucket="t-" + secrets.token_hex(6),
        aws_access_key_id=s3_server.access_key, aws_secret_access_key=s3_server.secret_key,
        model_cache_dir=Path(tmp_path_factory.mktemp("model-cache")), translate_timeout_s=0.2,
        admin_token=secrets.token_urlsafe(24), spool_dir=tmp_path_factory.mktemp("spool"),
    )  # fmt: skip
    store = ObjectStore.from_settings(cfg)
    store.ensure_bucket()
    registry = Registry(store)
    publish_rating(registry)
    # A recommender too, so /recommend, /feedback and /movies work on a real catalog.
    publish_runtime_recommender(registry)
    # The translator fails at once, like deep-translator without a network.
    return create_app(cfg, translator=FakeTranslator(fail=True))


# The spec does not depend on settings, so it can be read at collection time from an app never started.
spec_app = create_app(Settings(_env_file=None))
spec = spec_app.openapi()
# What no spec can list: which movies the served catalog holds (feedback on any other is a 422). A few
# are enough: the coverage phase sends one request per enum value.
spec["components"]["schemas"]["FeedbackEventIn"]["properties"]["tmdb_id"]["enum"] = recommender_ids()[:5]
schema = schemathesis.openapi.from_dict(spec)


def test_every_route_is_in_the_fuzzed_spec() -> None:
    # The fuzzer tests what the spec lists: a route left out of it would go untested.
    served = {(r.path, m.lower()) for r in spec_app.routes if isinstance(r, APIRoute) for m in r.methods}
    documented = {(path, m) for path, item in spec_app.openapi()["paths"].items() for m in item}
    assert served == documented


# Examples, coverage and fuzzing phases; 30 fuzzed examples per operation keep the module under a minute.
@schema.parametrize()
@settings(max_examples=30, deadline=None, suppress_health_check=list(HealthCheck), derandomize=True)
def test_no_input_makes_the_api_fail(case, fuzz_app: FastAPI) -> None:
    # No checks= argument: schemathesis then runs every check it has, as `--checks all` does on the CLI.
    case.call_and_validate(app=fuzz_app)
