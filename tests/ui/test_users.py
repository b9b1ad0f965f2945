"""The recommend page for users known by id: the id in the URL, the server's history, 👎 for good, forget me.

AppTest against the stand-in API (tests/fakes/ui_stub_api.py), whose in-memory user state
(tests/fakes/ui_stub_users.py) takes the feedback and honours it in /recommend as the real API does.
A "reload" is a new AppTest (a new browser session) opened on the same URL query parameters.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
import streamlit as st
from streamlit.testing.v1 import AppTest

from services.ui import data, user_view
from services.ui.api.client import MovieApi
from services.ui.api.users import UserHistory
from tests.fakes.ui_stub_api import StubApi
from tests.ui.test_apptest import UI, card_ids, main_answers, main_calls, pick, react, recommend, texts

ANON = re.compile(r"anon-[0-9a-f]{32}")


@pytest.fixture(autouse=True)
def _fresh_caches() -> Iterator[None]:
    st.cache_data.clear()
    yield
    st.cache_data.clear()


@pytest.fixture
def stub() -> StubApi:
    return StubApi()


def open_recommend(client: MovieApi, user: str | None = None) -> AppTest:
    """The recommend page in a new browser session, on ?user=<user> when given."""
    at = AppTest.from_file(str(UI / "views" / "recommend.py"), default_timeout=30)
    at.session_state[data.API_STATE_KEY] = client
    if user:
        at.query_params["user"] = user
    at.run()
    assert not at.exception, at.exception
    return at


def click(at: AppTest, key: str) -> AppTest:
    at.button(key=key).click().run()
    assert not at.exception, at.exception
    return at


def returning_user(stub: StubApi) -> tuple[str, list[int]]:
    """A user who picked Toy Story, 👍 two cards, saw one and 👎 one: (their id, [liked, liked, seen, disliked])."""
    at = open_recommend(stub.client())
    pick(at, "toy", 862)
    recommend(at)
    first, second, third, fourth = card_ids(at)[:4]
    for kind, tmdb_id in [("like", first), ("like", second), ("watched", third), ("dislike", fourth)]:
        react(at, kind, tmdb_id)
    return at.query_params["user"], [first, second, third, fourth]


def test_the_id_is_made_on_the_first_visit_kept_in_the_url_and_survives_reruns_and_reloads(
    stub: StubApi,
) -> None:
    at = open_recommend(stub.client())
    user = at.query_params["user"]
    assert ANON.fullmatch(user) and at.session_state["user_id"] == user
    at.run()
    assert at.query_params["user"] == user
    recommend(at)
    assert {body["user_id"] for body in stub.calls("POST", "/recommend")} == {user}

    again = open_recommend(stub.client(), user)  # a reload: a new session on the same URL
    assert again.query_params["user"] == user and again.session_state["user_id"] == user
    assert any(f"`{user}`" in c for c in texts(again.caption))  # shown, discreetly, in the footer
    other = open_recommend(stub.client())  # another browser: another id
    assert other.query_params["user"] != user


def test_a_returning_user_sees_the_servers_history_and_the_liked_box_is_folded_away(stub: StubApi) -> None:
    user, (first, second, third, fourth) = returning_user(stub)
    at = open_recommend(stub.client(), user)

    assert stub.calls("GET", f"/users/{user}")
    assert any("2 liked · 1 watched · 1 disliked" in c for c in texts(at.caption))
    [strip] = [h.proto.body for h in at.get("html") if 'class="history-strip"' in h.proto.body]
    assert [int(x.split('"')[0]) for x in strip.split('data-tmdb-id="')[1:]] == [first, second, third]
    [picker] = at.expander
    assert picker.label == "Add movies by hand" and not picker.proto.expanded
    assert picker.multiselect(key="liked").value == []

    recommend(at)
    assert main_calls(stub)[-1] == {"liked": [], "k": 10, "user_id": user}  # no liked list: the server has it
    [how] = [c for c in texts(at.caption) if c.startswith("Ranked from your history")]
    assert "(3 movies you liked or watched)" in how and "ranked just now" in how
    assert not {first, second, third, fourth} & set(card_ids(at))  # nothing seen or disliked comes back


def test_a_new_user_keeps_the_liked_box_and_is_ranked_from_the_page(stub: StubApi) -> None:
    at = open_recommend(stub.client())
    assert not at.expander and at.multiselect(key="liked").label == "Movies you liked"
    assert not any("Your history on the server" in m for m in texts(at.markdown))
    pick(at, "matrix", 603)
    recommend(at)
    assert main_calls(stub)[-1]["liked"] == [603]
    assert any(c.startswith("Ranked from the movies picked on this page") for c in texts(at.caption))

    # Their first 👍 gives them a history: this visit's picks stay in sight, and are sent after it.
    first = card_ids(at)[0]
    react(at, "like", first)
    [picker] = at.expander
    assert picker.proto.expanded and picker.multiselect(key="liked").value == [603, first]
    recommend(at)
    assert main_calls(stub)[-1]["liked"] == [603] and main_answers(stub)[-1]["source"] == "user"


def test_thumbs_down_removes_the_card_at_once_and_it_never_comes_back(stub: StubApi) -> None:
    at = open_recommend(stub.client())
    pick(at, "toy", 862)
    recommend(at)
    gone = card_ids(at)[0]
    react(at, "dislike", gone)
    assert gone not in card_ids(at) and len(card_ids(at)) == 9  # at once, before any new call
    assert "will not be recommended to you again" in texts(at.toast)[0]

    recommend(at)
    assert gone not in card_ids(at) and len(card_ids(at)) == 10
    assert gone not in [item["tmdb_id"] for item in main_answers(stub)[-1]["items"]]
    again = recommend(open_recommend(stub.client(), at.query_params["user"]))  # after a reload too
    assert gone not in card_ids(again)


def test_the_caption_says_when_the_answer_was_precomputed(stub: StubApi) -> None:
    user, _ = returning_user(stub)
    stub.users.cached_for.add(user)
    at = recommend(open_recommend(stub.client(), user))
    [how] = [c for c in texts(at.caption) if c.startswith("Ranked from your history")]
    assert "precomputed for you" in how and "model version" in how


def test_forget_me_erases_the_user_on_the_server_and_starts_a_new_id(stub: StubApi) -> None:
    user, _ = returning_user(stub)
    at = open_recommend(stub.client(), user)
    click(at, "forget-me")

    assert stub.users.erased == [user] and user not in stub.users.users
    fresh = at.query_params["user"]
    assert ANON.fullmatch(fresh) and fresh != user and at.session_state["user_id"] == fresh
    assert "Forgotten" in texts(at.toast)[0] and "new anonymous id" in texts(at.toast)[0]
    assert not at.expander and at.multiselect(key="liked").value == []  # a new user: the box is back
    assert card_ids(at) == []


def test_new_user_starts_afresh_and_the_server_keeps_the_old_ids_history(stub: StubApi) -> None:
    user, _ = returning_user(stub)
    at = click(open_recommend(stub.client(), user), "new-user")
    assert at.query_params["user"] != user and user in stub.users.users
    assert stub.calls("DELETE", f"/users/{user}") == []


def test_an_api_without_users_routes_is_todays_page_with_a_one_line_note(stub: StubApi) -> None:
    stub.with_users = False
    at = open_recommend(stub.client())
    assert user_view.NO_USERS_NOTE in texts(at.caption)
    pick(at, "toy", 862)
    recommend(at)
    assert main_calls(stub)[-1]["liked"] == [862] and len(card_ids(at)) == 10
    assert any("Because you liked Toy Story" in c for c in texts(at.caption))
    old = at.query_params["user"]
    click(at, "forget-me")
    assert "nothing to erase" in texts(at.toast)[0] and at.query_params["user"] != old
    assert not at.error and not at.warning


def test_a_user_store_that_is_down_is_a_one_line_note_and_never_a_traceback(stub: StubApi) -> None:
    user, _ = returning_user(stub)
    stub.users.status = 503
    at = open_recommend(stub.client(), user)
    assert any("cannot be read right now" in c for c in texts(at.caption))
    assert not at.expander  # the page's own liked box, as today
    pick(at, "heat", 949)
    recommend(at)
    assert main_calls(stub)[-1]["liked"] == [949] and len(card_ids(at)) == 10

    click(at, "forget-me")
    [warning] = texts(at.warning)
    assert "not forgotten" in warning and "try again" in warning
    assert at.query_params["user"] == user  # kept, so that the erasure can be retried


@pytest.mark.parametrize(
    ("status", "body", "expected"),
    [
        (200, {"user_id": "u", "positives": [[862, 1], [603, 2]], "dislikes": [5], "seen": [603]}, "state"),
        (200, {"positives": [{"tmdb_id": 862, "ts": "x"}], "dislikes": {}, "ratings": {"862": 4}}, "records"),
        (204, None, "erased"),
        (404, {"detail": "no state for this user"}, "empty"),
        (404, {"detail": "Not Found"}, "no route"),
        (405, {"detail": "Method Not Allowed"}, "no route"),
        (503, {"detail": "redis is down"}, "error"),
    ],
)
def test_client_reads_the_users_answers(status: int, body: Any, expected: str) -> None:
    answer = httpx.Response(status) if body is None else httpx.Response(status, json=body)
    client = MovieApi("http://t.invalid", transport=httpx.MockTransport(lambda r: answer))
    if expected == "erased":  # the real DELETE: 204, whether or not anything was held
        assert client.delete_user("u") is True
        return
    got = client.get_user("u")
    if expected == "state":
        assert got == UserHistory("u", liked=(862, 603), disliked=(5,), seen=(603,))
    elif expected == "records":
        assert got == UserHistory("u", liked=(862,), ratings=1)
    elif expected == "empty":
        assert got == UserHistory("u") and not got.known
        assert client.delete_user("u") is False  # an API whose DELETE says 404 for nothing held
    elif expected == "no route":
        assert got is None and client.delete_user("u") is None
    else:
        assert got.kind == "not_ready" and client.delete_user("u").kind == "not_ready"


def test_every_page_keeps_the_id_in_the_url_so_a_reload_anywhere_keeps_the_user(stub: StubApi) -> None:
    at = AppTest.from_file(str(UI / "app.py"), default_timeout=30)
    at.session_state[data.API_STATE_KEY] = stub.client()
    at.run()  # the rating page, the default: the id is made here already
    user = at.query_params["user"]
    assert ANON.fullmatch(user)
    for page in ("views/recommend.py", "views/model.py", "views/rating.py"):
        at.query_params.clear()  # what a page switch does in the browser
        at.switch_page(page).run()
        assert not at.exception and at.query_params["user"] == user


def test_an_id_in_the_url_that_the_api_would_refuse_is_replaced_by_a_fresh_one(stub: StubApi) -> None:
    at = open_recommend(stub.client(), "not an id <b>" + "x" * 200)
    assert ANON.fullmatch(at.query_params["user"])
    typed = open_recommend(stub.client(), "alice")  # a readable id someone typed is theirs to keep
    assert typed.query_params["user"] == "alice" and typed.session_state["user_id"] == "alice"
