"""A small TMDB v3 API client: popular movie ids and movie details, paced, retried, key kept secret.

TMDB accepts two credentials. A v3 API key (32 hex characters) can only travel as the ``api_key``
query parameter; a v4 read-access token (a JWT, starting with ``eyJ``) travels as an
``Authorization: Bearer`` header and is preferred, because URLs end up in logs. Either way the
secret is registered with a log filter on the ``httpx`` logger and ours, which replaces it with
``***`` (httpx logs every request URL at INFO), and error messages name only the path.

Requests are spaced to at most ``requests_per_second`` across threads. 429, 5xx, timeouts and
connection errors are retried with exponential backoff and jitter (TMDB's ``Retry-After`` wins
when sent), up to ``max_retries`` times, then raise :class:`TMDBError`. A 401 raises
:class:`TMDBAuthError` at once; a 404 raises :class:`TMDBNotFoundError`, which :meth:`collect`
logs and skips.
"""

from __future__ import annotations

import logging
import random
import re
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import httpx

from services.train.movies.tmdb_http import (
    REDACTOR,
    RateLimiter,
    TMDBAuthError,
    TMDBError,
    TMDBNotFoundError,
    retry_after_seconds,
    tmdb_message,
)

if TYPE_CHECKING:
    from services.core.settings import Settings

log = logging.getLogger(__name__)

DEFAULT_BASE_URL = "https://api.themoviedb.org/3"
# TMDB reports total_pages in the tens of thousands for /movie/popular but rejects page > 500.
MAX_PAGE = 500
_V3_KEY = re.compile(r"[0-9a-fA-F]{32}")
_RETRYABLE_ERRORS = (httpx.TimeoutException, httpx.NetworkError, httpx.RemoteProtocolError)


def _protect(secret: str) -> None:
    """Keep a secret out of httpx's request log lines and ours."""
    REDACTOR.add(secret)
    # httpx logs each request URL at INFO; httpcore's trace lines name no URL or request header.
    for name in ("httpx", __name__):
        logging.getLogger(name).addFilter(REDACTOR)  # addFilter ignores a filter already present


class TMDBClient:
    """TMDB v3 client: popular movie ids and movie details, politely paced and retried."""

    def __init__(
        self,
        api_key: str,
        *,
        base_url: str = DEFAULT_BASE_URL,
        language: str | None = "en-US",
        region: str | None = None,
        requests_per_second: float | None = 20.0,
        max_retries: int = 4,
        timeout: float = 10.0,
        backoff_base: float = 0.5,
        backoff_max: float = 60.0,
        client: httpx.Client | None = None,
        transport: httpx.BaseTransport | None = None,
        sleep: Callable[[float], None] = time.sleep,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        key = (api_key or "").strip()
        if not key:
            raise ValueError("TMDB API key is empty: set TMDB_API_KEY")
        if client is not None and transport is not None:
            raise ValueError("pass either client or transport, not both")
        if max_retries < 0:
            raise ValueError(f"max_retries must be >= 0, got {max_retries}")
        _protect(key)
        self._headers = {"Accept": "application/json"}
        self._auth_params: dict[str, str] = {}
        if key.startswith("eyJ"):
            self.auth_mode = "bearer"
            self._headers["Authorization"] = f"Bearer {key}"
        else:
            if not _V3_KEY.fullmatch(key):
                log.warning("TMDB key is neither a 32-hex v3 key nor a v4 token (eyJ...); sending as api_key")
            self.auth_mode = "api_key"
            self._auth_params["api_key"] = key
        self.base_url = base_url.rstrip("/")
        self.language = language
        self.region = region
        self.max_retries = max_retries
        self.timeout = timeout
        self.backoff_base = backoff_base
        self.backoff_max = backoff_max
        self._sleep = sleep
        self._limiter = (
            RateLimiter(requests_per_second, clock=clock, sleep=sleep)
            if requests_per_second is not None
            else None
        )
        self._owns_http = client is None
        self._http = client if client is not None else httpx.Client(transport=transport, timeout=timeout)

    @classmethod
    def from_settings(cls, settings: Settings, **kwargs: Any) -> TMDBClient:
        """A client configured from Settings (TMDB_API_KEY, TMDB_BASE_URL, ...); kwargs override."""
        if settings.tmdb_api_key is None or not settings.tmdb_api_key.get_secret_value().strip():
            raise ValueError("TMDB_API_KEY is not set: use the bundled snapshot or set a TMDB key")
        options: dict[str, Any] = {
            "base_url": settings.tmdb_base_url,
            "language": settings.tmdb_language,
            "region": settings.tmdb_region,
            "requests_per_second": settings.tmdb_requests_per_second,
        }
        options.update(kwargs)
        return cls(settings.tmdb_api_key.get_secret_value(), **options)

    def close(self) -> None:
        """Close the HTTP client if this object created it."""
        if self._owns_http:
            self._http.close()

    def __enter__(self) -> TMDBClient:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"TMDBClient(base_url={self.base_url!r}, auth={self.auth_mode}, language={self.language!r})"

    # --- endpoints -------------------------------------------------------------------------------

    def popular(self, page: int = 1) -> dict[str, Any]:
        """One page of GET /movie/popular (20 movies, plus page and total_pages)."""
        if not 1 <= page <= MAX_PAGE:
            raise ValueError(f"page must be in 1..{MAX_PAGE}, got {page}")
        return self._get("/movie/popular", {"language": self.language, "region": self.region, "page": page})

    def popular_ids(self, pages: int) -> list[int]:
        """Movie ids from popular pages 1..pages (stopping at total_pages), deduplicated, in order."""
        ids: list[int] = []
        seen: set[int] = set()
        last_page = min(pages, MAX_PAGE)
        page = 0
        for page in range(1, last_page + 1):
            data = self.popular(page)
            results = data.get("results") or []
            for item in results:
                movie_id = item.get("id") if isinstance(item, dict) else None
                # Rankings shift between page requests, so one movie can appear on two pages.
                if isinstance(movie_id, int) and movie_id not in seen:
                    seen.add(movie_id)
                    ids.append(movie_id)
            if not results or page >= int(data.get("total_pages") or 0):
                break
        log.info("TMDB popular: %d ids from %d page(s)", len(ids), page)
        return ids

    def details(self, movie_id: int) -> dict[str, Any]:
        """GET /movie/{id}: the movie-details dict normalize_movie reads."""
        return self._get(f"/movie/{int(movie_id)}", {"language": self.language})

    def collect(self, pages: int, *, progress_every: int = 20) -> list[dict[str, Any]]:
        """Details of every popular movie on pages 1..pages; a movie gone (404) is logged and skipped."""
        ids = self.popular_ids(pages)
        movies: list[dict[str, Any]] = []
        skipped = 0
        for done, movie_id in enumerate(ids, start=1):
            try:
                movies.append(self.details(movie_id))
            except TMDBNotFoundError:
                skipped += 1
                log.warning("TMDB movie %d not found (404); skipped", movie_id)
            if done % progress_every == 0 or done == len(ids):
                log.info("details %d/%d", done, len(ids))
        log.info("TMDB collect: %d movies, %d skipped", len(movies), skipped)
        return movies

    # --- transport -------------------------------------------------------------------------------

    def _backoff(self, retry: int, retry_after: float | None) -> float:
        """Seconds to wait before retry number `retry` (0-based)."""
        if retry_after is not None:
            return min(retry_after, self.backoff_max)
        delay = min(self.backoff_max, self.backoff_base * 2**retry)
        # Jitter spreads out clients that failed together so they do not retry together.
        return delay + random.uniform(0, delay / 2)

    def _get(self, path: str, params: dict[str, Any] | None = None) -> dict[str, Any]:
        """GET base_url + path with retries; the JSON body as a dict."""
        query = {k: v for k, v in (params or {}).items() if v is not None}
        query.update(self._auth_params)
        url = self.base_url + path
        attempts = self.max_retries + 1
        last, last_status = "no response", None
        for attempt in range(attempts):
            if self._limiter is not None:
                self._limiter.acquire()
            retry_after = None
            try:
                response = self._http.get(url, params=query, headers=self._headers, timeout=self.timeout)
            except _RETRYABLE_ERRORS as exc:
                last, last_status = type(exc).__name__, None
            else:
                status = response.status_code
                if 200 <= status < 300:
                    return self._json(path, response)
                if status == 401:
                    raise TMDBAuthError(
                        "TMDB rejected the API key (401): check TMDB_API_KEY "
                        f"(GET {path}; TMDB says: {tmdb_message(response)})",
                        path=path,
                        status=status,
                    )
                if status == 404:
                    raise TMDBNotFoundError(f"TMDB GET {path}: not found (404)", path=path, status=status)
                if status != 429 and status < 500:
                    raise TMDBError(
                        f"TMDB GET {path}: HTTP {status}: {tmdb_message(response)}", path=path, status=status
                    )
                last, last_status = f"HTTP {status}", status
                retry_after = retry_after_seconds(response.headers.get("Retry-After"))
            if attempt == self.max_retries:
                break
            delay = self._backoff(attempt, retry_after)
            log.warning(
                "TMDB GET %s: %s; retry %d/%d in %.2f s", path, last, attempt + 1, self.max_retries, delay
            )
            self._sleep(delay)
        raise TMDBError(
            f"TMDB GET {path} failed after {attempts} attempt(s) (last: {last})",
            path=path,
            status=last_status,
        )

    @staticmethod
    def _json(path: str, response: httpx.Response) -> dict[str, Any]:
        """The response body as a JSON object, or a TMDBError naming the path."""
        try:
            body = response.json()
        except ValueError as exc:
            raise TMDBError(
                f"TMDB GET {path}: response is not JSON", path=path, status=response.status_code
            ) from exc
        if not isinstance(body, dict):
            raise TMDBError(
                f"TMDB GET {path}: expected a JSON object", path=path, status=response.status_code
            )
        return body
