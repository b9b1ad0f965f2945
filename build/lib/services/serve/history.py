"""The registry's history (every complete version of each model), read from S3 and cached for a while."""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from dataclasses import dataclass
from time import monotonic
from typing import Any

import anyio
from botocore.exceptions import BotoCoreError, ClientError

from services.core.registry import MODEL_NAMES, Manifest, Registry, RegistryError
from services.core.storage import ObjectNotFound

log = logging.getLogger(__name__)

HISTORY_TTL_S = 30.0  # the UI polls this page; a new version appears within 30 s, S3 is read twice a minute
FAILURE_TTL_S = 5.0  # a dead S3 is asked again after 5 s, not by every waiting request in turn

History = dict[str, list[dict[str, Any]]]


class HistoryUnavailable(RuntimeError):
    """S3 could not be read, so the registry's history is unknown."""


@dataclass(frozen=True)
class _Answer:
    history: History | None
    error: str | None
    expires: float


class RegistryHistory:
    """Every complete version of each model with created_at, algorithm, metrics and a production flag.

    Manifests never change once written, so each is read from S3 once; a refresh lists the versions and
    reads the production pointers again.
    """

    def __init__(
        self,
        registry: Registry,
        ttl_s: float = HISTORY_TTL_S,
        failure_ttl_s: float = FAILURE_TTL_S,
        clock: Callable[[], float] = monotonic,
    ) -> None:
        self.registry = registry
        self.ttl_s = ttl_s
        self.failure_ttl_s = failure_ttl_s
        self.clock = clock
        self._answer: _Answer | None = None
        self._manifests: dict[tuple[str, str], Manifest] = {}
        self._lock = threading.Lock()  # one S3 read at a time; requests arriving meanwhile get its answer
        # Requests waiting for that read wait without a worker thread: a hung S3 must not use up the
        # threadpool that batch predictions and translations need.
        self.limiter = anyio.CapacityLimiter(1)

    def get(self) -> History:
        """The history, oldest version first per model; HistoryUnavailable when S3 cannot be read."""
        with self._lock:
            answer = self._answer
            if answer is None or self.clock() >= answer.expires:
                answer = self._refresh()
                self._answer = answer
        if answer.history is None:
            raise HistoryUnavailable(answer.error or "the model registry could not be read")
        return answer.history

    def _refresh(self) -> _Answer:
        try:
            history = {name: self._versions(name) for name in MODEL_NAMES}
        except (BotoCoreError, ClientError, OSError) as exc:
            log.warning("registry history unavailable: %s: %s", type(exc).__name__, exc)
            error = (
                f"the model registry on S3 cannot be read right now ({type(exc).__name__}); "
                "check S3 (./scripts/s3.sh status) and try again"
            )
            return _Answer(None, error, self.clock() + self.failure_ttl_s)
        return _Answer(history, None, self.clock() + self.ttl_s)

    def _versions(self, name: str) -> list[dict[str, Any]]:
        pointer = self.registry.pointer(name)
        production = pointer.version if pointer else None
        rows = []
        for version in self.registry.versions(name):
            manifest = self._manifest(name, version)
            if manifest is None:
                continue
            rows.append(
                {
                    "version": manifest.version,
                    "created_at": manifest.created_at,
                    "algorithm": manifest.algorithm,
                    "metrics": manifest.metrics,
                    "production": manifest.version == production,
                }
            )
        # Version ids start with their UTC time, so they break ties between equal created_at values.
        return sorted(rows, key=lambda r: (r["created_at"], r["version"]))

    def _manifest(self, name: str, version: str) -> Manifest | None:
        key = (name, version)
        if key not in self._manifests:
            try:
                self._manifests[key] = self.registry.manifest(name, version)
            except (RegistryError, ObjectNotFound, ValueError) as exc:  # ValueError: bad JSON or fields
                # Deleted since the listing, or not a manifest we can read: leave it out of the chart.
                log.warning("registry history skips %s %s: %s", name, version, exc)
                return None
        return self._manifests[key]
