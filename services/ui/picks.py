"""Session state of the recommend page: the anonymous user, movies seen so far, and the liked list."""

from __future__ import annotations

from collections.abc import Iterable, Sequence

import streamlit as st

from services.ui.api.records import Movie
from services.ui.user_identity import current_user

KNOWN_KEY = "known_movies"  # tmdb_id -> Movie, every movie search has shown this session
LIKED_KEY = "liked"  # the multiselect's value: tmdb ids in the order they were added
RESULT_KEY = "recommendations"  # (liked ids, Recommendations | ApiError) of the last request
NEW_RESULT_KEY = "new_for_you"  # Recommendations | ApiError | None: the same request's new pool
HIDDEN_KEY = "hidden_movies"  # tmdb ids 👎 this session: their cards go at once (the server keeps them out)


def user_id() -> str:
    """The anonymous id, kept in the URL across reloads (see user_identity)."""
    return current_user()


def hide(tmdb_id: int) -> None:
    """Take a movie off every card row for good (a saved 👎)."""
    st.session_state.setdefault(HIDDEN_KEY, set()).add(int(tmdb_id))


def hidden() -> set[int]:
    """The movies 👎 so far, never shown again."""
    return st.session_state.get(HIDDEN_KEY, set())


def remember(movies: Iterable[Movie]) -> None:
    """Keep movies from search results and cards so they can stay as chips after those change."""
    known = st.session_state.setdefault(KNOWN_KEY, {})
    for movie in movies:
        known[movie.tmdb_id] = movie


def add_liked(tmdb_id: int) -> None:
    """Append a movie to the liked list (a button callback); a repeat is ignored."""
    liked = list(st.session_state.get(LIKED_KEY, []))
    if tmdb_id not in liked:
        liked.append(tmdb_id)
    st.session_state[LIKED_KEY] = liked


def remove_liked(tmdb_id: int) -> bool:
    """Take a movie out of the liked list; True when it was in it."""
    liked = list(st.session_state.get(LIKED_KEY, []))
    if tmdb_id not in liked:
        return False
    st.session_state[LIKED_KEY] = [i for i in liked if i != tmdb_id]
    return True


def liked_movies(ids: Sequence[int]) -> list[Movie]:
    """The remembered movies for these ids, a bare 'TMDB <id>' for any not seen."""
    known: dict[int, Movie] = st.session_state.get(KNOWN_KEY, {})
    return [known.get(i) or Movie(tmdb_id=i, title=f"TMDB {i}") for i in ids]
