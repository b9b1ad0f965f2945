"""Every recommender on the leave-one-out protocol, side by side, as a markdown table.

Run from the repo root: ``./scripts/bench.sh recommend`` (or ``.venv/bin/python -m scripts.bench.recommend``).
Times are wall-clock and CPU seconds on this machine; other processes on the same cores slow
the wall clock, so both are printed.

When ``../shared/peers/`` holds the peers' per-user test top-10 lists (optional: the project
never needs it), they are scored with the same metrics module on the same test targets, and each
SASRec seed is compared with RecBole's SASRec, paired by user, with a bootstrap interval.

Then the item-cold-start table (scripts/bench/cold_start.py): movies nobody in training rated,
ranked by SASRec from their content, by the new shelf's blend, and by three baselines, with the
paired interval against the best baseline. ``--cold-validation`` first prints the validation
protocol's grid, which the defaults were chosen on.
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
import time
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path

import numpy as np
import pandas as pd

from scripts.bench import cold_start
from scripts.bench.paired import BOOTSTRAP_SEED, RESAMPLES, paired_table
from scripts.bench.record import write_record
from services.core.recommender_runtime import SequentialRecommender
from services.core.sasrec_config import SASRecConfig
from services.train.movies.snapshot import load_links, load_ratings
from services.train.recommender.baselines import fit_item_knn, fit_popularity
from services.train.recommender.data import SequenceSplits, build_interactions, load_snapshot_data
from services.train.recommender.item_features import fit_vocabulary, rows_for
from services.train.recommender.metrics import (
    evaluate,
    per_user_metrics,
    scores_from_top_lists,
    split_scores,
)
from services.train.recommender.train_sasrec import TrainConfig, train_sasrec

ROOT = Path(__file__).resolve().parents[2]
COLUMNS = ("hr", "ndcg", "mrr", "coverage")
PEERS = ROOT.parent / "shared" / "peers"
# Peer lists scored when present, as (file, row label); the first is the paired comparison's peer.
PEER_FILES = (
    ("recbole_sasrec_test_top10.csv", "RecBole SASRec (peer's lists)"),
    ("itemknn_test_top10.csv", "item-kNN (peer's lists)"),
    ("pop_test_top10.csv", "popularity (peer's lists)"),
)


def peer_top_lists(frame: pd.DataFrame, splits: SequenceSplits) -> tuple[list[np.ndarray], int]:
    """Each user's peer list (user_key,rank,tmdb_id rows) as catalog indices in splits' user order, and the unknown-id count."""
    index = {int(t): i + 1 for i, t in enumerate(splits.item_ids)}
    by_user = {int(u): rows.sort_values("rank")["tmdb_id"] for u, rows in frame.groupby("user_key")}
    lists, unknown = [], 0
    for user in splits.user_ids:
        ids = [int(t) for t in by_user.get(int(user), [])]
        unknown += sum(t not in index for t in ids)
        lists.append(np.array([index[t] for t in ids if t in index], dtype=np.int64))
    return lists, unknown


def load_peers(splits: SequenceSplits) -> tuple[dict[str, np.ndarray], str]:
    """Score matrices of the peers' test lists by row label, and a line saying what was read or why not."""
    if not (PEERS / PEER_FILES[0][0]).exists():
        return {}, f"peer comparison skipped: no {PEERS / PEER_FILES[0][0]}"
    results = PEERS / "results.json"
    theirs = json.loads(results.read_text()).get("split_fingerprint") if results.exists() else None
    ours = splits.sequence_fingerprint()
    if theirs is not None and theirs != ours:
        return {}, f"peer comparison skipped: their split {theirs[:16]} is not ours {ours[:16]}"
    scores, notes = {}, []
    for file, label in PEER_FILES:
        if (PEERS / file).exists():
            lists, unknown = peer_top_lists(pd.read_csv(PEERS / file), splits)
            scores[label] = scores_from_top_lists(lists, splits.n_items)
            notes.append(f"{file} ({unknown} unknown ids)")
    same = "same split fingerprint" if theirs else "no results.json to check the split"
    return scores, f"peers read from {PEERS}: {', '.join(notes)}; {same}"


def _timed(fit: Callable[[], SequentialRecommender]) -> tuple[SequentialRecommender, float, float]:
    wall, cpu = time.perf_counter(), time.process_time()
    rec = fit()
    return rec, time.perf_counter() - wall, time.process_time() - cpu


def main() -> None:
    """Parse options, fit and evaluate every model, print the table."""
    defaults = TrainConfig()
    parser = argparse.ArgumentParser(
        prog="python -m scripts.bench.recommend",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--snapshot", type=Path, default=ROOT / "data" / "snapshot", help="snapshot folder")
    parser.add_argument("--epochs", type=int, default=defaults.max_epochs, help="SASRec max epochs")
    parser.add_argument("--patience", type=int, default=defaults.patience, help="early-stopping patience")
    parser.add_argument(
        "--seed",
        type=int,
        nargs="+",
        default=[defaults.seed],
        help="SASRec seed(s); with several, one row each plus their mean (a test mean over 670 users "
        "has a standard error of about 0.009, so one seed says little about a small difference)",
    )
    parser.add_argument("--threads", type=int, default=defaults.threads, help="torch threads for training")
    parser.add_argument(
        "--time-budget",
        type=float,
        default=defaults.time_budget_s,
        help="SASRec wall-clock budget in seconds (0: none); the LR schedule shrinks to fit it",
    )
    parser.add_argument(
        "--no-item-features", action="store_true", help="SASRec without content item features"
    )
    parser.add_argument(
        "--id-dropout",
        type=float,
        default=defaults.id_dropout,
        help="share of movies whose id embedding each step leaves out (DropoutNet; 0: none)",
    )
    parser.add_argument(
        "--no-transition-prior", action="store_true", help="SASRec without the learned transition-count prior"
    )
    parser.add_argument("--skip-sasrec", action="store_true", help="only the baselines")
    parser.add_argument(
        "--feature-bias",
        action=argparse.BooleanOptionalAction,
        default=defaults.feature_bias,
        help="a learned per-movie score offset from its features",
    )
    parser.add_argument(
        "--cold-validation",
        action="store_true",
        help="first run the cold-start VALIDATION protocol over a grid of new-shelf weights (what the "
        "default weight was chosen on; one more SASRec per seed)",
    )
    parser.add_argument(
        "--new-pool-weight",
        type=float,
        default=defaults.new_pool_weight,
        help="the new shelf's vote-prior weight against the model's score",
    )
    parser.add_argument(
        "--skip-cold-start",
        action="store_true",
        help="leave out the item-cold-start table (one more SASRec per seed)",
    )
    parser.add_argument("-v", "--verbose", action="store_true", help="log every SASRec epoch")
    args = parser.parse_args()
    logging.basicConfig(level=logging.INFO if args.verbose else logging.WARNING, format="%(message)s")

    data = load_snapshot_data(args.snapshot)
    splits = data.splits
    stats = splits.stats()
    print(
        f"data: {stats} fingerprint {splits.fingerprint[:16]}, split fingerprint {splits.sequence_fingerprint()}"
    )
    peers, peer_note = load_peers(splits)
    print(peer_note)
    sasrec_rows: set[str] = set()  # the rows averaged into the mean-of-seeds row
    fits: list[tuple[str, Callable[[], SequentialRecommender]]] = [
        ("popularity", lambda: fit_popularity(splits)),
        ("item-kNN (cosine, 10)", lambda: fit_item_knn(splits)),
    ]
    notes = {}
    if not args.skip_sasrec:
        train_config = replace(
            defaults,
            max_epochs=args.epochs,
            patience=args.patience,
            threads=args.threads,
            time_budget_s=args.time_budget or None,
            item_features=not args.no_item_features,
            id_dropout=args.id_dropout,
            new_pool_weight=args.new_pool_weight,
            feature_bias=args.feature_bias,
            transition_prior=not args.no_transition_prior,
        )
        model_config = SASRecConfig(n_items=splits.n_items)
        movies = data.records()
        features = rows_for(splits.item_ids, movies, fit_vocabulary(movies.values()))

        def fit_sasrec(seed: int) -> SequentialRecommender:
            result = train_sasrec(splits, model_config, replace(train_config, seed=seed), features=features)
            cpu = sum(e.cpu_seconds for e in result.history)
            notes[f"sasrec seed {seed}"] = (
                f"best epoch {result.best_epoch} of {len(result.history)} run, stopped by {result.stopped_by}; "
                f"{cpu:.0f} s CPU in epochs ({cpu / len(result.history):.1f} s per epoch); "
                f"model {result.recommender.model.config.to_dict()}"
            )
            return result.recommender

        for seed in args.seed:
            name = f"SASRec (ours), seed {seed}"
            fits.append((name, lambda seed=seed: fit_sasrec(seed)))
            sasrec_rows.add(name)
        settings = {k: v for k, v in train_config.to_dict().items() if k != "seed"}
        print(f"sasrec training, seeds {args.seed}: {settings}")

    header = (
        ["model"] + [f"{s} {m}@10" for s in ("valid", "test") for m in COLUMNS] + ["train s (wall / cpu)"]
    )
    rows, sasrec_values, per_user, measured = [], [], {}, {}
    test_inputs, test_targets = splits.inputs("test"), splits.targets("test")
    for name, fit in fits:
        print(f"fitting {name} ...", file=sys.stderr, flush=True)  # SASRec takes minutes: say so
        rec, wall, cpu = _timed(fit)
        scored = {split: split_scores(rec, splits, split) for split in ("valid", "test")}
        values = [
            evaluate(scores, splits.targets(split), splits.inputs(split))[m]
            for split, scores in scored.items()
            for m in COLUMNS
        ]
        if name in sasrec_rows:
            sasrec_values.append((values, wall, cpu))
            per_user[name] = per_user_metrics(scored["test"], test_targets, test_inputs)
        rows.append([name, *(f"{v:.4f}" for v in values), f"{wall:.1f} / {cpu:.1f}"])
        measured[name] = {**dict(zip(header[1:-1], values, strict=True)), "train_wall_s": wall,
                          "train_cpu_s": cpu}  # fmt: skip
    if len(sasrec_values) > 1:
        mean = np.mean([v for v, _, _ in sasrec_values], axis=0)
        wall = np.mean([w for _, w, _ in sasrec_values])
        cpu = np.mean([c for _, _, c in sasrec_values])
        label = f"SASRec (ours), mean of {len(sasrec_values)} seeds"
        rows.append([label, *(f"{v:.4f}" for v in mean), f"{wall:.1f} / {cpu:.1f}"])
    table = [
        "| " + " | ".join(header) + " |",
        "|" + "---|" * len(header),
        *("| " + " | ".join(c) + " |" for c in rows),
    ]
    print("\n" + "\n".join(table))
    tables, verdicts = {"models": "\n".join(table)}, []
    figures = {"data": stats, "split_fingerprint": splits.sequence_fingerprint(), "models": measured,
               "notes": notes}  # fmt: skip
    for name, note in notes.items():
        print(f"\n{name}: {note}")
    if peers:
        print("\nPeers' test lists, scored here on the same test targets (valid not available):\n")
        peer_table = [
            "| model | test hr@10 | test ndcg@10 | test mrr@10 | test coverage@10 |",
            "|---|---|---|---|---|",
        ]
        for label, scores in peers.items():
            metrics = evaluate(scores, test_targets, test_inputs)
            peer_table.append(f"| {label} | " + " | ".join(f"{metrics[m]:.4f}" for m in COLUMNS) + " |")
        print("\n".join(peer_table))
        tables["peers"] = "\n".join(peer_table)
        tables["paired_peer"], verdicts = _print_paired(
            per_user, per_user_metrics(peers[PEER_FILES[0][1]], test_targets, test_inputs)
        )
    if not args.skip_cold_start:
        interactions = build_interactions(
            load_ratings(args.snapshot), load_links(args.snapshot), (m["id"] for m in data.movies)
        )
        cold = cold_start.run(
            data, interactions, None if args.skip_sasrec else train_config, args.seed, args.cold_validation
        )
        tables.update(cold["tables"])
        verdicts += cold["verdicts"]
        figures["cold_start"] = cold["figures"]
    write_record("recommend", sys.argv[1:], figures, verdicts, {k: v for k, v in tables.items() if v})


def _print_paired(
    ours: dict[str, dict[str, np.ndarray]], peer: dict[str, np.ndarray]
) -> tuple[str, list[dict]]:
    """Each SASRec seed minus the peer's SASRec, per user, with its bootstrap interval; the table and verdicts."""
    if not ours:
        return "", []
    print(
        f"\nPaired test differences, ours minus RecBole SASRec, mean over {len(peer['ndcg'])} users "
        f"[95% bootstrap interval, {RESAMPLES:,} resamples of users, seed {BOOTSTRAP_SEED}]:\n"
    )
    lines, verdicts = paired_table(
        ours, peer, "RecBole SASRec (test)", (("ndcg", "NDCG@10"), ("hr", "HR@10"))
    )
    print("\n".join(lines))
    return "\n".join(lines), verdicts


if __name__ == "__main__":
    main()
