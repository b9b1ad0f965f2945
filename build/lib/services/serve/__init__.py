"""The FastAPI serving host: rating predictions, recommendations, catalog search, model ops."""
