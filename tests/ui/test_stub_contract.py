"""The UI's stand-in API (tests/fakes/ui_stub_api.py) held to the real app's contract, route by route and field by field.

The real app is services.serve's create_app (its routes and response models; nothing is started): every
route the stand-in serves is a real route with that method, every route the UI client calls is one too, and
every answer the stand-in gives, in every state it can be switched to, is what the real app could send: a
status the real route documents and a body that the real response model reads and writes back unchanged
(no field the real app lacks, none it always sends missing, no value of another type).
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from fastapi.routing import APIRoute
from pydantic import TypeAdapter, ValidationError

from services.core.settings import Settings
from services.serve.app import create_app
from services.ui.api.client import MovieApi
from services.ui.api.loop import FeedbackEvent
from tests.fakes.ui_stub_api import ROUTES, StubApi
from tests.fakes.ui_stub_data import NEW_RELEASES

# What every route of the real app can answer besides what it documents: its app-wide handlers' answers.
INTERNAL_ERROR = {"detail": "internal server error (logged)"}
VALIDATION_KEYS = {"loc", "msg", "type"}  # services/serve/app.py's 422: these and no echo of the input


@pytest.fixture(scope="module")
def real_app() -> FastAPI:
    """The real app, built and not started: its routes and response models are the contract."""
    return create_app(Settings())


def _routes(app: FastAPI) -> list[APIRoute]:
    return [r for r in app.router.routes if isinstance(r, APIRoute)]


def real_route(app: FastAPI, method: str, path: str) -> APIRoute | None:
    """The real route that would take this request (the first whose path and method match, as Starlette's)."""
    return next((r for r in _routes(app) if method in r.methods and r.path_regex.match(path)), None)


def diff(sent: Any, real: Any, where: str = "") -> list[str]:
    """Field-by-field differences between the stand-in's JSON and what the real app would write."""
    if isinstance(sent, dict) and isinstance(real, dict):
        extra = [f"{where}.{k}: sent, but the real app has no such field" for k in sent.keys() - real.keys()]
        missing = [f"{where}.{k}: the real app always sends it; missing" for k in real.keys() - sent.keys()]
        both = [d for k in sent.keys() & real.keys() for d in diff(sent[k], real[k], f"{where}.{k}")]
        return extra + missing + both
    if isinstance(sent, list) and isinstance(real, list) and len(sent) == len(real):
        return [
            d for i, (s, r) in enumerate(zip(sent, real, strict=True)) for d in diff(s, r, f"{where}[{i}]")
        ]
    if sent != real or type(sent) is str or type(real) is str:
        # 1 and 1.0 are the same JSON number; "1" and 1 are not.
        return [] if sent == real and type(sent) is type(real) else [f"{where}: sent {sent!r}, real {real!r}"]
    return []


def conformance(route: APIRoute, status: int, body: Any) -> list[str]:
    """What is wrong with one stand-in answer for the real route: its status, then its body field by field."""
    ok_status = route.status_code or 200
    if status == ok_status:
        if route.response_model is None:
            return [] if body is None else [f"{status} with a body {body!r}; the real route sends none"]
        model: Any = route.response_model
    elif status == 500:
        return [] if body == INTERNAL_ERROR else [f"500 {body!r}; the real app answers {INTERNAL_ERROR!r}"]
    elif status == 422:
        items = body.get("detail") if isinstance(body, dict) else None
        if not isinstance(items, list) or not items or any(set(i) != VALIDATION_KEYS for i in items):
            return [f"422 {body!r}: not the real app's detail list of {sorted(VALIDATION_KEYS)}"]
        return []
    elif status in route.responses and "model" in route.responses[status]:
        model = route.responses[status]["model"]
    else:
        return [f"status {status}: the real route documents {sorted([ok_status, *route.responses])}"]
    adapter = TypeAdapter(model)
    try:
        value = adapter.validate_json(json.dumps(body))
    except ValidationError as exc:
        return [f"{status}: {e['loc']}: {e['msg']}" for e in exc.errors()]
    written = json.loads(adapter.dump_json(value, exclude_none=route.response_model_exclude_none))
    return [f"{status} {d}" for d in diff(body, written)]


def recording(stub: StubApi) -> list[tuple[str, str, int, Any]]:
    """Record every (method, path, status, body) the stand-in answers from now on."""
    answers: list[tuple[str, str, int, Any]] = []
    original = stub.handle

    def handle(method: str, path: str, query: dict[str, str], body: Any) -> tuple[Any, ...]:
        answer = original(method, path, query, body)
        answers.append((method, path, answer[0], answer[1]))
        return answer

    stub.handle = handle  # type: ignore[method-assign]
    return answers


KOREAN = "한 소년이 잃어버린 강아지를 찾아 먼 바닷가 마을로 떠나고, 그곳에서 평생의 친구를 만난다."
MOVIE = {
    "overview": "A cowboy doll meets a spaceman.",
    "runtime": 95,
    "genres": ["Comedy"],
    "original_language": "en",
}


def every_call(api: MovieApi) -> dict[str, Callable[[], Any]]:
    """Each public MovieApi endpoint method, called as the UI calls it (and with what the API refuses)."""
    like = FeedbackEvent.new("u-1", 862, "like", request_id="req-1", position=1)
    rating = FeedbackEvent.new("u-1", 603, "rating", value=4.5)
    return {
        "readiness": api.readiness,
        "predict": lambda: [api.predict(MOVIE), api.predict(MOVIE | {"overview": KOREAN, "original_language": "ko"}),
                            api.predict(MOVIE | {"runtime": -1}), api.predict(MOVIE, explain=False)],
        "recommend": lambda: [api.recommend([]), api.recommend([862, 603], k=5, user_id="u-1"),
                              api.recommend([999_999]), api.recommend([862], pool="new"),
                              api.recommend([862], user_id="u" * 129)],
        "send_feedback": lambda: [api.send_feedback([like, rating]), api.send_feedback([like]),
                                  api.send_feedback([FeedbackEvent.new("u-1", 862, "rating")])],
        "online": api.online,
        "monitoring": api.monitoring,
        "errors": lambda: [api.errors(), api.errors("2025-03-05")],
        "experiments": api.experiments,
        "search": lambda: [api.search("toy"), api.search("zzz-nothing")],
        "movie": lambda: [api.movie(862), api.movie(next(iter(NEW_RELEASES))), api.movie(424_242)],
        "models": api.models,
        "history": api.history,
        "get_user": lambda: [api.get_user("u-1"), api.get_user("nobody")],
        "delete_user": lambda: api.delete_user("u-1"),
        "vocabulary": api.vocabulary,
    }  # fmt: skip


def test_every_public_client_method_is_called_by_this_module() -> None:
    """A method added to MovieApi without a call here would go unchecked."""
    public = {n for n in vars(MovieApi) if not n.startswith("_") and callable(getattr(MovieApi, n))}
    assert public - {"close"} == set(every_call(StubApi().client()))


def test_every_route_the_stub_serves_is_a_real_route_with_that_method(real_app: FastAPI) -> None:
    real = {(m, r.path) for r in _routes(real_app) for m in r.methods}
    assert not [route for route in ROUTES if route not in real], f"the real app lacks: {set(ROUTES) - real}"


def test_every_route_the_ui_client_calls_is_a_real_route(real_app: FastAPI) -> None:
    sent: list[tuple[str, str]] = []

    def refuse(request: httpx.Request) -> httpx.Response:
        sent.append((request.method, request.url.path))
        return httpx.Response(404, json={"detail": "Not Found"})

    api = MovieApi("http://contract.invalid", transport=httpx.MockTransport(refuse))
    for call in every_call(api).values():
        call()
    missing = sorted({(m, p) for m, p in sent if real_route(real_app, m, p) is None})
    assert sent and not missing, f"the UI calls routes the real app lacks: {missing}"


# The stand-in's states that stand for today's API; the switches for an older API (with_history, with_pools,
# with_users False, experiments None) answer another contract on purpose and are not checked against this one.
STATES: dict[str, dict[str, Any]] = {
    "ready": {},
    "no model yet": {"ready": False},
    "no recommender": {"with_recommender": False},
    "nothing new": {"new_releases": {}},
    "new pool fails": {"new_pool_status": 500},
    "spool full": {"feedback_status": 503},
    "reports unreadable": {"online_status": 503, "monitoring_status": 503, "errors_status": 503},
    "no error report yet": {"errors": None},
    "no experiment ever": {
        "experiments": {"running": [], "recent": [], "updated_at": "2025-03-08T02:15:00Z"}
    },
    "registry unreadable": {"experiments_status": 503},
}


def _stub(state: dict[str, Any], user_store_down: bool) -> StubApi:
    stub = StubApi(**state)
    stub.users.status = 503 if user_store_down else 200
    return stub


@pytest.mark.parametrize("user_store_down", [False, True], ids=["users", "user store down"])
@pytest.mark.parametrize("state", list(STATES), ids=list(STATES))
def test_every_stub_answer_is_one_the_real_app_could_give(
    real_app: FastAPI, state: str, user_store_down: bool
) -> None:
    stub = _stub(STATES[state], user_store_down)
    answers = recording(stub)
    for call in every_call(stub.client()).values():
        call()
    problems = []
    for method, path, status, body in answers:
        route = real_route(real_app, method, path)
        if route is None:
            problems.append(f"{method} {path}: no such real route")
            continue
        problems += [f"{method} {path} {p}" for p in conformance(route, status, body)]
    assert not problems, "\n".join(problems)


def _mutations() -> Iterator[tuple[str, Callable[[dict[str, Any]], None]]]:
    yield "a field the real app lacks", lambda body: body.update(rank=1)
    yield "a field the real app always sends, missing", lambda body: body.pop("request_id")
    yield "a defaulted field the real app writes, missing", lambda body: body.pop("arm")
    yield "a value of another type", lambda body: body.update(cold_start="no")
    yield "a nested field the real app lacks", lambda body: body["items"][0].update(genres=["Drama"])


@pytest.mark.parametrize("mutate", [m for _, m in _mutations()], ids=[n for n, _ in _mutations()])
def test_the_check_finds_an_answer_that_drifted(
    real_app: FastAPI, mutate: Callable[[dict[str, Any]], None]
) -> None:
    """The check can fail: the same answer, drifted one way, is refused."""
    route = real_route(real_app, "POST", "/recommend")
    assert route is not None
    body = StubApi().handle("POST", "/recommend", {}, {"liked": [862], "k": 3})[1]
    assert conformance(route, 200, body) == []
    mutate(body)
    assert conformance(route, 200, body) != []


def test_the_check_finds_a_route_or_status_the_real_app_lacks(real_app: FastAPI) -> None:
    assert real_route(real_app, "GET", "/model/leaderboard") is None
    assert real_route(real_app, "PUT", "/users/u-1") is None
    route = real_route(real_app, "GET", "/model/history")
    assert route is not None
    assert conformance(route, 404, {"detail": "no history"}) != []
    assert conformance(route, 500, {"detail": "the registry fell over"}) != []
