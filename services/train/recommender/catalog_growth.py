"""New movies in the recommender: items without interactions, scored from their content alone.

A trained SASRec knows the movies it was trained on. Every other movie with metadata (the
snapshot's unrated ones, every collected partition's) is appended after them with a zero id
embedding and its feature row, encoded with the vocabulary stored next to the weights
(``item_features.json``). When only the catalog grew since a published version, that version is
re-exported with the new movies appended, without retraining (``reexport``).
"""

from __future__ import annotations

import json
import logging
from collections.abc import Mapping
from typing import Any

import numpy as np
import torch

from services.core.catalog import Catalog
from services.core.new_pool import NewPoolBlend
from services.core.recommender_runtime import SequentialRecommender, load_recommender
from services.core.registry import Manifest, Registry, RegistryError
from services.core.sasrec_append import append_items
from services.train.recommender.item_features import VOTES_LOG, rows_for

log = logging.getLogger(__name__)

FEATURES_FILE = "item_features.json"


def features_file(names: tuple[str, ...]) -> bytes:
    """The stored vocabulary: feature names in column order."""
    return json.dumps({"format": 1, "names": list(names)}, ensure_ascii=False).encode()


def read_names(files: Mapping[str, bytes]) -> tuple[str, ...] | None:
    """The vocabulary of a version's files, or None when it has none (it cannot take new movies)."""
    if FEATURES_FILE not in files:
        return None
    return tuple(json.loads(files[FEATURES_FILE])["names"])


def can_grow(rec: SequentialRecommender) -> bool:
    """Whether a recommender can score movies it was not trained on (a sparse-feature SASRec)."""
    return rec.model is not None and bool(rec.model.config.feature_nnz)


def with_new_items(
    rec: SequentialRecommender,
    movies: Mapping[int, Mapping[str, Any]],
    names: tuple[str, ...],
    new_pool_weight: float | None = None,
) -> tuple[SequentialRecommender, list[int]]:
    """The recommender with every movie of ``movies`` it does not know appended, and their ids.

    ``new_pool_weight`` sets the new shelf's vote-prior weight (services/core/new_pool.py);
    None keeps the recommender's own setting.
    """
    new = sorted(t for t in movies if not rec.knows(t))
    if not can_grow(rec) or (not new and new_pool_weight is None):
        return rec, []
    blend_settings = rec.new_pool
    if new_pool_weight is not None:
        blend_settings = NewPoolBlend(new_pool_weight, names.index(VOTES_LOG)) if VOTES_LOG in names else None
    rows = rows_for(new, movies, names)
    assert rec.model is not None
    model = append_items(rec.model, *(torch.from_numpy(a) for a in (rows.crow, rows.col, rows.val)))
    grown = SequentialRecommender(
        rec.algorithm,
        np.r_[rec.item_ids, np.asarray(new, dtype=np.int64)],
        np.r_[rec.popularity, np.zeros(len(new))],  # no interactions: what makes them "new"
        model=model,
        new_pool=blend_settings,
    )
    return grown, new


def catalog_bytes(rec: SequentialRecommender, movies: Mapping[int, Mapping[str, Any]]) -> bytes:
    """catalog.json of the recommender's items (the serving host's titles, posters, genres)."""
    catalog = Catalog.from_movies([dict(movies[int(t)]) for t in rec.item_ids if int(t) in movies])
    return json.dumps(catalog.to_json(), ensure_ascii=False).encode()


def growth_base(registry: Registry, latest: Manifest, model_name: str) -> Manifest:
    """The version to re-export: production when there is one, else the latest published."""
    try:
        return registry.manifest(model_name)
    except RegistryError:
        return latest


def reexport(
    registry: Registry,
    base: Manifest,
    movies: Mapping[int, Mapping[str, Any]],
    *,
    logical_date: str,
) -> dict[str, Any] | None:
    """Publish base with the catalog's new movies appended; None when it has none to add or cannot."""
    files = {name: registry.read_file(base, name) for name in base.files}
    names = read_names(files)
    rec = load_recommender(files, num_threads=None)
    if names is None or not can_grow(rec):
        log.info("recommender %s cannot take new movies (%s)", base.version, rec.algorithm)
        return None
    grown, new = with_new_items(rec, movies, names)
    if not new:
        return None
    out = grown.save()
    out[FEATURES_FILE] = files[FEATURES_FILE]
    out["catalog.json"] = catalog_bytes(grown, movies)
    production = registry.production_version(base.model)
    promote = production == base.version
    reason = f"{len(new)} new movies appended to {base.version} without retraining"
    manifest = registry.publish(
        base.model,
        out,
        {
            **base.model_dump(include={"algorithm", "metrics", "params", "data_fingerprint", "wandb_run"}),
            "params": {**base.params, **grown.model.config.to_dict()},  # type: ignore[union-attr]
            "library_versions": base.library_versions,
            "notes": {
                **base.notes,
                "logical_date": logical_date,
                "reexported_from": base.version,
                "new_items": len(new),
            },
        },
        promote=promote,
        reason=reason,
        expected_production=production,  # refused if production moved since it was read
    )
    log.info("recommender %s: %s (promoted=%s)", manifest.version, reason, promote)
    return {
        "version": manifest.version,
        "algorithm": base.algorithm,
        "promoted": promote,
        "skipped": False,
        "reexported": True,
        "reason": reason,
        "data_fingerprint": base.data_fingerprint,
        "metrics": base.notes.get("candidates", {}),
    }
