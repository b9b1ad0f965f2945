"""Typed HTTP client for the serving API: every failure comes back as an ApiError value, never raised."""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from typing import Any
from urllib.parse import quote

import httpx

from services.ui.api.error_report import ErrorReport, read_errors
from services.ui.api.experiments import Experiments, read_experiments
from services.ui.api.failures import parsed, problems, retry_after
from services.ui.api.loop import FeedbackAck, FeedbackEvent, OnlineDay, read_ack, read_online
from services.ui.api.monitoring import Monitoring, read_monitoring
from services.ui.api.readers import (
    read_history,
    read_models,
    read_movie,
    read_prediction,
    read_recommendations,
)
from services.ui.api.records import (
    FALLBACK_VOCABULARY,
    ApiError,
    HistoryPoint,
    ModelInfo,
    Movie,
    Pool,
    Prediction,
    Readiness,
    Recommendations,
    Vocabulary,
)
from services.ui.api.users import UserHistory, no_route, read_user
from services.ui.choices import LANGUAGE_NAMES

log = logging.getLogger(__name__)

GENRE_PREFIX = "genre="
DEFAULT_POSTER_BASE = "https://image.tmdb.org/t/p/w342"
# A click on a card waits for this at most: feedback must never feel slow.
FEEDBACK_TIMEOUT = httpx.Timeout(5.0, connect=2.0)


class MovieApi:
    """The serving API over HTTP: every call the UI makes, each answer read into its typed record."""

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
        log.info("API %s %s -> %s %s", method, path, status, "; ".join(problems(detail)))
        if status == 503:
            text = detail if isinstance(detail, str) else "The API is running but not ready."
            return ApiError(
                "not_ready",
                text,
                status=status,
                retry_after_s=retry_after(response.headers.get("retry-after")),
            )
        if status == 422:
            return ApiError(
                "invalid", "The API did not accept these inputs.", status=status, problems=problems(detail)
            )
        if status == 404:
            # The detail tells a missing route (FastAPI's "Not Found") from a missing thing.
            return ApiError("not_found", f"The API has no {path}.", status=status, problems=problems(detail))
        text = detail if isinstance(detail, str) else f"The API answered {path} with HTTP {status}."
        return ApiError("server", text, status=status)

    def _movie(self, raw: Mapping[str, Any]) -> Movie:
        """One catalog movie, a bare poster path joined to this client's poster base."""
        return read_movie(raw, self.poster_base_url)

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
            return read_prediction(body)
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
            return read_recommendations(body, self.poster_base_url)
        except (KeyError, TypeError, ValueError, AttributeError) as exc:
            log.warning("unexpected /recommend answer: %s", exc)
            return ApiError("bad_response", "The API's recommendations were not in the expected shape.")

    def send_feedback(self, events: Sequence[FeedbackEvent]) -> FeedbackAck | ApiError:
        """POST /feedback: reactions to movies (1-500), each with its own event id."""
        payload = {"events": [event.as_json() for event in events]}
        body = self._call("POST", "/feedback", json=payload, timeout=FEEDBACK_TIMEOUT)
        return parsed(body, read_ack, "/feedback", "answer to feedback")

    def online(self, days: int = 30) -> list[OnlineDay] | ApiError:
        """GET /model/online: the recommender's daily online evaluation, oldest day first."""
        body = self._call("GET", "/model/online", params={"days": int(days)})
        return parsed(body, read_online, "/model/online", "online metrics")

    def monitoring(self, days: int = 30) -> Monitoring | ApiError:
        """GET /model/monitoring: the production rating model's live error, drift and alerts, by day."""
        body = self._call("GET", "/model/monitoring", params={"days": int(days)})
        return parsed(body, read_monitoring, "/model/monitoring", "monitoring reports")

    def errors(self, day: str | None = None) -> ErrorReport | None | ApiError:
        """GET /model/errors: where the rating model errs, by band (latest run, or day's); None when none yet."""
        body = self._call("GET", "/model/errors", params={"date": day} if day else None)
        if isinstance(body, ApiError) and body.kind == "not_found":
            return None
        return parsed(body, read_errors, "/model/errors", "error analysis")

    def experiments(self) -> Experiments | ApiError:
        """GET /model/experiments: the running experiments and the recent ends (not_found: an older API)."""
        body = self._call("GET", "/model/experiments")
        return parsed(body, read_experiments, "/model/experiments", "experiments")

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
        return parsed(body, self._movie, "/movies/{tmdb_id}", "movie")

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

    def get_user(self, user_id: str) -> UserHistory | None | ApiError:
        """GET /users/{user_id}: what the server holds; empty when it holds nothing; None without the route."""
        body = self._call("GET", f"/users/{quote(user_id, safe='')}")
        if isinstance(body, ApiError):
            if no_route(body):
                return None
            if body.kind == "not_found":
                return UserHistory(user_id)
            return body
        return parsed(body, lambda raw: read_user(user_id, raw), "/users", "your history")

    def delete_user(self, user_id: str) -> bool | None | ApiError:
        """DELETE /users/{user_id}: True when erased, False when there was nothing; None without the route."""
        body = self._call("DELETE", f"/users/{quote(user_id, safe='')}")
        if isinstance(body, ApiError):
            if no_route(body):
                return None
            if body.kind == "not_found":
                return False
            return body
        return True

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
