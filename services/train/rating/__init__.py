"""The rating model: features, candidates, selection, error analysis, live scores, tuning."""
