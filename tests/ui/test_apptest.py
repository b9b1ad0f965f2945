"""The Streamlit pages, run in process with AppTest against a stand-in API (tests/fakes/ui_stub_api.py).

The stand-in is the real MovieApi client on an httpx.MockTransport, so what the pages send and how
the client reads the answers are both exercised; only the network hop is skipped.
"""

from __future__ import annotations

import datetime as dt
import json
import socket
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pandas as pd
import pytest
import streamlit as st
from streamlit.dataframe_util import convert_arrow_bytes_to_pandas_df
from streamlit.testing.v1 import AppTest

from services.ui import cards, components, data, new_for_you
from services.ui.api.client import MovieApi
from services.ui.api.loop import FeedbackEvent
from services.ui.api.records import ApiError, Movie, Recommendations
from services.ui.choices import TMDB_GENRES
from tests.fakes.ui_stub_api import StubApi
from tests.fakes.ui_stub_data import (
    CATALOG,
    NEW_RELEASES,
    ONLINE_DAYS,
    PREVIOUS_RECOMMENDER,
    RATING_VERSION,
    RECOMMENDER_VERSION,
)

UI = Path(__file__).resolve().parents[2] / "services" / "ui"
KOREAN_OVERVIEW = "한 소년이 잃어버린 강아지를 찾아 먼 바닷가 마을로 떠나고, 그곳에서 평생의 친구를 만난다."


@pytest.fixture(autouse=True)
def _fresh_caches() -> Iterator[None]:
    st.cache_data.clear()
    yield
    st.cache_data.clear()


@pytest.fixture
def stub() -> StubApi:
    return StubApi()


@pytest.fixture
def down_api() -> MovieApi:
    """A client pointed at a loopback port where nothing listens."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    return MovieApi(f"http://127.0.0.1:{port}", connect_timeout_s=1.0)


def open_page(script: str, client: MovieApi) -> AppTest:
    """Run one page (or the app) with the given API client injected; fail on any exception."""
    at = AppTest.from_file(str(UI / script), default_timeout=30)
    at.session_state[data.API_STATE_KEY] = client
    at.run()
    assert not at.exception, at.exception
    return at


def texts(elements: Any) -> list[str]:
    return [e.value for e in elements]


def chart_frames(at: AppTest, index: int = 0) -> tuple[dict[str, Any], pd.DataFrame]:
    """The Vega-Lite spec of the index-th chart and its first layer's data."""
    chart = at.get("vega_lite_chart")[index]
    spec = json.loads(chart.proto.spec)
    frame = convert_arrow_bytes_to_pandas_df(chart.proto.datasets[0].data.data)
    return spec, frame


def card_bodies(at: AppTest, row: str | None = "main") -> list[str]:
    """HTML of the movie cards on the page, in order: the main picks, "new" for New for you, None all."""
    bodies = [e.proto.body for e in at.get("html") if 'class="movie-card"' in e.proto.body]
    return [b for b in bodies if row is None or f'data-row="{row}"' in b]


def card_ids(at: AppTest, row: str | None = "main") -> list[int]:
    """tmdb ids of the movie cards on the page, in order (row as for card_bodies)."""
    return [int(body.split('data-tmdb-id="')[1].split('"')[0]) for body in card_bodies(at, row)]


def main_answers(stub: StubApi) -> list[Any]:
    """Bodies of the /recommend answers for the main picks."""
    return [body for body in stub.answered("POST", "/recommend") if body.get("pool", "all") == "all"]


def main_calls(stub: StubApi) -> list[Any]:
    """Bodies of the /recommend requests for the main picks (not the new pool)."""
    return [body for body in stub.calls("POST", "/recommend") if body.get("pool", "all") == "all"]


# --- rating page ------------------------------------------------------------------------------------
def fill_rating_form(at: AppTest, overview: str, language: str = "ko", runtime: int = 128) -> None:
    at.number_input(key="runtime").set_value(runtime)
    at.selectbox(key="language").select(language)
    at.selectbox(key="main_genre").select("Thriller")
    at.text_area(key="overview").input(overview)


def submit(at: AppTest) -> AppTest:
    at.button[0].click()  # the form's only button: "Estimate rating"
    at.run()
    assert not at.exception, at.exception
    return at


def test_rating_form_shows_rating_mood_translation_and_effects_chart(stub: StubApi) -> None:
    at = open_page("views/rating.py", stub.client())
    fill_rating_form(at, KOREAN_OVERVIEW)
    at.multiselect(key="more_genres").select("Drama")
    submit(at)

    [sent] = stub.calls("POST", "/predict")
    assert sent == {
        "overview": KOREAN_OVERVIEW,
        "runtime": 128,
        "genres": ["Thriller", "Drama"],
        "original_language": "ko",
    }
    expected = StubApi().handle("POST", "/predict", {"explain": "true"}, sent)[1]
    metrics = {m.label: m.value for m in at.metric}
    assert metrics["Predicted rating"] == f"{expected['predicted_rating']:.1f} / 10"
    assert metrics["Overview mood"] == "Positive"
    assert metrics["Overview text"] == "Translated"
    assert any(RATING_VERSION in c for c in texts(at.caption))
    assert any("translated from Korean" in i for i in texts(at.info))

    spec, frame = chart_frames(at)
    contributions = {k: v for k, v in expected["contributions"].items() if k != "bias" and v}
    largest = sorted(contributions, key=lambda k: -abs(contributions[k]))[:12]
    assert list(frame["feature"]) == [components.feature_label(k) for k in largest]
    assert spec["layer"][0]["encoding"]["y"]["sort"] == list(frame["feature"])
    for effect, direction in zip(frame["effect"], frame["direction"], strict=True):
        assert direction == ("Pushes up" if effect > 0 else "Pushes down")
    colours = spec["layer"][0]["encoding"]["color"]["scale"]
    assert dict(zip(colours["domain"], colours["range"], strict=True)) == {
        "Pushes up": components.UP_COLOUR,
        "Pushes down": components.DOWN_COLOUR,
    }


def test_rating_form_sends_optional_details_in_tmdb_format(stub: StubApi) -> None:
    at = open_page("views/rating.py", stub.client())
    fill_rating_form(at, "A retired boxer trains his granddaughter for one last fight.", language="en")
    at.text_input(key="title").input("One Last Round")
    at.date_input(key="release_date").set_value(dt.date(2026, 5, 1))
    at.number_input(key="budget").set_value(12_000_000)
    at.multiselect(key="countries").select("KR").select("US")
    at.text_input(key="companies").input("CJ Entertainment,  A24 , ")
    at.text_input(key="collection").input("Rounds")
    submit(at)

    [sent] = stub.calls("POST", "/predict")
    assert sent["title"] == "One Last Round"
    assert sent["release_date"] == "2026-05-01"
    assert sent["budget"] == 12_000_000
    assert sent["production_countries"] == ["KR", "US"]
    assert sent["production_companies"] == ["CJ Entertainment", "A24"]
    assert sent["belongs_to_collection"] == "Rounds"
    assert {m.label: m.value for m in at.metric}["Overview text"] == "As written"


def test_rating_form_without_overview_asks_for_one_and_calls_nothing(stub: StubApi) -> None:
    at = open_page("views/rating.py", stub.client())
    submit(at)
    assert any("write an overview" in w for w in texts(at.warning))
    assert stub.calls("POST", "/predict") == []
    assert not at.metric


def test_rating_form_lists_the_apis_field_problems_on_422(stub: StubApi, monkeypatch) -> None:
    problem = {"loc": ["body", "runtime"], "msg": "Input should be less than or equal to 1000", "type": "x"}
    monkeypatch.setattr(stub, "_predict", lambda body, explain=True: (422, {"detail": [problem]}))
    at = open_page("views/rating.py", stub.client())
    fill_rating_form(at, "Two rival chefs share a kitchen.")
    submit(at)
    [error] = texts(at.error)
    assert "runtime: Input should be less than or equal to 1000" in error
    assert not at.metric


def test_rating_genres_come_from_the_api_when_it_publishes_them(stub: StubApi, monkeypatch) -> None:
    original = stub.handle

    def with_vocabulary(method: str, path: str, query: dict[str, str], body: Any) -> tuple[int, Any]:
        if path == "/model/vocabulary":
            return 200, {"genres": ["<unknown>", "Drama", "Noir"], "languages": ["<unknown>", "en", "ko"]}
        return original(method, path, query, body)

    monkeypatch.setattr(stub, "handle", with_vocabulary)
    at = open_page("views/rating.py", stub.client())
    assert at.selectbox(key="main_genre").options == ["Drama", "Noir"]
    assert at.selectbox(key="main_genre").value == "Drama"


def test_rating_page_with_the_api_down_explains_and_keeps_working(down_api: MovieApi) -> None:
    at = open_page("views/rating.py", down_api)
    [banner] = texts(at.error)
    assert "not reachable" in banner and "./scripts/serve.sh" in banner
    # The form still works from the built-in choices.
    assert at.selectbox(key="main_genre").options == list(TMDB_GENRES)
    fill_rating_form(at, KOREAN_OVERVIEW)
    submit(at)
    assert len(at.error) == 2 and all("not reachable" in e for e in texts(at.error))
    assert not at.metric


def test_rating_page_without_a_model_says_what_to_run() -> None:
    stub = StubApi(ready=False)
    at = open_page("views/rating.py", stub.client())
    [warning] = texts(at.warning)
    assert (
        "not ready" in warning
        and "no rating model is loaded" in warning
        and "./scripts/pipeline.sh" in warning
    )
    fill_rating_form(at, "A heist at a chess tournament.")
    submit(at)
    assert len(at.warning) == 2
    assert not at.metric


# --- recommend page ---------------------------------------------------------------------------------
def pick(at: AppTest, query: str, tmdb_id: int) -> None:
    at.text_input(key="search").input(query).run()
    at.button(key=f"add-{tmdb_id}").click().run()
    assert not at.exception, at.exception


def recommend(at: AppTest) -> AppTest:
    at.button(key="recommend").click().run()
    assert not at.exception, at.exception
    return at


def test_search_shows_matching_titles_to_add(stub: StubApi) -> None:
    at = open_page("views/recommend.py", stub.client())
    at.text_input(key="search").input("toy").run()
    labels = [b.label for b in at.button if b.key and b.key.startswith("add-")]
    assert labels == ["Toy Story (1995)", "Toy Story 2 (1999)"]
    at.text_input(key="search").input("zzzz").run()
    assert any("No movie in the catalog matches" in c for c in texts(at.caption))


def test_three_liked_movies_give_ten_recommendation_cards(stub: StubApi) -> None:
    at = open_page("views/recommend.py", stub.client())
    for query, tmdb_id in [("toy", 862), ("matrix", 603), ("oldboy", 670)]:
        pick(at, query, tmdb_id)
    assert at.multiselect(key="liked").value == [862, 603, 670]
    assert at.button(key="add-670").disabled  # already picked

    recommend(at)
    sent, sent_new = stub.calls("POST", "/recommend")
    assert sent == {"liked": [862, 603, 670], "k": 10, "user_id": at.session_state["user_id"]}
    assert sent_new == sent | {"k": 5, "pool": "new"}
    assert sent["user_id"].startswith("anon-")
    expected = StubApi().handle("POST", "/recommend", {}, {"liked": [862, 603, 670], "k": 10})[1]
    assert card_ids(at) == [item["tmdb_id"] for item in expected["items"]]
    assert len(card_ids(at)) == 10
    first_card = next(h.proto.body for h in at.get("html") if "movie-card" in h.proto.body)
    first = CATALOG[expected["items"][0]["tmdb_id"]]
    assert first["title"] in first_card and str(first["release_year"]) in first_card
    assert any("Because you liked Toy Story, The Matrix, Oldboy" in c for c in texts(at.caption))


def test_removing_a_chip_drops_that_movie_from_the_request(stub: StubApi) -> None:
    at = open_page("views/recommend.py", stub.client())
    pick(at, "toy", 862)
    pick(at, "heat", 949)
    at.multiselect(key="liked").unselect(862).run()
    recommend(at)
    assert [body["liked"] for body in stub.calls("POST", "/recommend")] == [[949], [949]]  # main, new


def test_no_picks_gives_popular_movies_and_says_so(stub: StubApi) -> None:
    at = open_page("views/recommend.py", stub.client())
    recommend(at)
    assert any("here are the most popular" in i for i in texts(at.info))
    popular = sorted(CATALOG.values(), key=lambda m: -m["popularity"])[:10]
    assert card_ids(at) == [m["tmdb_id"] for m in popular]


def test_without_a_recommender_model_the_page_says_these_are_popular_movies(stub: StubApi) -> None:
    stub.with_recommender = False
    at = open_page("views/recommend.py", stub.client())
    pick(at, "toy", 862)
    recommend(at)
    assert any("No recommender model is published yet" in i for i in texts(at.info))
    assert not any("Because you liked" in c for c in texts(at.caption))
    assert len(card_ids(at)) == 10


def test_recommend_page_without_a_model_warns_once_and_does_not_search() -> None:
    stub = StubApi(ready=False)
    at = open_page("views/recommend.py", stub.client())
    at.text_input(key="search").input("toy").run()
    [warning] = texts(at.warning)
    assert "not ready" in warning and "./scripts/pipeline.sh" in warning
    assert stub.calls("GET", "/movies/search") == []


def test_every_card_has_its_poster_over_an_initials_placeholder(stub: StubApi) -> None:
    at = open_page("views/recommend.py", stub.client())
    recommend(at)
    cards = card_bodies(at, row=None)
    assert len(cards) == 10 + new_for_you.NEW_K
    for body in cards:
        tmdb_id = int(body.split('data-tmdb-id="')[1].split('"')[0])
        movie = CATALOG.get(tmdb_id) or NEW_RELEASES[tmdb_id]
        poster_layer = f"url('{movie['poster_url']}'),url('data:image/svg+xml;base64,"
        assert poster_layer in body  # the poster first; if it cannot load, the placeholder shows
        assert "<img" not in body  # so a broken-image icon can never appear


def test_card_keeps_hostile_titles_and_urls_inert() -> None:
    movie = Movie(tmdb_id=1, title="<script>x</script>", poster_url="https://x.test/a'),url(evil.jpg")
    body = cards.movie_card_html(movie)
    assert "<script>" not in body and "&lt;script&gt;" in body
    assert "url('https://x.test/a%27%29,url%28evil.jpg')" in body
    assert "javascript:" not in cards.movie_card_html(Movie(2, "t", poster_url="javascript:alert(1)"))


def test_recommend_page_with_the_api_down_explains_without_crashing(down_api: MovieApi) -> None:
    at = open_page("views/recommend.py", down_api)
    assert "not reachable" in at.error[0].value
    at.text_input(key="search").input("toy").run()
    assert not at.exception
    assert len(at.error) == 1  # the banner, not a second copy for the search
    recommend(at)
    assert not at.exception
    assert len(at.error) == 2 and card_ids(at) == []


# --- feedback on the cards -------------------------------------------------------------------------
def react(at: AppTest, kind: str, tmdb_id: int) -> AppTest:
    """Click 👍 ("like"), 👎 ("dislike") or Seen it ("watched") under the card of one movie."""
    [button] = [
        b for b in at.button if b.key and b.key.startswith(f"fb-{kind}-") and b.key.endswith(f"-{tmdb_id}")
    ]
    button.click().run()
    assert not at.exception, at.exception
    return at


def feedback_button(at: AppTest, kind: str, tmdb_id: int) -> Any:
    [button] = [
        b for b in at.button if b.key and b.key.startswith(f"fb-{kind}-") and b.key.endswith(f"-{tmdb_id}")
    ]
    return button


def liked_strip_ids(at: AppTest) -> list[int]:
    """tmdb ids in the "your likes" strip, in order."""
    [strip] = [h.proto.body for h in at.get("html") if 'class="likes-strip"' in h.proto.body] or [""]
    return [int(part.split('"')[0]) for part in strip.split('data-tmdb-id="')[1:]]


def test_thumbs_up_posts_a_like_with_the_cards_request_position_and_user(stub: StubApi) -> None:
    at = open_page("views/recommend.py", stub.client())
    pick(at, "toy", 862)
    recommend(at)
    third = card_ids(at)[2]
    react(at, "like", third)

    [event] = stub.feedback
    [asked] = main_calls(stub)
    answer, _ = stub.answered("POST", "/recommend")
    assert event == {
        "event_id": event["event_id"],
        "user_id": asked["user_id"],
        "tmdb_id": third,
        "kind": "like",
        "request_id": answer["request_id"],
        "position": 3,
    }
    assert uuid.UUID(event["event_id"])  # a fresh uuid: the API counts a retried POST once
    [toast] = texts(at.toast)
    assert "👍 saved" in toast and CATALOG[third]["title"] in toast
    assert feedback_button(at, "like", third).proto.type == "primary"  # shows pressed
    assert feedback_button(at, "like", card_ids(at)[0]).proto.type == "secondary"  # other cards untouched
    assert not at.warning and not at.error
    react(at, "like", third)  # pressed again: said, not sent twice
    assert len(stub.feedback) == 1 and "Already saved" in texts(at.toast)[0]

    react(at, "watched", card_ids(at)[0])
    assert [(e["kind"], e["position"]) for e in stub.feedback] == [("like", 3), ("watched", 1)]
    assert {e["event_id"] for e in stub.feedback} != {event["event_id"]}


def test_a_liked_card_joins_your_likes_and_the_next_recommend_call(stub: StubApi) -> None:
    at = open_page("views/recommend.py", stub.client())
    pick(at, "toy", 862)
    assert liked_strip_ids(at) == [862]
    recommend(at)
    first = card_ids(at)[0]
    react(at, "like", first)

    assert liked_strip_ids(at) == [862, first]
    assert at.multiselect(key="liked").value == [862, first]
    assert any("Your likes changed since these picks" in c for c in texts(at.caption))
    recommend(at)
    before, after = main_calls(stub)
    # The 👍 is in the server's history now, which it ranks from first: the request adds only the rest.
    assert after["liked"] == [862] and after["user_id"] == before["user_id"]
    last = main_answers(stub)[-1]
    assert (last["source"], last["history"]) == ("user", 1)
    assert first not in card_ids(at)
    assert not any("Your likes changed" in c for c in texts(at.caption))


def test_thumbs_down_takes_a_movie_out_of_your_likes(stub: StubApi) -> None:
    at = open_page("views/recommend.py", stub.client())
    recommend(at)
    second = card_ids(at)[1]
    react(at, "like", second)
    assert liked_strip_ids(at) == [second]
    react(at, "dislike", second)

    assert liked_strip_ids(at) == [] and at.multiselect(key="liked").value == []
    assert [e["kind"] for e in stub.feedback] == ["like", "dislike"]
    assert "out of your likes" in texts(at.toast)[0]
    assert second not in card_ids(at)  # 👎 takes the card away for good (tests/ui/test_users.py)


def _spool_full(stub: StubApi, monkeypatch: pytest.MonkeyPatch) -> None:
    stub.feedback_status = 503


def _bad_kind(stub: StubApi, monkeypatch: pytest.MonkeyPatch) -> None:
    problem = {"loc": ["body", "events", 0, "kind"], "msg": "Input should be 'like'", "type": "literal_error"}
    monkeypatch.setattr(stub, "_feedback", lambda body: (422, {"detail": [problem]}))


def _unreachable(stub: StubApi, monkeypatch: pytest.MonkeyPatch) -> None:
    def refuse(body: Any) -> Any:
        raise httpx.ConnectError("connection refused")

    monkeypatch.setattr(stub, "_feedback", refuse)


@pytest.mark.parametrize(
    ("refuse", "expected"),
    [
        (_spool_full, ["cannot take feedback right now", "the feedback spool is full", "try again in 5 s"]),
        (_bad_kind, ["the API refused it", "events.0.kind: Input should be 'like'"]),
        (_unreachable, ["Cannot reach the movie API", "Try again once it is running"]),
    ],
)
def test_a_refused_thumbs_up_says_plainly_that_it_was_not_saved(
    stub: StubApi, monkeypatch: pytest.MonkeyPatch, refuse: Any, expected: list[str]
) -> None:
    at = open_page("views/recommend.py", stub.client())
    recommend(at)
    first = card_ids(at)[0]
    refuse(stub, monkeypatch)
    react(at, "like", first)

    [warning] = texts(at.warning)
    assert f"Your 👍 for **{CATALOG[first]['title']}** was not saved" in warning
    for words in expected:
        assert words in warning
    assert "still in your likes" in warning and liked_strip_ids(at) == [first]
    assert any("not saved" in t for t in texts(at.toast))
    assert feedback_button(at, "like", first).proto.type == "secondary"  # not pressed: retry it
    assert stub.feedback == [] and len(card_ids(at)) == 10


# --- New for you: the new-releases pool ------------------------------------------------------------
def new_pool_answer(stub: StubApi) -> dict[str, Any]:
    """The stub's one answer to a pool "new" request."""
    [answer] = [a for a in stub.answered("POST", "/recommend") if a.get("pool") == "new"]
    return answer


def test_new_for_you_shows_new_movies_in_a_row_under_the_main_picks(stub: StubApi) -> None:
    at = open_page("views/recommend.py", stub.client())
    pick(at, "toy", 862)
    recommend(at)

    assert new_for_you.HEADING in texts(at.subheader)
    assert new_for_you.CAPTION in texts(at.caption)
    expected = [item["tmdb_id"] for item in new_pool_answer(stub)["items"]]
    assert card_ids(at, "new") == expected and len(expected) == new_for_you.NEW_K
    assert expected[:2] == [1100001, 1100006]  # the animated family ones match Toy Story best
    assert set(expected) <= set(NEW_RELEASES) and not set(expected) & set(card_ids(at))
    # Under the ten main cards, each titled and marked new; the main cards carry no badge.
    assert card_ids(at, None) == card_ids(at) + expected and len(card_ids(at)) == 10
    for body, tmdb_id in zip(card_bodies(at, "new"), expected, strict=True):
        assert NEW_RELEASES[tmdb_id]["title"] in body and 'class="new-badge"' in body
    assert not any("new-badge" in body for body in card_bodies(at))
    assert len([b for b in at.button if b.key and b.key.startswith("fb-like-")]) == 10 + len(expected)


def test_an_empty_new_pool_says_new_movies_come_with_the_daily_pipeline(stub: StubApi) -> None:
    stub.new_releases = {}  # an old model: nothing outside its training data
    at = open_page("views/recommend.py", stub.client())
    pick(at, "toy", 862)
    recommend(at)

    assert new_for_you.HEADING in texts(at.subheader)
    assert "No new movies yet: the daily pipeline adds about 100 a day." in texts(at.caption)
    assert new_for_you.CAPTION not in texts(at.caption)
    assert card_ids(at, "new") == [] and len(card_ids(at)) == 10


def test_thumbs_up_on_a_new_card_names_the_new_pools_response_and_position(stub: StubApi) -> None:
    at = open_page("views/recommend.py", stub.client())
    pick(at, "toy", 862)
    recommend(at)
    second_new = card_ids(at, "new")[1]
    react(at, "like", second_new)

    [event] = stub.feedback
    main_answer, new_answer = stub.answered("POST", "/recommend")
    assert new_answer is new_pool_answer(stub) and new_answer["request_id"] != main_answer["request_id"]
    assert (event["tmdb_id"], event["kind"], event["position"]) == (second_new, "like", 2)
    assert event["request_id"] == new_answer["request_id"]
    assert event["user_id"] == at.session_state["user_id"]
    [toast] = texts(at.toast)
    assert "👍 saved" in toast and NEW_RELEASES[second_new]["title"] in toast
    assert feedback_button(at, "like", second_new).proto.type == "primary"
    assert liked_strip_ids(at) == [862, second_new]


def test_a_failing_new_pool_shows_its_error_in_place_and_keeps_the_main_picks(stub: StubApi) -> None:
    stub.new_pool_status = 500
    at = open_page("views/recommend.py", stub.client())
    pick(at, "toy", 862)
    recommend(at)

    [error] = texts(at.error)
    assert "internal server error (logged)" in error
    assert new_for_you.HEADING in texts(at.subheader)
    assert len(card_ids(at)) == 10 and card_ids(at, "new") == []
    assert any("Because you liked Toy Story" in c for c in texts(at.caption))


def test_an_api_without_pools_shows_no_new_row_cards_and_says_why(stub: StubApi) -> None:
    stub.with_pools = False  # ignores pool "new": its answer would be the main picks again
    at = open_page("views/recommend.py", stub.client())
    pick(at, "toy", 862)
    recommend(at)

    assert new_for_you.UNSUPPORTED in texts(at.caption)
    assert card_ids(at, "new") == [] and len(card_ids(at)) == 10
    assert not any("new-badge" in body for body in card_bodies(at))


def test_a_main_card_marked_new_gets_the_badge() -> None:
    assert 'class="new-badge"' in cards.movie_card_html(Movie(1, "Robot Summer", new=True))
    assert "new-badge" not in cards.movie_card_html(Movie(1, "Robot Summer"))


def test_client_sends_pool_only_when_new_and_reads_new_and_pool() -> None:
    seen: list[Any] = []
    answers = [
        {"items": [{"tmdb_id": 7, "title": "Old", "new": False}], "pool": "all", "strategy": "sequential"},
        {"items": [{"tmdb_id": 8, "title": "Fresh", "new": True}], "pool": "new", "request_id": "r-2"},
        {"items": [{"tmdb_id": 9, "title": "Before pools"}], "strategy": "popularity"},
    ]

    def answer(request: httpx.Request) -> httpx.Response:
        seen.append(json.loads(request.content))
        return httpx.Response(200, json=answers[len(seen) - 1])

    client = MovieApi("http://stub.invalid", transport=httpx.MockTransport(answer))
    main, new, old = client.recommend([1]), client.recommend([1], k=5, pool="new"), client.recommend([1])
    assert seen == [{"liked": [1], "k": 10}, {"liked": [1], "k": 5, "pool": "new"}, {"liked": [1], "k": 10}]
    assert isinstance(main, Recommendations) and main.pool == "all" and main.items[0].new is False
    assert isinstance(new, Recommendations) and new.pool == "new" and new.items[0].new is True
    assert isinstance(old, Recommendations) and old.pool is None and old.items[0].new is False


# --- model page -------------------------------------------------------------------------------------
def test_model_page_shows_versions_metrics_runs_and_history(stub: StubApi) -> None:
    at = open_page("views/model.py", stub.client())
    assert texts(at.header) == ["⭐ Rating model", "🍿 Recommender", "🔁 Recommender online", "🧪 Experiments",
                                "🩺 Monitoring", "🔎 Where the rating model errs"]  # fmt: skip
    metrics = {m.label: m.value for m in at.metric}
    model_cards = {k: metrics[k] for k in ("RMSE", "MAE", "NDCG@10", "HR@10")}
    assert model_cards == {"RMSE": "0.86 pts", "MAE": "0.66 pts", "NDCG@10": "0.102", "HR@10": "21.0%"}
    rating_details = at.markdown[0].value
    assert RATING_VERSION in rating_details
    assert "2025-02-26 12:00 UTC" in rating_details
    assert "offline-run-20250226_120000-rati" in rating_details and "xgboost" in rating_details

    # The histories, online, the experiment, live RMSE, errors by band.
    assert len(at.get("vega_lite_chart")) == 2 + 4 + 1 + 1 + 2
    _, rating_history = chart_frames(at, 0)
    assert list(rating_history["value"]) == [0.94, 0.91, 0.93, 0.88, 0.86]
    assert list(rating_history["status"]).count("production") == 1
    at.selectbox(key="metric-rating").select("mae").run()
    _, rating_history = chart_frames(at, 0)
    assert list(rating_history["value"]) == [0.72, 0.70, 0.71, 0.68, 0.66]


def test_model_page_without_a_history_endpoint_charts_the_production_version(stub: StubApi) -> None:
    stub.with_history = False
    at = open_page("views/model.py", stub.client())
    assert any("does not publish the registry's history" in c for c in texts(at.caption))
    _, rating_history = chart_frames(at, 0)
    assert list(rating_history["version"]) == [RATING_VERSION]


def test_model_page_plots_online_metrics_by_day_and_version(stub: StubApi) -> None:
    at = open_page("views/model.py", stub.client())
    assert ("GET", "/model/online") in [r[:2] for r in stub.requests]
    charts = [chart_frames(at, i) for i in range(2, 6)]
    assert [spec["title"] for spec, _ in charts] == ["Hit rate", "MRR", "Coverage", "Fallback share"]
    for (spec, frame), metric in zip(charts, ["hit_rate", "mrr", "coverage", "fallback_share"], strict=True):
        assert spec["encoding"]["color"]["field"] == "version"
        assert spec["encoding"]["x"]["field"] == "date"
        expected = [(day["date"], v["version"], v[metric]) for day in ONLINE_DAYS for v in day["versions"]]
        got = [
            (d.strftime("%Y-%m-%d"), v, x)
            for d, v, x in zip(frame["date"], frame["version"], frame["value"], strict=True)
        ]
        assert sorted(got) == sorted(expected)
    # A version keeps its colour from chart to chart: the domain is the same everywhere.
    domains = {tuple(spec["encoding"]["color"]["scale"]["domain"]) for spec, _ in charts}
    assert domains == {(PREVIOUS_RECOMMENDER, RECOMMENDER_VERSION)}
    captions = " ".join(texts(at.caption))
    assert "positive feedback" in captions and "within 30 minutes" in captions
    assert "Latest day 2025-03-05" in captions


def test_model_page_without_online_data_says_what_produces_it(stub: StubApi) -> None:
    stub.online_days = []
    at = open_page("views/model.py", stub.client())
    [info] = [i for i in texts(at.info) if "online metrics" in i]
    assert "No online metrics yet" in info
    assert "./scripts/simulate.sh" in info and "recommendation page" in info and "pipeline" in info
    assert len(at.get("vega_lite_chart")) == 2 + 1 + 1 + 2  # histories, experiment, live RMSE, errors by band


def test_model_page_says_when_online_metrics_cannot_be_read(stub: StubApi) -> None:
    stub.online_status = 503
    at = open_page("views/model.py", stub.client())
    [warning] = texts(at.warning)
    assert "cannot be read right now" in warning and "cannot read reports/online from S3" in warning
    assert texts(at.header)[:2] == ["⭐ Rating model", "🍿 Recommender"]  # the rest of the page stands


def test_model_page_without_a_model_says_what_to_run() -> None:
    at = open_page("views/model.py", StubApi(ready=False).client())
    [warning] = texts(at.warning)
    assert "no rating model is loaded" in warning
    assert not at.get("vega_lite_chart")


def test_model_page_with_the_api_down_explains(down_api: MovieApi) -> None:
    at = open_page("views/model.py", down_api)
    [error] = texts(at.error)
    assert "not reachable" in error


# --- the app shell ----------------------------------------------------------------------------------
def test_app_navigates_between_the_three_pages_and_shows_api_status(stub: StubApi) -> None:
    at = open_page("app.py", stub.client())
    assert texts(at.title) == ["⭐ Predict a movie's rating"]
    assert ":green-badge[API ready]" in texts(at.sidebar.markdown)
    at.switch_page("views/recommend.py").run()
    assert texts(at.title) == ["🍿 What to watch next"]
    at.switch_page("views/model.py").run()
    assert texts(at.title) == ["📈 Models in production"]
    assert not at.exception


def test_app_sidebar_says_when_the_api_is_offline(down_api: MovieApi) -> None:
    at = open_page("app.py", down_api)
    assert ":red-badge[API offline]" in texts(at.sidebar.markdown)


# --- the client's reading of odd answers ------------------------------------------------------------
def test_client_reads_a_bare_search_list_and_builds_poster_urls() -> None:
    rows = [{"tmdb_id": 5, "title": "Four Rooms", "release_date": "1995-12-09", "poster_path": "/x.jpg"}]
    client = MovieApi(
        "http://stub.invalid", transport=httpx.MockTransport(lambda r: httpx.Response(200, json=rows))
    )
    assert client.search("four") == [
        Movie(
            tmdb_id=5,
            title="Four Rooms",
            release_year=1995,
            poster_url="https://image.tmdb.org/t/p/w342/x.jpg",
        )
    ]


def test_client_turns_garbage_into_an_error_value() -> None:
    client = MovieApi(
        "http://stub.invalid", transport=httpx.MockTransport(lambda r: httpx.Response(200, text="<html>"))
    )
    for result in (
        client.predict({"overview": "x"}),
        client.recommend([1]),
        client.search("x"),
        client.models(),
        client.send_feedback([FeedbackEvent.new("anon-1", 1, "like")]),
        client.online(),
    ):
        assert isinstance(result, ApiError)


def test_client_reads_retry_after_and_sends_only_the_fields_that_are_set() -> None:
    seen: list[Any] = []

    def full(request: httpx.Request) -> httpx.Response:
        seen.append(json.loads(request.content))
        return httpx.Response(503, json={"detail": "spool full"}, headers={"Retry-After": "7"})

    client = MovieApi("http://stub.invalid", transport=httpx.MockTransport(full))
    error = client.send_feedback([FeedbackEvent.new("anon-1", 862, "rating", value=4.5)])
    assert isinstance(error, ApiError) and error.kind == "not_ready"
    assert error.retry_after_s == 7 and error.message == "spool full"
    [event] = seen[0]["events"]
    assert set(event) == {"event_id", "user_id", "tmdb_id", "kind", "value"}  # no request_id/position


def test_model_page_monitoring_shows_live_rmse_by_day_against_validation_and_links_reports(
    stub: StubApi,
) -> None:
    at = open_page("views/model.py", stub.client())
    metrics = {m.label: m.value for m in at.metric}
    assert metrics["Live RMSE (latest day)"] == "1.31" and metrics["Validation RMSE"] == "0.70"
    assert metrics["Recipe (latest day)"] == "0.95"
    [alert] = texts(at.error)
    assert "Alert on 2025-03-05" in alert and "features drifted in requests" in alert
    spec, frame = chart_frames(at, 7)
    assert spec["title"] == "RMSE on new movies, by day (lower is better)"
    live = frame[frame["kind"] == "live"]
    assert [d.strftime("%Y-%m-%d") for d in live["date"]] == ["2025-03-03", "2025-03-04", "2025-03-05"]
    assert list(live["rmse"]) == [0.79, 0.83, 1.31]
    assert set(frame[frame["kind"] == "validation"]["rmse"]) == {0.71, 0.70}
    drift = at.dataframe[2].value  # after the experiment's arms and recent ends
    assert list(drift["drifted features"])[:2] == [
        "runtime, main_genre",
        "no new movies were collected that day",
    ]
    assert list(drift["rows"])[:2] == [120_000, 0]  # the day's volume, not the 5,000 rows compared
    links = " ".join(texts(at.markdown))
    assert "/model/monitoring/drift/2025-03-05?comparison=requests" in links


def test_model_page_says_when_monitoring_cannot_be_read(stub: StubApi) -> None:
    stub.monitoring_status = 503
    at = open_page("views/model.py", stub.client())
    [warning] = texts(at.warning)
    assert "monitoring reports cannot be read right now" in warning


def test_the_new_shelf_has_its_own_line_in_the_online_charts() -> None:
    from services.ui import online_view
    from services.ui.api.loop import read_online

    row = {"responses": 4, "hit_rate": 0.5, "mrr": 0.25, "coverage": 0.1, "catalog_size": 10}
    days = read_online({"days": [{"date": "2026-12-01", "versions": [
        {**row, "version": "v1"}, {**row, "version": "v1", "pool": "new", "hit_rate": 0.25}]}]})  # fmt: skip
    frame = online_view.online_frame(days)
    hits = frame[frame["metric"] == "hit_rate"].set_index("version")["value"].to_dict()
    assert hits == {"v1": 0.5, "v1 · new shelf": 0.25}  # a row without a pool is the main list


def test_model_page_charts_bias_and_rmse_by_band_for_production_and_the_challenger(stub: StubApi) -> None:
    at = open_page("views/model.py", stub.client())
    assert "🔎 Where the rating model errs" in texts(at.header)
    assert any("120 movies of the test split" in c for c in texts(at.caption))
    picker = at.selectbox(key="errors-dimension")
    assert picker.value == "vote_count"
    bias_spec, bias = chart_frames(at, 8)
    assert bias_spec["title"] == "Bias (predicted − actual) by vote count"
    few = bias[(bias["band"] == "10–50") & (bias["metric"] == "bias")].set_index("model")["value"].to_dict()
    assert few == {"production": 0.49, "challenger (this run)": 0.41}  # both rate few-vote movies too high
    rmse_spec, rmse = chart_frames(at, 9)
    assert rmse_spec["title"] == "RMSE by vote count"
    assert list(dict.fromkeys(rmse[rmse["metric"] == "rmse"]["band"])) == ["10–50", "50–200", "200–1k"]
    picker.select("main_genre").run()
    assert not at.exception, at.exception
    spec, frame = chart_frames(at, 9)
    assert spec["title"] == "RMSE by main genre"
    assert set(frame[frame["metric"] == "rmse"]["band"]) == {"Drama", "other"}


def test_model_page_without_an_error_report_says_what_writes_it(stub: StubApi) -> None:
    stub.errors = None
    at = open_page("views/model.py", stub.client())
    assert any("No error analysis yet" in i for i in texts(at.info))
    assert "/model/errors" in [p for _, p, _ in stub.requests]


def test_model_page_says_when_the_error_report_cannot_be_read(stub: StubApi) -> None:
    stub.errors_status = 503
    at = open_page("views/model.py", stub.client())
    [warning] = texts(at.warning)
    assert "error analysis cannot be read right now" in warning
    assert "Live RMSE (latest day)" in [m.label for m in at.metric]  # the rest of the page still shows
