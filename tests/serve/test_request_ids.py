"""Event ids the server mints: unique, uuid-shaped, and never shared with a forked child."""

from __future__ import annotations

import os
import re
import threading

from services.serve.request_ids import event_id, server_event_id


def test_server_ids_are_unique_across_threads_and_shaped_like_uuid_hex() -> None:
    ids: list[str] = []

    def mint() -> None:
        ids.extend(server_event_id() for _ in range(20_000))

    threads = [threading.Thread(target=mint) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(set(ids)) == len(ids) == 80_000
    assert all(re.fullmatch(r"[0-9a-f]{32}", i) for i in ids[:100])


def test_a_forked_child_draws_its_own_prefix() -> None:
    parent = server_event_id()
    read, write = os.pipe()
    pid = os.fork()
    if pid == 0:  # the child: report its first id and leave without running pytest's teardown
        os.write(write, server_event_id().encode())
        os._exit(0)
    os.close(write)
    child = os.read(read, 64).decode()
    os.waitpid(pid, 0)
    assert len(child) == 32 and child[:16] != parent[:16]


def test_events_without_a_request_id_get_fresh_ids_and_with_one_stable_ids() -> None:
    event = {"kind": "like", "movie_id": 1}
    assert event_id(None, 0, event) != event_id(None, 0, event)
    assert event_id("req-1", 0, event) == event_id("req-1", 0, event) != event_id("req-1", 1, event)
