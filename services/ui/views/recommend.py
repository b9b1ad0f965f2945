"""What to watch next: search the catalog, pick movies you liked, get ten recommendations, react to them."""

import streamlit as st

from services.ui import cards, components, data, feedback, new_for_you, user_view
from services.ui.api.records import ApiError, Movie
from services.ui.picks import (
    KNOWN_KEY,
    LIKED_KEY,
    NEW_RESULT_KEY,
    RESULT_KEY,
    add_liked,
    hidden,
    liked_movies,
    remember,
    user_id,
)

st.title("🍿 What to watch next")
st.caption(
    "Pick a few movies you liked, most recent last, and get ten to watch next. "
    "👍 a recommendation to add it to your likes, and the next picks follow. "
    "Under them, **New for you**: new releases nobody has rated yet."
)

user = user_id()  # from the URL, so a reload keeps it; created on the first visit
user_view.show_notice()
# Without a model the API has no catalog to search either; the banner says why and what to run.
api_ready = components.api_status_banner(data.readiness())
st.session_state.setdefault(KNOWN_KEY, {})
st.session_state.setdefault(LIKED_KEY, [])
history = user_view.load_history(api_ready)
stored = history.liked if history else ()  # the server's positives: it ranks from them itself
if history and history.known:
    user_view.show_history(history)
# A returning user needs no "Movies you liked" box: it stays, folded, for adding a movie by hand, and
# opens while this visit has picks of its own (they are sent with the request, after the history).
picker = (
    st.expander("Add movies by hand", expanded=bool(st.session_state[LIKED_KEY]))
    if stored
    else st.container()
)
with picker:
    query = st.text_input(
        "Search the catalog",
        key="search",
        live=True,
        type="search",
        placeholder="Start typing a title, e.g. Toy Story",
    )
    if query and query.strip() and api_ready:
        hits = data.search_movies(query, limit=8)
        if isinstance(hits, ApiError):
            components.show_error(hits)
        elif not hits:
            st.caption(f"No movie in the catalog matches “{query.strip()}”.")
        else:
            remember(hits)
            st.caption("Click a movie to add it:")
            columns = st.columns(4)
            for i, hit in enumerate(hits):
                columns[i % 4].button(
                    hit.label,
                    key=f"add-{hit.tmdb_id}",
                    icon="➕",
                    on_click=add_liked,
                    args=(hit.tmdb_id,),
                    disabled=hit.tmdb_id in st.session_state[LIKED_KEY],
                    width="stretch",
                )

    known: dict[int, Movie] = st.session_state[KNOWN_KEY]
    st.multiselect(
        "Movies you liked",
        options=list(known),
        format_func=lambda i: known[i].label if i in known else str(i),
        key=LIKED_KEY,
        placeholder="Search above and click a movie to add it here",
        help="The order counts: the last one is the most recent.",
    )
    if st.session_state[LIKED_KEY]:
        st.markdown("**Your likes**")
        st.html(cards.likes_strip_html(liked_movies(st.session_state[LIKED_KEY])))

if st.button("Recommend 10 movies", type="primary", icon="✨", key="recommend"):
    liked = list(st.session_state[LIKED_KEY])
    # The server appends the request's likes after the history it holds: send only what it lacks.
    sent = [i for i in liked if i not in stored]
    with st.spinner("Finding movies you will like…"):
        main = data.api().recommend(sent, k=10, user_id=user)
        # When the main call failed its error says why; a second call would only repeat it.
        st.session_state[NEW_RESULT_KEY] = (
            None if isinstance(main, ApiError) else new_for_you.fetch(sent, user)
        )
        st.session_state[RESULT_KEY] = (liked, main)

if RESULT_KEY in st.session_state:
    liked, result = st.session_state[RESULT_KEY]
    if isinstance(result, ApiError):
        components.show_error(result)
    else:
        how = user_view.answer_caption(result, [i for i in liked if i not in stored])
        if result.source == "user":
            st.caption(how)
        elif result.strategy == "sequential":
            names = ", ".join(m.title for m in liked_movies(liked))
            st.caption(f"Because you liked {names} · model version `{result.model_version or 'unknown'}`")
        elif not liked:
            st.info(
                "Add movies you liked for picks of your own; until then, here are the most popular.",
                icon="🌱",
            )
        elif result.cold_start:
            st.info("The recommender knows none of these movies yet, so here are popular ones.", icon="🌱")
        else:
            st.info("No recommender model is published yet, so here are the most popular movies.", icon="🌱")
        if how and result.source != "user":
            st.caption(how)
        if result.source is None and history is not None:
            st.caption(user_view.NO_USERS_NOTE)  # an older API behind a newer one's /users: say it once here
        if result.unknown:
            skipped = ", ".join(m.title for m in liked_movies(list(result.unknown)))
            st.warning(f"The recommender does not know {skipped} yet, so they were left out.", icon="🤷")
        if not result.items:
            st.info("No recommendations came back. Try other movies.")
        elif liked != st.session_state[LIKED_KEY]:
            st.caption("Your likes changed since these picks: press **Recommend 10 movies** for fresh ones.")
        feedback.show_notice()
        gone = hidden()  # 👎 this session: gone at once, and the server leaves them out of later answers
        cards.movie_grid(
            [m for m in result.items if m.tmdb_id not in gone],
            below=lambda movie, position: feedback.card_buttons(movie, position, result.request_id),
        )
        new_for_you.show(st.session_state.get(NEW_RESULT_KEY), liked)

user_view.identity_footer()
