"""Waiting for something the test can observe, with a deadline that only guards against a hang."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import TypeVar

T = TypeVar("T")


def wait_until(predicate: Callable[[], T], timeout_s: float, what: str, poll_s: float = 0.05) -> T:
    """Poll `predicate` until it returns something truthy and return that; fail naming `what` at the deadline.

    The deadline is a hang guard, not a speed claim: set it well above what a loaded machine needs.
    """
    deadline = time.monotonic() + timeout_s
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() >= deadline:
            raise AssertionError(f"still waiting after {timeout_s:g} s for {what}")
        time.sleep(poll_s)
