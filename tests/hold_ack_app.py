"""The API with its POST /feedback answer held back: a window between the spool commit and the response.

Test-only (tests/stack/test_nginx.py): `uvicorn tests.hold_ack_app:create_app --factory`. The app runs unchanged;
an outer ASGI wrapper, once the route has stored the events and begun its 202, writes HOLD_ACK_MARKER
and waits HOLD_ACK_S seconds before passing the answer on. A test SIGKILLs the replica in that window,
which is what a crash between commit and response looks like to nginx.
"""

from __future__ import annotations

import asyncio
import os
from pathlib import Path

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from services.serve.app import create_app as create_api


class HoldAck:
    """Delay the start of every /feedback 202 by `seconds`, after noting it in `marker`."""

    def __init__(self, app: ASGIApp, marker: Path, seconds: float) -> None:
        self.app, self.marker, self.seconds = app, marker, seconds

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["path"] != "/feedback":
            await self.app(scope, receive, send)
            return

        async def held(message: Message) -> None:
            if message["type"] == "http.response.start" and message["status"] == 202:
                self.marker.write_text(str(os.getpid()))
                await asyncio.sleep(self.seconds)
            await send(message)

        await self.app(scope, receive, held)


def create_app() -> ASGIApp:
    """The real app (settings from the environment), wrapped."""
    return HoldAck(create_api(), Path(os.environ["HOLD_ACK_MARKER"]), float(os.environ["HOLD_ACK_S"]))
