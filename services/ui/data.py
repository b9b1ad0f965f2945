"""Streamlit glue: the shared API client (swappable in tests) and cached lookups."""

from __future__ import annotations

import streamlit as st

from services.core.settings import get_settings
from services.ui.api.client import MovieApi
from services.ui.api.records import FALLBACK_VOCABULARY, ApiError, Movie, Readiness, Vocabulary

# Tests put a stand-in MovieApi here (AppTest.session_state) before the first run.
API_STATE_KEY = "api_client"


class _NotCached(Exception):  # noqa: N818 - a control-flow signal, not an error
    """Carries an ApiError out of a cached function so that failures are never cached."""

    def __init__(self, error: ApiError) -> None:
        super().__init__(error.message)
        self.error = error


@st.cache_resource(show_spinner=False)
def _shared_api(base_url: str, poster_base_url: str) -> MovieApi:
    return MovieApi(base_url, poster_base_url=poster_base_url)


def api() -> MovieApi:
    """The API client: the one a test injected into session_state, else one shared per URL."""
    injected = st.session_state.get(API_STATE_KEY)
    if injected is not None:
        return injected
    settings = get_settings()
    return _shared_api(settings.api_url, settings.poster_base_url)


@st.cache_data(ttl=300, max_entries=1000, show_spinner=False)
def _search(_client: MovieApi, base_url: str, query: str, limit: int) -> list[Movie]:
    result = _client.search(query, limit)
    if isinstance(result, ApiError):
        raise _NotCached(result)
    return result


def search_movies(query: str, limit: int = 10) -> list[Movie] | ApiError:
    """Catalog search, cached for five minutes per query; errors are not cached."""
    client = api()
    try:
        return _search(client, client.base_url, query.strip(), limit)
    except _NotCached as exc:
        return exc.error


@st.cache_data(ttl=600, show_spinner=False)
def _vocabulary(_client: MovieApi, base_url: str) -> Vocabulary:
    vocab = _client.vocabulary()
    if vocab.source != "api":
        raise _NotCached(ApiError("down", "vocabulary not available"))
    return vocab


def vocabulary() -> Vocabulary:
    """The rating form's choices, cached for ten minutes when the API gave them."""
    client = api()
    try:
        return _vocabulary(client, client.base_url)
    except _NotCached:
        return FALLBACK_VOCABULARY


@st.cache_data(ttl=15, show_spinner=False)
def _readiness(_client: MovieApi, base_url: str) -> Readiness:
    status = _client.readiness()
    if isinstance(status, ApiError) or not status.ready:
        raise _NotCached(status if isinstance(status, ApiError) else ApiError("not_ready", status.detail))
    return status


def readiness() -> Readiness | ApiError:
    """GET /ready, cached for 15 s while the API is ready; not-ready and down are re-checked."""
    client = api()
    try:
        return _readiness(client, client.base_url)
    except _NotCached as exc:
        if exc.error.kind == "not_ready":
            return Readiness(False, exc.error.message)
        return exc.error
