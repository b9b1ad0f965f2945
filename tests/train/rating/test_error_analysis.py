"""The rating model's error analysis: residuals by band, with numbers a reader can check by hand."""

from __future__ import annotations

import numpy as np
import pytest

from services.train.rating.error_analysis import (
    analyse,
    band_labels,
    period_labeller,
    residual_stats,
    worst_bands,
)


def _movie(i: int, **kw: object) -> dict:
    base = {"id": i, "overview": "x" * 200, "original_language": "en", "release_date": "1999-05-01",
            "genres": ["Drama"], "vote_count": 500.0, "vote_average": 6.0}  # fmt: skip
    return {**base, **kw}


def _band(report: dict, dimension: str, band: str) -> dict:
    return next(b for b in report["dimensions"][dimension]["bands"] if b["band"] == band)


def test_a_model_over_predicting_few_vote_movies_shows_a_positive_bias_in_the_10_50_band() -> None:
    few = [_movie(i, vote_count=20.0, vote_average=5.0) for i in range(10)]
    many = [_movie(100 + i, vote_count=2000.0, vote_average=7.0) for i in range(10)]
    movies = few + many
    y = np.array([m["vote_average"] for m in movies])
    # Rates the few-vote films 0.5 too high, the well-known ones 0.1 too low.
    predicted = np.array([5.5] * 10 + [6.9] * 10)
    report = analyse(movies, y, {"production": predicted})
    few_band, many_band = _band(report, "vote_count", "10–50"), _band(report, "vote_count", "1k–5k")
    assert few_band["count"] == 10 and few_band["production"]["bias"] == pytest.approx(0.5)
    assert few_band["production"]["rmse"] == pytest.approx(0.5)
    assert many_band["production"]["bias"] == pytest.approx(-0.1)
    assert [b["band"] for b in report["dimensions"]["vote_count"]["bands"]] == ["10–50", "1k–5k"]
    assert report["overall"]["production"]["bias"] == pytest.approx(0.2)
    assert worst_bands(report, "production", top=1, min_rows=5)[0]["band"] == "10–50"


def test_bias_rmse_and_mae_of_mixed_errors() -> None:
    stats = residual_stats(np.array([6.0, 6.0, 6.0, 6.0]), np.array([7.0, 5.0, 7.0, 7.0]))
    # Residuals +1, -1, +1, +1: bias 0.5, RMSE 1, MAE 1.
    assert stats == {"count": 4, "bias": 0.5, "rmse": 1.0, "mae": 1.0}
    assert residual_stats(np.zeros(0), np.zeros(0))["rmse"] is None


def test_production_and_challenger_are_banded_on_the_same_rows() -> None:
    movies = [_movie(i, genres=["Horror"] if i < 12 else ["Drama"]) for i in range(24)]
    y = np.full(24, 6.0)
    report = analyse(movies, y, {"production": np.full(24, 6.4), "challenger": np.full(24, 5.9)})
    horror = _band(report, "main_genre", "Horror")
    assert horror["count"] == 12
    assert horror["production"]["bias"] == pytest.approx(0.4) and horror["challenger"][
        "bias"
    ] == pytest.approx(-0.1)
    assert report["rows"] == 24
    with pytest.raises(ValueError, match="3 predictions for 24 rows"):
        analyse(movies, y, {"challenger": np.zeros(3)})


def test_rare_genres_and_languages_are_pooled_as_other_and_shown_last() -> None:
    movies = [_movie(i) for i in range(15)] + [_movie(20 + i, genres=["Western"], original_language="fr")
                                               for i in range(3)] + [_movie(30, genres=[])]  # fmt: skip
    labels = band_labels(movies)
    assert labels["main_genre"][15:] == ["other", "other", "other", "unknown"]
    assert labels["original_language"][15:18] == ["other"] * 3
    report = analyse(movies, np.full(19, 6.0), {"challenger": np.full(19, 6.0)})
    assert [b["band"] for b in report["dimensions"]["main_genre"]["bands"]] == ["Drama", "other", "unknown"]


def test_overview_and_vote_bands_follow_their_bounds() -> None:
    movies = [_movie(1, overview=""), _movie(2, overview="x" * 149), _movie(3, overview="x" * 150),
              _movie(4, overview="x" * 600), _movie(5, vote_count=50.0), _movie(6, vote_count=None)]  # fmt: skip
    labels = band_labels(movies)
    assert labels["overview_length"][:4] == ["empty", "<150", "150–300", "500+"]
    assert labels["vote_count"][4:] == ["50–200", "unknown"]


def test_release_periods_are_years_on_a_short_holdout_and_five_year_blocks_otherwise() -> None:
    holdout = [_movie(1, release_date="1998-08-21"), _movie(2, release_date="2000-03-22")]
    assert [period_labeller(holdout)(m) for m in holdout] == ["1998", "2000"]
    spread = [_movie(1, release_date="1985-01-01"), _movie(2, release_date="2015-06-01"),
              _movie(3, release_date="2017-12-31"), _movie(4, release_date="2018-01-01"), _movie(5, release_date=None)]  # fmt: skip
    assert [period_labeller(spread)(m) for m in spread] == [
        "1983–87",
        "2013–17",
        "2013–17",
        "2018–22",
        "unknown",
    ]
