"""The "New for you" row: movies nobody has rated yet, matched to your likes by their content."""

from __future__ import annotations

from collections.abc import Sequence

import streamlit as st

from services.ui import cards, components, data, feedback
from services.ui.api.records import ApiError, Recommendations
from services.ui.picks import hidden

NEW_K = 5  # one row of cards
HEADING = "New for you"
CAPTION = "New movies nobody has rated yet, matched to your likes by their content."
CAPTION_NO_LIKES = "New movies nobody has rated yet. Add movies you liked to match them to your taste."
EMPTY = "No new movies yet: the daily pipeline adds about 100 a day."
UNSUPPORTED = "This API does not rank new movies on their own yet, so there is nothing new to show."


def fetch(liked: Sequence[int], user_id: str) -> Recommendations | ApiError:
    """POST /recommend on the new pool, for the same likes and user as the main picks."""
    return data.api().recommend(liked, k=NEW_K, user_id=user_id, pool="new")


def show(result: Recommendations | ApiError | None, liked: Sequence[int]) -> None:
    """The row under the main picks: its cards with feedback, or why there are none."""
    if result is None:  # no second call was made (the main one failed)
        return
    st.subheader(HEADING, anchor="new-for-you")
    if isinstance(result, ApiError):
        # In place of the row only: the main picks above stay as they are.
        components.show_error(result)
        return
    if result.pool != "new":
        # An API from before pools ignores the field and ranks everything: those are not new movies.
        st.caption(UNSUPPORTED)
        return
    if not result.items:
        st.caption(EMPTY)
        return
    st.caption(CAPTION if liked else CAPTION_NO_LIKES)
    # Feedback names this response (its own request id and positions): the impression that showed it.
    gone = hidden()  # 👎 on either row: gone from both at once
    cards.movie_grid(
        [m for m in result.items if m.tmdb_id not in gone],
        per_row=NEW_K,
        below=lambda movie, position: feedback.card_buttons(movie, position, result.request_id),
        row="new",
    )
