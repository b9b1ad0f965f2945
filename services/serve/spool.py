"""The write-ahead spool: events on local disk before they are acknowledged, until S3 has them.

SQLite in WAL mode, written by one thread (spool_writer.py) that commits whatever requests have queued
as one transaction. What is promised, per stream:

- feedback: the request waits for its group's commit, made with synchronous=FULL (the WAL is fsynced),
  so a 202 survives a power cut. Its ids are kept in `ids` for SPOOL_DEDUP_DAYS: a retry is recognised.
- predictions, impressions: queued without waiting, committed by the writer within milliseconds under
  SPOOL_SYNCHRONOUS (NORMAL: in the WAL, so a committed row survives a killed process, not a power cut).
  Rows still in the queue when the process is killed are lost: at most the last ~20 ms of them
  (spool_writer.LINGER_S).

Rows wait in `events` in sequence order. A flush fsyncs the window, uploads it, then moves one watermark
(`flushed_upto`) past it and deletes the window's rows a chunk at a time through the writer. Batch names
carry the spool's epoch, a random id made when events.db is created: a deleted, restored or cloned spool
starts a new epoch, so its sequence numbers never name an object that is already in S3.
"""

from __future__ import annotations

import asyncio
import json
import os
import sqlite3
import threading
from concurrent.futures import Future
from pathlib import Path
from typing import Any

import msgspec

from services.core.events import day_of
from services.serve.spool_batches import PendingBatch, pending_batches
from services.serve.spool_folder import load_replica_id, lock_folder
from services.serve.spool_schema import prepare
from services.serve.spool_writer import Append, CommitHook, Row, SpoolWriter

DELETE_CHUNK = 500  # rows per housekeeping transaction: ~1 ms of the writer each
DEDUP_STREAMS = frozenset({"feedback"})  # client ids, retried by clients; the server mints the others
DURABLE_STREAMS = frozenset({"feedback"})  # committed with durable_synchronous (FULL: fsynced)
# Records become JSON lines on the request's thread: msgspec writes a logged prediction (~3.6 KB, ~80
# features) in ~5 us where json.dumps took ~40 us, a quarter of what logging every /predict cost.
# Sorted keys, UTF-8 as is, NaN as null: the same lines the readers parsed before.
_ENCODE = msgspec.json.Encoder(order="sorted").encode


class Spool:
    """One replica's spool folder: the SQLite file, its lock, its writer, and the replica id beside them."""

    def __init__(
        self, directory: Path, *, replica_id: str | None = None, synchronous: str = "NORMAL",
        durable_synchronous: str = "FULL",
    ) -> None:  # fmt: skip
        self.directory = Path(directory)
        self._replica_id = replica_id
        self.synchronous = _level(synchronous)
        self.durable_synchronous = _level(durable_synchronous)
        self._reader: sqlite3.Connection | None = None  # the flusher's: reads and checkpoints only
        self._writer: SpoolWriter | None = None
        self._lock_fd: int | None = None
        self.epoch = ""
        self.pending = 0  # committed rows S3 does not have yet (changed by the writer thread only)
        self.flushed_upto = 0  # every row up to this sequence number is in S3
        self._queued = 0  # rows handed to the writer and not yet committed
        self._count_lock = threading.Lock()  # guards _queued only: held for an addition
        self.on_commit: CommitHook | None = None  # metrics hook, called on the writer thread

    @property
    def replica_id(self) -> str:
        """This replica's id (in every batch name, so replicas never overwrite each other)."""
        if self._replica_id is None:
            raise RuntimeError("spool not opened")
        return self._replica_id

    @property
    def waiting(self) -> int:
        """Rows taken and not yet in S3: committed plus still queued (what the capacity limit counts)."""
        return self.pending + self._queued

    def open(self) -> None:
        """Create or reopen the spool and start its writer; SpoolLocked when another live process holds it."""
        self.directory.mkdir(parents=True, exist_ok=True)
        self._lock_fd = lock_folder(self.directory)
        self._replica_id = load_replica_id(self.directory, self._replica_id)
        conn = self._connect()
        self.epoch = prepare(conn, DEDUP_STREAMS)
        self._reader = self._connect()
        self.flushed_upto = self.reader.execute(
            "SELECT value FROM meta WHERE key = 'flushed_upto'"
        ).fetchone()[0]
        self.pending = self.reader.execute(
            "SELECT count(*) FROM events WHERE seq > ?", (self.flushed_upto,)
        ).fetchone()[0]
        newest = self.reader.execute("SELECT max(seq) FROM events").fetchone()[0] or 0
        self._writer = SpoolWriter(
            conn, max(newest, self.flushed_upto) + 1, synchronous=self.synchronous,
            durable_synchronous=self.durable_synchronous, on_commit=self._committed,
        )  # fmt: skip
        self._writer.start()
        self.delete_flushed()  # a crash between the watermark and the deletes left some behind

    def _connect(self) -> sqlite3.Connection:
        # check_same_thread=False: opened in the lifespan's thread, used by the writer or the flusher.
        conn = sqlite3.connect(self.directory / "events.db", check_same_thread=False, isolation_level=None)
        conn.execute("PRAGMA busy_timeout=5000")
        return conn

    def close(self) -> None:
        """Commit what is queued, close the database and release the folder."""
        if self._writer is not None:
            self._writer.stop()
            self._writer.conn.close()
            self._writer = None
        if self._reader is not None:
            self._reader.close()
            self._reader = None
        if self._lock_fd is not None:
            os.close(self._lock_fd)
            self._lock_fd = None

    @property
    def reader(self) -> sqlite3.Connection:
        """The flusher's connection (WAL readers never block the writer)."""
        if self._reader is None:
            raise RuntimeError("spool not opened")
        return self._reader

    @property
    def writer(self) -> SpoolWriter:
        """The writer thread's handle."""
        if self._writer is None:
            raise RuntimeError("spool not opened")
        return self._writer

    # --- the request path ---------------------------------------------------------------------------
    def submit(
        self, stream: str, records: list[dict[str, Any]], *, wait: bool,
        loop: asyncio.AbstractEventLoop | None = None,
    ) -> Future[list[bool]] | asyncio.Future[list[bool]] | None:  # fmt: skip
        """Queue records (each with event_id and ts); with wait, a future of a fresh flag per record.

        With a loop, the future is that loop's (await it there); else a concurrent one. Serialised
        here, on the caller's thread, outside any lock; the queue's put is O(1).
        """
        dedup = stream in DEDUP_STREAMS
        rows = [
            Row(day_of(r["ts"]), _ENCODE(r).decode(), r["ts"],
                r["event_id"] if dedup else None)
            for r in records
        ]  # fmt: skip
        future: Future[list[bool]] | asyncio.Future[list[bool]] | None = None
        if wait:
            future = loop.create_future() if loop is not None else Future()
        with self._count_lock:
            self._queued += len(rows)
        try:
            self.writer.submit(
                Append(stream, rows, stream in DURABLE_STREAMS, future, loop if wait else None)
            )
        except BaseException:
            with self._count_lock:
                self._queued -= len(rows)
            raise
        return future

    def _committed(self, counts: dict[str, list[int]]) -> None:
        with self._count_lock:
            self._queued -= sum(sum(c) for c in counts.values())
        self.pending += sum(c[0] for c in counts.values())
        if self.on_commit is not None:
            self.on_commit(counts)

    # --- the flusher --------------------------------------------------------------------------------
    def commit_queued(self) -> None:
        """Return once every append queued before this call is committed (a command waits its turn)."""
        self.writer.call(lambda conn: None)

    def take(self, limit: int) -> list[PendingBatch]:
        """The oldest rows S3 does not have yet (at most limit), grouped by stream and day, oldest first."""
        return pending_batches(self.reader, self.flushed_upto, limit)

    def sync_to_disk(self) -> None:
        """fsync the database and its WAL: every committed row survives a power cut from here on."""
        # Before a window is uploaded: under NORMAL a power cut could otherwise take back rows whose
        # sequence numbers would then be given again, to other rows, under a name S3 already holds.
        for name in ("events.db", "events.db-wal"):
            try:
                fd = os.open(self.directory / name, os.O_RDONLY)
            except FileNotFoundError:
                continue
            try:
                os.fsync(fd)
            finally:
                os.close(fd)

    def oldest_pending_ts(self) -> str | None:
        """The timestamp of the oldest event S3 does not have yet, or None when nothing is pending."""
        row = self.reader.execute(
            "SELECT body FROM events WHERE seq > ? ORDER BY seq LIMIT 1", (self.flushed_upto,)
        ).fetchone()
        return json.loads(row[0])["ts"] if row else None

    def mark_flushed(self, batches: list[PendingBatch]) -> None:
        """Move the watermark past a window S3 has confirmed in full (one row, through the writer)."""
        if not batches:
            return
        last, size = batches[0].last_seq, sum(b.size for b in batches)

        def mark(conn: sqlite3.Connection) -> None:
            conn.execute("UPDATE meta SET value = ? WHERE key = 'flushed_upto'", (last,))
            self.flushed_upto = last
            self.pending -= size

        self.writer.call(mark)

    def delete_flushed(self) -> int:
        """Delete rows below the watermark, a chunk per writer command so appends slip in between."""
        deleted = 0
        while True:
            n = self.writer.call(
                lambda conn: (
                    conn.execute(
                        "DELETE FROM events WHERE seq IN "
                        "(SELECT seq FROM events WHERE seq <= ? ORDER BY seq LIMIT ?)",
                        (self.flushed_upto, DELETE_CHUNK),
                    ).rowcount
                )
            )
            deleted += max(n, 0)
            if n < DELETE_CHUNK:
                return deleted

    def checkpoint(self) -> None:
        """Copy the WAL into the database (and fsync), so the WAL file starts over instead of growing."""
        # The bulk on the flusher's connection, while appends go on. Under steady load a commit always
        # lands during it, so it never catches up and the WAL only restarts once nothing is left to copy
        # (measured: 1.4 GB after 2 min at 1,500 logged predictions/s). The few pages committed meanwhile
        # are copied through the writer, between two groups: the next commit then starts the WAL over.
        self.reader.execute("PRAGMA wal_checkpoint(PASSIVE)")
        self.writer.call(lambda conn: conn.execute("PRAGMA wal_checkpoint(PASSIVE)").fetchone())

    def prune(self, before_ts: str) -> int:
        """Forget deduplicated ids older than a timestamp; costs O(ids forgotten), a chunk at a time."""

        def chunk(conn: sqlite3.Connection) -> tuple[int, bool]:
            rows = conn.execute("SELECT id, ts FROM ids ORDER BY id LIMIT ?", (DELETE_CHUNK,)).fetchall()
            last = None
            for id_, ts in rows:  # ids are in arrival order: the old ones are a prefix
                if ts >= before_ts:
                    break
                last = id_
            if last is None:
                return 0, True
            n = conn.execute("DELETE FROM ids WHERE id <= ?", (last,)).rowcount
            return n, last != rows[-1][0] or len(rows) < DELETE_CHUNK

        removed = 0
        while True:
            n, done = self.writer.call(chunk)
            removed += n
            if done:
                return removed


def _level(synchronous: str) -> str:
    return "FULL" if synchronous.upper() in ("FULL", "EXTRA") else "NORMAL"
