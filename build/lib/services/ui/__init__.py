"""Streamlit UI: talks to the serving API over HTTP only, never loads a model."""
