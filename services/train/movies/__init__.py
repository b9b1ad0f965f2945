"""Movies: collect (TMDB or the bundled snapshot feed), the TMDB client, validation."""
