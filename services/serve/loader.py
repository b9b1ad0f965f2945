"""Loading production model versions: from S3 (every file's sha256 checked), else from the local cache.

The candidates of running experiments are loaded beside them (services/serve/candidates.py), from S3 only.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from time import perf_counter
from typing import Any

import numpy as np
from botocore.exceptions import BotoCoreError

from services.core.catalog import Catalog
from services.core.features import Encoders, feature_names
from services.core.rating_model import MODEL_FILE, load_rating_model
from services.core.registry import Manifest, Registry, RegistryError
from services.serve.cache import ModelCache
from services.serve.candidates import Candidates, load_candidates
from services.serve.fast_xgboost import build_fast
from services.serve.state import NOT_LOADED, LoadedModels, RatingBundle, RecommenderBundle, Source

log = logging.getLogger(__name__)

RecommenderLoader = Callable[[dict[str, bytes]], Any]


class ReloadError(RuntimeError):
    """New versions could not be loaded; the server keeps serving what it had."""


@dataclass(frozen=True)
class LoadOutcome:
    """The models to serve (None when there are none) and why anything is missing or cached."""

    models: LoadedModels | None
    detail: str | None


def default_recommender_loader() -> RecommenderLoader | None:
    """The recommender runtime, imported only when a recommender version exists (it pulls in torch)."""
    try:
        from services.core.recommender_runtime import load_recommender
    except ImportError as exc:
        log.warning("a recommender is published but its runtime cannot be imported (%s)", exc)
        return None
    return load_recommender


class ModelLoader:
    """Builds LoadedModels from the registry's production pointers, falling back to the cache."""

    def __init__(
        self, registry: Registry, cache: ModelCache, recommender_loader: RecommenderLoader | None = None
    ) -> None:
        self.registry = registry
        self.cache = cache
        self.recommender_loader = recommender_loader

    def load(self, current: LoadedModels | None = None, *, allow_cache: bool) -> LoadOutcome:
        """Production versions from S3; a model S3 cannot give comes from the cache (startup) or the
        whole load fails with ReloadError (reload: keep serving what we have). Then the candidates of
        running experiments, unless production came from the cache (S3 unreliable: no experiment)."""
        start = perf_counter()
        bundles: dict[str, Any] = {}
        problems: list[str] = []
        s3_down = False
        for name in ("rating", "recommender"):
            if not s3_down:
                try:
                    bundles[name] = self._from_s3(name, current)
                    continue
                except Exception as exc:  # noqa: BLE001 - S3 down, corrupt version: all mean "not from S3"
                    s3_down = isinstance(exc, BotoCoreError | OSError)
                    problems.append(f"{name} from S3: {_describe(exc)}")
                    log.warning("could not load %s from S3: %s", name, _describe(exc))
            else:
                problems.append(f"{name} from S3: skipped, S3 unreachable")
            if not allow_cache:
                raise ReloadError("; ".join(problems))
            bundles[name] = self._from_cache(name, problems)
        rating, recommender = bundles["rating"], bundles["recommender"]
        if rating is None and recommender is None:
            return LoadOutcome(None, _nothing_detail(problems))
        candidates = Candidates()
        if all(b is None or b.source == "s3" for b in (rating, recommender)):
            previous_all = {n: current.bundles(n) for n in bundles} if current else {}
            candidates = load_candidates(self.registry, self.fetch, bundles, previous_all)
        candidate = candidates.bundles.get("recommender")
        models = LoadedModels(
            rating=rating,
            recommender=recommender,
            catalog=_merged_catalog(rating, recommender, candidate),
            loaded_at=datetime.now(UTC).isoformat(timespec="seconds"),
            load_seconds=round(perf_counter() - start, 3),
            recommender_candidate=candidate,
            rating_shadow=candidates.bundles.get("rating"),
            experiments=candidates.experiments,
        )
        notes = []
        if models.source == "cache":
            notes.append(f"serving the cached model because S3 could not be read ({'; '.join(problems)})")
        elif rating is None:
            notes.append(NOT_LOADED)
        return LoadOutcome(models, "; ".join(notes + candidates.problems) or None)

    def fetch(self, name: str, version: str, loaded: Sequence[Any] = ()) -> Any:
        """A verified bundle of one version: one already `loaded` when it is that version (no download),
        else from the cache's verified copy or S3 (every file's sha256 checked); None without a runtime."""
        for bundle in loaded:
            if bundle.manifest.version == version:
                return replace(bundle, source="s3")
        manifest = self.registry.manifest(name, version)
        files = self.cache.get(manifest)  # same version already cached and verified: skip the download
        if files is None:
            files = {f: self.registry.read_file(manifest, f) for f in manifest.files}  # sha256 checked
            self.cache.put(manifest, files)
        return self._build(name, manifest, files, "s3")

    # ---- one model ---------------------------------------------------------------------------
    def _from_s3(self, name: str, current: LoadedModels | None) -> Any:
        pointer = self.registry.pointer(name)
        if pointer is None:
            return None
        previous = getattr(current, name) if current else None
        if previous is not None and previous.manifest.version == pointer.version:
            return replace(previous, source="s3")  # unchanged: nothing to download
        # A promoted candidate is already in memory: fetch reuses it instead of downloading it again.
        bundle = self.fetch(name, pointer.version, current.bundles(name) if current else ())
        if bundle is None:
            return None
        self.cache.set_current(name, pointer.version)
        log.info("loaded %s %s from S3", name, pointer.version)
        return bundle

    def _from_cache(self, name: str, problems: list[str]) -> Any:
        version = self.cache.current(name)
        if version is None:
            return None
        try:
            manifest, files = self.cache.load(name, version)
            bundle = self._build(name, manifest, files, "cache")
        except Exception as exc:  # noqa: BLE001 - a bad cache is reported, never fatal
            problems.append(f"{name} from cache: {_describe(exc)}")
            log.error("cached %s %s unusable: %s", name, version, _describe(exc))
            return None
        log.warning("loaded %s %s from the local cache (%s)", name, version, self.cache.root)
        return bundle

    def _build(self, name: str, manifest: Manifest, files: dict[str, bytes], source: Source) -> Any:
        if name == "rating":
            return build_rating(manifest, files, source)
        loader = self.recommender_loader or default_recommender_loader()
        if loader is None:
            return None
        model = loader(files)
        _warm_up(model)
        catalog = Catalog(json.loads(files["catalog.json"])) if "catalog.json" in files else Catalog([])
        return RecommenderBundle(manifest, model, catalog, source)


def _warm_up(model: Any) -> None:
    """One ranking before traffic, as the rating model gets one: the first requests of a new version
    (a canary's first users among them) would otherwise pay for lazy allocations, and its arm's p99,
    which an experiment's latency guard reads, would be the warm-up's."""
    item_ids = getattr(model, "item_ids", None)
    if item_ids is not None and len(item_ids):
        model.recommend([int(item_ids[0])], 10)


def build_rating(manifest: Manifest, files: dict[str, bytes], source: Source) -> RatingBundle:
    """A ready-to-serve rating bundle; refuses a version whose files do not fit together."""
    algorithm = manifest.algorithm or ("lightgbm" if "model.txt" in files else "xgboost")
    if algorithm not in MODEL_FILE:
        raise RegistryError(f"rating {manifest.version}: unknown algorithm {algorithm!r}")
    missing = {MODEL_FILE[algorithm], "encoders.json", "catalog.json"} - set(files)
    if missing:
        raise RegistryError(f"rating {manifest.version}: missing {', '.join(sorted(missing))}")
    encoders = Encoders.from_json(json.loads(files["encoders.json"]))
    names = feature_names(encoders)
    if manifest.features and list(manifest.features) != names:
        raise RegistryError(f"rating {manifest.version}: manifest features differ from the encoders'")
    model = build_fast(load_rating_model(algorithm, files), len(names))
    # One prediction now: checks the model takes this many features and warms it up before traffic.
    model.predict(np.zeros((1, len(names))))
    catalog = Catalog(json.loads(files["catalog.json"]))
    return RatingBundle(manifest, model, encoders, tuple(names), catalog, source)


def _merged_catalog(
    rating: RatingBundle | None, recommender: RecommenderBundle | None, candidate: RecommenderBundle | None
) -> Catalog:
    # The candidate's movies too: what its arm shows must be found by /movies and accepted by /feedback.
    catalogs = [b.catalog for b in (recommender, candidate, rating) if b is not None]
    merged = catalogs[-1]
    for catalog in reversed(catalogs[:-1]):  # the earlier wins on conflicts: production's entries first
        merged = catalog.merged(merged)
    return merged


def _nothing_detail(problems: list[str]) -> str:
    if not problems:
        return NOT_LOADED
    return (
        "no model available: S3 could not be read and there is no usable cached model ("
        + "; ".join(problems)
        + "). Check S3 (./scripts/s3.sh status), run ./scripts/pipeline.sh, then POST /admin/reload"
    )


def _describe(exc: BaseException) -> str:
    return f"{type(exc).__name__}: {exc}"
