"""Schemathesis over the OpenAPI spec: whatever the input, the API never answers 500 and matches its schema."""

from __future__ import annotations

import secrets
from pathlib import Path

import pytest
import schemathesis
from fastapi import FastAPI
from hypothesis import HealthCheck, settings
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from services.core.embedded_s3 import EmbeddedS3
from services.core.registry import Registry
from services.core.settings import Settings
from services.core.storage import ObjectStore
from services.serve.app import create_app
from tests.serve_fixtures import FakeTranslator, publish_rating


@pytest.fixture(scope="module")
def fuzz_app(s3_server: EmbeddedS3, tmp_path_factory: pytest.TempPathFactory) -> FastAPI:
    """An app serving a real published model, with an admin token the fuzzer does not know."""
    cfg = Settings(
        _env_file=None, s3_endpoint_url=s3_server.endpoint, s3_bucket="t-" + secrets.token_hex(6),
        aws_access_key_id=s3_server.access_key, aws_secret_access_key=s3_server.secret_key,
        model_cache_dir=Path(tmp_path_factory.mktemp("model-cache")), translate_timeout_s=0.2,
        admin_token=secrets.token_urlsafe(24), spool_dir=tmp_path_factory.mktemp("spool"),
    )  # fmt: skip
    store = ObjectStore.from_settings(cfg)
    store.ensure_bucket()
    publish_rating(Registry(store))
    # The translator fails at once, like deep-translator without a network.
    return create_app(cfg, translator=FakeTranslator(fail=True))


# The spec does not depend on settings, so it can be read at collection time from an app never started.
schema = schemathesis.openapi.from_dict(create_app(Settings(_env_file=None)).openapi())


@schema.parametrize()
@settings(max_examples=30, deadline=None, suppress_health_check=list(HealthCheck), derandomize=True)
def test_no_input_makes_the_api_fail(case, fuzz_app: FastAPI) -> None:
    case.call_and_validate(
        app=fuzz_app,
        checks=[
            schemathesis.checks.not_a_server_error,
            status_code_conformance,
            content_type_conformance,
            response_schema_conformance,
        ],
    )
