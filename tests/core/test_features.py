"""Shared feature code: encodings with an unknown bucket, JSON round trip, and the leak guard."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest

from services.core import features as F
from services.core import sentiment as S
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


# --- feature set 2: what the encoders learn from training labels ------------------------------------------
def _labelled(i: int, overview: str, rating: float, **kw: object) -> dict:
    base = {**MOVIE, "id": i, "title": f"Film {i}", "overview": overview, "vote_average": rating}
    return {**base, **kw}


def _training_set() -> list[dict]:
    """Acclaimed dramas from one studio and poorly rated slashers from another, 40 of each."""
    good = [
        _labelled(i, f"An acclaimed, moving masterpiece about family number {i}.", 8.0 + (i % 3) / 10,
                  production_companies=["Prestige Pictures"], genres=["Drama"])
        for i in range(40)
    ]  # fmt: skip
    bad = [
        _labelled(100 + i, f"A masked killer stalks teenagers at camp number {i}.", 4.0 + (i % 3) / 10,
                  production_companies=["Cheap Thrills"], genres=["Horror"])
        for i in range(40)
    ]  # fmt: skip
    return good + bad


def _row(movie: dict, enc: F.Encoders) -> dict[str, float]:
    return dict(zip(F.feature_names(enc), F.featurize_one(movie, enc), strict=True))


def test_text_signal_rates_the_words_of_good_films_higher() -> None:
    enc = F.fit_encoders(_training_set())
    praised = _row({**MOVIE, "overview": "A moving masterpiece.", "title": "", "tagline": ""}, enc)
    slasher = _row({**MOVIE, "overview": "A killer stalks teenagers.", "title": "", "tagline": ""}, enc)
    unknown = _row({**MOVIE, "overview": "Zyxx qwv.", "title": "", "tagline": ""}, enc)
    assert praised["text_signal"] > 1.0 > -1.0 > slasher["text_signal"]
    assert abs(unknown["text_signal"]) < 0.05  # no known word: the training mean, not a guess


def test_track_records_are_shrunk_means_and_nan_when_unseen() -> None:
    movies = _training_set()
    enc = F.fit_encoders(movies)
    prior = np.mean([m["vote_average"] for m in movies])
    prestige = np.mean([m["vote_average"] for m in movies[:40]])
    expected = (40 * prestige + F.TRACK_SMOOTHING * prior) / (40 + F.TRACK_SMOOTHING) - prior
    row = _row({**MOVIE, "production_companies": ["Prestige Pictures", "Nobody Films"]}, enc)
    assert row["company_track_record"] == pytest.approx(expected, abs=1e-5)  # the unseen company is ignored
    assert row["genre_track_record"] > 1.0  # Drama only: the good films' genre
    none = _row({**MOVIE, "production_companies": ["Nobody Films"], "belongs_to_collection": None}, enc)
    assert math.isnan(none["company_track_record"]) and math.isnan(none["collection_track_record"])


def test_a_request_with_only_an_overview_is_featurised() -> None:
    enc = F.fit_encoders(_training_set())
    bare = normalize_movie({"overview": "A moving masterpiece about a family."})
    row = _row(bare, enc)
    assert len(row) == len(F.feature_names(enc))
    assert math.isnan(row["runtime"]) and math.isnan(row["log_budget"]) and math.isnan(row["release_year"])
    assert math.isnan(row["genre_track_record"]) and row["text_signal"] > 0.5


def test_learned_parts_survive_the_json_round_trip_exactly() -> None:
    movies = _training_set()
    enc = F.fit_encoders(movies)
    served = F.Encoders.from_json(json.loads(json.dumps(enc.to_json())))
    assert enc.label_rows == 80 and served.text_model["weights"]
    assert np.array_equal(F.featurize(movies, enc), F.featurize(movies, served), equal_nan=True)


def test_rows_without_a_label_teach_the_encoders_nothing() -> None:
    movies = _training_set()
    unlabelled = [{**m, "id": m["id"] + 1000, "vote_average": None, "production_companies": ["Ghost Co"]}
                  for m in movies[:10]]  # fmt: skip
    enc = F.fit_encoders(movies + unlabelled)
    assert enc.label_rows == 80
    assert "Ghost Co" not in enc.track_records["production_companies"]


def test_training_rows_get_features_that_ignore_their_own_label() -> None:
    movies = _training_set()
    changed = [*movies]
    changed[5] = {**movies[5], "vote_average": 0.0}
    learned = slice(-len(F.LEARNED_FEATURES), None)
    oof = F.featurize_training(movies, F.fit_encoders(movies))
    oof_changed = F.featurize_training(changed, F.fit_encoders(changed))
    # Its own features do not move, the other folds' do: out-of-fold.
    assert np.array_equal(oof[5, learned], oof_changed[5, learned], equal_nan=True)
    assert not np.array_equal(oof[:, learned], oof_changed[:, learned], equal_nan=True)
    # Whereas plain featurize with encoders fitted on the same rows lets the label in.
    genre = F.feature_names(F.fit_encoders(movies)).index("genre_track_record")
    in_fold = F.featurize(changed, F.fit_encoders(changed))
    assert in_fold[5, genre] < F.featurize(movies, F.fit_encoders(movies))[5, genre]


def test_the_leak_guard_holds_with_learned_features() -> None:
    movies = _training_set()
    F.check_leakage(movies, F.fit_encoders(movies))
    assert not any("vote" in n or "revenue" in n for n in F.feature_names(F.fit_encoders(movies)))


def test_a_repeated_overview_is_answered_from_the_cache_with_the_same_features() -> None:
    enc = F.fit_encoders(_training_set())
    movie = {**MOVIE, "overview": "An utterly delightful, hilarious romp. " + str(random_suffix())}
    S.sentiment.cache_clear()
    first = F.featurize_one(movie, enc)
    hits = S.sentiment.cache_info().hits
    again = F.featurize_one(dict(movie), enc)
    assert S.sentiment.cache_info().hits == hits + 1
    np.testing.assert_array_equal(first, again)
    assert S.sentiment.cache_info().maxsize == S.SENTIMENT_CACHE_SIZE  # bounded: memory stays flat


def test_a_text_model_never_answers_from_another_models_cache() -> None:
    from services.core.text_features import TextModel

    text = "a moving masterpiece"
    praised = TextModel(0.0, {"masterpiece": [1.0, 2.0]})
    panned = TextModel(0.0, {"masterpiece": [1.0, -2.0]})
    assert praised.score(text) == praised.score(text) > 0 > panned.score(text)
    # A copy or an unpickled model has a cache of its own: changing the copy never changes the original.
    import copy
    import pickle

    changed = copy.deepcopy(praised)
    changed.weights["masterpiece"] = [1.0, -2.0]
    assert changed.score(text) < 0 < praised.score(text)
    assert pickle.loads(pickle.dumps(praised)).score(text) == praised.score(text)


def test_one_hot_columns_are_named_by_their_prefix() -> None:
    enc = F.fit_encoders(_training_set())
    names = F.feature_names(enc)
    hot = [n for n in names if F.is_one_hot(n)]
    assert hot and all(n.split("=", 1)[0] in ("genre", "country", "company") for n in hot)
    assert not any(F.is_one_hot(n) for n in ("main_genre", "n_genres", "genre_track_record"))


def random_suffix() -> int:
    """A value no earlier test featurised, so the first call is a cache miss."""
    import secrets

    return secrets.randbelow(10**12)
