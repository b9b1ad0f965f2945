"""The write-ahead spool: events on local disk before they are acknowledged, until S3 has them.

SQLite in WAL mode. With synchronous=NORMAL a committed row is in the WAL file before the request is
answered, so it survives a SIGKILL of the process (not a power cut: SPOOL_SYNCHRONOUS=FULL adds an
fsync per commit for that).

Rows wait in `events` in sequence order. A flush uploads a window of them, then moves one watermark
(`flushed_upto`) past the window and only then deletes the window's rows, a few hundred per
transaction: the flusher never holds SQLite's single writer lock for more than a millisecond or two,
so the request path's commits never queue behind it. Event ids stay in `seen` for SPOOL_DEDUP_DAYS, so
a client that retries an accepted event is told it is a duplicate.
"""

from __future__ import annotations

import fcntl
import json
import os
import re
import secrets
import socket
import sqlite3
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from services.core.events import day_of

SCHEMA = """
CREATE TABLE IF NOT EXISTS events (
    seq      INTEGER PRIMARY KEY,  -- given by the spool, always above the watermark: batch names stay unique
    stream   TEXT NOT NULL,
    day      TEXT NOT NULL,        -- the UTC day of the event: its S3 partition
    body     TEXT NOT NULL         -- the record as the JSON line it is uploaded as
);
CREATE TABLE IF NOT EXISTS seen (
    stream   TEXT NOT NULL,
    event_id TEXT NOT NULL,
    ts       TEXT NOT NULL,
    PRIMARY KEY (stream, event_id)
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value INTEGER NOT NULL);
INSERT OR IGNORE INTO meta VALUES ('flushed_upto', 0);
"""
# Each commit writes every page it touched to the WAL: small pages and no secondary index keep that to
# a few KB per commit (4 KB pages, an index on seen.ts and AUTOINCREMENT's own table made it ~20 KB).
PAGE_SIZE = 1024
DELETE_CHUNK = 500  # rows per housekeeping transaction: ~1 ms of writer lock each
_REPLICA_ID = re.compile(r"^[A-Za-z0-9._-]{1,64}$")


class SpoolLocked(RuntimeError):
    """Another process already owns this spool folder."""


@dataclass(frozen=True)
class PendingBatch:
    """Unflushed rows of one stream and day, in spool order, as the JSON-lines text to upload."""

    stream: str
    day: str
    first_seq: int  # names the batch's object
    last_seq: int  # the end of the window it was taken from: every pending row of its group up to here
    size: int  # how many events
    text: str  # their JSON lines, newline-separated


class Spool:
    """One replica's spool folder: the SQLite file, its lock, and the replica id kept beside them."""

    def __init__(
        self, directory: Path, *, replica_id: str | None = None, synchronous: str = "NORMAL"
    ) -> None:
        self.directory = Path(directory)
        self._replica_id = replica_id
        self.synchronous = synchronous
        self._conn: sqlite3.Connection | None = None  # the request path's: appends only
        self._flusher_conn: sqlite3.Connection | None = None  # the flusher's: reads, marks, checkpoints
        self._lock_fd: int | None = None
        # Every write transaction takes this lock, so the two connections never meet SQLite's busy
        # handler (it sleeps in steps of milliseconds, which would show in the request path's p99).
        self._write_lock = threading.Lock()
        self.pending = 0
        self.flushed_upto = 0  # every row up to this sequence number is in S3
        self._next_seq = 1  # one process per folder (the lock), so a counter in memory is enough

    @property
    def replica_id(self) -> str:
        """This replica's id (in every batch name, so replicas never overwrite each other)."""
        if self._replica_id is None:
            raise RuntimeError("spool not opened")
        return self._replica_id

    def open(self) -> None:
        """Create or reopen the spool; SpoolLocked when another live process holds it."""
        self.directory.mkdir(parents=True, exist_ok=True)
        fd = os.open(self.directory / "lock", os.O_RDWR | os.O_CREAT, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError as exc:
            os.close(fd)
            raise SpoolLocked(
                f"the event spool {self.directory} is in use by another process: give each API replica "
                "(and each uvicorn worker) its own SPOOL_DIR"
            ) from exc
        self._lock_fd = fd
        self._replica_id = self._load_replica_id(self._replica_id)
        self._conn = self._connect()
        # Checkpoints copy the WAL into the database and fsync: never on the request path, where an
        # automatic one would stall a commit for the length of an fsync. The flusher runs them.
        self._conn.execute("PRAGMA wal_autocheckpoint=0")
        self._flusher_conn = self._connect()
        self.flushed_upto = self._flusher_conn.execute(
            "SELECT value FROM meta WHERE key = 'flushed_upto'"
        ).fetchone()[0]
        self.pending = self._flusher_conn.execute(
            "SELECT count(*) FROM events WHERE seq > ?", (self.flushed_upto,)
        ).fetchone()[0]
        newest = self._flusher_conn.execute("SELECT max(seq) FROM events").fetchone()[0] or 0
        self._next_seq = max(newest, self.flushed_upto) + 1
        self.delete_flushed()  # a crash between the watermark and the deletes left some behind

    def _connect(self) -> sqlite3.Connection:
        # check_same_thread=False: opened in the lifespan's thread, used from the loop or the flusher.
        conn = sqlite3.connect(self.directory / "events.db", check_same_thread=False, isolation_level=None)
        conn.execute(f"PRAGMA page_size={PAGE_SIZE}")  # takes effect only on a new file, before WAL
        conn.execute("PRAGMA journal_mode=WAL")
        conn.execute(f"PRAGMA synchronous={'FULL' if self.synchronous.upper() == 'FULL' else 'NORMAL'}")
        conn.execute("PRAGMA busy_timeout=5000")
        conn.executescript(SCHEMA)
        return conn

    def _load_replica_id(self, configured: str | None) -> str:
        # Kept in the folder so a restarted replica names its batches as before; set REPLICA_ID to choose.
        path = self.directory / "replica_id"
        if configured:
            if not _REPLICA_ID.match(configured):
                raise ValueError(f"REPLICA_ID {configured!r}: use 1-64 letters, digits, '.', '_' or '-'")
            path.write_text(configured + "\n")
            return configured
        if path.exists():
            return path.read_text().strip()
        host = re.sub(r"[^A-Za-z0-9.-]", "-", socket.gethostname())[:40] or "replica"
        generated = f"{host}-{secrets.token_hex(3)}"
        path.write_text(generated + "\n")
        return generated

    def close(self) -> None:
        """Close the database and release the folder."""
        with self._write_lock:
            for conn in (self._conn, self._flusher_conn):
                if conn is not None:
                    conn.close()
            self._conn = self._flusher_conn = None
        if self._lock_fd is not None:
            os.close(self._lock_fd)
            self._lock_fd = None

    @property
    def conn(self) -> sqlite3.Connection:
        """The request path's connection."""
        if self._conn is None:
            raise RuntimeError("spool not opened")
        return self._conn

    @property
    def flusher_conn(self) -> sqlite3.Connection:
        """The flusher's connection."""
        if self._flusher_conn is None:
            raise RuntimeError("spool not opened")
        return self._flusher_conn

    def append(self, stream: str, records: list[dict[str, Any]]) -> list[bool]:
        """Store records (each with event_id and ts) in one transaction; True for each one that was new.

        A commit writes the pages it touched to the WAL (about 4 KB for one event): the events of one
        request share them.
        """
        fresh: list[bool] = []
        with self._write_lock:
            conn = self.conn
            seq = self._next_seq
            conn.execute("BEGIN IMMEDIATE")
            try:
                for r in records:
                    cur = conn.execute(
                        "INSERT OR IGNORE INTO seen (stream, event_id, ts) VALUES (?, ?, ?)",
                        (stream, r["event_id"], r["ts"]),
                    )
                    new = cur.rowcount == 1
                    if new:
                        body = json.dumps(r, ensure_ascii=False, sort_keys=True)
                        conn.execute(
                            "INSERT INTO events (seq, stream, day, body) VALUES (?, ?, ?, ?)",
                            (seq, stream, day_of(r["ts"]), body),
                        )
                        seq += 1
                    fresh.append(new)
                conn.execute("COMMIT")
            except BaseException:
                conn.execute("ROLLBACK")
                raise
            self._next_seq = seq
            self.pending += sum(fresh)
        return fresh

    def take(self, limit: int) -> list[PendingBatch]:
        """The oldest rows S3 does not have yet (at most limit), grouped by stream and day, oldest first."""
        # SQLite joins each group's JSON lines into one string. The module lets go of the GIL while SQLite
        # works, so the event loop keeps answering; a row-by-row fetch would hold it for ~20 ms a batch.
        conn, mark = self.flusher_conn, self.flushed_upto
        last = conn.execute(
            "SELECT max(seq) FROM (SELECT seq FROM events WHERE seq > ? ORDER BY seq LIMIT ?)", (mark, limit)
        ).fetchone()[0]
        if last is None:
            return []
        groups = conn.execute(
            "SELECT stream, day, min(seq), count(*) FROM events WHERE seq > ? AND seq <= ? "
            "GROUP BY stream, day ORDER BY min(seq)",
            (mark, last),
        ).fetchall()
        out = []
        for stream, day, first, size in groups:
            (text,) = conn.execute(
                "SELECT group_concat(body, char(10)) FROM (SELECT body FROM events "
                "WHERE seq BETWEEN ? AND ? AND stream = ? AND day = ? ORDER BY seq)",
                (first, last, stream, day),
            ).fetchone()
            out.append(PendingBatch(stream, day, first, last, size, text))
        return out

    def oldest_pending_ts(self) -> str | None:
        """The timestamp of the oldest event S3 does not have yet, or None when nothing is pending."""
        row = self.flusher_conn.execute(
            "SELECT body FROM events WHERE seq > ? ORDER BY seq LIMIT 1", (self.flushed_upto,)
        ).fetchone()
        return json.loads(row[0])["ts"] if row else None

    def mark_flushed(self, batches: list[PendingBatch]) -> None:
        """Move the watermark past a window S3 has confirmed in full (one row: a few microseconds)."""
        if not batches:
            return
        last = batches[0].last_seq
        with self._write_lock:
            self.flusher_conn.execute("UPDATE meta SET value = ? WHERE key = 'flushed_upto'", (last,))
            self.flushed_upto = last
            self.pending -= sum(b.size for b in batches)

    def delete_flushed(self) -> int:
        """Delete rows below the watermark, a chunk per transaction so appends slip in between."""
        deleted = 0
        while True:
            with self._write_lock:
                cur = self.flusher_conn.execute(
                    "DELETE FROM events WHERE seq IN (SELECT seq FROM events WHERE seq <= ? ORDER BY seq LIMIT ?)",
                    (self.flushed_upto, DELETE_CHUNK),
                )
            deleted += max(cur.rowcount, 0)
            if cur.rowcount < DELETE_CHUNK:
                return deleted
            time.sleep(0)  # hand the GIL to the event loop between chunks

    def checkpoint(self) -> None:
        """Copy the WAL into the database (and fsync) off the request path; writers are not blocked."""
        self.flusher_conn.execute("PRAGMA wal_checkpoint(PASSIVE)")

    def prune(self, before_ts: str) -> int:
        """Forget event ids older than a timestamp: past it, a retried event is no longer recognised."""
        removed = 0
        while True:
            with self._write_lock:
                cur = self.flusher_conn.execute(
                    # A scan every 10 minutes: cheaper than an index on ts written with every event.
                    "DELETE FROM seen WHERE (stream, event_id) IN "
                    "(SELECT stream, event_id FROM seen WHERE ts < ? LIMIT ?)",
                    (before_ts, DELETE_CHUNK),
                )
            removed += max(cur.rowcount, 0)
            if cur.rowcount < DELETE_CHUNK:
                return removed
            time.sleep(0)
