"""Movie cards: poster over an initials placeholder, the recommendation grid, and the likes strip."""

from __future__ import annotations

import base64
import hashlib
import html
from collections.abc import Callable, Sequence

import streamlit as st

from services.ui.api.records import Movie


def initials(title: str) -> str:
    """Up to two initials of a title's words, skipping a leading article: 'The Dark Knight' -> 'DK'."""
    words = [w for w in title.replace("-", " ").split() if w[:1].isalnum()]
    if len(words) > 1 and words[0].lower() in {"the", "a", "an"}:
        words = words[1:]
    return "".join(w[0].upper() for w in words[:2]) or "?"


def placeholder_svg(title: str) -> str:
    """A poster-sized SVG with the title's initials on a colour drawn from the title, as a data URI."""
    hue = int(hashlib.sha256(title.encode()).hexdigest()[:4], 16) % 360
    svg = (
        '<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 200 300">'
        '<defs><linearGradient id="g" x1="0" y1="0" x2="1" y2="1">'
        f'<stop offset="0" stop-color="hsl({hue},45%,42%)"/>'
        f'<stop offset="1" stop-color="hsl({(hue + 40) % 360},50%,22%)"/></linearGradient></defs>'
        '<rect width="200" height="300" fill="url(#g)"/>'
        '<text x="100" y="168" text-anchor="middle" font-family="Helvetica,Arial,sans-serif" '
        f'font-size="64" font-weight="700" fill="rgba(255,255,255,0.92)">{html.escape(initials(title))}</text>'
        '<text x="100" y="280" text-anchor="middle" font-family="Helvetica,Arial,sans-serif" '
        'font-size="13" fill="rgba(255,255,255,0.6)">no poster</text></svg>'
    )
    return "data:image/svg+xml;base64," + base64.b64encode(svg.encode()).decode()


def css_url(url: str) -> str | None:
    """An http(s) URL made safe inside CSS url('...') in an HTML attribute; None for anything else."""
    if not url.startswith(("https://", "http://")):
        return None
    for char, code in (("'", "%27"), ('"', "%22"), ("(", "%28"), (")", "%29"), ("\\", "%5C"), (" ", "%20")):
        url = url.replace(char, code)
    return html.escape(url, quote=True)


# A small pill over the poster's corner for movies nobody has rated yet (scored from their content).
NEW_BADGE = (
    '<span class="new-badge" title="New: nobody has rated it yet" style="position:absolute;top:6px;left:6px;'
    "padding:1px 7px;border-radius:9px;font-size:.7rem;font-weight:700;letter-spacing:.03em;"
    'background:#e8590c;color:#fff">NEW</span>'
)


def movie_card_html(movie: Movie, row: str = "main") -> str:
    """A self-contained card: poster over an initials placeholder, title, year, overview; row names its grid."""
    title = html.escape(movie.title)
    # Two background layers: the poster on top, the placeholder under it. A poster that fails to load
    # (CDN unreachable, 404) is simply not painted, so the placeholder shows and never a broken image.
    layers = [f"url('{placeholder_svg(movie.title)}')"]
    poster = css_url(movie.poster_url or "")
    if poster:
        layers.insert(0, f"url('{poster}')")
    meta = " · ".join(x for x in [str(movie.release_year or ""), ", ".join(movie.genres[:2])] if x)
    overview = html.escape(movie.overview or "No overview available.")
    return (
        f'<div class="movie-card" data-tmdb-id="{movie.tmdb_id}" data-row="{html.escape(row, quote=True)}" '
        f'data-new="{str(movie.new).lower()}" style="border:1px solid rgba(128,128,128,.25);'
        'border-radius:10px;overflow:hidden;height:100%;background:rgba(128,128,128,.04);position:relative">'
        f'<div class="movie-poster" role="img" aria-label="Poster of {title}" style="aspect-ratio:2/3;'
        f'width:100%;background-size:cover;background-position:center;background-image:{",".join(layers)}">'
        f"</div>{NEW_BADGE if movie.new else ''}"
        '<div style="padding:8px 10px 10px">'
        f'<div class="movie-title" title="{title}" style="font-weight:600;line-height:1.25;'
        f'white-space:nowrap;overflow:hidden;text-overflow:ellipsis">{title}</div>'
        f'<div style="font-size:.8rem;opacity:.7;margin:2px 0 6px">{html.escape(meta) or "&nbsp;"}</div>'
        '<div style="font-size:.8rem;line-height:1.35;display:-webkit-box;-webkit-line-clamp:4;'
        f'-webkit-box-orient:vertical;overflow:hidden;min-height:5.4em">{overview}</div></div></div>'
    )


def movie_grid(
    movies: Sequence[Movie],
    per_row: int = 5,
    below: Callable[[Movie, int], None] | None = None,
    row: str = "main",
) -> None:
    """Cards in rows of per_row columns; below(movie, position) adds widgets under each (1 = first)."""
    for start in range(0, len(movies), per_row):
        columns = st.columns(per_row)
        for offset, (column, movie) in enumerate(zip(columns, movies[start : start + per_row], strict=False)):
            with column:
                st.html(movie_card_html(movie, row))
                if below is not None:
                    below(movie, start + offset + 1)


def likes_strip_html(movies: Sequence[Movie]) -> str:
    """A row of small posters with titles: the movies liked so far, most recent last."""
    tiles = []
    for movie in movies:
        title = html.escape(movie.label)
        layers = [f"url('{placeholder_svg(movie.title)}')"]
        if poster := css_url(movie.poster_url or ""):
            layers.insert(0, f"url('{poster}')")
        tiles.append(
            f'<div class="liked-movie" data-tmdb-id="{movie.tmdb_id}" title="{title}" '
            'style="flex:0 0 84px;width:84px">'
            f'<div role="img" aria-label="Poster of {title}" style="aspect-ratio:2/3;border-radius:6px;'
            f'background-size:cover;background-position:center;background-image:{",".join(layers)}"></div>'
            '<div style="font-size:.72rem;line-height:1.2;margin-top:3px;display:-webkit-box;'
            f'-webkit-line-clamp:2;-webkit-box-orient:vertical;overflow:hidden">{title}</div></div>'
        )
    return (
        '<div class="likes-strip" style="display:flex;gap:10px;overflow-x:auto;padding:2px 0 6px">'
        f"{''.join(tiles)}</div>"
    )
