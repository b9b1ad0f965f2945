"""Shared feature code: encodings with an unknown bucket, JSON round trip, and the leak guard."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest

from services.core import features as F
from services.core.movie import normalize_movie

MOVIE = normalize_movie(
    {
        "id": 1,
        "title": "A Test",
        "overview": "A wonderful, joyful story of friendship.",
        "runtime": 101,
        "genres": [{"id": 18, "name": "Drama"}, {"id": 35, "name": "Comedy"}],
        "original_language": "en",
        "release_date": "2001-05-04",
        "budget": 1_000_000,
        "production_countries": [{"iso_3166_1": "US", "name": "United States of America"}],
        "vote_average": 7.1,
        "vote_count": 100,
        "revenue": 5,
        "popularity": 3.3,
    }
)


def _enc() -> F.Encoders:
    return F.fit_encoders([MOVIE] * 30)


def test_vector_matches_names_and_reads_the_movie() -> None:
    enc = _enc()
    vec = F.featurize_one(MOVIE, enc)
    names = F.feature_names(enc)
    row = dict(zip(names, vec, strict=True))
    assert row["runtime"] == 101
    assert row["overview_polarity"] > 0.3  # "wonderful, joyful" reads as positive
    assert row["release_year"] == 2001 and row["release_month"] == 5
    assert row["genre=Drama"] == 1 and row["genre=Comedy"] == 1
    assert row["main_genre"] == enc.genres.index("Drama")
    assert row["log_budget"] == pytest.approx(math.log1p(1_000_000))


def test_unseen_values_fall_in_the_unknown_bucket() -> None:
    enc = _enc()
    other = {**MOVIE, "genres": ["Western"], "original_language": "xx", "budget": None}
    row = dict(zip(F.feature_names(enc), F.featurize_one(other, enc), strict=True))
    assert row["main_genre"] == 0 and row["original_language"] == 0
    assert math.isnan(row["log_budget"])


def test_encoders_round_trip_through_json() -> None:
    enc = _enc()
    again = F.Encoders.from_json(json.loads(json.dumps(enc.to_json())))
    assert np.array_equal(F.featurize_one(MOVIE, enc), F.featurize_one(MOVIE, again), equal_nan=True)


def test_encoders_of_another_feature_set_are_refused() -> None:
    data = {**_enc().to_json(), "feature_set_version": 999}
    with pytest.raises(ValueError, match="feature set"):
        F.Encoders.from_json(data)


def test_post_release_fields_do_not_reach_the_inputs() -> None:
    F.check_leakage([MOVIE], _enc())  # passes: nothing post-release is read


def test_leak_guard_catches_a_feature_that_reads_vote_count(monkeypatch: pytest.MonkeyPatch) -> None:
    original = F.featurize_one

    def leaky(movie: dict, enc: F.Encoders) -> np.ndarray:
        vec = original(movie, enc)
        vec[0] = movie.get("vote_count") or 0
        return vec

    monkeypatch.setattr(F, "featurize_one", leaky)
    with pytest.raises(F.LeakageError, match="vote_count"):
        F.check_leakage([MOVIE], _enc())


def test_leak_guard_catches_a_leaky_name() -> None:
    with pytest.raises(F.LeakageError):
        F.assert_no_leakage(["runtime", "log_revenue"])
