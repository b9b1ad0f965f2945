"""wait_until: it returns the predicate's first truthy value, and names what it waited for when it gives up."""

from __future__ import annotations

import pytest

from tests.waiting import wait_until


def test_wait_until_returns_the_first_truthy_value() -> None:
    answers = iter([None, 0, [], "ready"])
    assert wait_until(lambda: next(answers), timeout_s=60, what="an answer", poll_s=0) == "ready"


def test_wait_until_names_what_never_came() -> None:
    with pytest.raises(AssertionError, match="still waiting after 0 s for the replica's log line"):
        wait_until(lambda: False, timeout_s=0, what="the replica's log line")
