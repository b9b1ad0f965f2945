"""Predict a rating: the reference form (runtime, language, main genre, overview) plus optional details."""

import datetime as dt

import streamlit as st

from services.ui import components, data
from services.ui.api.records import ApiError
from services.ui.choices import COUNTRY_NAMES, country_label, language_label
from services.ui.forms import movie_payload

RESULT_KEY = "rating_result"

st.title("⭐ Predict a movie's rating")
st.caption(
    "Describe a movie that is not out yet and the model estimates its TMDB rating out of 10. "
    "Write the overview in any language: Korean and others are translated automatically."
)

components.api_status_banner(data.readiness())
vocab = data.vocabulary()
languages = list(vocab.languages)
genres = list(vocab.genres)

with st.form("rating"):
    runtime_col, language_col, genre_col = st.columns(3)
    runtime = runtime_col.number_input(
        "Runtime (minutes)", min_value=1, max_value=600, value=110, step=5, key="runtime"
    )
    language = language_col.selectbox(
        "Original language",
        languages,
        index=languages.index("en") if "en" in languages else 0,
        format_func=language_label,
        key="language",
    )
    main_genre = genre_col.selectbox(
        "Main genre", genres, index=genres.index("Drama") if "Drama" in genres else 0, key="main_genre"
    )
    overview = st.text_area(
        "Overview",
        height=130,
        placeholder="What is the movie about? Any language, e.g. 한 소년이 잃어버린 강아지를 찾아 떠난다.",
        key="overview",
    )
    with st.expander("More details (optional)"):
        title = st.text_input("Title", key="title")
        tagline = st.text_input("Tagline", key="tagline")
        date_col, budget_col = st.columns(2)
        release_date = date_col.date_input(
            "Release date",
            value=None,
            min_value=dt.date(1900, 1, 1),
            max_value=dt.date(2100, 12, 31),
            format="YYYY-MM-DD",
            key="release_date",
        )
        budget = budget_col.number_input(
            "Budget (USD)", min_value=0, value=None, step=1_000_000, placeholder="unknown", key="budget"
        )
        more_genres = st.multiselect("More genres", genres, key="more_genres")
        countries = st.multiselect(
            "Production countries", list(COUNTRY_NAMES), format_func=country_label, key="countries"
        )
        companies = st.text_input("Production companies (comma-separated)", key="companies")
        collection = st.text_input("Part of a collection (its name)", key="collection")
    submitted = st.form_submit_button("Estimate rating", type="primary", icon="🎯")

if submitted:
    if not overview.strip():
        st.session_state.pop(RESULT_KEY, None)
        st.warning("Please write an overview: the model reads it to judge the story.", icon="✏️")
    else:
        body = movie_payload(
            overview=overview,
            runtime=runtime,
            main_genre=main_genre,
            original_language=language,
            more_genres=more_genres,
            title=title,
            tagline=tagline,
            release_date=release_date,
            budget=budget,
            production_countries=countries,
            production_companies=companies,
            collection=collection,
        )
        with st.spinner("Asking the model…"):
            st.session_state[RESULT_KEY] = data.api().predict(body)

result = st.session_state.get(RESULT_KEY)
if isinstance(result, ApiError):
    components.show_error(result)
elif result is not None:
    components.prediction_view(result)
