"""A local copy of the last verified model versions, so a restart works while S3 is down."""

from __future__ import annotations

import json
import logging
import os
import secrets
import shutil
from pathlib import Path

from services.core.registry import ChecksumError, Manifest, verify_local

log = logging.getLogger(__name__)


class ModelCache:
    """<root>/<model>/<version>/ holds a version's files and manifest; <root>/<model>/current.json names
    the version last served. Writes go to a temporary folder renamed into place, so several workers
    sharing the folder never see half a version."""

    def __init__(self, root: Path, keep: int = 3) -> None:
        self.root = root
        self.keep = keep

    def folder(self, model: str, version: str) -> Path:
        """Where a version is cached."""
        return self.root / model / version

    def get(self, manifest: Manifest) -> dict[str, bytes] | None:
        """The cached files of exactly this version, verified; None when absent or corrupt."""
        folder = self.folder(manifest.model, manifest.version)
        if not folder.is_dir():
            return None
        try:
            verify_local(manifest, folder)
        except ChecksumError as exc:
            log.warning("ignoring cached copy: %s", exc)
            return None
        return {name: (folder / name).read_bytes() for name in manifest.files}

    def put(self, manifest: Manifest, files: dict[str, bytes]) -> None:
        """Store a verified version (best effort: a full or read-only disk only costs the fallback)."""
        final = self.folder(manifest.model, manifest.version)
        tmp = final.with_name(f".{manifest.version}.{secrets.token_hex(4)}.tmp")
        try:
            tmp.mkdir(parents=True)
            for name, data in files.items():
                (tmp / name).write_bytes(data)
            (tmp / "manifest.json").write_text(manifest.model_dump_json(indent=2))
            if final.exists():
                shutil.rmtree(final, ignore_errors=True)
            os.replace(tmp, final)
        except OSError as exc:
            log.warning("could not cache %s %s: %s", manifest.model, manifest.version, exc)
            shutil.rmtree(tmp, ignore_errors=True)

    def set_current(self, model: str, version: str) -> None:
        """Record the version being served, then drop older cached versions."""
        pointer = self.root / model / "current.json"
        tmp = pointer.with_name(f".current.{secrets.token_hex(4)}.tmp")
        try:
            pointer.parent.mkdir(parents=True, exist_ok=True)
            tmp.write_text(json.dumps({"version": version}))
            os.replace(tmp, pointer)
        except OSError as exc:
            log.warning("could not record cached %s version: %s", model, exc)
            return
        self._prune(model, version)

    def current(self, model: str) -> str | None:
        """The version last served, if one was cached."""
        try:
            return json.loads((self.root / model / "current.json").read_text())["version"]
        except (OSError, ValueError, KeyError, TypeError):
            return None

    def load(self, model: str, version: str) -> tuple[Manifest, dict[str, bytes]]:
        """A cached version's manifest and files, verified against the manifest (ChecksumError if not)."""
        folder = self.folder(model, version)
        try:
            manifest = Manifest.model_validate_json((folder / "manifest.json").read_text())
        except (OSError, ValueError) as exc:
            raise ChecksumError(f"{model} {version}: cached manifest missing or unreadable") from exc
        files = self.get(manifest)
        if files is None:
            raise ChecksumError(f"{model} {version}: cache corrupt or missing")
        return manifest, files

    def _prune(self, model: str, keep_version: str) -> None:
        # Newest first by name (version ids sort by time); the served one is always kept.
        versions = sorted((p for p in (self.root / model).iterdir() if p.is_dir() and not p.name.startswith(".")),
                          key=lambda p: p.name, reverse=True)  # fmt: skip
        for path in versions[self.keep :]:
            if path.name != keep_version:
                shutil.rmtree(path, ignore_errors=True)
