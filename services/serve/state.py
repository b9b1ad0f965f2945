"""What the server is serving: an immutable snapshot of loaded models, swapped atomically on reload."""

from __future__ import annotations

import threading
from dataclasses import dataclass, field
from typing import Any, Literal

from services.core.catalog import Catalog
from services.core.experiments import Arm, Experiment, arm_of
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
    """Everything a request needs; never mutated, so a request holding it is unaffected by a reload.

    A candidate is here only when it loaded: `experiments` names those being served ({model: experiment}),
    so a request never finds an experiment without its candidate.
    """

    rating: RatingBundle | None
    recommender: RecommenderBundle | None
    catalog: Catalog
    loaded_at: str
    load_seconds: float
    recommender_candidate: RecommenderBundle | None = None  # the canary's candidate arm
    rating_shadow: RatingBundle | None = None  # scored beside production, logged, never returned
    experiments: dict[str, Experiment] = field(default_factory=dict)

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

    def bundles(self, model: str) -> tuple[Any, ...]:
        """The loaded bundles of one model (production, then its candidate): what a reload may reuse."""
        if model == "rating":
            return tuple(b for b in (self.rating, self.rating_shadow) if b is not None)
        return tuple(b for b in (self.recommender, self.recommender_candidate) if b is not None)

    def candidate_version(self, model: str) -> str | None:
        """The served candidate of 'rating' (its shadow) or 'recommender' (its canary), if any."""
        bundle = self.rating_shadow if model == "rating" else self.recommender_candidate
        return bundle.manifest.version if bundle else None

    def arm(self, user_id: str | None) -> tuple[Arm, Experiment | None]:
        """The recommender arm of a user, and the experiment it belongs to (None: no split for this one)."""
        experiment = self.experiments.get("recommender")
        if experiment is None or not user_id:
            return "production", None
        return arm_of(experiment.experiment_id, user_id, experiment.share), experiment


class ModelState:
    """The one mutable holder on app.state: readers take .current once, reloads replace it whole."""

    def __init__(self) -> None:
        self.current: LoadedModels | None = None
        self.detail: str | None = NOT_LOADED  # why nothing (or only a cached model) is served
        self.reload_lock = threading.Lock()  # one reload at a time; readers never take it
