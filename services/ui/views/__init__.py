"""The Streamlit pages, which app.py runs by path (st.Page); each only draws what services.ui.api reads."""
