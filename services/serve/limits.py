"""Request body caps per route: enforced by a pure ASGI middleware and stated in the OpenAPI document.

nginx (deploy/nginx/nginx.conf) refuses the same sizes per location before a replica reads a byte; the
app checks again so that a replica reached directly (or through another proxy) is protected as well.
tests/stack/test_nginx.py holds the two in step.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

from fastapi import FastAPI
from starlette.exceptions import HTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send

KIB = 1024
MIB = 1024 * KIB

# Bytes of request body per POST route. Each cap lets the largest realistic request of its route through
# (tests/serve/test_limits.py sends them) and refuses anything far beyond:
# - /predict: one movie whose overview is at its 20,000-character limit, even in a 3-byte UTF-8 script.
# - /predict/batch: 1,000 movies whose text is at the batch's MAX_BATCH_TEXT_CHARS, in a 3-byte script.
# - /recommend: 200 liked ids and the longest user id, in any script (under 4 KB).
# - /feedback: 500 events with UUID ids, a /recommend request id and a position (~75 KB).
BODY_LIMITS: dict[str, int] = {
    "/predict": 128 * KIB,
    "/predict/batch": 2 * MIB,
    "/recommend": 16 * KIB,
    "/feedback": 128 * KIB,
}
DEFAULT_BODY_LIMIT = 16 * KIB  # every other route: none of them takes a body


def body_limit(path: str) -> int:
    """The body cap of a request path, in bytes."""
    return BODY_LIMITS.get(path, DEFAULT_BODY_LIMIT)


def human(size: int) -> str:
    """128 KiB, 2 MiB: a cap as nginx.conf and the OpenAPI description say it."""
    return f"{size // MIB} MiB" if size % MIB == 0 else f"{size // KIB} KiB"


def too_large_detail(method: str, path: str, limit: int) -> str:
    """The 413's message: which limit, how large, for which route."""
    return f"request body over the {limit}-byte ({human(limit)}) limit of {method} {path}"


class BodyLimitMiddleware:
    """413 for a body over its route's cap: from Content-Length at once, else by counting streamed bytes."""

    def __init__(self, app: ASGIApp, limits: Callable[[str], int] = body_limit) -> None:
        self.app = app
        self.limits = limits

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        limit = self.limits(scope["path"])
        declared = _content_length(scope)
        if declared is not None and declared > limit:
            # Nothing of the body is read: the connection is closed after the answer (uvicorn drains
            # or drops what the client still sends).
            await _send_413(send, too_large_detail(scope["method"], scope["path"], limit))
            return
        received = 0
        started = False

        async def counted_receive() -> Message:
            nonlocal received
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > limit:
                    # FastAPI re-raises an HTTPException met while reading the body: it becomes the 413.
                    raise HTTPException(413, detail=too_large_detail(scope["method"], scope["path"], limit))
            return message

        async def tracked_send(message: Message) -> None:
            nonlocal started
            if message["type"] == "http.response.start":
                started = True
            await send(message)

        try:
            await self.app(scope, counted_receive, tracked_send)
        except HTTPException as exc:
            # A route that reads its body itself (outside FastAPI's handling) lets it through to here.
            if exc.status_code != 413 or started:
                raise
            await _send_413(send, exc.detail)


def _content_length(scope: Scope) -> int | None:
    for name, value in scope.get("headers", ()):
        if name == b"content-length":
            try:
                return int(value)
            except ValueError:
                return None  # uvicorn refuses a malformed Content-Length before the app sees it
    return None


async def _send_413(send: Send, detail: str) -> None:
    body = json.dumps({"detail": detail}).encode()
    await send(
        {
            "type": "http.response.start",
            "status": 413,
            "headers": [
                (b"content-type", b"application/json"),
                (b"content-length", str(len(body)).encode()),
                (b"connection", b"close"),
            ],
        }
    )
    await send({"type": "http.response.body", "body": body})


def install(app: FastAPI) -> None:
    """Add the body-cap middleware and state every POST route's cap in the OpenAPI document."""
    app.add_middleware(BodyLimitMiddleware)
    generate = app.openapi

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            _document(generate())
        return app.openapi_schema  # type: ignore[return-value]  # set by generate()

    app.openapi = openapi  # type: ignore[method-assign]  # FastAPI's documented way to customise it


def _document(spec: dict[str, Any]) -> None:
    # Every operation that takes a body: an x-body-limit extension, a line in its description, a 413.
    for path, item in spec.get("paths", {}).items():
        for operation in item.values():
            if not isinstance(operation, dict) or "requestBody" not in operation:
                continue
            limit = body_limit(path)
            operation["x-body-limit"] = limit
            line = f"Body: at most {limit} bytes ({human(limit)}); a larger one is refused with 413."
            operation["description"] = (operation.get("description", "") + "\n\n" + line).strip()
            operation.setdefault("responses", {})["413"] = {
                "description": f"The body is over {human(limit)}; nothing was read or stored",
                "content": {"application/json": {"schema": {"$ref": "#/components/schemas/ErrorOut"}}},
            }
