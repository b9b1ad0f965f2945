"""Fixes from the rating model's error analysis, each against today's model on the time holdout.

Run from the repo root: ``./scripts/bench.sh rating-fixes`` (or ``.venv/bin/python -m
scripts.bench.rating_fixes``). The data takes the pipeline's first-run path, as ``bench.sh rating``:
snapshot -> feed backfill -> normalize -> validate -> labelled -> time_split (train / val / test);
the test split, the most recent ~10% of labelled releases, is the holdout.

1. Each fix's setting (k of the weights, the calibrator, the SVD size) is chosen on rolling-origin
   windows inside the training period only: each window trains on its older rows, stops on its
   validation rows and is scored on its own test rows, all released before the pipeline's validation.
2. Each fix with its chosen setting is trained once on the pipeline split the way the pipeline trains
   (every algorithm, the challenger picked on validation) and scored on the holdout; so is today's
   model. The difference (fix - today) gets a paired bootstrap 95% interval over holdout movies.
3. The fixes whose chosen setting beat today's model on the windows are combined and measured the same way.

A fix is worth keeping when its interval lies below zero. The holdout is scored once per configuration
and never used to choose anything. Per-request costs of new feature code are timed on the holdout rows.
"""

from __future__ import annotations

import argparse
import logging
import sys
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np

from scripts.bench.rating_fix_text import fit_svd_text, per_request_us
from scripts.bench.record import write_record
from services.core.features import fit_encoders
from services.core.rating_model import load_rating_model
from services.core.settings import Settings
from services.train.rating.data import (
    Matrices,
    Split,
    build_matrices,
    first_run_rows,
    refit_split,
    time_split,
)
from services.train.rating.models import rmse, train_candidate
from services.train.rating.select import choose_challenger

ROOT = Path(__file__).resolve().parents[2]
ALGORITHMS = ("xgboost", "lightgbm", "random_forest", "mean")
TARGET_RMSE = 0.69


def emit(table: list[str], line: str) -> None:
    """Print a table's line as it is measured (a run takes long) and keep it for the record."""
    print(line, flush=True)
    table.append(line)


@dataclass(frozen=True)
class Variant:
    """One configuration of the training: today's model is the one with every field at its default."""

    label: str
    weight_k: float | None = None  # label-noise weights n / (n + k), n the label's vote count
    svd_dims: int = 0  # TF-IDF + SVD text columns appended to the features
    calibrate: str = ""  # "linear" or "isotonic", fitted on the challenger's validation predictions
    refit: bool = False  # refit the challenger on train + val with the rounds validation chose


TODAY = Variant("today's model")
# Each fix (its --fixes name) and the settings the windows choose among.
FAMILIES: dict[str, list[Variant]] = {
    "weights": [Variant(f"label-noise weights n/(n+{k})", weight_k=float(k)) for k in (5, 10, 20, 50, 100)],
    "calibration": [Variant("linear stretch", calibrate="linear"), Variant("isotonic", calibrate="isotonic")],
    "svd": [Variant(f"TF-IDF + SVD {d}", svd_dims=d) for d in (8, 16, 32)],
    "refit": [Variant("refit on train + val", refit=True)],
}


class Prepared:
    """One split's feature matrices, built once per (SVD size, refit) and shared by the variants."""

    def __init__(self, split: Split) -> None:
        self.split = split
        self._cache: dict[tuple[int, bool], Matrices] = {}

    def matrices(self, svd_dims: int, refit: bool) -> Matrices:
        """Encoders (and SVD) fitted on the training rows of the split, or of train + val for a refit."""
        key = (svd_dims, refit)
        if key not in self._cache:
            part = refit_split(self.split) if refit else self.split
            m = build_matrices(part, fit_encoders(part.train))
            if svd_dims:
                svd = fit_svd_text(part.train, svd_dims)
                extra = {s: svd.rows(getattr(part, s)) for s in m.x}
                names = [*m.names, *(f"text_svd_{i}" for i in range(svd_dims))]
                m = Matrices(m.encoders, names, {s: np.hstack([m.x[s], extra[s]]) for s in m.x}, m.y)
            self._cache[key] = m
        return self._cache[key]


def _weighted(m: Matrices, rows: Sequence[dict[str, Any]], k: float | None) -> Matrices:
    if k is None:
        return m
    n = np.asarray([float(r["vote_count"]) for r in rows])
    return replace(m, w={"train": n / (n + k)})


def _calibrator(kind: str, p_val: np.ndarray, y_val: np.ndarray) -> Callable[[np.ndarray], np.ndarray]:
    if kind == "linear":
        slope, intercept = np.polyfit(p_val, y_val, 1)
        return lambda p: np.clip(intercept + slope * p, 0.0, 10.0)
    from sklearn.isotonic import IsotonicRegression

    return IsotonicRegression(out_of_bounds="clip").fit(p_val, y_val).predict


def run(
    v: Variant, prep: Prepared, algorithms: Sequence[str], seed: int, max_gap: float
) -> tuple[np.ndarray, str]:
    """Train every algorithm as the pipeline does, pick the challenger on validation; its test predictions."""
    split = prep.split
    m = _weighted(prep.matrices(v.svd_dims, False), split.train, v.weight_k)
    refit = None
    if v.refit:
        refit = _weighted(prep.matrices(v.svd_dims, True), refit_split(split).train, v.weight_k)
    cands = [train_candidate(a, m, seed=seed, refit=refit) for a in algorithms]
    picked = choose_challenger([{"algorithm": c.algorithm, "metrics": c.metrics} for c in cands], max_gap)
    chosen = next(c for c in cands if c.algorithm == picked["algorithm"])
    model = load_rating_model(chosen.algorithm, chosen.files)
    pred = model.predict((refit or m).x["test"])
    if v.calibrate:
        # Fitted on validation predictions: a refitted model has seen those rows, so the two do not mix.
        if v.refit:
            raise ValueError("calibration needs the validated (not refitted) model's validation predictions")
        pred = _calibrator(v.calibrate, model.predict(m.x["val"]), m.y["val"])(pred)
    return pred, chosen.algorithm


def windows(split: Split, n: int) -> list[Split]:
    """n rolling-origin splits inside split.train (newest first), each test as wide as the holdout."""
    width = len(split.test)
    out = []
    for j in range(n):
        prefix = split.train[: len(split.train) - j * width]
        frac = width / len(prefix)
        out.append(time_split(prefix, val_frac=frac, test_frac=frac))
    return out


def paired_interval(
    y: np.ndarray, base: np.ndarray, fix: np.ndarray, n_boot: int, seed: int
) -> tuple[float, float, float]:
    """RMSE(fix) - RMSE(base) on the rows, and its 95% bootstrap interval (movies resampled, paired)."""
    rng = np.random.default_rng(seed)
    idx = rng.integers(0, len(y), size=(n_boot, len(y)))
    e_base, e_fix = (base - y) ** 2, (fix - y) ** 2
    diffs = np.sqrt(e_fix[idx].mean(axis=1)) - np.sqrt(e_base[idx].mean(axis=1))
    lo, hi = np.percentile(diffs, [2.5, 97.5])
    return rmse(y, fix) - rmse(y, base), float(lo), float(hi)


def choose(prepared: list[Prepared], families: Sequence[str], algorithms: Sequence[str], seed: int, max_gap: float,
           table: list[str]) -> dict[str, tuple[Variant, float]]:  # fmt: skip
    """Each family's setting with the lowest mean window RMSE (today's model under key ""); rows go to table."""

    def score(v: Variant) -> list[float]:
        return [rmse(targets_of(p.split.test), run(v, p, algorithms, seed, max_gap)[0]) for p in prepared]

    heads = " | ".join(f"w{i + 1} test {p.split.test[0]['release_date'][:7]}..{p.split.test[-1]['release_date'][:7]}"
                       for i, p in enumerate(prepared))  # fmt: skip
    print("\n## Choosing on the windows (RMSE on each window's own test rows)\n")
    emit(table, f"| variant | {heads} | mean |")
    emit(table, "|---" * (len(prepared) + 2) + "|")
    base = score(TODAY)
    emit(table, f"| {TODAY.label} | {' | '.join(f'{x:.4f}' for x in base)} | {np.mean(base):.4f} |")
    chosen: dict[str, tuple[Variant, float]] = {"": (TODAY, float(np.mean(base)))}
    for family in families:
        for v in FAMILIES[family]:
            s = score(v)
            emit(table, f"| {v.label} | {' | '.join(f'{x:.4f}' for x in s)} | {np.mean(s):.4f} |")
            if family not in chosen or np.mean(s) < chosen[family][1]:
                chosen[family] = (v, float(np.mean(s)))
    return chosen


def targets_of(rows: Sequence[dict[str, Any]]) -> np.ndarray:
    """vote_average of each row."""
    return np.asarray([float(r["vote_average"]) for r in rows])


def combine(variants: Sequence[Variant]) -> Variant:
    """One variant with every given fix switched on (calibration dropped when a refit is among them)."""
    out = Variant(" + ".join(v.label for v in variants))
    for v in variants:
        out = replace(out, **{f: getattr(v, f) for f in ("weight_k", "svd_dims", "calibrate", "refit")
                              if getattr(v, f) != getattr(TODAY, f)})  # fmt: skip
    return replace(out, calibrate="") if out.refit else out


def main() -> None:
    """Choose each fix's setting on the windows, then score today's model and each fix once on the holdout."""
    settings = Settings(_env_file=None)
    parser = argparse.ArgumentParser(
        prog="python -m scripts.bench.rating_fixes",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--snapshot", type=Path, default=ROOT / "data" / "snapshot", help="snapshot folder")
    parser.add_argument("--holdback", type=int, default=settings.snapshot_backfill_holdback,
                        help="most recent releases the first run does not see (default: the pipeline's)")  # fmt: skip
    parser.add_argument("--windows", type=int, default=4, help="rolling-origin windows to choose settings on")
    parser.add_argument("--boot", type=int, default=10_000, help="bootstrap resamples of the holdout movies")
    parser.add_argument(
        "--seeds", type=int, default=1, help="also repeat the holdout comparison with more seeds"
    )
    parser.add_argument(
        "--fixes", nargs="+", default=list(FAMILIES), choices=list(FAMILIES), help="fixes to measure"
    )
    parser.add_argument("--algorithms", nargs="+", default=list(ALGORITHMS), choices=ALGORITHMS)
    parser.add_argument("-v", "--verbose", action="store_true", help="log each candidate as it trains")
    args = parser.parse_args()
    logging.basicConfig(level=logging.INFO if args.verbose else logging.WARNING, format="%(message)s")
    seed, gap = 42, settings.max_generalization_gap

    split = time_split(first_run_rows(args.snapshot, args.holdback, settings.min_vote_count))
    sizes = split.sizes()
    print(f"rows: train {sizes['train']} (to {split.train[-1]['release_date']}), val {sizes['val']}, "
          f"holdout {sizes['test']} ({split.test[0]['release_date']} .. {split.test[-1]['release_date']})")  # fmt: skip
    tables: dict[str, list[str]] = {"windows": [], "holdout": []}
    chosen = choose([Prepared(w) for w in windows(split, args.windows)], args.fixes, args.algorithms, seed, gap,
                    tables["windows"])  # fmt: skip
    today_windows = chosen.pop("")[1]
    winners = [v for v, s in chosen.values() if s < today_windows]
    configs = [(f, v, s) for f, (v, s) in chosen.items()]
    both = combine(winners)
    if len(winners) > 1 and both not in [replace(v, label=both.label) for v in winners]:
        configs.append(("combined", both, float("nan")))

    y = targets_of(split.test)
    prep = Prepared(split)
    print("\n## Holdout (each configuration scored once; interval: paired bootstrap over holdout movies)\n")
    holdout = tables["holdout"]
    emit(holdout, "| fix | setting (chosen on windows) | windows mean | challenger | holdout RMSE | fix - today "
         "| 95% interval | verdict |")  # fmt: skip
    emit(holdout, "|---|---|---|---|---|---|---|---|")
    base, algo = run(TODAY, prep, args.algorithms, seed, gap)
    emit(holdout, f"| today | - | {today_windows:.4f} | {algo} | {rmse(y, base):.4f} | | | |")
    results, verdicts = [], []
    for family, v, s in configs:
        pred, algo = run(v, prep, args.algorithms, seed, gap)
        diff, lo, hi = paired_interval(y, base, pred, args.boot, seed)
        verdict = "keep" if hi < 0 else ("worse" if lo > 0 else "no clear effect")
        results.append((v, diff, hi))
        emit(holdout, f"| {family} | {v.label} | {s:.4f} | {algo} | {rmse(y, pred):.4f} | {diff:+.4f} "
                      f"| [{lo:+.4f}, {hi:+.4f}] | {verdict} |")  # fmt: skip
        verdicts.append({"claim": f"{v.label} minus today's model, holdout RMSE", "target": "< 0 (interval below 0)",
                         "value": diff, "low": lo, "high": hi, "verdict": "met" if hi < 0 else "not met"})  # fmt: skip
    for extra in range(1, args.seeds):
        b, _ = run(TODAY, prep, args.algorithms, seed + extra, gap)
        line = ", ".join(f"{v.label} {rmse(y, run(v, prep, args.algorithms, seed + extra, gap)[0]) - rmse(y, b):+.4f}"
                         for v, _, _ in results)  # fmt: skip
        print(f"seed {seed + extra}: today {rmse(y, b):.4f}; fix - today: {line}", flush=True)

    feat, text = per_request_us(
        split, chosen["svd"][0].svd_dims if "svd" in chosen else FAMILIES["svd"][0].svd_dims
    )
    print(f"\nper request on the holdout rows: featurize_one p50 {np.percentile(feat, 50):.0f} us, p99 "
          f"{np.percentile(feat, 99):.0f} us; the SVD text transform adds p50 {np.percentile(text, 50):.0f} us, "
          f"p99 {np.percentile(text, 99):.0f} us; a refit and the label weights change training only; a "
          f"linear calibration is one multiply-add")  # fmt: skip
    kept = [(rmse(y, base) + d, v.label) for v, d, hi in results if hi < 0]
    best, label = min(kept) if kept else (rmse(y, base), "none kept")
    met = best <= TARGET_RMSE and bool(kept)
    print(f"target: holdout RMSE <= {TARGET_RMSE} with the interval below zero: {'MET' if met else 'NOT MET'} "
          f"(today {rmse(y, base):.4f}; best kept fix: {label}, {best:.4f})")  # fmt: skip
    verdicts.append({"claim": f"holdout RMSE of the best kept fix ({label})", "target": f"<= {TARGET_RMSE}",
                     "value": best, "low": None, "high": None, "verdict": "met" if met else "not met"})  # fmt: skip
    figures = {"holdout_rows": sizes["test"], "today_rmse": rmse(y, base), "best_kept": label, "best_rmse": best,
               "fixes": [{"fix": v.label, "difference": d, "high": hi} for v, d, hi in results],
               "featurize_one_us": {"p50": np.percentile(feat, 50), "p99": np.percentile(feat, 99)},
               "svd_transform_us": {"p50": np.percentile(text, 50), "p99": np.percentile(text, 99)}}  # fmt: skip
    write_record(
        "rating-fixes", sys.argv[1:], figures, verdicts, {k: "\n".join(t) for k, t in tables.items()}
    )


if __name__ == "__main__":
    main()
