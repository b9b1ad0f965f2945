"""A stand-in for the serving API, as the UI sees it: the real app's routes and answer shapes, canned data.

Kept for what the real app (services.serve's create_app) shows only after pipeline runs or a fault: five
registry versions of history, online-evaluation days, monitoring and error reports, a running canary and
ended experiments, and every failure (S3 unreadable, spool full, user store down, a 500 on the new shelf).
Its routes (``ROUTES``) and every answer in each of today's states are checked against the real app's
routes and response models, field by field, by tests/ui/test_stub_contract.py.

One ``StubApi`` answers both ways the UI tests need: in process through ``httpx.MockTransport``
(``stub.client()`` gives a real ``MovieApi`` on it, for AppTest) and over real HTTP on 127.0.0.1
(``stub.serve()``, for the browser test). Switches for today's API: ``ready`` (False answers 503 like an
API without a model), ``with_recommender`` (False: popularity only), ``new_releases`` (what ``pool: "new"``
ranks; empty: an old model with nothing new), ``new_pool_status`` (500: only the new-pool call fails),
``feedback_status`` (503: the API cannot take events now, with ``Retry-After``), ``online_days`` and
``online_status`` (``GET /model/online``), ``monitoring`` and ``monitoring_status`` (``GET /model/monitoring``),
``errors`` and ``errors_status`` (``GET /model/errors``; ``errors=None`` answers 404: no report yet),
``experiments`` and ``experiments_status`` (``GET /model/experiments``), and ``users``
(tests/fakes/ui_stub_users.py: the per-user state that feedback updates and ``/recommend`` honours;
``users.status = 503``: the store is down). Switches for an older API, which the UI still reads and which
answer that older contract on purpose: ``with_history`` (False: no ``GET /model/history``), ``with_pools``
(False: ``pool`` ignored, no ``new`` or ``pool`` sent), ``experiments=None`` (no ``/model/experiments``)
and ``with_users`` (False: no ``/users`` routes, ``/recommend`` without ``source``/``history``/``cached``).
Every request and every answer is recorded; ``feedback`` holds the events ``/feedback`` took.

Run it by hand for UI work: ``python -m tests.fakes.ui_stub_api --port 8000``.
"""

from __future__ import annotations

import argparse
import copy
import logging
import re
import threading
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import ThreadingHTTPServer
from typing import Any

import httpx

from services.serve.state import NOT_LOADED
from services.ui.api.client import MovieApi
from tests.fakes.ui_stub_data import (
    CATALOG,
    ERRORS,
    HISTORY,
    MONITORING,
    NEW_RELEASES,
    ONLINE_DAYS,
    RECOMMENDER_VERSION,
)
from tests.fakes.ui_stub_experiments import EXPERIMENTS
from tests.fakes.ui_stub_http import handler_for, mock_transport, validate_events
from tests.fakes.ui_stub_model import model_answer, predict_answer, ready_answer, vocabulary_answer
from tests.fakes.ui_stub_users import StubUsers

log = logging.getLogger(__name__)


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
        served = False  # the path is a route that is switched on, for some method
        for (route_method, template), answer in ROUTES.items():
            params = _PATTERNS[template].fullmatch(path)
            if params is None or not self._serves(template):
                continue
            if route_method == method:
                return answer(self, _Request(query, body, params.groupdict()))
            served = True
        # As the real app: a path it serves with another method is 405; a route switched off is missing.
        return (405, {"detail": "Method Not Allowed"}) if served else (404, {"detail": "Not Found"})

    def _serves(self, template: str) -> bool:
        """Whether a route is switched on (off: the API from before it)."""
        if template == "/model/history":
            return self.with_history
        if template == "/model/experiments":
            return self.experiments is not None
        return self.with_users or not template.startswith("/users/")

    def calls(self, method: str, path: str) -> list[Any]:
        """Bodies of the recorded requests to one route."""
        return [body for m, p, body in self.requests if (m, p) == (method, path)]

    def answered(self, method: str, path: str) -> list[Any]:
        """Bodies of the recorded answers from one route."""
        return [body for m, p, body in self.answers if (m, p) == (method, path)]

    # --- routes ----------------------------------------------------------------------------------
    def _movie(self, tmdb_id: str) -> tuple[int, Any]:
        if not self.ready:
            return 503, {"detail": NOT_LOADED}
        movie = (CATALOG | self.new_releases).get(int(tmdb_id)) if tmdb_id.isdigit() else None
        return (200, movie) if movie else (404, {"detail": "no such movie in the catalog"})

    def _report(self, status: int, report: Any, missing: str, where: str = "reports") -> tuple[int, Any]:
        """A report read from S3: status 503 (S3 unreadable), 404 when there is none, else the report."""
        if status != 200:
            return status, {"detail": f"cannot read {where} from S3: connection refused"}
        return (404, {"detail": missing}) if report is None else (200, report)

    def _search(self, q: str, limit: int) -> tuple[int, Any]:
        if not self.ready:
            return 503, {"detail": NOT_LOADED}
        needle = q.strip().casefold()
        movies = [*CATALOG.values(), *self.new_releases.values()]
        hits = [m for m in movies if needle and needle in m["title"].casefold()]
        hits.sort(key=lambda m: (not m["title"].casefold().startswith(needle), -m["popularity"]))
        return 200, {"query": q, "items": hits[:limit]}

    def _predict(self, body: Any, explain: bool = True) -> tuple[int, Any]:
        return predict_answer(self.ready, body, explain)

    def _recommend(self, body: Any) -> tuple[int, Any]:
        if not self.ready:
            return 503, {"detail": NOT_LOADED}
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
            return self.new_pool_status, {"detail": "internal server error (logged)"}  # the real app's 500

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
            "arm": "production",  # no user of the stand-in is in a canary's arm
        }
        if self.with_users:
            cached = user in self.users.cached_for and origin == "user"
            answer |= {"source": origin, "history": history, "cached": cached}
        return 200, answer | ({"pool": "new" if new_pool else "all"} if self.with_pools else {})

    def _feedback(self, body: Any) -> tuple[Any, ...]:
        if not self.ready:  # no catalog to check the movies against
            return 503, {"detail": NOT_LOADED}
        if self.feedback_status == 503:
            detail = {"detail": "the feedback spool is full; try again shortly"}
            return 503, detail, {"retry-after": str(self.retry_after_s)}
        events = (body or {}).get("events") if isinstance(body, dict) else None
        problems = validate_events(events)
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
        return mock_transport(lambda *request: self.handle(*request))

    def client(self) -> MovieApi:
        """A real MovieApi talking to this stub in process (its base_url is unique per client)."""
        return MovieApi(f"http://stub-{uuid.uuid4().hex[:8]}.invalid", transport=self.transport())

    @contextmanager
    def serve(self, port: int = 0) -> Iterator[str]:
        """Serve over real HTTP on 127.0.0.1; yields the base URL."""
        server = ThreadingHTTPServer(("127.0.0.1", port), handler_for(lambda *request: self.handle(*request)))
        server.daemon_threads = True
        thread = threading.Thread(target=server.serve_forever, name="ui-stub-api", daemon=True)
        thread.start()
        try:
            yield f"http://127.0.0.1:{server.server_address[1]}"
        finally:
            server.shutdown()
            server.server_close()
            thread.join(timeout=5)


@dataclass(frozen=True)
class _Request:
    """What a route is given: the query, the JSON body and the path's parameters."""

    query: dict[str, str]
    body: Any
    params: dict[str, str]


_Answer = Callable[[StubApi, _Request], tuple[Any, ...]]
NO_ERRORS = "no error report yet: the pipeline writes one on each run"
NO_EXPERIMENTS = "cannot read registry/recommender/candidate.json"
# Every route the stand-in serves: (method, the real app's path template) -> its answer. The contract test
# (tests/ui/test_stub_contract.py) checks each is a real route and each answer one the real app could give.
ROUTES: dict[tuple[str, str], _Answer] = {
    ("GET", "/health"): lambda s, r: (200, {"status": "ok"}),
    ("GET", "/ready"): lambda s, r: ready_answer(s.ready, s.with_recommender, s.experiments),
    ("GET", "/movies/search"): lambda s, r: s._search(r.query.get("q", ""), int(r.query.get("limit", 10))),
    ("GET", "/movies/{tmdb_id}"): lambda s, r: s._movie(r.params["tmdb_id"]),
    ("GET", "/model"): lambda s, r: (200, model_answer(s.ready, s.with_recommender, s.experiments)),
    ("GET", "/model/vocabulary"): lambda s, r: vocabulary_answer(s.ready),
    ("GET", "/model/history"): lambda s, r: (200, HISTORY if s.ready else {"rating": [], "recommender": []}),
    ("POST", "/predict"): lambda s, r: s._predict(r.body, r.query.get("explain") == "true"),
    ("POST", "/recommend"): lambda s, r: s._recommend(r.body),
    ("POST", "/feedback"): lambda s, r: s._feedback(r.body),
    ("GET", "/model/online"): lambda s, r: s._report(
        s.online_status, {"days": s.online_days[-int(r.query.get("days", 30)) :]}, "", "reports/online"
    ),
    ("GET", "/model/monitoring"): lambda s, r: s._report(s.monitoring_status, s.monitoring, ""),
    ("GET", "/model/errors"): lambda s, r: s._report(s.errors_status, s.errors, NO_ERRORS),
    ("GET", "/model/experiments"): lambda s, r: (
        (s.experiments_status, {"detail": NO_EXPERIMENTS}) if s.experiments_status != 200 else (200, s.experiments)
    ),
    ("GET", "/users/{user_id}"): lambda s, r: s.users.get(r.params["user_id"]),
    ("DELETE", "/users/{user_id}"): lambda s, r: s.users.delete(r.params["user_id"]),
}  # fmt: skip
_PATTERNS = {t: re.compile(re.sub(r"\{(\w+)\}", r"(?P<\1>[^/]+)", t)) for _, t in ROUTES}


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
