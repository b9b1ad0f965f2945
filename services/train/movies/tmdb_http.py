"""The TMDB client's HTTP pieces: its errors, the secret-redacting log filter, the rate limiter, error bodies."""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from urllib.parse import quote

import httpx

REDACTED = "***"


class TMDBError(RuntimeError):
    """A TMDB request failed; the message names the path and the last status, never the key."""

    def __init__(self, message: str, *, path: str, status: int | None = None) -> None:
        super().__init__(REDACTOR.redact(message))
        self.path = path
        self.status = status


class TMDBAuthError(TMDBError):
    """TMDB rejected the credential (401); retrying cannot help."""


class TMDBNotFoundError(TMDBError):
    """TMDB has no such resource (404), e.g. a movie removed since it was listed."""


class SecretRedactor(logging.Filter):
    """Replaces registered secrets in log records before any handler formats them."""

    def __init__(self) -> None:
        super().__init__()
        self._secrets: tuple[str, ...] = ()
        self._lock = threading.Lock()

    def add(self, secret: str) -> None:
        """Register a secret (and its URL-encoded form) for redaction."""
        with self._lock:
            found = set(self._secrets) | {secret, quote(secret, safe="")}
            # Longest first, so a secret containing another is replaced whole.
            self._secrets = tuple(sorted(found, key=len, reverse=True))

    def redact(self, text: str) -> str:
        """The text with every registered secret replaced by ***."""
        for secret in self._secrets:
            text = text.replace(secret, REDACTED)
        return text

    def filter(self, record: logging.LogRecord) -> bool:
        if not self._secrets:
            return True
        try:
            message = record.getMessage()
        except (TypeError, ValueError):  # a malformed record: let logging report it as usual
            return True
        redacted = self.redact(message)
        if redacted != message:
            record.msg, record.args = redacted, None
        return True


# One filter for every client: a secret registered once stays redacted in every log line and error.
REDACTOR = SecretRedactor()


class RateLimiter:
    """Spaces calls at least 1/rate seconds apart, across threads (the lock is never held while sleeping)."""

    def __init__(
        self,
        rate: float,
        *,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        if rate <= 0:
            raise ValueError(f"requests_per_second must be > 0, got {rate}")
        self.interval = 1.0 / rate
        self._clock = clock
        self._sleep = sleep
        self._next: float | None = None
        self._lock = threading.Lock()

    def acquire(self) -> float:
        """Wait for this call's slot; returns the seconds waited."""
        with self._lock:
            now = self._clock()
            slot = now if self._next is None else max(now, self._next)
            self._next = slot + self.interval
        wait = slot - now
        if wait > 0:
            self._sleep(wait)
        return wait


def retry_after_seconds(value: str | None) -> float | None:
    """Seconds from a Retry-After header (delta-seconds or HTTP date), or None."""
    if not value:
        return None
    value = value.strip()
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        when = parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return max(0.0, (when - datetime.now(UTC)).total_seconds())


def tmdb_message(response: httpx.Response) -> str:
    """TMDB's status_message from an error body, or the start of the body."""
    try:
        body = response.json()
    except ValueError:
        return response.text[:200].strip()
    if isinstance(body, dict) and body.get("status_message"):
        return str(body["status_message"])
    return str(body)[:200]
