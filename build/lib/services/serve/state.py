"""What the server is serving: an immutable snapshot of loaded models, swapped atomically on reload."""

from __future__ import annotations

import threading
from dataclasses import dataclass
from typing import Any, Literal

from services.core.catalog import Catalog
from services.core.features import Encoders
from services.core.rating_model import RatingPredictor
from services.core.registry import Manifest

Source = Literal["s3", "cache"]

NOT_LOADED = (
    "no rating model is loaded: run ./scripts/pipeline.sh to train and publish one, "
    "then POST /admin/reload (or restart the server)"
)


@dataclass(frozen=True)
class RatingBundle:
    """A verified rating model version with its encoders and catalog."""

    manifest: Manifest
    model: RatingPredictor
    encoders: Encoders
    feature_names: tuple[str, ...]
    catalog: Catalog
    source: Source


@dataclass(frozen=True)
class RecommenderBundle:
    """A verified recommender version and the catalog it was trained with."""

    manifest: Manifest
    model: Any
    catalog: Catalog
    source: Source


@dataclass(frozen=True)
class LoadedModels:
    """Everything a request needs; never mutated, so a request holding it is unaffected by a reload."""

    rating: RatingBundle | None
    recommender: RecommenderBundle | None
    catalog: Catalog
    loaded_at: str
    load_seconds: float

    @property
    def source(self) -> Source | None:
        """'cache' when any model came from the local cache, 's3' when all came from S3."""
        sources = {b.source for b in (self.rating, self.recommender) if b is not None}
        return "cache" if "cache" in sources else ("s3" if sources else None)

    @property
    def ready(self) -> bool:
        """Whether the rating model, the one every replica must have, is loaded."""
        return self.rating is not None

    def version(self, model: str) -> str | None:
        """The served version of 'rating' or 'recommender'."""
        bundle = self.rating if model == "rating" else self.recommender
        return bundle.manifest.version if bundle else None


class ModelState:
    """The one mutable holder on app.state: readers take .current once, reloads replace it whole."""

    def __init__(self) -> None:
        self.current: LoadedModels | None = None
        self.detail: str | None = NOT_LOADED  # why nothing (or only a cached model) is served
        self.reload_lock = threading.Lock()  # one reload at a time; readers never take it
