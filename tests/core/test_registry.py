"""The S3 registry on a real SeaweedFS server: publish order, checksums, promote, rollback."""

from __future__ import annotations

import pytest

from services.core.registry import ChecksumError, Registry, RegistryError
from services.core.storage import ObjectStore


def _publish(registry: Registry, payload: bytes, promote: bool = True) -> str:
    m = registry.publish(
        "rating", {"model.json": payload, "encoders.json": b"{}"}, {"metrics": {"rmse": 1.0}},
        promote=promote, reason="test",
    )  # fmt: skip
    return m.version


def test_publish_then_read_back_verified(registry: Registry) -> None:
    version = _publish(registry, b'{"trees": 1}')
    manifest = registry.manifest("rating")
    assert manifest.version == version
    assert registry.read_file(manifest, "model.json") == b'{"trees": 1}'
    assert registry.verify("rating") == []
    assert set(manifest.files) == {"model.json", "encoders.json"}


def test_pointer_is_written_after_every_file(store: ObjectStore) -> None:
    writes: list[str] = []
    original = store.put_bytes

    def spy(key: str, data: bytes, content_type: str = "application/octet-stream") -> None:
        writes.append(key.rsplit("/", 1)[-1])
        original(key, data, content_type)

    original_conditional = store.put_bytes_conditional

    def conditional_spy(key: str, data: bytes, **kwargs: object) -> str:
        writes.append(key.rsplit("/", 1)[-1])
        return original_conditional(key, data, **kwargs)  # type: ignore[arg-type]

    store.put_bytes = spy  # type: ignore[method-assign]
    store.put_bytes_conditional = conditional_spy  # type: ignore[method-assign]
    _publish(Registry(store), b"x")
    assert writes[-1] == "production.json"
    assert writes[-2] == "manifest.json"


def test_crash_mid_publish_is_invisible(registry: Registry, store: ObjectStore) -> None:
    good = _publish(registry, b"good")
    calls = {"n": 0}
    original = store.put_bytes

    def crash_on_second_file(key: str, data: bytes, content_type: str = "") -> None:
        calls["n"] += 1
        if calls["n"] == 2:
            raise ConnectionError("S3 went away")
        original(key, data, content_type)

    store.put_bytes = crash_on_second_file  # type: ignore[method-assign]
    with pytest.raises(ConnectionError):
        _publish(registry, b"half")
    store.put_bytes = original  # type: ignore[method-assign]
    assert registry.production_version("rating") == good
    assert registry.versions("rating") == [good]


def test_checksum_mismatch_is_refused(registry: Registry, store: ObjectStore) -> None:
    version = _publish(registry, b"original")
    store.put_bytes(f"registry/rating/versions/{version}/model.json", b"tampered")
    manifest = registry.manifest("rating")
    with pytest.raises(ChecksumError):
        registry.read_file(manifest, "model.json")
    assert any("model.json" in p for p in registry.verify("rating"))
    with pytest.raises(ChecksumError):
        registry.promote("rating", version)


def test_promote_and_rollback(registry: Registry) -> None:
    first = _publish(registry, b"one")
    second = _publish(registry, b"two", promote=False)
    assert registry.production_version("rating") == first
    registry.promote("rating", second, reason="better")
    assert registry.production_version("rating") == second
    registry.rollback("rating")
    assert registry.production_version("rating") == first
    with pytest.raises(RegistryError):
        registry.rollback("rating")


def test_unknown_model_and_version(registry: Registry) -> None:
    with pytest.raises(RegistryError):
        registry.manifest("rating")
    with pytest.raises(RegistryError):
        registry.versions("nonsense")
    assert registry.verify("rating", "nope")
