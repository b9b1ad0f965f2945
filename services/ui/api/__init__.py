"""The serving API as the UI reads it: one HTTP client and typed records of its answers."""
