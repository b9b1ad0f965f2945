"""Movie Intelligence UI: navigation and the API status in the sidebar. Run with ./scripts/ui.sh."""

import logging

import streamlit as st

from services.ui import data
from services.ui.api.records import ApiError
from services.ui.user_identity import current_user

logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")

st.set_page_config(page_title="Movie Intelligence", page_icon="🎬", layout="wide")

page = st.navigation(
    [
        st.Page("views/rating.py", title="Predict a rating", icon="⭐", default=True),
        st.Page("views/recommend.py", title="What to watch next", icon="🍿"),
        st.Page("views/model.py", title="Models", icon="📈"),
    ]
)

with st.sidebar:
    st.markdown("### 🎬 Movie Intelligence")
    status = data.readiness()
    if isinstance(status, ApiError):
        st.markdown(":red-badge[API offline]")
    elif status.ready:
        st.markdown(":green-badge[API ready]")
    else:
        st.markdown(":orange-badge[API not ready]")
    st.caption(f"API: `{data.api().base_url}`")

# Every page keeps ?user= in the address: page switches clear the query parameters, a reload reads it.
current_user()
page.run()
