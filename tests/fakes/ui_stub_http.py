"""The stand-in API's edge (tests/fakes/ui_stub_api.py): FastAPI-style 422s for bodies, and its two transports.

The 422 details have the real app's shape (``{"loc", "msg", "type"}``, services/serve/app.py); the
transports hand each request to ``StubApi.handle``: in process (``httpx.MockTransport``) or over HTTP.
"""

from __future__ import annotations

import json
import logging
import re
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler
from typing import Any
from urllib.parse import parse_qsl, urlsplit

import httpx

log = logging.getLogger(__name__)

FEEDBACK_KINDS = ("like", "dislike", "watched", "rating")
# StubApi.handle: (method, path, query, JSON body) -> (status, JSON body) or (status, JSON body, headers).
Handle = Callable[[str, str, dict[str, str], Any], tuple[Any, ...]]


def mock_transport(handle: Handle) -> httpx.MockTransport:
    """In-process transport for httpx: every request goes to handle."""

    def respond(request: httpx.Request) -> httpx.Response:
        body = json.loads(request.content) if request.content else None
        status, payload, *headers = handle(request.method, request.url.path, dict(request.url.params), body)
        if status == 204:  # no content, as the real API's DELETE
            return httpx.Response(status, headers=headers[0] if headers else None)
        return httpx.Response(status, json=payload, headers=headers[0] if headers else None)

    return httpx.MockTransport(respond)


def validate_movie(body: Any) -> list[dict[str, Any]]:
    """FastAPI-style 422 details for a /predict body's required fields."""
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


def validate_events(events: Any) -> list[dict[str, Any]]:
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


def handler_for(handle: Handle) -> type[BaseHTTPRequestHandler]:
    """An http.server handler class that answers GET, POST and DELETE through handle."""

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
                status, payload, *extra = handle(method, url.path, dict(parse_qsl(url.query)), body)
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
