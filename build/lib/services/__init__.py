"""Movie-intelligence services: shared core, training host, serving host, UI."""
