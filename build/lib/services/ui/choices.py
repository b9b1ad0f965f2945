"""Built-in choices for the rating form, used when the API does not publish its vocabulary."""

from __future__ import annotations

# TMDB's 19 movie genres (GET /genre/movie/list).
TMDB_GENRES: tuple[str, ...] = (
    "Action",
    "Adventure",
    "Animation",
    "Comedy",
    "Crime",
    "Documentary",
    "Drama",
    "Family",
    "Fantasy",
    "History",
    "Horror",
    "Music",
    "Mystery",
    "Romance",
    "Science Fiction",
    "TV Movie",
    "Thriller",
    "War",
    "Western",
)

# ISO 639-1 codes TMDB uses for original_language, with English names ("cn" is TMDB's Cantonese).
LANGUAGE_NAMES: dict[str, str] = {
    "en": "English",
    "fr": "French",
    "es": "Spanish",
    "de": "German",
    "it": "Italian",
    "ja": "Japanese",
    "ko": "Korean",
    "zh": "Chinese",
    "cn": "Cantonese",
    "hi": "Hindi",
    "ru": "Russian",
    "pt": "Portuguese",
    "sv": "Swedish",
    "da": "Danish",
    "no": "Norwegian",
    "fi": "Finnish",
    "nl": "Dutch",
    "pl": "Polish",
    "tr": "Turkish",
    "el": "Greek",
    "hu": "Hungarian",
    "cs": "Czech",
    "ar": "Arabic",
    "he": "Hebrew",
    "fa": "Persian",
    "th": "Thai",
    "id": "Indonesian",
    "ta": "Tamil",
    "te": "Telugu",
    "ml": "Malayalam",
    "tl": "Tagalog",
}

# ISO 3166-1 codes of the most frequent production countries on TMDB.
COUNTRY_NAMES: dict[str, str] = {
    "US": "United States",
    "GB": "United Kingdom",
    "FR": "France",
    "DE": "Germany",
    "CA": "Canada",
    "IT": "Italy",
    "JP": "Japan",
    "KR": "South Korea",
    "IN": "India",
    "ES": "Spain",
    "AU": "Australia",
    "CN": "China",
    "HK": "Hong Kong",
    "SE": "Sweden",
    "DK": "Denmark",
    "BE": "Belgium",
    "MX": "Mexico",
    "RU": "Russia",
    "BR": "Brazil",
    "IE": "Ireland",
    "NZ": "New Zealand",
}


def language_label(code: str) -> str:
    """'Korean (ko)' for 'ko'; the bare code when the name is unknown."""
    name = LANGUAGE_NAMES.get(code)
    return f"{name} ({code})" if name else code


def country_label(code: str) -> str:
    """'South Korea (KR)' for 'KR'; the bare code when the name is unknown."""
    name = COUNTRY_NAMES.get(code)
    return f"{name} ({code})" if name else code
