"""TMDBClient against a stand-in TMDB over real HTTP: paging, auth, retries, pacing, secrecy."""

from __future__ import annotations

import logging
import re
import socket
import threading
import time
from collections.abc import Callable, Iterator
from email.utils import formatdate

import httpx
import pytest

from services.core.movie import normalize_movie
from services.core.settings import Settings
from services.train.movies.tmdb_client import TMDBClient
from services.train.movies.tmdb_http import RateLimiter, TMDBAuthError, TMDBError, TMDBNotFoundError
from tests.fakes.tmdb_server import FakeTMDB, tmdb_server_fixture  # noqa: F401

POPULAR = "/3/movie/popular"
ClientFactory = Callable[..., TMDBClient]


@pytest.fixture
def sleeps() -> list[float]:
    """Every pause the client asked for; nothing actually waits."""
    return []


@pytest.fixture
def make_client(tmdb_server: FakeTMDB, sleeps: list[float]) -> Iterator[ClientFactory]:
    """Build clients aimed at the stand-in, unpaced, with the recording sleep."""
    clients: list[TMDBClient] = []

    def make(**overrides: object) -> TMDBClient:
        options: dict = {
            "base_url": tmdb_server.base_url,
            "requests_per_second": None,
            "sleep": sleeps.append,
            "timeout": 5.0,
        }
        options.update(overrides)
        client = TMDBClient(str(options.pop("api_key", tmdb_server.api_key)), **options)
        clients.append(client)
        return client

    yield make
    for client in clients:
        client.close()


class FakeClock:
    """A monotonic clock that only moves when someone sleeps."""

    def __init__(self) -> None:
        self.now = 0.0
        self.sleeps: list[float] = []

    def time(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.now += seconds


def pages_requested(server: FakeTMDB) -> list[str]:
    return [r.query["page"] for r in server.requests_to(POPULAR)]


# --- paging and details ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("pages", "expected_ids", "expected_pages"),
    [(1, 20, ["1"]), (2, 40, ["1", "2"]), (5, 60, ["1", "2", "3"])],
)
def test_popular_ids_walks_pages_and_stops_at_total_pages(
    tmdb_server: FakeTMDB,
    make_client: ClientFactory,
    pages: int,
    expected_ids: int,
    expected_pages: list[str],
) -> None:
    ids = make_client().popular_ids(pages)

    assert ids == tmdb_server.popular_order[:expected_ids]
    assert pages_requested(tmdb_server) == expected_pages  # no page 4 or 5: total_pages is 3


def test_popular_ids_drops_a_movie_listed_on_two_pages(
    tmdb_server: FakeTMDB, make_client: ClientFactory
) -> None:
    ids = list(tmdb_server.movies)
    # Rankings shift between requests: two movies of page 1 show up again on page 2.
    tmdb_server.popular_order = ids[:20] + [ids[5], ids[0]] + ids[20:38]

    assert make_client().popular_ids(5) == ids[:38]


def test_collect_returns_details_that_normalize_movie_reads(
    tmdb_server: FakeTMDB,
    make_client: ClientFactory,
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.INFO, logger="services.train.movies.tmdb_client")

    movies = make_client().collect(pages=3)

    assert [m["id"] for m in movies] == tmdb_server.popular_order
    records = [normalize_movie(m) for m in movies]
    first, second = records[0], records[1]
    source = tmdb_server.movies[first["id"]]
    assert first["title"] == source["title"]
    assert first["genres"] == [g["name"] for g in source["genres"]]
    assert first["production_countries"] == [c["iso_3166_1"] for c in source["production_countries"]]
    assert first["production_companies"] == [c["name"] for c in source["production_companies"]]
    assert first["runtime"] == float(source["runtime"])
    assert first["budget"] is None  # TMDB's 0 means unknown
    assert second["budget"] == float(tmdb_server.movies[second["id"]]["budget"])
    progress = [r.getMessage() for r in caplog.records if r.getMessage().startswith("details ")]
    assert progress == ["details 20/60", "details 40/60", "details 60/60"]


def test_a_movie_gone_from_tmdb_is_skipped_not_fatal(
    tmdb_server: FakeTMDB,
    make_client: ClientFactory,
    sleeps: list[float],
    caplog: pytest.LogCaptureFixture,
) -> None:
    gone = tmdb_server.popular_order[3]
    tmdb_server.missing.add(gone)
    client = make_client()

    movies = client.collect(pages=1)

    assert len(movies) == 19
    assert gone not in [m["id"] for m in movies]
    assert f"TMDB movie {gone} not found (404); skipped" in caplog.text
    with pytest.raises(TMDBNotFoundError):
        client.details(gone)
    assert sleeps == []  # a 404 is an answer, not a fault: never retried


def test_language_and_region_are_sent(tmdb_server: FakeTMDB, make_client: ClientFactory) -> None:
    client = make_client(language="ko-KR", region="KR")

    movie_id = client.popular_ids(1)[0]
    client.details(movie_id)

    popular = tmdb_server.requests_to(POPULAR)[0].query
    assert (popular["language"], popular["region"], popular["page"]) == ("ko-KR", "KR", "1")
    details = tmdb_server.requests_to(f"/3/movie/{movie_id}")[0].query
    assert details["language"] == "ko-KR"
    assert "region" not in details  # /movie/{id} takes no region


# --- auth and secrecy ------------------------------------------------------------------------------


def test_v3_key_goes_in_the_query(tmdb_server: FakeTMDB, make_client: ClientFactory) -> None:
    make_client().popular(1)

    request = tmdb_server.requests[0]
    assert request.query["api_key"] == tmdb_server.api_key
    assert "authorization" not in request.headers


def test_v4_token_goes_in_a_bearer_header(tmdb_server: FakeTMDB, make_client: ClientFactory) -> None:
    page = make_client(api_key=tmdb_server.bearer_token).popular(1)

    assert len(page["results"]) == 20
    request = tmdb_server.requests[0]
    assert request.headers["authorization"] == f"Bearer {tmdb_server.bearer_token}"
    assert "api_key" not in request.query


@pytest.mark.parametrize("wrong_key", ["f" * 32, "eyJhbGciOiJIUzI1NiJ9.not-the.token"])
def test_rejected_key_fails_at_once_with_a_clear_message(
    tmdb_server: FakeTMDB,
    make_client: ClientFactory,
    sleeps: list[float],
    caplog: pytest.LogCaptureFixture,
    wrong_key: str,
) -> None:
    caplog.set_level(logging.DEBUG)
    client = make_client(api_key=wrong_key)

    with pytest.raises(
        TMDBAuthError, match=re.escape("TMDB rejected the API key (401): check TMDB_API_KEY")
    ) as exc:
        client.collect(pages=1)

    assert "Invalid API key" in str(exc.value)  # TMDB's own words are passed on
    assert len(tmdb_server.requests) == 1 and sleeps == []  # never retried
    assert wrong_key not in str(exc.value)
    assert wrong_key not in caplog.text


def test_api_key_never_appears_in_logs_or_errors(
    tmdb_server: FakeTMDB,
    make_client: ClientFactory,
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.DEBUG)  # httpx and httpcore included
    caplog.set_level(logging.DEBUG, logger="httpx")  # other libraries (Airflow) may have quietened it
    tmdb_server.fail_next(POPULAR, status=429, retry_after="1")
    tmdb_server.missing.add(tmdb_server.popular_order[0])
    client = make_client(max_retries=2)

    client.collect(pages=1)
    tmdb_server.fail_next("/3/movie/1001", status=500, times=10)
    with pytest.raises(TMDBError) as exc:
        client.details(1001)

    key = tmdb_server.api_key
    assert "HTTP Request: GET" in caplog.text and "api_key=***" in caplog.text  # httpx's line, redacted
    assert key not in caplog.text
    assert all(key not in record.getMessage() for record in caplog.records)
    assert key not in str(exc.value)


# --- retries ---------------------------------------------------------------------------------------


def test_429_is_retried_after_the_retry_after_delay(
    tmdb_server: FakeTMDB,
    make_client: ClientFactory,
    sleeps: list[float],
) -> None:
    tmdb_server.fail_next(POPULAR, status=429, times=2, retry_after="1")

    page = make_client().popular(1)

    assert len(page["results"]) == 20
    assert sleeps == [1.0, 1.0]
    assert len(tmdb_server.requests_to(POPULAR)) == 3


def test_retry_after_as_an_http_date_is_honoured(
    tmdb_server: FakeTMDB,
    make_client: ClientFactory,
    sleeps: list[float],
) -> None:
    tmdb_server.fail_next(POPULAR, status=429, retry_after=formatdate(time.time() + 5, usegmt=True))

    make_client().popular(1)

    assert len(sleeps) == 1 and 3.0 <= sleeps[0] <= 5.0


@pytest.mark.parametrize("status", [500, 502, 503])
def test_server_error_is_retried_then_succeeds(
    tmdb_server: FakeTMDB,
    make_client: ClientFactory,
    sleeps: list[float],
    status: int,
) -> None:
    movie_id = tmdb_server.popular_order[0]
    tmdb_server.fail_next(f"/3/movie/{movie_id}", status=status)

    movie = make_client().details(movie_id)

    assert movie["title"] == tmdb_server.movies[movie_id]["title"]
    assert len(sleeps) == 1 and 0.5 <= sleeps[0] <= 0.75  # first backoff: 0.5 s plus up to 50% jitter
    assert len(tmdb_server.requests_to(f"/3/movie/{movie_id}")) == 2


def test_exhausted_retries_raise_a_tmdb_error_naming_path_and_status(
    tmdb_server: FakeTMDB,
    make_client: ClientFactory,
    sleeps: list[float],
) -> None:
    tmdb_server.fail_next(POPULAR, status=503, times=100)

    with pytest.raises(TMDBError) as exc:
        make_client(max_retries=3).popular(1)

    assert not isinstance(exc.value, TMDBAuthError)
    assert "/movie/popular" in str(exc.value) and "HTTP 503" in str(exc.value)
    assert exc.value.status == 503
    assert len(tmdb_server.requests_to(POPULAR)) == 4  # the first try and 3 retries
    assert len(sleeps) == 3
    assert sleeps[0] < sleeps[1] < sleeps[2]  # exponential: 0.5, 1, 2 s before jitter
    assert 2.0 <= sleeps[2] <= 3.0


def test_a_timeout_is_retried(tmdb_server: FakeTMDB, make_client: ClientFactory, sleeps: list[float]) -> None:
    movie_id = tmdb_server.popular_order[0]
    tmdb_server.stall_next(f"/3/movie/{movie_id}", 1.0)

    movie = make_client(timeout=0.2).details(movie_id)

    assert movie["id"] == movie_id
    assert len(sleeps) == 1


def test_unreachable_server_ends_in_a_clear_error(make_client: ClientFactory, sleeps: list[float]) -> None:
    with socket.socket() as probe:  # a port nobody listens on once the probe is closed
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]

    with pytest.raises(TMDBError, match=r"/movie/popular failed after 3 attempt\(s\) \(last: ConnectError\)"):
        make_client(base_url=f"http://127.0.0.1:{port}/3", max_retries=2).popular(1)
    assert len(sleeps) == 2


# --- pacing ----------------------------------------------------------------------------------------


def test_requests_are_spaced_by_the_rate_limit(tmdb_server: FakeTMDB) -> None:
    clock = FakeClock()
    sent_at: list[float] = []
    http = httpx.Client(event_hooks={"request": [lambda request: sent_at.append(clock.now)]})
    client = TMDBClient(
        tmdb_server.api_key,
        base_url=tmdb_server.base_url,
        requests_per_second=10,
        client=http,
        sleep=clock.sleep,
        clock=clock.time,
    )

    for movie_id in tmdb_server.popular_order[:5]:
        client.details(movie_id)

    assert sent_at == pytest.approx([0.0, 0.1, 0.2, 0.3, 0.4])
    assert clock.sleeps == pytest.approx([0.1] * 4)
    client.close()
    assert not http.is_closed  # a client passed in belongs to the caller
    http.close()


def test_rate_limiter_gives_every_thread_its_own_slot() -> None:
    limiter = RateLimiter(100, clock=lambda: 0.0, sleep=lambda seconds: None)
    waits: list[float] = []
    lock = threading.Lock()

    def worker() -> None:
        for _ in range(25):
            wait = limiter.acquire()
            with lock:
                waits.append(wait)

    threads = [threading.Thread(target=worker) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    assert sorted(waits) == pytest.approx([i * 0.01 for i in range(200)])


# --- settings --------------------------------------------------------------------------------------


def test_from_settings_uses_the_tmdb_settings(tmdb_server: FakeTMDB, sleeps: list[float]) -> None:
    settings = Settings(
        _env_file=None,
        tmdb_api_key=tmdb_server.bearer_token,
        tmdb_base_url=tmdb_server.base_url,
        tmdb_language="ko-KR",
        tmdb_region="KR",
    )

    with TMDBClient.from_settings(settings, sleep=sleeps.append) as client:
        assert len(client.popular_ids(1)) == 20

    request = tmdb_server.requests[0]
    assert request.headers["authorization"] == f"Bearer {tmdb_server.bearer_token}"
    assert (request.query["language"], request.query["region"]) == ("ko-KR", "KR")


def test_from_settings_without_a_key_says_which_setting_is_missing(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("TMDB_API_KEY", raising=False)

    with pytest.raises(ValueError, match="TMDB_API_KEY"):
        TMDBClient.from_settings(Settings(_env_file=None))
