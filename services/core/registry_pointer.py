"""The production pointer and the one way to change it: a conditional write, retried on conflict.

``production.json`` is read with its ETag and written back with ``If-Match`` (``If-None-Match: *`` when
it does not exist yet). A writer that read an older pointer gets 412, re-reads, and re-applies its
decision to what is there now, or refuses when the decision no longer holds (PointerMoved). So two
writers never overwrite each other unseen. AWS S3, MinIO and SeaweedFS 4.48 (probed in
tests/core/test_registry_race.py) all honour these headers on PutObject; no lock object is needed.

Every write bumps ``revision`` and appends to ``changes``, an audit trail: besides telling an operator
who moved production and why, it makes every write's bytes differ, so an ETag (an MD5 of the body on
these stores) can never come back to a value a slow writer is still holding.
"""

from __future__ import annotations

import json
import logging
import random
import time
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Final, TypeVar

from pydantic import BaseModel, Field

from services.core.storage import ObjectNotFound, ObjectStore, WriteConflict

log = logging.getLogger(__name__)

HISTORY_LIMIT = 50
CHANGES_LIMIT = 200
WRITE_ATTEMPTS = 10
Doc = TypeVar("Doc", bound=BaseModel)


class RegistryError(RuntimeError):
    """A registry operation that cannot be done (unknown version, nothing to roll back to)."""


class PointerMoved(RegistryError):
    """Production is no longer the version a decision was made against: the decision is not applied."""


class PointerConflict(RegistryError):
    """Other writers kept winning: the pointer could not be written within the bounded retries."""


class PointerChange(BaseModel):
    """One applied change of the production pointer."""

    revision: int
    at: str
    action: str  # "promote" or "rollback"
    from_version: str | None
    to_version: str
    reason: str = ""


class Pointer(BaseModel):
    """The production pointer of one model name, with the versions it pointed to before."""

    model: str
    version: str
    updated_at: str
    reason: str = ""
    history: list[str] = Field(default_factory=list)  # previous production versions, newest last
    revision: int = 0  # how many times production.json was written (0: written before revisions)
    changes: list[PointerChange] = Field(default_factory=list)  # applied changes, newest last


class Unchecked:
    """Marks a promote that was not decided against any particular production version."""

    def __repr__(self) -> str:
        return "UNCHECKED"


UNCHECKED: Final = Unchecked()


def now_iso() -> str:
    """UTC now, to the second."""
    return datetime.now(UTC).isoformat(timespec="seconds")


def read_pointer(store: ObjectStore, key: str) -> tuple[Pointer | None, str | None]:
    """The pointer and the ETag it was read with; (None, None) when nothing was promoted yet."""
    return read_document(store, key, Pointer)


def read_document(store: ObjectStore, key: str, kind: type[Doc]) -> tuple[Doc | None, str | None]:
    """A registry document and the ETag it was read with; (None, None) when it was never written."""
    try:
        data, etag = store.get_bytes_with_etag(key)
    except ObjectNotFound:
        return None, None
    return kind.model_validate(json.loads(data)), etag


def successor(current: Pointer | None, model: str, to_version: str, action: str, reason: str,
              history: list[str]) -> Pointer:  # fmt: skip
    """The pointer after one change of `current`: revision bumped, the change appended to the trail."""
    revision = (current.revision if current else 0) + 1
    at = now_iso()
    change = PointerChange(
        revision=revision, at=at, action=action, reason=reason,
        from_version=current.version if current else None, to_version=to_version,
    )  # fmt: skip
    changes = [*(current.changes if current else []), change][-CHANGES_LIMIT:]
    return Pointer(
        model=model, version=to_version, updated_at=at, reason=reason,
        history=history[-HISTORY_LIMIT:], revision=revision, changes=changes,
    )  # fmt: skip


def update_pointer(
    store: ObjectStore, key: str, decide: Callable[[Pointer | None], Pointer | None],
    attempts: int = WRITE_ATTEMPTS,
) -> Pointer:  # fmt: skip
    """Read, decide, write if unchanged since the read; on conflict re-read and decide again.

    `decide` gets the pointer as it is now and returns the pointer to write, None when there is nothing
    to write (already so), or raises (PointerMoved) when its decision no longer holds.
    """
    return update_document(store, key, Pointer, decide, attempts)


def update_document(
    store: ObjectStore, key: str, kind: type[Doc], decide: Callable[[Doc | None], Doc | None],
    attempts: int = WRITE_ATTEMPTS,
) -> Doc:  # fmt: skip
    """`update_pointer` for any pydantic document of the registry (the pointer, the candidate)."""
    for attempt in range(1, attempts + 1):
        current, etag = read_document(store, key, kind)
        new = decide(current)
        if new is None:
            assert current is not None  # decide returns None only for an existing document
            return current
        body = json.dumps(new.model_dump(), indent=2, sort_keys=True).encode()
        try:
            store.put_bytes_conditional(key, body, if_match=etag, content_type="application/json")
            return new
        except WriteConflict:
            # Another writer moved the pointer between our read and write: back off (with jitter, so
            # the losers do not collide again in step) and decide again on what is there now.
            log.info("%s changed while being written (attempt %d of %d): re-reading", key, attempt, attempts)
            time.sleep(min(1.0, 0.02 * 2**attempt) * random.uniform(0.5, 1.5))
    raise PointerConflict(f"{key}: still changing under us after {attempts} attempts; nothing written")
