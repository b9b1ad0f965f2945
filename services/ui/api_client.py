"""Typed HTTP client for the serving API: every failure comes back as an ApiError value, never raised."""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping, Sequence
from typing import Any, TypeVar

import httpx

from services.ui.api_types import (
    FALLBACK_VOCABULARY,
    POOLS,
    ApiError,
    HistoryPoint,
    ModelInfo,
    Movie,
    Pool,
    Prediction,
    Readiness,
    Recommendations,
    Sentiment,
    Vocabulary,
)
from services.ui.choices import LANGUAGE_NAMES
from services.ui.errors_view import ErrorReport, read_errors
from services.ui.loop_api import FeedbackAck, FeedbackEvent, OnlineDay, read_ack, read_online
from services.ui.monitoring_view import Monitoring, read_monitoring
from services.ui.readers import float_map, read_history, read_models, str_or_none
from services.ui.users_api import user_fields

log = logging.getLogger(__name__)
T = TypeVar("T")

GENRE_PREFIX = "genre="
DEFAULT_POSTER_BASE = "https://image.tmdb.org/t/p/w342"
# A click on a card waits for this at most: feedback must never feel slow.
FEEDBACK_TIMEOUT = httpx.Timeout(5.0, connect=2.0)


def _retry_after(value: str | None) -> int | None:
    """Retry-After in whole seconds; None when absent or given as an HTTP date."""
    if value and value.strip().isdigit():
        return int(value.strip())
    return None


def _problems(detail: Any) -> tuple[str, ...]:
    """FastAPI's 422 detail list as readable lines: 'runtime: Input should be greater than 0'."""
    if isinstance(detail, str):
        return (detail,)
    if not isinstance(detail, list):
        return ()
    lines = []
    for item in detail:
        if not isinstance(item, Mapping):
            lines.append(str(item))
            continue
        loc = [str(p) for p in item.get("loc") or [] if p not in ("body", "query", "path")]
        msg = str(item.get("msg") or "invalid value")
        lines.append(f"{'.'.join(loc)}: {msg}" if loc else msg)
    return tuple(lines)


class MovieApi:
    """The serving API over HTTP: prediction, recommendations, catalog search and model info."""

    def __init__(
        self,
        base_url: str,
        *,
        timeout_s: float = 20.0,
        connect_timeout_s: float = 3.0,
        poster_base_url: str = DEFAULT_POSTER_BASE,
        transport: httpx.BaseTransport | None = None,
    ) -> None:
        self.base_url = base_url.rstrip("/")
        self.poster_base_url = poster_base_url.rstrip("/")
        self._http = httpx.Client(
            base_url=self.base_url,
            timeout=httpx.Timeout(timeout_s, connect=connect_timeout_s),
            transport=transport,
            headers={"accept": "application/json"},
        )

    def close(self) -> None:
        """Close the connection pool."""
        self._http.close()

    # --- transport -------------------------------------------------------------------------------
    def _call(self, method: str, path: str, **kwargs: Any) -> Any | ApiError:
        """One request; the decoded JSON body, or an ApiError for every way it can fail."""
        try:
            response = self._http.request(method, path, **kwargs)
        except httpx.TimeoutException:
            log.warning("API %s %s timed out", method, path)
            return ApiError("down", f"The movie API at {self.base_url} did not answer in time.")
        except httpx.HTTPError as exc:
            log.warning("API %s %s failed: %s", method, path, exc)
            return ApiError("down", f"Cannot reach the movie API at {self.base_url}.")
        try:
            body = response.json() if response.content else None
        except ValueError:
            body = None
        status = response.status_code
        if status < 400:
            if body is None and response.content:
                return ApiError("bad_response", f"The API answered {path} with something other than JSON.")
            return body
        detail = body.get("detail") if isinstance(body, Mapping) else None
        # Only loc and msg: a 422's detail also echoes the inputs (overviews, user ids).
        log.info("API %s %s -> %s %s", method, path, status, "; ".join(_problems(detail)))
        if status == 503:
            text = detail if isinstance(detail, str) else "The API is running but not ready."
            return ApiError(
                "not_ready",
                text,
                status=status,
                retry_after_s=_retry_after(response.headers.get("retry-after")),
            )
        if status == 422:
            return ApiError(
                "invalid", "The API did not accept these inputs.", status=status, problems=_problems(detail)
            )
        if status == 404:
            # The detail tells a missing route (FastAPI's "Not Found") from a missing thing.
            return ApiError("not_found", f"The API has no {path}.", status=status, problems=_problems(detail))
        text = detail if isinstance(detail, str) else f"The API answered {path} with HTTP {status}."
        return ApiError("server", text, status=status)

    def _movie(self, raw: Mapping[str, Any]) -> Movie:
        poster = str_or_none(raw.get("poster_url"))
        path = str_or_none(raw.get("poster_path"))
        if poster is None and path:
            poster = path if path.startswith("http") else f"{self.poster_base_url}/{path.lstrip('/')}"
        year = raw.get("release_year")
        if year is None and isinstance(raw.get("release_date"), str) and raw["release_date"][:4].isdigit():
            year = raw["release_date"][:4]
        genres = raw.get("genres") or []
        score = raw.get("score")
        return Movie(
            tmdb_id=int(raw["tmdb_id"] if raw.get("tmdb_id") is not None else raw["id"]),
            title=str(raw.get("title") or raw.get("original_title") or f"TMDB {raw.get('tmdb_id')}"),
            release_year=int(year) if year not in (None, "") else None,
            overview=str(raw.get("overview") or ""),
            poster_url=poster,
            genres=tuple(g["name"] if isinstance(g, Mapping) else str(g) for g in genres),
            score=float(score) if isinstance(score, int | float) else None,
            new=raw.get("new") is True,
        )

    # --- endpoints -------------------------------------------------------------------------------
    def readiness(self) -> Readiness | ApiError:
        """GET /ready: ready, not ready (with the API's reason), or an error when the API is down."""
        body = self._call("GET", "/ready")
        if isinstance(body, ApiError):
            if body.kind == "not_ready":
                return Readiness(False, body.message)
            return body
        if not isinstance(body, Mapping):
            return Readiness(True)
        detail = str(body.get("detail") or body.get("status") or "")
        return Readiness(body.get("ready", True) is not False, detail)

    def predict(self, movie: Mapping[str, Any], explain: bool = True) -> Prediction | ApiError:
        """POST /predict: a rating out of 10 for one unreleased movie (TMDB field names)."""
        body = self._call("POST", "/predict", params={"explain": str(explain).lower()}, json=dict(movie))
        if isinstance(body, ApiError):
            return body
        try:
            raw_sent = body.get("overview_sentiment") or {}
            contributions = float_map(body.get("contributions"))
            bias = contributions.pop("bias", None)
            return Prediction(
                rating=float(body["predicted_rating"]),
                model_version=str(body.get("model_version") or "unknown"),
                sentiment=Sentiment(
                    polarity=float(raw_sent.get("polarity") or 0.0),
                    subjectivity=float(raw_sent.get("subjectivity") or 0.0),
                    label=str(raw_sent.get("label") or "neutral"),
                ),
                translated=bool(body.get("translated")),
                notes=tuple(str(n) for n in body.get("notes") or []),
                contributions=contributions,
                bias=bias,
            )
        except (KeyError, TypeError, ValueError, AttributeError) as exc:
            log.warning("unexpected /predict answer: %s", exc)
            return ApiError("bad_response", "The API's prediction was not in the expected shape.")

    def recommend(
        self, liked: Sequence[int], k: int = 10, user_id: str | None = None, pool: Pool = "all"
    ) -> Recommendations | ApiError:
        """POST /recommend: k movies to watch next after the liked ones (most recent last), from pool."""
        payload: dict[str, Any] = {"liked": [int(i) for i in liked], "k": int(k)}
        if user_id:
            payload["user_id"] = user_id
        if pool != "all":  # the API's default: left out, so an API without pools gets the same body
            payload["pool"] = pool
        body = self._call("POST", "/recommend", json=payload)
        if isinstance(body, ApiError):
            return body
        try:
            return Recommendations(
                items=tuple(self._movie(item) for item in body.get("items") or []),
                strategy=str(body.get("strategy") or "unknown"),
                cold_start=bool(body.get("cold_start")),
                model_version=str_or_none(body.get("model_version")),
                unknown=tuple(int(i) for i in body.get("unknown") or []),
                request_id=str_or_none(body.get("request_id")),
                pool=next((p for p in POOLS if p == body.get("pool")), None),
                **user_fields(body),
            )
        except (KeyError, TypeError, ValueError, AttributeError) as exc:
            log.warning("unexpected /recommend answer: %s", exc)
            return ApiError("bad_response", "The API's recommendations were not in the expected shape.")

    def send_feedback(self, events: Sequence[FeedbackEvent]) -> FeedbackAck | ApiError:
        """POST /feedback: reactions to movies (1-500), each with its own event id."""
        payload = {"events": [event.as_json() for event in events]}
        body = self._call("POST", "/feedback", json=payload, timeout=FEEDBACK_TIMEOUT)
        return _parsed(body, read_ack, "/feedback", "answer to feedback")

    def online(self, days: int = 30) -> list[OnlineDay] | ApiError:
        """GET /model/online: the recommender's daily online evaluation, oldest day first."""
        body = self._call("GET", "/model/online", params={"days": int(days)})
        return _parsed(body, read_online, "/model/online", "online metrics")

    def monitoring(self, days: int = 30) -> Monitoring | ApiError:
        """GET /model/monitoring: the production rating model's live error, drift and alerts, by day."""
        body = self._call("GET", "/model/monitoring", params={"days": int(days)})
        return _parsed(body, read_monitoring, "/model/monitoring", "monitoring reports")

    def errors(self, day: str | None = None) -> ErrorReport | None | ApiError:
        """GET /model/errors: where the rating model errs, by band (latest run, or day's); None when none yet."""
        body = self._call("GET", "/model/errors", params={"date": day} if day else None)
        if isinstance(body, ApiError) and body.kind == "not_found":
            return None
        return _parsed(body, read_errors, "/model/errors", "error analysis")

    def search(self, query: str, limit: int = 10) -> list[Movie] | ApiError:
        """GET /movies/search: catalog movies whose title matches the query."""
        if not query.strip():
            return []
        body = self._call("GET", "/movies/search", params={"q": query.strip(), "limit": limit})
        if isinstance(body, ApiError):
            return body
        rows = body.get("items", []) if isinstance(body, Mapping) else body
        try:
            return [self._movie(row) for row in rows or []]
        except (KeyError, TypeError, ValueError, AttributeError) as exc:
            log.warning("unexpected /movies/search answer: %s", exc)
            return ApiError("bad_response", "The API's search results were not in the expected shape.")

    def movie(self, tmdb_id: int) -> Movie | ApiError:
        """GET /movies/{tmdb_id}: one catalog movie."""
        body = self._call("GET", f"/movies/{int(tmdb_id)}")
        return _parsed(body, self._movie, "/movies/{tmdb_id}", "movie")

    def models(self) -> dict[str, ModelInfo] | ApiError:
        """GET /model: the production version of each model ('rating', 'recommender')."""
        body = self._call("GET", "/model")
        return body if isinstance(body, ApiError) else read_models(body)

    def history(self) -> list[HistoryPoint] | None | ApiError:
        """GET /model/history: every registry version with metrics; None when the API lacks it."""
        body = self._call("GET", "/model/history")
        if isinstance(body, ApiError):
            return None if body.kind == "not_found" else body
        return read_history(body)

    def vocabulary(self) -> Vocabulary:
        """Genres and languages the model knows: from the API when it says, else TMDB's lists."""
        body = self._call("GET", "/model/vocabulary")
        genres: list[str] = []
        languages: list[str] = []
        if isinstance(body, Mapping):
            genres = [str(g) for g in body.get("genres") or [] if g and not str(g).startswith("<")]
            languages = [str(x) for x in body.get("languages") or [] if x and not str(x).startswith("<")]
        if not genres:
            model = self._call("GET", "/model")
            rating = model.get("rating") if isinstance(model, Mapping) else None
            if isinstance(model, Mapping) and isinstance(model.get("models"), Mapping):
                rating = model["models"].get("rating")
            features = rating.get("features") if isinstance(rating, Mapping) else None
            for feature in features or []:
                name = feature.get("name") if isinstance(feature, Mapping) else feature
                if isinstance(name, str) and name.startswith(GENRE_PREFIX):
                    genres.append(name[len(GENRE_PREFIX) :])
        if not genres:
            return FALLBACK_VOCABULARY
        # Every two-letter code is accepted by the API; the common ones stay offered.
        merged_languages = list(dict.fromkeys([*LANGUAGE_NAMES, *languages]))
        return Vocabulary(genres=tuple(sorted(set(genres))), languages=tuple(merged_languages), source="api")


def _parsed(body: Any, reader: Callable[[Any], T], path: str, what: str) -> T | ApiError:
    """An answer read into its record, or a bad_response error saying which answer was off."""
    if isinstance(body, ApiError):
        return body
    try:
        return reader(body)
    except (KeyError, TypeError, ValueError, AttributeError) as exc:
        log.warning("unexpected %s answer: %s", path, exc)
        return ApiError("bad_response", f"The API's answer ({what}) was not in the expected shape.")
