"""Readers for the bundled snapshot (TMDB metadata and MovieLens ratings in data/snapshot/)."""

from __future__ import annotations

import ast
import csv
import gzip
import io
from pathlib import Path
from typing import Any

import pandas as pd

# Columns the snapshot stores as Python literals (single quotes, so not JSON).
_LITERAL_COLUMNS = (
    "genres",
    "belongs_to_collection",
    "production_companies",
    "production_countries",
    "spoken_languages",
)
_NUMERIC_COLUMNS = ("budget", "revenue", "runtime", "popularity", "vote_average", "vote_count")


def _literal(text: str) -> Any:
    if not text:
        return None
    try:
        return ast.literal_eval(text)
    except (ValueError, SyntaxError):
        return None


def _number(text: str) -> float | int | None:
    if text in ("", None):
        return None
    try:
        value = float(text)
    except ValueError:
        return None
    return int(value) if value.is_integer() else value


def row_to_tmdb(row: dict[str, str]) -> dict[str, Any]:
    """One snapshot CSV row as the JSON TMDB's /movie/{id} endpoint returns."""
    out: dict[str, Any] = dict(row)
    for col in _LITERAL_COLUMNS:
        out[col] = _literal(row.get(col, ""))
    for col in _NUMERIC_COLUMNS:
        out[col] = _number(row.get(col, ""))
    out["id"] = int(row["id"])
    out["adult"] = row.get("adult") == "True"
    out["video"] = row.get("video") == "True"
    for col in ("homepage", "tagline", "poster_path", "release_date", "status", "imdb_id"):
        out[col] = row.get(col) or None
    return out


def load_movies(snapshot_dir: Path) -> list[dict[str, Any]]:
    """Every movie of the snapshot as TMDB movie-details JSON, in file order."""
    with gzip.open(snapshot_dir / "movies.csv.gz", "rt", encoding="utf-8", newline="") as fh:
        return [row_to_tmdb(r) for r in csv.DictReader(fh)]


def load_ratings(snapshot_dir: Path) -> pd.DataFrame:
    """MovieLens ratings (userId, movieId, rating, timestamp)."""
    with gzip.open(snapshot_dir / "ratings.csv.gz", "rb") as fh:
        return pd.read_csv(io.BytesIO(fh.read()))


def load_links(snapshot_dir: Path) -> pd.DataFrame:
    """MovieLens movieId to imdbId and tmdbId (nullable integer)."""
    links = pd.read_csv(snapshot_dir / "links.csv", dtype={"imdbId": str})
    links["tmdbId"] = links["tmdbId"].astype("Int64")
    return links
