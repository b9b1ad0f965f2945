"""Monitoring of the production rating model: live error, drift of requests and new movies, alerts."""
