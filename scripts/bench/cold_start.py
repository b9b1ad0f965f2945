"""The item-cold-start table of ``./scripts/bench.sh recommend``: movies nobody in training rated.

Protocol (docs/recommender.md, "Item cold start"): every interaction with the ~12% of movies
whose sha256(tmdb id) starts with 0 or 1 is withheld; SASRec trains on the rest (early stopping
on that split's ordinary validation targets), then takes the withheld movies as new items from
their content features alone, exactly as the pipeline appends collected movies
(``catalog_growth.with_new_items``). Each user's other movies are the input; only the withheld
movies are ranked. Printed beside the baselines, with the paired interval against the best one.
"""

from __future__ import annotations

import sys
import time
from collections.abc import Sequence
from dataclasses import replace
from typing import Any

import numpy as np

from scripts.bench.paired import BOOTSTRAP_SEED, RESAMPLES, paired_table
from services.core.new_pool import blend
from services.core.recommender_runtime import SequentialRecommender
from services.core.sasrec_config import SASRecConfig
from services.train.recommender.catalog_growth import with_new_items
from services.train.recommender.cold_start import (
    ColdSplit,
    baseline_table,
    build_cold_split,
    content_vectors,
    evaluate_cold,
    validation_split,
)
from services.train.recommender.data import SnapshotData
from services.train.recommender.item_features import fit_vocabulary, rows_for
from services.train.recommender.train_sasrec import TrainConfig, train_sasrec

LABELS = {
    "random": "random",
    "votes": "most TMDB votes",
    "content_knn": "content k-NN (cosine to the history)",
}


def model_scores(rec: SequentialRecommender, split: ColdSplit, weight: float | None = None) -> np.ndarray:
    """A recommender's (users, candidates) scores: each user's input scored once, withheld columns kept.

    With ``weight``, the new shelf's ranking instead: the model's score blended with the vote
    prior over the candidates (services/core/new_pool.py), as /recommend's "new" pool ranks.
    """
    columns = [rec.index[int(t)] for t in split.withheld]
    scores = rec.score_indices([rec.encode(inputs) for inputs in split.inputs])[:, columns]
    if weight is None:
        return scores
    assert rec.model is not None and rec.new_pool is not None
    return blend(scores, rec.new_pool.prior(rec.model)[columns], weight)


WEIGHT_GRID = (0.5, 1.0, 1.5, 2.0, 3.0)


def run(
    data: SnapshotData,
    table: Any,
    train_config: TrainConfig | None,
    seeds: Sequence[int],
    validation: bool = False,
) -> dict[str, Any]:
    """Print the cold-start table: baselines, SASRec per seed, paired differences with the best baseline.

    With ``validation``, first the same on the validation protocol (cold_start.validation_split)
    over a grid of new-shelf weights: the figures TrainConfig.new_pool_weight is chosen from.
    Returns what bench recommend records: {"tables": {name: markdown}, "verdicts": [...], "figures": {...}};
    tables "cold_start" and "cold_start_paired" (test protocol), "cold_start_validation[_paired]".
    """
    out: dict[str, Any] = {"tables": {}, "verdicts": [], "figures": {}}
    if validation:
        print("\n== Item cold start, VALIDATION protocol (for choosing the new-shelf weight) ==")
        _run_split(
            validation_split(table), data, train_config, seeds, WEIGHT_GRID, out, "cold_start_validation"
        )
        print("\n== Item cold start, TEST protocol ==")
    _run_split(build_cold_split(table), data, train_config, seeds, (), out, "cold_start")
    return out


def _run_split(
    split: ColdSplit,
    data: SnapshotData,
    train_config: TrainConfig | None,
    seeds: Sequence[int],
    grid: Sequence[float],
    out: dict[str, Any],
    name: str,
) -> None:
    movies = data.records()
    names = fit_vocabulary(movies.values())
    stats = split.stats()
    print(
        f"\nItem cold start: {stats['candidates']} withheld movies ranked for {stats['users']} users "
        f"({stats['targets']:,} targets, {stats['mean_targets']:.1f} per user); training keeps "
        f"{stats['train_users']} users and {stats['train_items']} movies; split {split.fingerprint()[:16]}"
    )
    ids = sorted({int(t) for t in split.withheld} | {int(t) for s in split.inputs for t in s})
    results: dict[str, dict[str, Any]] = {
        LABELS[name]: result
        for name, result in baseline_table(split, data.movies, content_vectors(ids, movies, names)).items()
    }
    ours: list[str] = []
    notes = []
    for seed in seeds if train_config is not None else ():
        assert train_config is not None
        print(f"fitting SASRec on the cold split, seed {seed} ...", file=sys.stderr, flush=True)
        wall, cpu = time.perf_counter(), time.process_time()
        warm = split.train
        result = train_sasrec(
            warm,
            SASRecConfig(n_items=warm.n_items),
            replace(train_config, seed=seed),
            features=rows_for(warm.item_ids, movies, names),
        )
        weight = train_config.new_pool_weight
        grown, new = with_new_items(
            result.recommender, {int(t): movies[int(t)] for t in split.withheld}, names, weight
        )
        label = f"SASRec (ours, features only), seed {seed}"
        results[label] = evaluate_cold(model_scores(grown, split), split)
        ours.append(label)
        for w in sorted({*grid, weight}):
            mark = " (the default)" if w == weight else ""
            blended = f"SASRec + vote prior, weight {w:g}{mark} (the new shelf), seed {seed}"
            results[blended] = evaluate_cold(model_scores(grown, split, w), split)
            ours.append(blended)
        notes.append(
            f"seed {seed}: best epoch {result.best_epoch} of {len(result.history)} ({result.stopped_by}), "
            f"{len(new)} movies appended, {time.perf_counter() - wall:.0f} s wall / {time.process_time() - cpu:.0f} s CPU"
        )
    lines = ["| model | Recall@10 (± s.e.) | NDCG@10 (± s.e.) |", "|---|---|---|"]
    lines += [f"| {label} | {r['recall_mean']:.4f} ± {r['recall_se']:.4f} | {r['ndcg_mean']:.4f} ± {r['ndcg_se']:.4f} |"
              for label, r in results.items()]  # fmt: skip
    print("\n" + "\n".join(lines))
    out["tables"][name] = "\n".join(lines)
    out["figures"][name] = {"split": {**stats, "fingerprint": split.fingerprint()}, "notes": notes,
                            "models": {k: {m: v for m, v in r.items() if m != "per_user"} for k, r in results.items()}}  # fmt: skip
    for note in notes:
        print(f"\n{note}")
    baselines = [LABELS[n] for n in LABELS]
    best = max(baselines, key=lambda b: results[b]["ndcg_mean"])
    if not ours:
        return
    print(
        f"\nPaired cold-start differences, ours minus {best} (the best baseline), mean over "
        f"{split.n_users} users [95% bootstrap interval, {RESAMPLES:,} resamples of users, seed {BOOTSTRAP_SEED}]:\n"
    )
    against = f"{best} ({name.replace('_', ' ')})"
    paired, verdicts = paired_table({label: results[label]["per_user"] for label in ours},
                                    results[best]["per_user"], against, (("ndcg", "NDCG@10"), ("recall", "Recall@10")))  # fmt: skip
    print("\n".join(paired))
    out["tables"][f"{name}_paired"] = "\n".join(paired)
    out["verdicts"] += verdicts
