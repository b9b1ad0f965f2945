"""The write-ahead spool: events on local disk before they are acknowledged, until S3 has them.

SQLite in WAL mode. With synchronous=NORMAL a committed row is in the WAL file before the request is
answered, so it survives a SIGKILL of the process (not a power cut: SPOOL_SYNCHRONOUS=FULL adds an
fsync per commit for that). Rows are marked flushed only after their upload is confirmed, and kept
for a while afterwards so a client that retries an accepted event is told it is a duplicate.
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
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from services.core.events import day_of

SCHEMA = """
CREATE TABLE IF NOT EXISTS events (
    seq      INTEGER PRIMARY KEY AUTOINCREMENT,  -- never reused, so batch names stay unique
    stream   TEXT NOT NULL,
    event_id TEXT NOT NULL,
    ts       TEXT NOT NULL,
    body     TEXT,                               -- the record as JSON; NULL once flushed
    flushed  INTEGER NOT NULL DEFAULT 0,
    UNIQUE (stream, event_id)
);
CREATE INDEX IF NOT EXISTS pending ON events (seq) WHERE flushed = 0;
"""
_REPLICA_ID = re.compile(r"^[A-Za-z0-9._-]{1,64}$")


class SpoolLocked(RuntimeError):
    """Another process already owns this spool folder."""


@dataclass(frozen=True)
class PendingBatch:
    """Unflushed rows of one stream and day, in spool order."""

    stream: str
    day: str
    seqs: tuple[int, ...]
    records: tuple[dict[str, Any], ...]

    @property
    def first_seq(self) -> int:
        """The sequence number that names the batch's object."""
        return self.seqs[0]


class Spool:
    """One replica's spool folder: the SQLite file, its lock, and the replica id kept beside them."""

    def __init__(
        self, directory: Path, *, replica_id: str | None = None, synchronous: str = "NORMAL"
    ) -> None:
        self.directory = Path(directory)
        self._replica_id = replica_id
        self.synchronous = synchronous
        self._conn: sqlite3.Connection | None = None
        self._lock_fd: int | None = None
        self._write_lock = threading.Lock()  # the request path and the flusher share one connection
        self.pending = 0

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
        # check_same_thread=False: the flusher thread uses it too, always under _write_lock.
        conn = sqlite3.connect(self.directory / "events.db", check_same_thread=False, isolation_level=None)
        conn.execute("PRAGMA journal_mode=WAL")
        conn.execute(f"PRAGMA synchronous={'FULL' if self.synchronous.upper() == 'FULL' else 'NORMAL'}")
        conn.execute("PRAGMA busy_timeout=5000")
        conn.executescript(SCHEMA)
        self._conn = conn
        self.pending = conn.execute("SELECT count(*) FROM events WHERE flushed = 0").fetchone()[0]

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
            if self._conn is not None:
                self._conn.close()
                self._conn = None
        if self._lock_fd is not None:
            os.close(self._lock_fd)
            self._lock_fd = None

    @property
    def conn(self) -> sqlite3.Connection:
        """The open connection."""
        if self._conn is None:
            raise RuntimeError("spool not opened")
        return self._conn

    def append(self, stream: str, records: Iterable[dict[str, Any]]) -> list[bool]:
        """Store records (each with event_id and ts) in one transaction; True for each one that was new."""
        rows = [
            (stream, r["event_id"], r["ts"], json.dumps(r, ensure_ascii=False, sort_keys=True))
            for r in records
        ]
        fresh: list[bool] = []
        with self._write_lock:
            conn = self.conn
            conn.execute("BEGIN IMMEDIATE")
            try:
                for row in rows:
                    cur = conn.execute(
                        "INSERT OR IGNORE INTO events (stream, event_id, ts, body) VALUES (?, ?, ?, ?)", row
                    )
                    fresh.append(cur.rowcount == 1)
                conn.execute("COMMIT")
            except BaseException:
                conn.execute("ROLLBACK")
                raise
            self.pending += sum(fresh)
        return fresh

    def take(self, limit: int) -> list[PendingBatch]:
        """The oldest unflushed rows (at most limit), grouped by stream and day, oldest group first."""
        with self._write_lock:
            rows = self.conn.execute(
                "SELECT seq, stream, ts, body FROM events WHERE flushed = 0 ORDER BY seq LIMIT ?", (limit,)
            ).fetchall()
        groups: dict[tuple[str, str], tuple[list[int], list[dict[str, Any]]]] = {}
        for seq, stream, ts, body in rows:
            seqs, records = groups.setdefault((stream, day_of(ts)), ([], []))
            seqs.append(seq)
            records.append(json.loads(body))
        return [PendingBatch(s, d, tuple(q), tuple(r)) for (s, d), (q, r) in groups.items()]

    def mark_flushed(self, seqs: Iterable[int]) -> None:
        """Forget the bodies of rows S3 has confirmed (their ids stay, for duplicate detection)."""
        params = [(seq,) for seq in seqs]
        with self._write_lock:
            conn = self.conn
            conn.execute("BEGIN IMMEDIATE")
            try:
                cur = conn.executemany(
                    "UPDATE events SET flushed = 1, body = NULL WHERE seq = ? AND flushed = 0", params
                )
                conn.execute("COMMIT")
            except BaseException:
                conn.execute("ROLLBACK")
                raise
            self.pending -= max(cur.rowcount, 0)

    def prune(self, before_ts: str) -> int:
        """Drop flushed rows older than a timestamp: past it, a retried event id is no longer recognised."""
        with self._write_lock:
            cur = self.conn.execute("DELETE FROM events WHERE flushed = 1 AND ts < ?", (before_ts,))
        return max(cur.rowcount, 0)

    def oldest_pending_ts(self) -> str | None:
        """The timestamp of the oldest unflushed row, or None when everything is in S3."""
        with self._write_lock:
            row = self.conn.execute("SELECT min(ts) FROM events WHERE flushed = 0").fetchone()
        return row[0] if row else None
