"""The rating fixes' measurement: refit and weights in the training code, and the bench's own pieces."""

from __future__ import annotations

import json
import subprocess
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from scripts.bench import rating_fixes as bench
from services.core.features import Encoders
from services.core.rating_model import load_rating_model
from services.train.rating.data import Matrices, Split, build_matrices, refit_split
from services.train.rating.models import DEFAULT_PARAMS, train_candidate

ROOT = Path(__file__).resolve().parents[3]


def _matrices(n: int, seed: int, n_val: int = 150, n_test: int = 150) -> Matrices:
    """Synthetic rows: a rating that depends on two of five features, plus noise."""
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(n + n_val + n_test, 5))
    y = 6 + 0.8 * x[:, 0] - 0.5 * x[:, 1] ** 2 + rng.normal(scale=0.3, size=len(x))
    cuts = {"train": slice(0, n), "val": slice(n, n + n_val), "test": slice(n + n_val, None)}
    return Matrices(Encoders(), [f"f{i}" for i in range(5)], {s: x[c] for s, c in cuts.items()},
                    {s: y[c] for s, c in cuts.items()})  # fmt: skip


def _refit_of(m: Matrices) -> Matrices:
    """Train + val as the training split, test unchanged (what refit_split + build_matrices give)."""
    x = {"train": np.vstack([m.x["train"], m.x["val"]]), "val": m.x["val"][:0], "test": m.x["test"]}
    y = {"train": np.concatenate([m.y["train"], m.y["val"]]), "val": m.y["val"][:0], "test": m.y["test"]}
    return Matrices(m.encoders, m.names, x, y)


@pytest.mark.parametrize("algorithm", ["xgboost", "lightgbm"])
def test_refit_keeps_the_validated_metrics_and_grows_the_rounds_with_the_rows(algorithm: str) -> None:
    m = _matrices(600, seed=1)
    # Few, fast rounds that still stop early: the test is about the bookkeeping, not the fit.
    params = {
        **DEFAULT_PARAMS[algorithm],
        "n_estimators": 300,
        "learning_rate": 0.3,
        "early_stopping_rounds": 10,
    }
    plain = train_candidate(algorithm, m, params)
    refit = train_candidate(algorithm, m, params, refit=_refit_of(m))
    # Selection reads train/val/gap: those are the validated fit's, so the choice is unchanged.
    for key in ("train_rmse", "val_rmse", "gap"):
        assert refit.metrics[key] == pytest.approx(plain.metrics[key])
    assert refit.metrics["test_rmse_before_refit"] == pytest.approx(plain.metrics["test_rmse"])
    model = load_rating_model(algorithm, refit.files)
    test_rmse = float(np.sqrt(np.mean((model.predict(m.x["test"]) - m.y["test"]) ** 2)))
    assert refit.metrics["test_rmse"] == pytest.approx(test_rmse)
    assert refit.metrics["refit_rows"] == 750
    validated = load_rating_model(algorithm, plain.files)
    rounds = (
        validated.booster.num_boosted_rounds()
        if algorithm == "xgboost"
        else validated.booster.current_iteration()
    )
    assert refit.metrics["refit_rounds"] == max(1, round(rounds * 750 / 600))
    trees = (
        model.booster.num_boosted_rounds() if algorithm == "xgboost" else model.booster.current_iteration()
    )
    assert trees == refit.metrics["refit_rounds"]


def test_refit_of_the_forest_and_the_mean() -> None:
    m = _matrices(300, seed=2)
    mean = train_candidate("mean", m, refit=_refit_of(m))
    assert load_rating_model("mean", mean.files).predict(m.x["test"][:1])[0] == pytest.approx(
        np.concatenate([m.y["train"], m.y["val"]]).mean()
    )
    forest = train_candidate(
        "random_forest", m, params={"n_estimators": 20, "max_depth": 4}, refit=_refit_of(m)
    )
    assert forest.metrics["refit_rows"] == 450 and np.isfinite(forest.metrics["test_rmse"])


def test_weights_reach_every_algorithm() -> None:
    m = _matrices(400, seed=3)
    w = np.where(np.arange(400) < 200, 1.0, 0.0)
    weighted = replace(m, w={"train": w})
    assert load_rating_model("mean", train_candidate("mean", weighted).files).predict(m.x["test"][:1])[
        0
    ] == pytest.approx(m.y["train"][:200].mean())
    fast = {"n_estimators": 50, "learning_rate": 0.3}
    for algorithm, params in [("xgboost", {**DEFAULT_PARAMS["xgboost"], **fast}),
                              ("lightgbm", {**DEFAULT_PARAMS["lightgbm"], **fast}),
                              ("random_forest", {"n_estimators": 10})]:  # fmt: skip
        a = load_rating_model(algorithm, train_candidate(algorithm, m, params).files).predict(m.x["test"])
        b = load_rating_model(algorithm, train_candidate(algorithm, weighted, params).files).predict(
            m.x["test"]
        )
        assert not np.allclose(a, b), algorithm


def _movie(i: int, date: str, text: str, rating: float) -> dict[str, Any]:
    return {"id": i, "release_date": date, "overview": text, "title": f"Film {i}", "genres": ["Drama"],
            "original_language": "en", "runtime": 100.0, "vote_average": rating, "vote_count": 20 + i}  # fmt: skip


def test_refit_split_trains_on_train_and_val_and_keeps_the_test_rows() -> None:
    words = ["storm", "heist", "love", "war", "ghost", "court"]
    movies = [_movie(i, f"19{50 + i // 12:02d}-01-{1 + i % 12:02d}", f"a {words[i % 6]} story", 5 + i % 4)
              for i in range(40)]  # fmt: skip
    split = Split(movies[:30], movies[30:35], movies[35:])
    part = refit_split(split)
    assert part.train == movies[:35] and part.val == [] and part.test == movies[35:]
    m = build_matrices(part, Encoders())
    assert m.x["train"].shape[0] == 35 and m.x["val"].shape == (0, len(m.names)) and len(m.y["test"]) == 5


def test_paired_interval() -> None:
    rng = np.random.default_rng(0)
    y = rng.normal(6, 1, 300)
    base = y + rng.normal(0, 0.8, 300)
    assert bench.paired_interval(y, base, base, 500, 0) == (0.0, 0.0, 0.0)
    diff, lo, hi = bench.paired_interval(y, base, y + 0.5 * (base - y), 500, 0)
    assert lo <= diff <= hi < 0  # a fix closer on every movie: the whole interval below zero
    diff, lo, hi = bench.paired_interval(y, base, base + rng.normal(0, 0.01, 300), 500, 0)
    assert lo < 0 < hi


def test_svd_text_transform_is_tfidf_then_the_components_and_goes_through_json() -> None:
    from scripts.bench.rating_fix_text import SvdText, fit_svd_text

    words = ["storm", "heist", "love", "war", "ghost", "court", "river", "train"]
    movies = [{"overview": f"{words[i % 8]} {words[(i * 3) % 8]} {words[(i * 5 + 1) % 8]}", "title": ""}
              for i in range(40)]  # fmt: skip
    svd = fit_svd_text(movies, 3)
    served = json.loads(json.dumps(svd.to_json()))
    again = SvdText(served["vocab"], np.asarray(served["idf"]), np.asarray(served["components"]))
    rows = svd.rows(movies)
    assert rows.shape == (40, 3)
    np.testing.assert_allclose(again.rows(movies), rows, atol=1e-5)
    # A row is the L2-normalised sublinear TF-IDF vector projected on the components.
    vocab, m = svd.vocab, movies[0]
    vec = np.zeros(len(vocab))
    for w in m["overview"].split():
        vec[vocab[w]] += 1
    vec = np.where(vec > 0, 1 + np.log(np.maximum(vec, 1)), 0) * svd.idf
    np.testing.assert_allclose(svd.components @ (vec / np.linalg.norm(vec)), rows[0])
    assert not svd.transform("nothing known here").any()


def test_windows_lie_before_the_validation_rows_and_are_as_wide_as_the_holdout() -> None:
    movies = [_movie(i, f"{1900 + i // 10}-{1 + i % 10:02d}-01", "x", 6.0) for i in range(600)]
    split = Split(movies[:480], movies[480:540], movies[540:])
    for w in bench.windows(split, 3):
        assert w.test[-1]["release_date"] < split.val[0]["release_date"]
        assert (
            abs(len(w.test) - len(split.test)) <= 10
            and w.train[-1]["release_date"] < w.val[0]["release_date"]
        )


def test_combined_variant_drops_calibration_next_to_a_refit() -> None:
    calib, refit, weights = (bench.FAMILIES[f][0] for f in ("calibration", "refit", "weights"))
    both = bench.combine([weights, refit, calib])
    assert both.refit and both.weight_k == weights.weight_k and both.calibrate == ""
    assert bench.combine([weights, calib]).calibrate == calib.calibrate


def test_bench_script_help() -> None:
    out = subprocess.run([str(ROOT / "scripts" / "bench.sh"), "rating-fixes", "--help"], capture_output=True,
                         text=True, check=True, cwd=ROOT, timeout=120)  # fmt: skip
    assert "paired bootstrap" in out.stdout and "--fixes" in out.stdout
