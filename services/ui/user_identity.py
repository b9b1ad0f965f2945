"""The anonymous user: a random id kept in the URL (?user=…), so a reload or a bookmark keeps the history."""

from __future__ import annotations

import re
import uuid

import streamlit as st

USER_PARAM = "user"  # the query parameter
USER_KEY = "user_id"  # the same id in session_state: page switches may drop the query parameters
# The app's own ids, and any id the API takes (1-128 characters), minus what needs escaping in a URL.
VALID_ID = re.compile(r"[A-Za-z0-9_.:-]{1,128}")
# What belongs to one user and goes when a new one starts (keys of picks, feedback and the page).
USER_SCOPED_KEYS = ("liked", "recommendations", "new_for_you", "reactions", "hidden_movies")


def new_id() -> str:
    """A fresh pseudonymous id: 'anon-' and 128 random bits, nothing about the person."""
    return f"anon-{uuid.uuid4().hex}"


def current_user() -> str:
    """The id in the URL when valid, else this session's, else a new one; written back to both."""
    from_url = st.query_params.get(USER_PARAM)
    if isinstance(from_url, str) and VALID_ID.fullmatch(from_url):
        user = from_url
    else:
        user = st.session_state.get(USER_KEY) or new_id()
    if st.session_state.get(USER_KEY) != user:
        if st.session_state.get(USER_KEY) is not None:
            _clear_user_state()  # another id in the URL: the previous user's picks are not this one's
        st.session_state[USER_KEY] = user
    if from_url != user:
        st.query_params[USER_PARAM] = user
    return user


def start_afresh() -> str:
    """Forget this browser's user (a button callback): a new id, empty picks, nothing shown."""
    _clear_user_state()
    user = new_id()
    st.session_state[USER_KEY] = user
    st.query_params[USER_PARAM] = user
    return user


def _clear_user_state() -> None:
    for key in USER_SCOPED_KEYS:
        st.session_state.pop(key, None)
