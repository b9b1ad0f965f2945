"""The rating candidates against the reference recipe on later releases, side by side.

Run from the repo root: ``./scripts/bench.sh rating`` (or ``.venv/bin/python -m
scripts.bench.rating``). The data takes the pipeline's own path for its first run: snapshot ->
the feed's backfill (all but the most recent releases) -> normalize_movie -> validate -> labelled
-> time_split. The test split (the most recent ~10% of labelled movies) is touched only to score.
The recipe is trained on the same training rows as our candidates; "ratio" is a candidate's test
RMSE over the recipe's (the target is <= 0.90). With --ablation, feature groups are measured on
the pipeline split and on rolling-origin windows inside the training period.
"""

from __future__ import annotations

import argparse
import json
import logging
import statistics
import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from scripts.bench.record import write_record
from services.core.features import (
    LEARNED_FEATURES,
    Encoders,
    check_leakage,
    featurize,
    featurize_one,
    fit_encoders,
)
from services.core.settings import Settings
from services.train.rating.data import Matrices, Split, build_matrices, first_run_rows, targets, time_split
from services.train.rating.models import regression_metrics, train_candidate
from services.train.rating.reference_recipe import train_recipe
from services.train.rating.select import choose_challenger

ROOT = Path(__file__).resolve().parents[2]
TARGET_RATIO = 0.90
ALGORITHMS = ("xgboost", "lightgbm", "random_forest", "mean")


def _row(name: str, val: dict[str, float], test: dict[str, float], recipe_rmse: float) -> str:
    return (
        f"| {name} | {val['rmse']:.4f} | {test['rmse']:.4f} | {test['rmse'] / recipe_rmse:.3f} "
        f"| {test['mae']:.4f} | {test['within_0_5']:.1%} |"
    )


def _split_metrics(pred: Callable[[str], np.ndarray], split: Split) -> dict[str, dict[str, float]]:
    return {s: regression_metrics(targets(getattr(split, s)), pred(s)) for s in ("val", "test")}


def _latency(movies: Sequence[dict[str, Any]], enc: Encoders) -> tuple[float, float]:
    """featurize_one p50 and p99 in ms, with encoders that went through JSON like serving's."""
    served = Encoders.from_json(json.loads(json.dumps(enc.to_json())))
    times = []
    for m in movies:
        t = time.perf_counter()
        featurize_one(m, served)
        times.append((time.perf_counter() - t) * 1000)
    p50, p99 = np.percentile(times, [50, 99])
    return float(p50), float(p99)


def compare(split: Split, title: str, algorithms: Sequence[str], seed: int, max_gap: float) -> dict[str, Any]:
    """Train the recipe and every candidate on split.train; print the table; its figures, table and verdict."""
    sizes = split.sizes()
    print(f"\n## {title}\n")
    print(
        f"rows: train {sizes['train']} (to {split.train[-1]['release_date']}), "
        f"val {sizes['val']} ({split.val[0]['release_date']} .. {split.val[-1]['release_date']}), "
        f"test {sizes['test']} ({split.test[0]['release_date']} .. {split.test[-1]['release_date']})\n"
    )
    recipe = train_recipe(split.train, seed=seed)
    recipe_m = _split_metrics(lambda s: recipe.predict(getattr(split, s)), split)
    enc = fit_encoders(split.train)
    check_leakage(split.train, enc)
    m = build_matrices(split, enc)
    candidates = [train_candidate(a, m, seed=seed) for a in algorithms]
    picked = choose_challenger(
        [{"algorithm": c.algorithm, "metrics": c.metrics} for c in candidates], max_gap
    )
    base = recipe_m["test"]["rmse"]
    table = [
        "| model | val RMSE | test RMSE | test / recipe | test MAE | test within ±0.5 |",
        "|---|---|---|---|---|---|",
        _row("reference recipe (5 features, XGBoost 200 trees)", recipe_m["val"], recipe_m["test"], base),
    ]
    models = {"reference recipe": recipe_m}
    for c in candidates:
        val, test = (
            {k[len(s) + 1 :]: v for k, v in c.metrics.items() if k.startswith(s + "_")}
            for s in ("val", "test")
        )
        name = "mean predictor" if c.algorithm == "mean" else c.algorithm
        mark = " **(selected)**" if c.algorithm == picked["algorithm"] else ""
        table.append(_row(name + mark, val, test, base))
        models[c.algorithm] = {"val": val, "test": test}
    print("\n".join(table))
    chosen = next(c for c in candidates if c.algorithm == picked["algorithm"])
    ratio = chosen.metrics["test_rmse"] / base
    met = ratio <= TARGET_RATIO
    p50, p99 = _latency(split.test, enc)
    print(
        f"\nselected {chosen.algorithm} ({picked['why']}): test RMSE {chosen.metrics['test_rmse']:.4f} vs recipe "
        f"{base:.4f}, ratio {ratio:.3f} (target <= {TARGET_RATIO}): {'MET' if met else 'NOT MET'}"
    )
    print(f"featurize_one on the test rows: p50 {p50:.2f} ms, p99 {p99:.2f} ms; {len(m.names)} features")
    figures = {"title": title, "rows": sizes, "models": models, "selected": chosen.algorithm, "why": picked["why"],
               "test_rmse": chosen.metrics["test_rmse"], "recipe_test_rmse": base, "ratio": ratio,
               "featurize_one_ms": {"p50": p50, "p99": p99}, "features": len(m.names)}  # fmt: skip
    verdict = {"claim": f"test RMSE / reference recipe's, {title}", "target": f"<= {TARGET_RATIO}",
               "value": round(ratio, 3), "low": None, "high": None, "verdict": "met" if met else "not met"}  # fmt: skip
    return {"met": met, "figures": figures, "table": "\n".join(table), "verdict": verdict}


# --- ablation ---------------------------------------------------------------------------------------------
VARIANTS: dict[str, tuple[tuple[str, ...], bool]] = {
    # label: (learned features kept, out-of-fold training rows)
    "feature set 1 (no learned features)": ((), True),
    "+ text signal": (("text_signal",), True),
    "+ track records": (tuple(f for f in LEARNED_FEATURES if f != "text_signal"), True),
    "+ both = feature set 2 (production)": (LEARNED_FEATURES, True),
    "feature set 2, training rows in-fold (no OOF)": (LEARNED_FEATURES, False),
}


def _columns(m: Matrices, keep: Sequence[str]) -> Matrices:
    idx = [i for i, n in enumerate(m.names) if n not in LEARNED_FEATURES or n in keep]
    return Matrices(m.encoders, [m.names[i] for i in idx], {s: x[:, idx] for s, x in m.x.items()}, m.y)


def _windows(split: Split, n: int) -> list[tuple[str, Split]]:
    """The pipeline split, then n rolling-origin splits inside its training period (newest first)."""
    out = [("pipeline split", split)]
    width = len(split.test)
    for j in range(n):
        prefix = split.train[: len(split.train) - j * width]
        frac = width / len(prefix)
        out.append((f"window {j + 1}", time_split(prefix, val_frac=frac, test_frac=frac)))
    return out


def ablation(split: Split, n_windows: int, seed: int) -> str:
    """LightGBM on each feature variant, on the pipeline split and on backtest windows."""
    results: dict[str, list[tuple[float, float, float]]] = {v: [] for v in VARIANTS}
    names = []
    for name, part in _windows(split, n_windows):
        names.append(f"{name} (test {part.test[0]['release_date'][:7]}..{part.test[-1]['release_date'][:7]})")
        recipe = train_recipe(part.train, seed=seed)
        recipe_rmse = regression_metrics(targets(part.test), recipe.predict(part.test))["rmse"]
        enc = fit_encoders(part.train)
        full = build_matrices(part, enc)
        in_fold = Matrices(enc, full.names, {**full.x, "train": featurize(part.train, enc)}, full.y)
        for label, (keep, oof) in VARIANTS.items():
            cand = train_candidate("lightgbm", _columns(full if oof else in_fold, keep), seed=seed)
            results[label].append((cand.metrics["val_rmse"], cand.metrics["test_rmse"], recipe_rmse))
        print(f"  done: {names[-1]}", flush=True)
    print("\n## Ablation (LightGBM, default params; RMSE, ratio = test RMSE / recipe's on the same rows)\n")
    head = " | ".join(f"{n}: val / test / ratio" for n in names)
    table = [
        f"| variant | {head} | backtest mean test | backtest mean ratio |",
        "|---" * (len(names) + 3) + "|",
    ]
    for label, rows in results.items():
        cells = " | ".join(f"{v:.4f} / {t:.4f} / {t / r:.3f}" for v, t, r in rows)
        back = rows[1:] or rows
        mean_test = statistics.mean(t for _, t, _ in back)
        mean_ratio = statistics.mean(t / r for _, t, r in back)
        table.append(f"| {label} | {cells} | {mean_test:.4f} | {mean_ratio:.3f} |")
    print("\n".join(table))
    return "\n".join(table)


def main() -> None:
    """Parse options, build the split(s), print the comparison and optionally the ablation."""
    settings = Settings(_env_file=None)
    parser = argparse.ArgumentParser(
        prog="python -m scripts.bench.rating",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--snapshot", type=Path, default=ROOT / "data" / "snapshot", help="snapshot folder")
    parser.add_argument(
        "--holdback",
        type=int,
        default=settings.snapshot_backfill_holdback,
        help="most recent releases the first run does not see (default: the pipeline's)",
    )
    parser.add_argument("--full", action="store_true", help="also report on the whole snapshot (holdback 0)")
    parser.add_argument("--seed", type=int, default=42, help="seed of every model, the recipe's included")
    parser.add_argument("--algorithms", nargs="+", default=list(ALGORITHMS), choices=ALGORITHMS)
    parser.add_argument("--ablation", action="store_true", help="also measure each feature group (~5 min)")
    parser.add_argument("--windows", type=int, default=3, help="backtest windows for --ablation")
    parser.add_argument("--strict", action="store_true", help="exit 1 when the target ratio is not met")
    parser.add_argument("-v", "--verbose", action="store_true", help="log each candidate as it trains")
    args = parser.parse_args()
    logging.basicConfig(level=logging.INFO if args.verbose else logging.WARNING, format="%(message)s")

    print(
        f"min_vote_count {settings.min_vote_count}, max_generalization_gap {settings.max_generalization_gap}"
    )
    runs = [(args.holdback, f"pipeline first run (holdback {args.holdback})")]
    if args.full and args.holdback != 0:
        runs.append((0, "whole snapshot (holdback 0)"))
    results = []
    first_split = None
    for holdback, title in runs:
        split = time_split(first_run_rows(args.snapshot, holdback, settings.min_vote_count))
        first_split = first_split or split
        results.append(compare(split, title, args.algorithms, args.seed, settings.max_generalization_gap))
    # Table names a marker can use: "comparison" (the pipeline's first run), "whole", "ablation".
    tables = {name: r["table"] for name, r in zip(("comparison", "whole"), results, strict=False)}
    if args.ablation and first_split is not None:
        tables["ablation"] = ablation(first_split, args.windows, args.seed)
    figures = {"min_vote_count": settings.min_vote_count, "runs": [r["figures"] for r in results]}
    write_record("rating", sys.argv[1:], figures, [r["verdict"] for r in results], tables)
    if args.strict and not all(r["met"] for r in results):
        raise SystemExit(1)


if __name__ == "__main__":
    main()
