"""Every recommender on the leave-one-out protocol, side by side, as a markdown table.

Run from the repo root: ``PYTHONPATH=. .venv/bin/python scripts/bench_recommend.py``.
Times are wall-clock and CPU seconds on this machine; other processes on the same cores slow
the wall clock, so both are printed.
"""

from __future__ import annotations

import argparse
import logging
import sys
import time
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path

import numpy as np

from services.core.recommender_runtime import SequentialRecommender
from services.core.sasrec import SASRecConfig
from services.train.recommender.baselines import fit_item_knn, fit_popularity
from services.train.recommender.data import load_snapshot_data
from services.train.recommender.metrics import evaluate_recommender
from services.train.recommender.train_sasrec import TrainConfig, train_sasrec

ROOT = Path(__file__).resolve().parents[1]
COLUMNS = ("hr", "ndcg", "mrr", "coverage")
# Test figures of the RecBole 1.2.1 side-by-side harness on this protocol (issue 4); not measured here.
REFERENCE = (
    ("popularity", "0.0597", "0.0321", "0.029", ""),
    ("item-kNN (cosine, 10)", "0.0701", "0.0425", "0.135", ""),
    ("SASRec (hidden 64, 2 layers, len 50, CE)", "0.1463", "0.0804", "0.362", "23 min"),
)


def _timed(fit: Callable[[], SequentialRecommender]) -> tuple[SequentialRecommender, float, float]:
    wall, cpu = time.perf_counter(), time.process_time()
    rec = fit()
    return rec, time.perf_counter() - wall, time.process_time() - cpu


def main() -> None:
    """Parse options, fit and evaluate every model, print the table."""
    defaults = TrainConfig()
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
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
        "--no-item-features", action="store_true", help="SASRec without genre/era/language item features"
    )
    parser.add_argument(
        "--no-transition-prior", action="store_true", help="SASRec without the learned transition-count prior"
    )
    parser.add_argument("--skip-sasrec", action="store_true", help="only the baselines")
    parser.add_argument("-v", "--verbose", action="store_true", help="log every SASRec epoch")
    args = parser.parse_args()
    logging.basicConfig(level=logging.INFO if args.verbose else logging.WARNING, format="%(message)s")

    data = load_snapshot_data(args.snapshot)
    splits = data.splits
    stats = splits.stats()
    print(f"data: {stats} fingerprint {splits.fingerprint[:16]}")
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
            transition_prior=not args.no_transition_prior,
        )
        model_config = SASRecConfig(n_items=splits.n_items)
        catalog = data.catalog()

        def fit_sasrec(seed: int) -> SequentialRecommender:
            result = train_sasrec(splits, model_config, replace(train_config, seed=seed), catalog=catalog)
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
    rows, sasrec_values = [], []
    for name, fit in fits:
        print(f"fitting {name} ...", file=sys.stderr, flush=True)  # SASRec takes minutes: say so
        rec, wall, cpu = _timed(fit)
        values = [evaluate_recommender(rec, splits, split)[m] for split in ("valid", "test") for m in COLUMNS]
        rows.append([name, *(f"{v:.4f}" for v in values), f"{wall:.1f} / {cpu:.1f}"])
        if name in sasrec_rows:
            sasrec_values.append((values, wall, cpu))
    if len(sasrec_values) > 1:
        mean = np.mean([v for v, _, _ in sasrec_values], axis=0)
        wall = np.mean([w for _, w, _ in sasrec_values])
        cpu = np.mean([c for _, _, c in sasrec_values])
        label = f"SASRec (ours), mean of {len(sasrec_values)} seeds"
        rows.append([label, *(f"{v:.4f}" for v in mean), f"{wall:.1f} / {cpu:.1f}"])
    print()
    print("| " + " | ".join(header) + " |")
    print("|" + "---|" * len(header))
    for cells in rows:
        print("| " + " | ".join(cells) + " |")
    for name, note in notes.items():
        print(f"\n{name}: {note}")
    print("\nReference, RecBole 1.2.1 on the same protocol (not measured here):\n")
    print("| model | test hr@10 | test ndcg@10 | test coverage@10 | train time |")
    print("|---|---|---|---|---|")
    for row in REFERENCE:
        print("| " + " | ".join(row) + " |")


if __name__ == "__main__":
    main()
