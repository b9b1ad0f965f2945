"""Validation quarantine, the time split, and the challenger / promotion rules."""

from __future__ import annotations

import pytest

from services.train.movies.validate import ValidationFailed, enforce, validate
from services.train.rating.data import time_split
from services.train.rating.select import choose_challenger, decide


def _movie(i: int, **kw: object) -> dict:
    base = {
        "id": i, "title": f"M{i}", "overview": "fine", "runtime": 90.0, "original_language": "en",
        "release_date": f"{1990 + i % 30}-01-{1 + i % 28:02d}", "genres": ["Drama"], "budget": None,
        "vote_average": 6.0, "vote_count": 50,
    }  # fmt: skip
    return {**base, **kw}


def test_bad_rows_are_quarantined_with_their_reason() -> None:
    rows = [_movie(1), _movie(2, runtime=-5), _movie(3, original_language="english"), _movie(4, overview="")]
    report = validate(rows)
    assert [m["id"] for m in report.good] == [1]
    reasons = {q["record"]["id"]: q["reason"] for q in report.quarantined}
    assert reasons[2].startswith("runtime")
    assert reasons[3].startswith("original_language")
    assert reasons[4].startswith("overview")


def test_too_many_bad_rows_fail_the_run_with_a_clear_message() -> None:
    report = validate([_movie(1), _movie(2, runtime=None), _movie(3, runtime=None)])
    with pytest.raises(ValidationFailed, match=r"66.7% of 3 rows failed validation .*runtime"):
        enforce(report, 0.2)


def test_time_split_holds_out_only_later_releases() -> None:
    split = time_split([_movie(i) for i in range(200)])
    assert max(m["release_date"] for m in split.train) < min(m["release_date"] for m in split.val)
    assert max(m["release_date"] for m in split.val) < min(m["release_date"] for m in split.test)
    assert len(split.train) + len(split.val) + len(split.test) == 200


def _cand(name: str, val: float, gap: float) -> dict:
    return {"algorithm": name, "metrics": {"val_rmse": val, "gap": gap}}


def test_challenger_is_best_val_rmse_within_the_gap_bound() -> None:
    picked = choose_challenger(
        [_cand("xgboost", 0.70, 0.9), _cand("lightgbm", 0.72, 0.1), _cand("mean", 0.9, 0)], 0.5
    )
    assert picked["algorithm"] == "lightgbm"  # xgboost is better but overfits beyond the bound


def test_promotion_needs_a_win_over_production() -> None:
    assert decide(0.7, None).promote
    assert decide(0.7, 0.8).promote
    kept = decide(0.8, 0.7)
    assert not kept.promote and "kept production" in kept.reason
