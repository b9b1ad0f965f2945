"""A stand-in TMDB v3 API on 127.0.0.1: real HTTP, made-up TMDB-shaped movies, programmable faults.

Serves ``/3/movie/popular`` (20 a page, ``total_pages``) and ``/3/movie/{id}``, checks the v3 key
(``api_key`` query parameter) or v4 token (``Authorization: Bearer``) and answers 401 with TMDB's
error body otherwise. Tests can queue faults (``fail_next``, ``stall_next``), mark movies as gone
(``missing``) and read back every request (``requests``, ``requests_to``).

Use the ``tmdb_server`` fixture: ``from tests.fakes.tmdb_server import tmdb_server_fixture  # noqa: F401``
(or import ``tmdb_server``, the same fixture, e.g. in a conftest.py).
"""

from __future__ import annotations

import json
import logging
import math
import re
import secrets
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qsl, urlsplit

import pytest

log = logging.getLogger(__name__)

GENRES = [
    (28, "Action"),
    (12, "Adventure"),
    (16, "Animation"),
    (35, "Comedy"),
    (80, "Crime"),
    (18, "Drama"),
    (27, "Horror"),
    (10749, "Romance"),
    (878, "Science Fiction"),
    (53, "Thriller"),
]
COMPANIES = [
    (1, "Lucasfilm Ltd."),
    (2, "Walt Disney Pictures"),
    (4, "Paramount Pictures"),
    (33, "Universal Pictures"),
    (7036, "CJ Entertainment"),
]
COUNTRIES = [
    ("US", "United States of America"),
    ("KR", "South Korea"),
    ("FR", "France"),
    ("JP", "Japan"),
    ("GB", "United Kingdom"),
]
LANGUAGES = ["en", "ko", "fr", "ja", "en"]

# TMDB's own error bodies (status_code is TMDB's, not HTTP's).
INVALID_KEY_BODY = {
    "status_code": 7,
    "status_message": "Invalid API key: You must be granted a valid key.",
    "success": False,
}
NOT_FOUND_BODY = {
    "success": False,
    "status_code": 34,
    "status_message": "The resource you requested could not be found.",
}
INVALID_PAGE_BODY = {
    "success": False,
    "status_code": 22,
    "status_message": "Invalid page: Pages start at 1 and max at 500. They are expected to be an integer.",
}
FAULT_BODIES = {
    429: {
        "success": False,
        "status_code": 25,
        "status_message": "Your request count is over the allowed limit.",
    },
    500: {"success": False, "status_code": 11, "status_message": "Internal error: Something went wrong."},
    503: {"success": False, "status_code": 9, "status_message": "Service offline: This service is offline."},
}

_DETAILS_PATH = re.compile(r"/3/movie/(\d+)")


def make_movie(movie_id: int, index: int) -> dict[str, Any]:
    """TMDB movie-details JSON for a made-up movie; every fifth one has TMDB's 0 for an unknown budget."""
    genre_a, genre_b = GENRES[index % len(GENRES)], GENRES[(index + 3) % len(GENRES)]
    company = COMPANIES[index % len(COMPANIES)]
    country = COUNTRIES[index % len(COUNTRIES)]
    language = LANGUAGES[index % len(LANGUAGES)]
    return {
        "adult": False,
        "backdrop_path": f"/backdrop{movie_id}.jpg",
        "belongs_to_collection": None,
        "budget": 0 if index % 5 == 0 else 1_000_000 * (index + 1),
        "genres": [{"id": genre_a[0], "name": genre_a[1]}, {"id": genre_b[0], "name": genre_b[1]}],
        "homepage": "",
        "id": movie_id,
        "imdb_id": f"tt{movie_id:07d}",
        "original_language": language,
        "original_title": f"Original Movie {index}",
        "overview": f"A made-up movie number {index}, for tests.",
        "popularity": round(1000.0 / (index + 1), 3),
        "poster_path": f"/poster{movie_id}.jpg",
        "production_companies": [
            {"id": company[0], "logo_path": None, "name": company[1], "origin_country": country[0]}
        ],
        "production_countries": [{"iso_3166_1": country[0], "name": country[1]}],
        "release_date": f"{2000 + index % 25}-{1 + index % 12:02d}-{1 + index % 28:02d}",
        "revenue": 3_000_000 * (index + 1),
        "runtime": 90 + index % 60,
        "spoken_languages": [{"english_name": "English", "iso_639_1": "en", "name": "English"}],
        "status": "Released",
        "tagline": f"Tagline {index}.",
        "title": f"Movie {index}",
        "video": False,
        "vote_average": round(5.0 + (index % 40) / 10, 1),
        "vote_count": 100 + 7 * index,
    }


def popular_item(movie: dict[str, Any]) -> dict[str, Any]:
    """The short form of a movie that /movie/popular lists."""
    keys = (
        "adult",
        "backdrop_path",
        "id",
        "original_language",
        "original_title",
        "overview",
        "popularity",
        "poster_path",
        "release_date",
        "title",
        "video",
        "vote_average",
        "vote_count",
    )
    item = {key: movie[key] for key in keys}
    item["genre_ids"] = [genre["id"] for genre in movie["genres"]]
    return item


@dataclass(frozen=True)
class RecordedRequest:
    """One request as the server saw it (header names lower-case)."""

    method: str
    path: str
    query: dict[str, str]
    headers: dict[str, str]


@dataclass
class _Fault:
    remaining: int
    status: int = 500
    retry_after: str | None = None
    stall_s: float = 0.0


class _Server(ThreadingHTTPServer):
    daemon_threads = True  # a stalled handler must not hold up shutdown
    fake: FakeTMDB

    def handle_error(self, request: Any, client_address: Any) -> None:
        # A client that timed out closes its socket; the late write failing is expected.
        log.debug("stand-in TMDB: connection from %s ended with an error", client_address, exc_info=True)


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # keep-alive, like the real API
    timeout = 5  # idle keep-alive connections release their thread
    # Headers and body are separate writes; with Nagle on, each response waits ~40 ms for an ACK.
    disable_nagle_algorithm = True
    server: _Server

    def do_GET(self) -> None:
        parts = urlsplit(self.path)
        status, headers, body = self.server.fake.handle(
            "GET",
            parts.path,
            dict(parse_qsl(parts.query, keep_blank_values=True)),
            {name.lower(): value for name, value in self.headers.items()},
        )
        payload = json.dumps(body).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json;charset=utf-8")
        self.send_header("Content-Length", str(len(payload)))
        for name, value in headers.items():
            self.send_header(name, value)
        self.end_headers()
        self.wfile.write(payload)

    def log_request(self, code: int | str = "-", size: int | str = "-") -> None:
        # The stdlib logs the request line, query string and api_key included; log only the path.
        log.debug("stand-in TMDB: %s %s -> %s", self.command, urlsplit(self.path).path, code)

    def log_message(self, fmt: str, *args: Any) -> None:
        # Errors only (requests go through log_request); the stdlib would write them to stderr.
        log.debug("stand-in TMDB: " + fmt, *args)


class FakeTMDB:
    """The stand-in TMDB server: start(), point a client at base_url, stop()."""

    def __init__(
        self,
        *,
        movie_count: int = 60,
        per_page: int = 20,
        api_key: str | None = None,
        bearer_token: str | None = None,
    ) -> None:
        self.api_key = api_key or secrets.token_hex(16)  # 32 hex chars, like a real v3 key
        self.bearer_token = bearer_token or (
            "eyJhbGciOiJIUzI1NiJ9." + secrets.token_urlsafe(64) + "." + secrets.token_urlsafe(32)
        )
        self.per_page = per_page
        self.movies = {1000 + i: make_movie(1000 + i, i) for i in range(movie_count)}
        self.popular_order: list[int] = list(self.movies)  # may be edited, duplicates and all
        self.missing: set[int] = set()  # listed as popular, but /movie/{id} answers 404
        self._requests: list[RecordedRequest] = []
        self._faults: dict[str, list[_Fault]] = {}
        self._lock = threading.Lock()
        self._server: _Server | None = None
        self._thread: threading.Thread | None = None

    # --- lifecycle -------------------------------------------------------------------------------

    def start(self) -> FakeTMDB:
        """Listen on a free loopback port and serve in a background thread."""
        self._server = _Server(("127.0.0.1", 0), _Handler)
        self._server.fake = self
        self._thread = threading.Thread(
            target=self._server.serve_forever,
            kwargs={"poll_interval": 0.05},  # shutdown() waits up to one poll
            name="fake-tmdb",
            daemon=True,
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        """Stop serving and free the port."""
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
        if self._thread is not None:
            self._thread.join(timeout=5)
        self._server = self._thread = None

    def __enter__(self) -> FakeTMDB:
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    @property
    def base_url(self) -> str:
        """The API root, like https://api.themoviedb.org/3."""
        if self._server is None:
            raise RuntimeError("stand-in TMDB is not started")
        return f"http://127.0.0.1:{self._server.server_address[1]}/3"

    # --- test controls ---------------------------------------------------------------------------

    def fail_next(self, path: str, *, status: int, times: int = 1, retry_after: str | None = None) -> None:
        """The next `times` requests to `path` (e.g. /3/movie/popular) answer `status`."""
        with self._lock:
            self._faults.setdefault(path, []).append(_Fault(times, status=status, retry_after=retry_after))

    def stall_next(self, path: str, seconds: float, *, times: int = 1) -> None:
        """The next `times` requests to `path` wait `seconds` before answering (to trip client timeouts)."""
        with self._lock:
            self._faults.setdefault(path, []).append(_Fault(times, stall_s=seconds))

    @property
    def requests(self) -> list[RecordedRequest]:
        """Every request so far, oldest first."""
        with self._lock:
            return list(self._requests)

    def requests_to(self, path: str) -> list[RecordedRequest]:
        """The requests so far to one path."""
        return [r for r in self.requests if r.path == path]

    # --- the API ---------------------------------------------------------------------------------

    def handle(
        self, method: str, path: str, query: dict[str, str], headers: dict[str, str]
    ) -> tuple[int, dict[str, str], Any]:
        """Status, extra headers and JSON body for one request."""
        with self._lock:
            self._requests.append(RecordedRequest(method, path, dict(query), dict(headers)))
            fault = self._take_fault(path)
        if fault is not None:
            if fault.stall_s:
                time.sleep(fault.stall_s)
            else:
                extra = {"Retry-After": fault.retry_after} if fault.retry_after is not None else {}
                body = FAULT_BODIES.get(fault.status, {"success": False, "status_message": "fault"})
                return fault.status, extra, body
        if not self._authorized(query, headers):
            return 401, {}, INVALID_KEY_BODY
        if path == "/3/movie/popular":
            return self._popular(query)
        match = _DETAILS_PATH.fullmatch(path)
        if match:
            movie_id = int(match.group(1))
            if movie_id in self.movies and movie_id not in self.missing:
                return 200, {}, self.movies[movie_id]
        return 404, {}, NOT_FOUND_BODY

    def _take_fault(self, path: str) -> _Fault | None:
        queue = self._faults.get(path)
        if not queue:
            return None
        fault = queue[0]
        fault.remaining -= 1
        if fault.remaining <= 0:
            queue.pop(0)
        return fault

    def _authorized(self, query: dict[str, str], headers: dict[str, str]) -> bool:
        if "api_key" in query:
            return secrets.compare_digest(query["api_key"], self.api_key)
        auth = headers.get("authorization", "")
        if auth.startswith("Bearer "):
            return secrets.compare_digest(auth.removeprefix("Bearer "), self.bearer_token)
        return False

    def _popular(self, query: dict[str, str]) -> tuple[int, dict[str, str], Any]:
        try:
            page = int(query.get("page", "1"))
        except ValueError:
            return 400, {}, INVALID_PAGE_BODY
        if not 1 <= page <= 500:
            return 400, {}, INVALID_PAGE_BODY
        ids = self.popular_order
        start = (page - 1) * self.per_page
        results = [popular_item(self.movies[i]) for i in ids[start : start + self.per_page]]
        return (
            200,
            {},
            {
                "page": page,
                "results": results,
                "total_pages": math.ceil(len(ids) / self.per_page),
                "total_results": len(ids),
            },
        )


@pytest.fixture(name="tmdb_server")
def tmdb_server_fixture() -> Iterator[FakeTMDB]:
    """A fresh stand-in TMDB for one test: 60 popular movies on 3 pages."""
    with FakeTMDB() as server:
        yield server


# Import either name to register the fixture (it is called tmdb_server in tests). Importing
# tmdb_server_fixture keeps ruff quiet about test parameters shadowing the imported name.
tmdb_server = tmdb_server_fixture
