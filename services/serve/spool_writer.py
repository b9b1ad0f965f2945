"""The spool's single writer: one thread owns SQLite's write connection and commits in groups.

Requests hand it rows that are already serialised (`SimpleQueue.put`: O(1), no lock that anyone holds
for long) and, where durability is promised, wait on a future. The thread takes everything queued at
once and commits it as one transaction, so sixteen concurrent requests share one commit (and one fsync
when a durable stream is among them). Housekeeping (the watermark, deletes, prunes) is queued as small
commands that run between groups: none holds the writer for more than a chunk (~1 ms).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import queue
import sqlite3
import threading
from collections.abc import Callable
from concurrent.futures import Future, InvalidStateError
from dataclasses import dataclass
from typing import Any

log = logging.getLogger(__name__)

MAX_GROUP = 4096  # queued items per drain: bounds one transaction when the queue has piled up
# How long the writer lets fire-and-forget rows gather before it commits them. Waking the thread for
# every prediction cost ~0.3 ms of CPU per request in GIL hand-offs and context switches (measured);
# gathering for 5 ms brought the writer to ~23 us a row, 20 ms to ~12 us (at ~1,200 rows/s). It is
# also what a killed process can lose of the fire-and-forget streams. Anything waited for cuts it short.
LINGER_S = 0.02


@dataclass(frozen=True)
class Row:
    """One event as the writer stores it; event_id only for streams whose ids are deduplicated."""

    day: str
    body: str
    ts: str
    event_id: str | None


@dataclass(frozen=True)
class Append:
    """Rows of one request, and the future its caller waits on (None: fire and forget).

    An asyncio future comes with its loop: the writer settles a group's futures with one call into it.
    """

    stream: str
    rows: list[Row]
    durable: bool
    future: Future[list[bool]] | asyncio.Future[list[bool]] | None = None
    loop: asyncio.AbstractEventLoop | None = None


@dataclass(frozen=True)
class Command:
    """A housekeeping step run on the write connection between groups."""

    fn: Callable[[sqlite3.Connection], Any]
    future: Future[Any]


_STOP = object()
# Called once per group on the writer thread: per stream, [rows new, rows duplicate, rows failed].
CommitHook = Callable[[dict[str, list[int]]], None]


class SpoolWriter:
    """The thread that owns the write connection; appends and commands go through its queue."""

    def __init__(
        self, conn: sqlite3.Connection, next_seq: int, *, synchronous: str, durable_synchronous: str,
        on_commit: CommitHook,
    ) -> None:  # fmt: skip
        self.conn = conn
        self.next_seq = next_seq  # one writer, so a counter in memory is enough
        self.synchronous = synchronous
        self.durable_synchronous = durable_synchronous
        self.on_commit = on_commit
        self._queue: queue.SimpleQueue[Any] = queue.SimpleQueue()
        self._thread: threading.Thread | None = None
        self._closed = False
        self._mode = ""
        self._urgent = threading.Event()  # set when someone waits: the writer stops gathering at once
        self._lingering = False

    def start(self) -> None:
        """Start the writer thread."""
        self._thread = threading.Thread(target=self._run, name="spool-writer", daemon=True)
        self._thread.start()

    def stop(self, timeout_s: float = 10.0) -> None:
        """Commit what is queued, then stop; later submissions are refused."""
        self._closed = True
        self._queue.put(_STOP)
        self._urgent.set()
        if self._thread is not None:
            self._thread.join(timeout_s)
        while True:  # anything that slipped in after the stop marker: fail it rather than hang its caller
            try:
                item = self._queue.get_nowait()
            except queue.Empty:
                return
            if isinstance(item, Append):
                _settle([item], [sqlite3.OperationalError("the spool is closed")])
            elif isinstance(item, Command):
                _fail(item.future, sqlite3.OperationalError("the spool is closed"))

    def submit(self, item: Append) -> None:
        """Queue an append (never blocks)."""
        if self._closed:
            raise sqlite3.OperationalError("the spool is closed")
        self._queue.put(item)
        if item.future is not None and self._lingering:
            self._urgent.set()

    def call(self, fn: Callable[[sqlite3.Connection], Any]) -> Any:
        """Run fn(conn) on the writer thread between groups and return its result (blocks the caller)."""
        if self._closed:
            raise sqlite3.OperationalError("the spool is closed")
        future: Future[Any] = Future()
        self._queue.put(Command(fn, future))
        self._urgent.set()
        return future.result()

    # --- the thread ---------------------------------------------------------------------------------
    def _run(self) -> None:
        stopping = False
        while not stopping:
            items = [self._queue.get()]
            first = items[0]
            if isinstance(first, Append) and first.future is None:
                self._lingering = True
                self._urgent.wait(LINGER_S)
                self._lingering = False
                self._urgent.clear()
            while len(items) < MAX_GROUP:
                try:
                    items.append(self._queue.get_nowait())
                except queue.Empty:
                    break
            group: list[Append] = []
            for item in items:
                if isinstance(item, Append):
                    group.append(item)
                    continue
                self._commit(group)  # order is kept: a command sees every append queued before it
                group = []
                if item is _STOP:
                    stopping = True
                elif isinstance(item, Command):
                    self._command(item)
            self._commit(group)

    def _command(self, command: Command) -> None:
        try:
            result = command.fn(self.conn)
        except BaseException as exc:  # noqa: BLE001 - handed to the caller, who decides
            _fail(command.future, exc)
            return
        _resolve(command.future, result)

    def _commit(self, group: list[Append]) -> None:
        if not group:
            return
        # FULL makes this commit fsync the WAL: one fsync for the group, paid only with a durable stream.
        mode = self.durable_synchronous if any(a.durable for a in group) else self.synchronous
        conn, seq, results, rows = self.conn, self.next_seq, [], []
        try:
            if mode != self._mode:
                conn.execute(f"PRAGMA synchronous={mode}")
                self._mode = mode
            conn.execute("BEGIN IMMEDIATE")
            try:
                for append in group:
                    fresh = []
                    for row in append.rows:
                        new = row.event_id is None or _remember(conn, append.stream, row)
                        if new:
                            rows.append((seq, append.stream, row.day, row.body))
                            seq += 1
                        fresh.append(new)
                    results.append(fresh)
                conn.executemany("INSERT INTO events (seq, stream, day, body) VALUES (?, ?, ?, ?)", rows)
                conn.execute("COMMIT")
            except BaseException:
                conn.execute("ROLLBACK")
                raise
        except Exception as exc:  # noqa: BLE001 - every waiting request is told; fire-and-forget ones counted
            log.exception("committing %d spool appends failed", len(group))
            counts: dict[str, list[int]] = {}
            for append in group:
                counts.setdefault(append.stream, [0, 0, 0])[2] += len(append.rows)
            self.on_commit(counts)
            _settle(group, [exc] * len(group))
            return
        self.next_seq = seq
        counts = {}
        for append, fresh in zip(group, results, strict=True):
            c = counts.setdefault(append.stream, [0, 0, 0])
            new = sum(fresh)
            c[0] += new
            c[1] += len(fresh) - new
        self.on_commit(counts)
        _settle(group, results)


def _remember(conn: sqlite3.Connection, stream: str, row: Row) -> bool:
    """Record a deduplicated id; False when it was already there."""
    return (
        conn.execute(
            "INSERT OR IGNORE INTO ids (stream, event_id, ts) VALUES (?, ?, ?)",
            (stream, row.event_id, row.ts),
        ).rowcount
        == 1
    )


def _settle(group: list[Append], outcomes: list[Any]) -> None:
    """Hand each waiting caller its outcome: one call into each event loop for the whole group."""
    by_loop: dict[asyncio.AbstractEventLoop, list[tuple[asyncio.Future[Any], Any]]] = {}
    for append, outcome in zip(group, outcomes, strict=True):
        if append.future is None:
            continue
        if append.loop is not None:
            by_loop.setdefault(append.loop, []).append((append.future, outcome))  # type: ignore[arg-type]
        elif isinstance(outcome, BaseException):
            _fail(append.future, outcome)  # type: ignore[arg-type]
        else:
            _resolve(append.future, outcome)  # type: ignore[arg-type]
    for loop, pairs in by_loop.items():
        with contextlib.suppress(RuntimeError):  # the loop is closed: nobody is waiting any more
            loop.call_soon_threadsafe(_settle_in_loop, pairs)


def _settle_in_loop(pairs: list[tuple[asyncio.Future[Any], Any]]) -> None:
    for future, outcome in pairs:
        if future.done():  # cancelled: the client went away; its rows are stored anyway
            continue
        if isinstance(outcome, BaseException):
            future.set_exception(outcome)
        else:
            future.set_result(outcome)


def _resolve(future: Future[Any], result: Any) -> None:
    # InvalidStateError: the caller gave up (a disconnected client); the rows are stored anyway.
    with contextlib.suppress(InvalidStateError):
        future.set_result(result)


def _fail(future: Future[Any], exc: BaseException) -> None:
    with contextlib.suppress(InvalidStateError):
        future.set_exception(exc)
