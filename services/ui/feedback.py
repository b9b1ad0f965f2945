"""Reactions on recommendation cards: 👍 / 👎 / Seen it, sent to /feedback and acknowledged at once."""

from __future__ import annotations

from dataclasses import dataclass

import streamlit as st

from services.ui import data
from services.ui.api.loop import FeedbackEvent, FeedbackKind
from services.ui.api.records import ApiError, Movie
from services.ui.picks import add_liked, hide, remember, remove_liked, user_id

REACTIONS_KEY = "reactions"  # (request_id, tmdb_id) -> kinds the API took for that card
NOTICE_KEY = "feedback_notice"  # what the last click led to, shown once on the next run

# kind, button label, tooltip; like and dislike exclude each other on one card.
BUTTONS: tuple[tuple[FeedbackKind, str, str], ...] = (
    ("like", "👍", "More like this: adds it to your likes for the next picks"),
    ("dislike", "👎", "Not for me: this movie goes for good (and out of your likes)"),
    ("watched", "Seen it", "I have seen this one"),
)
NAMES = {"like": "👍", "dislike": "👎", "watched": "“seen it”"}
OPPOSITE = {"like": "dislike", "dislike": "like"}


@dataclass(frozen=True)
class Notice:
    """The outcome of one click, in words."""

    ok: bool
    text: str


def _md(text: str) -> str:
    """A title safe inside markdown (no stray emphasis or links)."""
    for char in "\\*_[]`<>#":
        text = text.replace(char, "\\" + char)
    return text


def pressed(request_id: str | None, tmdb_id: int) -> set[str]:
    """The kinds the API took for this card of this recommendation."""
    return st.session_state.setdefault(REACTIONS_KEY, {}).get((request_id, tmdb_id), set())


def saved_text(kind: str, movie: Movie, was_liked: bool) -> str:
    """What a saved reaction did, for the toast."""
    title = _md(movie.title)
    if kind == "like":
        return f"👍 saved: **{title}** is in your likes for the next picks."
    if kind == "dislike":
        gone = f"👎 saved: **{title}** will not be recommended to you again"
        return gone + (", and it is out of your likes." if was_liked else ".")
    return f"Saved: you have seen **{title}**."


def refused_text(error: ApiError, kind: str, movie: Movie) -> str:
    """Why a reaction was not saved and what to do, in plain words."""
    what = f"Your {NAMES.get(kind, kind)} for **{_md(movie.title)}** was not saved"
    if error.kind == "not_ready":
        wait = f"in {error.retry_after_s} s" if error.retry_after_s else "in a few seconds"
        return f"{what}: the API cannot take feedback right now ({error.message}). Please try again {wait}."
    if error.kind == "down":
        return f"{what}. {error.message} Try again once it is running."
    if error.kind == "invalid":
        return f"{what}: the API refused it ({'; '.join(error.problems) or 'no details given'})."
    if error.kind == "not_found":
        return f"{what}: this API does not take feedback (it has no /feedback endpoint)."
    return f"{what}: {error.message}"


def react(movie: Movie, kind: FeedbackKind, request_id: str | None, position: int) -> None:
    """Button callback: update the likes, post one event, keep the outcome for the next run."""
    if kind in pressed(request_id, movie.tmdb_id):
        # Pressed buttons stay clickable (a disabled one looks greyed out, not pressed): nothing to send.
        st.session_state[NOTICE_KEY] = Notice(True, f"Already saved for **{_md(movie.title)}**.")
        return
    # The likes list is the page's own, so it follows the click even when the API refuses the event.
    was_liked = remove_liked(movie.tmdb_id) if kind == "dislike" else False
    if kind == "like":
        remember([movie])
        add_liked(movie.tmdb_id)
    event = FeedbackEvent.new(user_id(), movie.tmdb_id, kind, request_id=request_id, position=position)
    ack = data.api().send_feedback([event])
    if isinstance(ack, ApiError):
        text = refused_text(ack, kind, movie)
        if kind == "like":
            text += " It is still in your likes for the next picks."
        st.session_state[NOTICE_KEY] = Notice(False, text)
        return
    kinds = st.session_state.setdefault(REACTIONS_KEY, {}).setdefault((request_id, movie.tmdb_id), set())
    kinds.discard(OPPOSITE.get(kind, ""))
    kinds.add(kind)
    if kind == "dislike":
        # The server keeps it out of every later answer; the page drops its card now, not on the next call.
        hide(movie.tmdb_id)
    st.session_state[NOTICE_KEY] = Notice(True, saved_text(kind, movie, was_liked))


def card_buttons(movie: Movie, position: int, request_id: str | None) -> None:
    """👍 / 👎 / Seen it under one card; a saved reaction shows pressed (filled, with a tooltip saying so)."""
    done = pressed(request_id, movie.tmdb_id)
    with st.container(horizontal=True, gap="xsmall"):
        for kind, label, tooltip in BUTTONS:
            st.button(
                label,
                key=f"fb-{kind}-{request_id}-{movie.tmdb_id}",
                help=f"Saved. {tooltip}" if kind in done else tooltip,
                type="primary" if kind in done else "secondary",
                on_click=react,
                args=(movie, kind, request_id, position),
            )


def show_notice() -> None:
    """Acknowledge the last click: a toast when saved; a toast and a lasting warning when refused."""
    notice: Notice | None = st.session_state.pop(NOTICE_KEY, None)
    if notice is None:
        return
    if notice.ok:
        st.toast(notice.text, icon="✅")
    else:
        st.toast(notice.text, icon="⚠️")
        st.warning(notice.text, icon="⚠️")
