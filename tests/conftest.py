"""Shared fixtures: a real SeaweedFS S3 server for the session, a fresh bucket per test."""

from __future__ import annotations

import secrets
from collections.abc import Iterator
from pathlib import Path

import pytest

from services.core.embedded_s3 import EmbeddedS3, free_port_block
from services.core.registry import Registry
from services.core.settings import Settings
from services.core.storage import ObjectStore

# The integration marker, applied and enforced (a test that starts a server unmarked fails); a skip that
# fails under REQUIRE_ALL_TESTS=1 (.ci/run); the whole-stack fixtures (pipeline_run, live_api) in their own module.
pytest_plugins = ["tests.server_marks", "tests.prerequisites", "tests.pipeline_run", "pytester"]

ROOT = Path(__file__).resolve().parents[1]
SNAPSHOT = ROOT / "data" / "snapshot"


@pytest.fixture(scope="session")
def s3_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[EmbeddedS3]:
    """A real S3 server (weed mini) on loopback for the whole test session."""
    server = EmbeddedS3(
        data_dir=tmp_path_factory.mktemp("seaweedfs"),
        port=free_port_block(),
        access_key="test" + secrets.token_hex(4),
        secret_key=secrets.token_hex(16),
        bucket="bootstrap",
    )
    server.start(timeout_s=60)
    yield server
    server.stop()


@pytest.fixture
def s3_settings(s3_server: EmbeddedS3, tmp_path: Path) -> Settings:
    """Settings pointing at the session's S3 server and a bucket of this test's own."""
    settings = Settings(
        _env_file=None,
        s3_endpoint_url=s3_server.endpoint,
        s3_bucket="t-" + secrets.token_hex(6),
        aws_access_key_id=s3_server.access_key,
        aws_secret_access_key=s3_server.secret_key,
        wandb_mode="disabled",
        wandb_dir=tmp_path / "wandb",
        model_cache_dir=tmp_path / "model-cache",
        spool_dir=tmp_path / "spool",
        tmdb_api_key=None,
    )
    ObjectStore.from_settings(settings).ensure_bucket()
    return settings


@pytest.fixture
def store(s3_settings: Settings) -> ObjectStore:
    """An ObjectStore on a fresh bucket of the real S3 server."""
    return ObjectStore.from_settings(s3_settings)


@pytest.fixture
def registry(store: ObjectStore) -> Registry:
    """A Registry on a fresh bucket of the real S3 server."""
    return Registry(store)
