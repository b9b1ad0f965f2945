"""The recommend page's user parts: the history the server holds, how an answer was made, who you are."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import streamlit as st

from services.ui import cards, data
from services.ui.api.records import ApiError, Movie, Recommendations
from services.ui.api.users import UserHistory
from services.ui.picks import KNOWN_KEY, liked_movies, remember
from services.ui.user_identity import current_user, start_afresh

RECENT = 6  # history posters shown, most recent last
NOTICE_KEY = "user_notice"  # what "forget me" led to, shown once on the next run
NO_USERS_NOTE = (
    "This API keeps no history per user yet, so the movies picked on this page are what it ranks from."
)


@dataclass(frozen=True)
class UserNotice:
    """The outcome of "forget me", in words."""

    ok: bool
    text: str


def load_history(ready: bool) -> UserHistory | None:
    """The server's history of this user, or None (with a one-line note) when it has none to give."""
    if not ready:
        return None  # the page's banner already says why; nothing to ask
    result = data.api().get_user(current_user())
    if result is None:
        st.caption(NO_USERS_NOTE)
        return None
    if isinstance(result, ApiError):
        st.caption(
            f"⚠️ Your history on the server cannot be read right now ({result.message}), "
            "so the movies picked on this page are what it ranks from."
        )
        return None
    return result


def _titles(ids: Sequence[int]) -> list[Movie]:
    """Movies for these ids: remembered ones as they are, the others looked up once and remembered."""
    known: dict[int, Movie] = st.session_state.setdefault(KNOWN_KEY, {})
    missing = [i for i in ids if i not in known]
    for tmdb_id in missing:
        movie = data.api().movie(tmdb_id)
        if not isinstance(movie, ApiError):
            remember([movie])
    return liked_movies(ids)


def show_history(history: UserHistory) -> None:
    """Counts of what the server holds and the posters of the latest positives."""
    liked_only = [i for i in history.liked if i not in history.seen]  # seen ones are counted as watched
    st.markdown("**Your history on the server**")
    st.caption(
        f"{len(liked_only)} liked · {len(history.seen)} watched · {len(history.disliked)} disliked. "
        "Your picks come from it, most recent last; 👎 movies never come back."
    )
    st.html(cards.likes_strip_html(_titles(history.liked[-RECENT:])).replace("likes-strip", "history-strip"))


def answer_caption(result: Recommendations, liked: Sequence[int]) -> str | None:
    """How the server made this answer (source, history, cached); None from an API before users."""
    if result.source is None:
        return None
    if result.source == "user":
        n = result.history or 0
        what = (
            f"Ranked from your history on the server ({n} movie{'' if n == 1 else 's'} you liked or watched)"
        )
        if liked:
            what += ", with " + ", ".join(m.title for m in liked_movies(liked)) + " picked here"
    elif result.source == "request":
        what = "Ranked from the movies picked on this page: the server holds no history for you yet"
    else:
        what = "Popular movies: the server has nothing of yours to rank from yet"
    how = "precomputed for you" if result.cached else "ranked just now"
    return f"{what} · {how} · model version `{result.model_version or 'unknown'}`"


def forget_me() -> None:
    """Button callback: erase this user on the server, then start afresh under a new id."""
    erased = data.api().delete_user(current_user())
    if isinstance(erased, ApiError):
        st.session_state[NOTICE_KEY] = UserNotice(
            False, f"You were not forgotten: {erased.message} Your id is kept so that you can try again."
        )
        return
    if erased is None:
        text = "This API keeps no history per user, so there was nothing to erase there."
    elif erased:
        text = (
            "Forgotten: the server erased your history and drops your events from its training data "
            "at the next run."
        )
    else:
        text = "The server held nothing for you."
    start_afresh()
    st.session_state[NOTICE_KEY] = UserNotice(True, f"{text} You start afresh with a new anonymous id.")


def show_notice() -> None:
    """Acknowledge "forget me" once: a toast, and a lasting warning when it failed."""
    notice: UserNotice | None = st.session_state.pop(NOTICE_KEY, None)
    if notice is None:
        return
    st.toast(notice.text, icon="✅" if notice.ok else "⚠️")
    if not notice.ok:
        st.warning(notice.text, icon="⚠️")


def identity_footer() -> None:
    """Who you are to the server, discreetly, with the two ways to start afresh."""
    st.caption(
        f"You are `{current_user()}`: an anonymous id kept in this page's address (bookmark it to come back "
        "to your history). It ties your 👍 / 👎 to the picks they were about, and nothing else about you."
    )
    with st.container(horizontal=True, gap="small"):
        st.button(
            "New user",
            key="new-user",
            icon="🔄",
            on_click=start_afresh,
            help="Start afresh under a new id; the server keeps the old id's history",
        )
        st.button(
            "Forget me",
            key="forget-me",
            icon="🗑️",
            on_click=forget_me,
            help="Erase what the server holds for this id, then start afresh under a new one",
        )
