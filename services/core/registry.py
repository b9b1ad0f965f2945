"""The S3 model registry: versioned folders, checksummed manifests, a production pointer.

Layout under the bucket::

    registry/<model>/versions/<version>/<file>...      the model files, native formats only
    registry/<model>/versions/<version>/manifest.json   written after every file it lists
    registry/<model>/production.json                    the pointer, written last of all

A reader follows the pointer to a manifest and checks every file's sha256 before use, so a
publish that crashed half way is invisible (no manifest, or no pointer to it).

The pointer is only ever changed by a conditional write (services/core/registry_pointer.py), and a
change is a decision made against the production version of that moment. The rule: a promote that
names the production version it was compared against (``expected_production``, which the pipeline's
publish steps pass) and a rollback (against the version it rolls back from) are refused with PointerMoved when production has changed since, so a run finishing late
never overrides an operator's rollback, and a rollback never lands on a version nobody chose. A
promote by hand names its target outright and is applied on top of whatever production is by then.
"""

from __future__ import annotations

import hashlib
import logging
import secrets
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from pydantic import BaseModel, Field

from services.core.registry_pointer import (
    UNCHECKED,
    Pointer,
    PointerMoved,
    RegistryError,
    Unchecked,
    read_pointer,
    successor,
    update_pointer,
)
from services.core.storage import ObjectNotFound, ObjectStore

log = logging.getLogger(__name__)

MODEL_NAMES = ("rating", "recommender")
REGISTRY_PREFIX = "registry"


class ChecksumError(RuntimeError):
    """A registry file does not match the sha256 its manifest records."""


class FileEntry(BaseModel):
    """One file of a model version."""

    sha256: str
    size: int


class Manifest(BaseModel):
    """What a model version is, where it came from, and how to check it."""

    model: str
    version: str
    created_at: str
    git_commit: str | None = None
    wandb_run: str | None = None
    data_partitions: list[str] = Field(default_factory=list)
    data_fingerprint: str | None = None
    algorithm: str | None = None
    metrics: dict[str, float] = Field(default_factory=dict)
    features: list[str] = Field(default_factory=list)
    params: dict[str, Any] = Field(default_factory=dict)
    library_versions: dict[str, str] = Field(default_factory=dict)
    files: dict[str, FileEntry] = Field(default_factory=dict)
    notes: dict[str, Any] = Field(default_factory=dict)


def sha256_bytes(data: bytes) -> str:
    """Hex sha256 of bytes."""
    return hashlib.sha256(data).hexdigest()


def new_version_id(now: datetime | None = None) -> str:
    """A sortable, unique version id: UTC time plus a random suffix."""
    now = now or datetime.now(UTC)
    return now.strftime("%Y%m%dT%H%M%SZ") + "-" + secrets.token_hex(3)


def _check_model(model: str) -> None:
    if model not in MODEL_NAMES:
        raise RegistryError(f"unknown model name {model!r}; expected one of {', '.join(MODEL_NAMES)}")


class Registry:
    """Publish, read, verify, promote and roll back model versions in an ObjectStore."""

    def __init__(self, store: ObjectStore, prefix: str = REGISTRY_PREFIX) -> None:
        self.store = store
        self.prefix = prefix.rstrip("/")

    # ---- keys -------------------------------------------------------------------------------
    def _version_prefix(self, model: str, version: str) -> str:
        return f"{self.prefix}/{model}/versions/{version}/"

    def _pointer_key(self, model: str) -> str:
        return f"{self.prefix}/{model}/production.json"

    # ---- writing ----------------------------------------------------------------------------
    def publish(
        self,
        model: str,
        files: dict[str, bytes],
        manifest: Manifest | dict[str, Any],
        *,
        promote: bool,
        reason: str = "",
        expected_production: str | None | Unchecked = UNCHECKED,
    ) -> Manifest:
        """Upload files, then the manifest with their checksums, then (if promote) the pointer.

        The promote is refused (PointerMoved, the version stays published) when production is no longer
        `expected_production`, the version (None: none) the decision to promote was made against.
        """
        _check_model(model)
        base = (
            manifest
            if isinstance(manifest, Manifest)
            else Manifest.model_validate(
                {"model": model, "version": new_version_id(), "created_at": _now(), **manifest}
            )
        )
        entries: dict[str, FileEntry] = {}
        prefix = self._version_prefix(model, base.version)
        for name, data in files.items():
            if name == "manifest.json" or "/" in name:
                raise RegistryError(f"invalid file name {name!r}")
            self.store.put_bytes(prefix + name, data)
            entries[name] = FileEntry(sha256=sha256_bytes(data), size=len(data))
        final = base.model_copy(update={"files": entries, "model": model})
        self.store.put_json(prefix + "manifest.json", final.model_dump())
        log.info("published %s version %s (%d files)", model, final.version, len(entries))
        if promote:
            self.promote(model, final.version, reason=reason, expected_production=expected_production)
        return final

    def promote(
        self, model: str, version: str, reason: str = "",
        expected_production: str | None | Unchecked = UNCHECKED,
    ) -> Pointer:  # fmt: skip
        """Point production at a verified version; PointerMoved if production is not the expected one."""
        _check_model(model)
        problems = self.verify(model, version)
        if problems:
            raise ChecksumError(f"refusing to promote {model} {version}: " + "; ".join(problems))

        def decide(current: Pointer | None) -> Pointer | None:
            now = current.version if current else None
            if now == version:
                return None  # already production (a retry of a promote that landed): nothing to write
            if not isinstance(expected_production, Unchecked) and now != expected_production:
                raise PointerMoved(
                    f"{model}: not promoting {version}. It was compared against production "
                    f"{expected_production or '(none)'}, but production is now {now} "
                    f"({current.reason if current else ''}). The version stays published; a rerun "
                    "decides again against the current production."
                )
            history = [*current.history, current.version] if current else []
            return successor(current, model, version, "promote", reason, history)

        pointer = update_pointer(self.store, self._pointer_key(model), decide)
        log.info("production %s -> %s (%s)", model, version, reason or "no reason given")
        return pointer

    def rollback(self, model: str, expected_from: str | None = None, reason: str = "") -> Pointer:
        """Point production back at the version before, once verified; PointerMoved if production moved.

        `expected_from` is the version being rolled back (default: production when this is called). If
        another change lands first, nothing is written: rolling back from that change instead would
        land on the very version being rejected.
        """
        _check_model(model)
        current, _ = read_pointer(self.store, self._pointer_key(model))
        if current is None or not current.history:
            raise RegistryError(f"{model}: no earlier production version to roll back to")
        rejected = expected_from or current.version
        if current.version != rejected:
            raise PointerMoved(
                f"{model}: production is {current.version} ({current.reason}), not {rejected}; "
                "nothing rolled back"
            )
        target = current.history[-1]
        problems = self.verify(model, target)
        if problems:
            raise ChecksumError(
                f"refusing to roll {model} back to {target}, which fails verification ("
                + "; ".join(problems)
                + f"). Production stays {rejected}; promote a good version by hand (registry.sh versions {model})"
            )

        def decide(now: Pointer | None) -> Pointer:
            if now is None or now.version != rejected or not now.history or now.history[-1] != target:
                raise PointerMoved(
                    f"{model}: production moved to {now.version if now else None} "
                    f"({now.reason if now else ''}) while rolling back from {rejected}; nothing "
                    f"rolled back. Check registry.sh versions {model}, then roll back or promote again"
                )
            why = f"rollback from {rejected}" + (f": {reason}" if reason else "")
            return successor(now, model, target, "rollback", why, now.history[:-1])

        pointer = update_pointer(self.store, self._pointer_key(model), decide)
        log.info("production %s rolled back %s -> %s", model, rejected, target)
        return pointer

    # ---- reading ----------------------------------------------------------------------------
    def pointer(self, model: str) -> Pointer | None:
        """The production pointer, or None when nothing was promoted yet."""
        _check_model(model)
        return read_pointer(self.store, self._pointer_key(model))[0]

    def production_version(self, model: str) -> str | None:
        """The production version id, or None."""
        p = self.pointer(model)
        return p.version if p else None

    def versions(self, model: str) -> list[str]:
        """Complete versions (those with a manifest), oldest first."""
        _check_model(model)
        out = []
        for v in self.store.list_dirs(f"{self.prefix}/{model}/versions/"):
            if self.store.exists(self._version_prefix(model, v) + "manifest.json"):
                out.append(v)
        return out

    def manifest(self, model: str, version: str | None = None) -> Manifest:
        """A version's manifest (production when version is None)."""
        _check_model(model)
        version = version or self.production_version(model)
        if version is None:
            raise RegistryError(f"{model}: no production version yet (run the pipeline first)")
        try:
            data = self.store.get_json(self._version_prefix(model, version) + "manifest.json")
        except ObjectNotFound as exc:
            raise RegistryError(f"{model}: no complete version {version!r}") from exc
        return Manifest.model_validate(data)

    def read_file(self, manifest: Manifest, name: str) -> bytes:
        """One file of a version, refused when its sha256 does not match the manifest."""
        entry = manifest.files.get(name)
        if entry is None:
            raise RegistryError(f"{manifest.model} {manifest.version} has no file {name!r}")
        data = self.store.get_bytes(self._version_prefix(manifest.model, manifest.version) + name)
        if sha256_bytes(data) != entry.sha256:
            raise ChecksumError(
                f"{manifest.model} {manifest.version}/{name}: sha256 mismatch, refusing to load"
            )
        return data

    def verify(self, model: str, version: str | None = None) -> list[str]:
        """Re-check every file's sha256; returns the problems found (empty when all is well)."""
        try:
            manifest = self.manifest(model, version)
        except RegistryError as exc:
            return [str(exc)]
        problems = []
        for name in manifest.files:
            try:
                self.read_file(manifest, name)
            except (ChecksumError, ObjectNotFound) as exc:
                problems.append(f"{name}: {exc}")
        return problems

    def download(self, model: str, dest: Path, version: str | None = None) -> Manifest:
        """Copy a verified version into dest/<model>/<version>/ (a local cache); returns its manifest."""
        manifest = self.manifest(model, version)
        target = dest / model / manifest.version
        target.mkdir(parents=True, exist_ok=True)
        for name in manifest.files:
            (target / name).write_bytes(self.read_file(manifest, name))
        (target / "manifest.json").write_text(manifest.model_dump_json(indent=2))
        return manifest


def verify_local(manifest: Manifest, folder: Path) -> None:
    """Check a cached version's files against its manifest; ChecksumError on any mismatch."""
    for name, entry in manifest.files.items():
        path = folder / name
        if not path.exists() or sha256_bytes(path.read_bytes()) != entry.sha256:
            raise ChecksumError(f"{manifest.model} {manifest.version}/{name}: cache corrupt or missing")


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds")
