"""Retry-stable event ids: derived from the request id nginx (or the client) sends as X-Request-ID.

nginx gives every client request one `$request_id` and passes it on to each upstream attempt, so when it
retries a POST /feedback on the other replica (the first one died after storing the events but before
answering) the events get the same ids there. The copies then carry one event_id, and curation keeps one
(services/train/feedback.py deduplicates by event_id). A client's own X-Request-ID is passed on unchanged,
so a client retrying with the same header is covered too. Without the header (a replica reached
directly), each event without an event_id gets a random id, as before.
"""

from __future__ import annotations

import json
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
        return uuid.uuid4().hex
    key = json.dumps([request_id, index, event], sort_keys=True, separators=(",", ":"))
    return uuid.uuid5(NAMESPACE, key).hex
