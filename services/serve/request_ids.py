"""Retry-stable event ids: derived from the request id nginx (or the client) sends as X-Request-ID.

nginx gives every client request one `$request_id` and passes it on to each upstream attempt, so when it
retries a POST /feedback on the other replica (the first one died after storing the events but before
answering) the events get the same ids there. The copies then carry one event_id, and curation keeps one
(services/train/feedback/curate.py deduplicates by event_id). A client's own X-Request-ID is passed on unchanged,
so a client retrying with the same header is covered too. Without the header (a replica reached
directly), each event without an event_id gets a random id, as before.
"""

from __future__ import annotations

import itertools
import json
import os
import secrets
import threading
import uuid
from typing import Annotated, Any

from fastapi import Depends, Header

REQUEST_ID_PATTERN = r"^[A-Za-z0-9_.:-]{1,64}$"  # the event ids' alphabet: it is logged and stored as such
# A fixed namespace, so that every replica (and every release) derives the same id from the same request.
NAMESPACE = uuid.UUID("5b0f7c8e-3d57-4c1e-9a2f-6f3f1f8a2c11")


async def get_request_id(
    x_request_id: Annotated[
        str | None,
        Header(
            pattern=REQUEST_ID_PATTERN,
            description="The request's id (nginx sets one when the client sends none). Events without an "
            "event_id get ids derived from it and their content, so a retry of the same request with the "
            "same X-Request-ID never stores them twice.",
        ),
    ] = None,
) -> str | None:
    """The X-Request-ID header, when there is one."""
    return x_request_id


RequestIdDep = Annotated[str | None, Depends(get_request_id)]


def event_id(request_id: str | None, index: int, event: dict[str, Any]) -> str:
    """The id of the index-th event of a request: stable for the same request id and content, else random.

    The content is part of the key so that a client reusing an X-Request-ID for different events (a bug,
    but a quiet one) does not have them taken for repeats and dropped.
    """
    if request_id is None:
        return server_event_id()
    key = json.dumps([request_id, index, event], sort_keys=True, separators=(",", ":"))
    return uuid.uuid5(NAMESPACE, key).hex


class _ServerIds:
    """A random 64-bit prefix per process and a counter: unique ids without a getrandom call each.

    uuid4 reads 16 random bytes from the kernel per id, a few microseconds on the /predict hot path for
    an id that only has to be unique (nothing derives or guesses it). The prefix is drawn on first use
    and again in a forked child, so two processes never share one.
    """

    def __init__(self) -> None:
        self._prefix: str | None = None
        self._counter = itertools.count()
        self._lock = threading.Lock()

    def reset(self) -> None:
        self._prefix = None
        self._counter = itertools.count()

    def next(self) -> str:
        prefix = self._prefix
        if prefix is None:
            with self._lock:
                if self._prefix is None:
                    self._prefix = secrets.token_hex(8)
                prefix = self._prefix
        return f"{prefix}{next(self._counter):016x}"  # 32 hex characters, like uuid4().hex


_SERVER_IDS = _ServerIds()
os.register_at_fork(after_in_child=_SERVER_IDS.reset)


def server_event_id() -> str:
    """A new id for an event the server mints (a prediction log, an impression without X-Request-ID)."""
    return _SERVER_IDS.next()
