"""How the API's failures read as ApiError values: 422 problem lines, Retry-After, answers of another shape."""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping
from typing import Any, TypeVar

from services.ui.api.records import ApiError

log = logging.getLogger(__name__)
T = TypeVar("T")


def retry_after(value: str | None) -> int | None:
    """Retry-After in whole seconds; None when absent or given as an HTTP date."""
    if value and value.strip().isdigit():
        return int(value.strip())
    return None


def problems(detail: Any) -> tuple[str, ...]:
    """FastAPI's 422 detail list as readable lines: 'runtime: Input should be greater than 0'."""
    if isinstance(detail, str):
        return (detail,)
    if not isinstance(detail, list):
        return ()
    lines = []
    for item in detail:
        if not isinstance(item, Mapping):
            lines.append(str(item))
            continue
        loc = [str(p) for p in item.get("loc") or [] if p not in ("body", "query", "path")]
        msg = str(item.get("msg") or "invalid value")
        lines.append(f"{'.'.join(loc)}: {msg}" if loc else msg)
    return tuple(lines)


def parsed(body: Any, reader: Callable[[Any], T], path: str, what: str) -> T | ApiError:
    """An answer read into its record, or a bad_response error saying which answer was off."""
    if isinstance(body, ApiError):
        return body
    try:
        return reader(body)
    except (KeyError, TypeError, ValueError, AttributeError) as exc:
        log.warning("unexpected %s answer: %s", path, exc)
        return ApiError("bad_response", f"The API's answer ({what}) was not in the expected shape.")
