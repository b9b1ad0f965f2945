"""A stand-in for the serving API, as the UI sees it: the same routes and bodies, made-up answers.

One ``StubApi`` answers both ways the UI tests need: in process through ``httpx.MockTransport``
(``stub.client()`` gives a real ``MovieApi`` on it, for AppTest) and over real HTTP on 127.0.0.1
(``stub.serve()``, for the browser test). Switches: ``ready`` (False answers 503 like an API
without a model), ``with_history`` (serve ``GET /model/history``, which the real API lacks so far),
``with_recommender`` (False: popularity only), ``new_releases`` (what ``pool: "new"`` ranks; empty:
an old model with nothing new), ``with_pools`` (False: an API from before pools, which ignores
``pool`` and sends no ``new`` or ``pool``), ``new_pool_status`` (500: only the new-pool call fails),
``feedback_status`` (503: the API cannot take events
now, with ``Retry-After``), ``online_days`` and ``online_status`` (what ``GET /model/online`` says), ``monitoring`` and
``monitoring_status`` (``GET /model/monitoring``), ``errors`` and ``errors_status`` (``GET /model/errors``;
``errors=None`` answers 404 like an API with no report yet), ``experiments`` and ``experiments_status``
(``GET /model/experiments``; ``experiments=None`` answers 404 like an API from before experiments),
``with_users`` (False: an API from before users by id: no ``/users`` routes, ``/recommend`` without
``source``/``history``/``cached``) and ``users`` (tests/fakes/ui_stub_users.py: the per-user state that
feedback updates and ``/recommend`` honours; ``users.status = 503``: the store is down).
Every request and every answer is recorded; ``feedback`` holds the events ``/feedback`` took.

Run it by hand for UI work: ``python -m tests.fakes.ui_stub_api --port 8000``.
"""

from __future__ import annotations

import argparse
import copy
import json
import logging
import re
import threading
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qsl, urlsplit

import httpx

from services.ui.api.client import MovieApi
from tests.fakes.ui_stub_data import (
    CATALOG,
    ERRORS,
    HISTORY,
    MONITORING,
    NEW_RELEASES,
    ONLINE_DAYS,
    RATING_VERSION,
    RECOMMENDER_VERSION,
)
from tests.fakes.ui_stub_experiments import EXPERIMENTS
from tests.fakes.ui_stub_users import StubUsers

log = logging.getLogger(__name__)

HANGUL = re.compile(r"[\uac00-\ud7a3]")
FEEDBACK_KINDS = ("like", "dislike", "watched", "rating")


@dataclass
class StubApi:
    """The serving API's contract with canned data; see the module docstring."""

    ready: bool = True
    with_history: bool = True
    with_recommender: bool = True  # False: popularity for everyone, like an API without that model
    new_releases: dict[int, dict[str, Any]] = field(default_factory=lambda: dict(NEW_RELEASES))
    with_pools: bool = True  # False: the API before pool "new" (the field is ignored)
    new_pool_status: int = 200  # 500: the new-pool call fails, the main one still answers
    feedback_status: int = 202  # 503: the spool is full, come back later
    retry_after_s: int = 5
    online_days: list[dict[str, Any]] = field(default_factory=lambda: list(ONLINE_DAYS))
    online_status: int = 200  # 503: the reports cannot be read from S3
    monitoring: dict[str, Any] = field(default_factory=lambda: dict(MONITORING))
    monitoring_status: int = 200
    errors: dict[str, Any] | None = field(default_factory=lambda: dict(ERRORS))  # None: no report yet (404)
    errors_status: int = 200
    # None: an API from before experiments (404); {"running": [], "recent": []}: none ever ran.
    experiments: dict[str, Any] | None = field(default_factory=lambda: copy.deepcopy(EXPERIMENTS))
    experiments_status: int = 200
    with_users: bool = True  # False: the API before users known by id
    users: StubUsers = field(default_factory=StubUsers)
    requests: list[tuple[str, str, Any]] = field(default_factory=list)
    answers: list[tuple[str, str, Any]] = field(default_factory=list)
    feedback: list[dict[str, Any]] = field(default_factory=list)

    # --- routing ---------------------------------------------------------------------------------
    def handle(self, method: str, path: str, query: dict[str, str], body: Any) -> tuple[Any, ...]:
        """One request in, (status, JSON body) or (status, JSON body, headers) out."""
        self.requests.append((method, path, body))
        answer = self._route(method, path, query, body)
        self.answers.append((method, path, answer[1]))
        return answer

    def _route(self, method: str, path: str, query: dict[str, str], body: Any) -> tuple[Any, ...]:
        if (method, path) == ("GET", "/health"):
            return 200, {"status": "ok"}
        if (method, path) == ("GET", "/ready"):
            if not self.ready:
                return 503, {"ready": False, "detail": "no production model in the registry yet"}
            return 200, {"ready": True, "detail": None, "rating_version": RATING_VERSION, "source": "s3"}
        if (method, path) == ("GET", "/movies/search"):
            return 200, self._search(query.get("q", ""), int(query.get("limit", 10)))
        if method == "GET" and (m := re.fullmatch(r"/movies/(\d+)", path)):
            movie = (CATALOG | self.new_releases).get(int(m.group(1)))
            return (200, movie) if movie else (404, {"detail": "no such movie in the catalog"})
        if (method, path) == ("GET", "/model"):
            return 200, self._model()
        if (method, path) == ("GET", "/model/history") and self.with_history:
            return 200, HISTORY if self.ready else {"rating": [], "recommender": []}
        if (method, path) == ("POST", "/predict"):
            return self._predict(body)
        if (method, path) == ("POST", "/recommend"):
            return self._recommend(body)
        if (method, path) == ("POST", "/feedback"):
            return self._feedback(body)
        if (method, path) == ("GET", "/model/online"):
            if self.online_status == 503:
                return 503, {"detail": "cannot read reports/online from S3: connection refused"}
            return 200, {"days": self.online_days[-int(query.get("days", 30)) :]}
        if (method, path) == ("GET", "/model/monitoring"):
            if self.monitoring_status != 200:
                return self.monitoring_status, {"detail": "cannot read reports from S3: connection refused"}
            return 200, self.monitoring
        if (method, path) == ("GET", "/model/errors"):
            if self.errors_status != 200:
                return self.errors_status, {"detail": "cannot read reports from S3: connection refused"}
            if self.errors is None:
                return 404, {"detail": "no error report yet: the pipeline writes one on each run"}
            return 200, self.errors
        if (method, path) == ("GET", "/model/experiments") and self.experiments is not None:
            if self.experiments_status != 200:
                return self.experiments_status, {"detail": "cannot read registry/recommender/candidate.json"}
            return 200, self.experiments
        if self.with_users and (m := re.fullmatch(r"/users/([^/]+)", path)):
            if method == "GET":
                return self.users.get(m.group(1))
            if method == "DELETE":
                return self.users.delete(m.group(1))
            return 405, {"detail": "Method Not Allowed"}
        return 404, {"detail": "Not Found"}

    def calls(self, method: str, path: str) -> list[Any]:
        """Bodies of the recorded requests to one route."""
        return [body for m, p, body in self.requests if (m, p) == (method, path)]

    def answered(self, method: str, path: str) -> list[Any]:
        """Bodies of the recorded answers from one route."""
        return [body for m, p, body in self.answers if (m, p) == (method, path)]

    # --- routes ----------------------------------------------------------------------------------
    def _search(self, q: str, limit: int) -> dict[str, Any]:
        needle = q.strip().casefold()
        movies = [*CATALOG.values(), *self.new_releases.values()]
        hits = [m for m in movies if needle and needle in m["title"].casefold()]
        hits.sort(key=lambda m: (not m["title"].casefold().startswith(needle), -m["popularity"]))
        return {"query": q, "items": hits[:limit]}

    def _model(self) -> dict[str, Any]:
        if not self.ready:
            return {
                "ready": False,
                "source": None,
                "loaded_at": None,
                "load_seconds": None,
                "detail": "no production model in the registry yet",
                "rating": None,
                "recommender": None,
                "catalog_size": 0,
            }

        def info(model: str, version: str, algorithm: str) -> dict[str, Any]:
            return {
                "version": version,
                "algorithm": algorithm,
                "created_at": HISTORY[model][-1]["created_at"],
                "metrics": HISTORY[model][-1]["metrics"],
                "wandb_run": f"offline-run-20250226_120000-{model[:4]}",
                "git_commit": "0123abcd",
                "n_features": 42,
                "source": "s3",
            }

        return {
            "ready": True,
            "source": "s3",
            "loaded_at": "2025-03-01T12:20:00Z",
            "load_seconds": 0.4,
            "detail": None,
            "rating": info("rating", RATING_VERSION, "xgboost"),
            "recommender": info("recommender", RECOMMENDER_VERSION, "gru4rec"),
            "catalog_size": len(CATALOG),
        }

    def _predict(self, body: Any) -> tuple[int, Any]:
        if not self.ready:
            return 503, {"detail": "no rating model loaded yet"}
        problems = _validate_movie(body)
        if problems:
            return 422, {"detail": problems}
        overview = body["overview"]
        translated = bool(HANGUL.search(overview))
        genres = body["genres"]
        contributions = {
            "runtime": round((float(body["runtime"]) - 100) / 120, 3),
            "overview_polarity": 0.21 if translated else 0.05,
            "overview_subjectivity": -0.04,
            "overview_length": round(min(len(overview), 400) / 2000, 3),
            "overview_words": 0.02,
            "main_genre": 0.12 if genres and genres[0] in ("Drama", "Animation") else -0.09,
            "n_genres": 0.03 * len(genres),
            "original_language": 0.18 if body["original_language"] == "ko" else 0.0,
            "is_english": -0.05 if body["original_language"] == "en" else 0.0,
            "release_year": -0.11 if body.get("release_date") else 0.0,
            "log_budget": 0.07 if body.get("budget") else -0.02,
            "in_collection": 0.0,
            "genre=Drama": 0.26 if "Drama" in genres else -0.06,
            "genre=Horror": -0.31 if "Horror" in genres else 0.01,
            "genre=Animation": 0.15 if "Animation" in genres else 0.0,
            "genre=Comedy": -0.12 if "Comedy" in genres else 0.02,
            "country=US": -0.03,
            "bias": 6.12,
        }
        rating = max(0.0, min(10.0, sum(contributions.values())))
        notes = ["The overview was translated from Korean to English before scoring."] if translated else []
        return 200, {
            "predicted_rating": round(rating, 3),
            "model_version": RATING_VERSION,
            "overview_sentiment": {
                "polarity": 0.35 if translated else 0.1,
                "subjectivity": 0.5,
                "label": "positive" if translated else "neutral",
            },
            "translated": translated,
            "notes": notes,
            "contributions": contributions,
        }

    def _recommend(self, body: Any) -> tuple[int, Any]:
        if not self.ready:
            return 503, {"detail": "no recommender loaded yet"}
        user = (body or {}).get("user_id")
        if user is not None and (not isinstance(user, str) or len(user) > 128):
            detail = {"loc": ["body", "user_id"], "msg": "String should have at most 128 characters"}
            return 422, {"detail": [detail | {"type": "string_too_long"}]}
        liked = [int(i) for i in (body or {}).get("liked", [])]
        k = int((body or {}).get("k", 10))
        never: set[int] = set()
        origin, history = "request", 0
        if self.with_users:
            # Stored positives first (time order), the request's likes after them; never dislikes or seen.
            liked, never, origin, history = self.users.history(user, liked)
        known = [i for i in liked if i in CATALOG]
        unknown = [i for i in liked if i not in CATALOG]
        liked_genres = {g for i in known for g in CATALOG[i]["genres"]}
        new_pool = self.with_pools and (body or {}).get("pool", "all") == "new"
        if new_pool and self.new_pool_status != 200:
            return self.new_pool_status, {"detail": "the content scorer for new movies failed"}

        def score(movie: dict[str, Any]) -> float:
            overlap = len(liked_genres & set(movie["genres"]))
            return round(overlap + movie["popularity"] / 100, 4)

        # New releases are ranked only on their own pool: the main ranking never sees them.
        source = self.new_releases if new_pool else CATALOG
        pool = [m for m in source.values() if m["tmdb_id"] not in liked and m["tmdb_id"] not in never]
        personal = bool(known) and self.with_recommender
        pool.sort(key=lambda m: (-score(m), m["tmdb_id"]) if personal else (-m["popularity"], m["tmdb_id"]))
        items = [
            {key: m[key] for key in ("tmdb_id", "title", "release_year", "overview", "poster_url")}
            | {"score": score(m)}
            | ({"new": new_pool} if self.with_pools else {})
            for m in pool[:k]
        ]
        answer = {
            "items": items,
            "unknown": unknown,
            "strategy": "sequential" if personal else "popularity",
            "cold_start": not known,
            "model_version": RECOMMENDER_VERSION if self.with_recommender else None,
            "request_id": f"req-{uuid.uuid4().hex[:12]}",
        }
        if self.with_users:
            cached = user in self.users.cached_for and origin == "user"
            answer |= {"source": origin, "history": history, "cached": cached}
        return 200, answer | ({"pool": "new" if new_pool else "all"} if self.with_pools else {})

    def _feedback(self, body: Any) -> tuple[Any, ...]:
        if self.feedback_status == 503:
            detail = {"detail": "the feedback spool is full; try again shortly"}
            return 503, detail, {"retry-after": str(self.retry_after_s)}
        events = (body or {}).get("events") if isinstance(body, dict) else None
        problems = _validate_events(events)
        if problems:
            return 422, {"detail": problems}
        seen = {e["event_id"] for e in self.feedback}
        fresh = [e | {"event_id": e.get("event_id") or uuid.uuid4().hex} for e in events]
        new = [e for e in fresh if e["event_id"] not in seen]
        self.feedback.extend(new)
        if self.with_users:
            self.users.apply(new)
        ids = [e["event_id"] for e in fresh]
        return 202, {"accepted": len(new), "duplicates": len(fresh) - len(new), "event_ids": ids}

    # --- transports ------------------------------------------------------------------------------
    def transport(self) -> httpx.MockTransport:
        """In-process transport for httpx."""

        def respond(request: httpx.Request) -> httpx.Response:
            body = json.loads(request.content) if request.content else None
            status, payload, *headers = self.handle(
                request.method, request.url.path, dict(request.url.params), body
            )
            if status == 204:  # no content, as the real API's DELETE
                return httpx.Response(status, headers=headers[0] if headers else None)
            return httpx.Response(status, json=payload, headers=headers[0] if headers else None)

        return httpx.MockTransport(respond)

    def client(self) -> MovieApi:
        """A real MovieApi talking to this stub in process (its base_url is unique per client)."""
        return MovieApi(f"http://stub-{uuid.uuid4().hex[:8]}.invalid", transport=self.transport())

    @contextmanager
    def serve(self, port: int = 0) -> Iterator[str]:
        """Serve over real HTTP on 127.0.0.1; yields the base URL."""
        server = ThreadingHTTPServer(("127.0.0.1", port), _handler_for(self))
        server.daemon_threads = True
        thread = threading.Thread(target=server.serve_forever, name="ui-stub-api", daemon=True)
        thread.start()
        try:
            yield f"http://127.0.0.1:{server.server_address[1]}"
        finally:
            server.shutdown()
            server.server_close()
            thread.join(timeout=5)


def _validate_movie(body: Any) -> list[dict[str, Any]]:
    """FastAPI-style 422 details for the required fields."""
    if not isinstance(body, dict):
        return [{"loc": ["body"], "msg": "Input should be a valid dictionary", "type": "dict_type"}]
    problems = []
    for name in ("overview", "runtime", "genres", "original_language"):
        if name not in body:
            problems.append({"loc": ["body", name], "msg": "Field required", "type": "missing"})
    if isinstance(body.get("overview"), str) and not body["overview"].strip():
        problems.append(
            {
                "loc": ["body", "overview"],
                "msg": "Value error, overview must not be blank",
                "type": "value_error",
            }
        )
    runtime = body.get("runtime")
    if runtime is not None and (not isinstance(runtime, int | float) or runtime <= 0):
        problems.append(
            {"loc": ["body", "runtime"], "msg": "Input should be greater than 0", "type": "greater_than"}
        )
    lang = body.get("original_language")
    if lang is not None and not (isinstance(lang, str) and re.fullmatch(r"[a-z]{2}", lang)):
        problems.append(
            {
                "loc": ["body", "original_language"],
                "msg": "String should match pattern '^[a-z]{2}$'",
                "type": "string_pattern_mismatch",
            }
        )
    return problems


def _validate_events(events: Any) -> list[dict[str, Any]]:
    """FastAPI-style 422 details for a /feedback body, as the real API's schema has them."""
    if not isinstance(events, list) or not 1 <= len(events) <= 500:
        return [{"loc": ["body", "events"], "msg": "List should have 1 to 500 items", "type": "too_long"}]
    problems = []
    for i, event in enumerate(events):
        loc = ["body", "events", i]
        if not isinstance(event, dict):
            problems.append({"loc": loc, "msg": "Input should be a valid dictionary", "type": "dict_type"})
            continue
        user, kind, value = event.get("user_id"), event.get("kind"), event.get("value")
        if not isinstance(user, str) or not 1 <= len(user) <= 128:
            problems.append({"loc": [*loc, "user_id"], "msg": "Field required", "type": "missing"})
        if not isinstance(event.get("tmdb_id"), int):
            problems.append({"loc": [*loc, "tmdb_id"], "msg": "Input should be an integer", "type": "int"})
        if kind not in FEEDBACK_KINDS:
            msg = "Input should be 'like', 'dislike', 'watched' or 'rating'"
            problems.append({"loc": [*loc, "kind"], "msg": msg, "type": "literal_error"})
        if (kind == "rating") != (value is not None) or (
            value is not None and (not 0.5 <= value <= 5 or value * 2 != int(value * 2))
        ):
            msg = "Value error, value is a rating in 0.5..5 (step 0.5), for kind 'rating' only"
            problems.append({"loc": [*loc, "value"], "msg": msg, "type": "value_error"})
        position = event.get("position")
        if position is not None and (not isinstance(position, int) or position < 1):
            msg = "Input should be greater than or equal to 1"
            problems.append({"loc": [*loc, "position"], "msg": msg, "type": "greater_than_equal"})
    return problems


def _handler_for(stub: StubApi) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def _answer(self, method: str) -> None:
            url = urlsplit(self.path)
            length = int(self.headers.get("content-length") or 0)
            raw = self.rfile.read(length) if length else b""
            try:
                body = json.loads(raw) if raw else None
            except ValueError:
                status, payload, extra = (
                    422,
                    {"detail": [{"loc": ["body"], "msg": "JSON decode error", "type": "json"}]},
                    [],
                )
            else:
                status, payload, *extra = stub.handle(method, url.path, dict(parse_qsl(url.query)), body)
            data = b"" if status == 204 else json.dumps(payload).encode()
            self.send_response(status)
            for name, value in (extra[0] if extra else {}).items():
                self.send_header(name, value)
            self.send_header("content-type", "application/json")
            self.send_header("content-length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def do_GET(self) -> None:  # noqa: N802 - http.server's naming
            self._answer("GET")

        def do_POST(self) -> None:  # noqa: N802 - http.server's naming
            self._answer("POST")

        def do_DELETE(self) -> None:  # noqa: N802 - http.server's naming
            self._answer("DELETE")

        def log_message(self, fmt: str, *args: Any) -> None:
            log.debug("stub api: " + fmt, *args)

    return Handler


def main() -> None:
    """Serve the stub until interrupted."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--port", type=int, default=8000)
    parser.add_argument("--not-ready", action="store_true", help="answer 503 like an API without a model")
    args = parser.parse_args()
    logging.basicConfig(level=logging.INFO)
    with StubApi(ready=not args.not_ready).serve(args.port) as url:
        log.info("stub API on %s (Ctrl-C to stop)", url)
        threading.Event().wait()


if __name__ == "__main__":
    main()
