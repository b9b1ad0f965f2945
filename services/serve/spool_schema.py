"""The spool database's layout: pragmas, tables, the epoch, and bringing an older spool forward."""

from __future__ import annotations

import secrets
import sqlite3
from collections.abc import Collection

SCHEMA = """
CREATE TABLE IF NOT EXISTS events (
    seq      INTEGER PRIMARY KEY,  -- given by the writer, always above the watermark
    stream   TEXT NOT NULL,
    day      TEXT NOT NULL,        -- the UTC day of the event: its S3 partition
    body     TEXT NOT NULL         -- the record as the JSON line it is uploaded as
);
-- Accepted ids of deduplicated streams, in arrival order (id): a prune deletes a prefix, O(rows pruned).
CREATE TABLE IF NOT EXISTS ids (
    id       INTEGER PRIMARY KEY,
    stream   TEXT NOT NULL,
    event_id TEXT NOT NULL,
    ts       TEXT NOT NULL
);
CREATE UNIQUE INDEX IF NOT EXISTS ids_event ON ids (stream, event_id);
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value INTEGER NOT NULL);
INSERT OR IGNORE INTO meta VALUES ('flushed_upto', 0);
CREATE TABLE IF NOT EXISTS identity (key TEXT PRIMARY KEY, value TEXT NOT NULL);
"""
# A logged prediction is ~0.7-1 KB of JSON: 1 KB pages gave each row its own page plus an overflow page.
# Group commits share pages, so 4 KB pages write fewer bytes per row (measured: writer CPU -13 %).
PAGE_SIZE = 4096
WAL_LIMIT_BYTES = 16 << 20  # a checkpointed WAL is truncated back to this: the spool's disk stays bounded


def prepare(conn: sqlite3.Connection, dedup_streams: Collection[str]) -> str:
    """Set up the write connection's database (made if missing); returns the spool's epoch."""
    conn.execute(f"PRAGMA page_size={PAGE_SIZE}")  # takes effect only on a new file, before WAL
    conn.execute("PRAGMA journal_mode=WAL")
    # No checkpoint inside a commit (it would fsync the database under a waiting request): the flusher
    # runs them (Spool.checkpoint).
    conn.execute("PRAGMA wal_autocheckpoint=0")
    conn.execute(f"PRAGMA journal_size_limit={WAL_LIMIT_BYTES}")
    conn.executescript(SCHEMA)
    _migrate(conn, dedup_streams)
    # Made once, when the database is made: a new events.db is a new epoch, so new batch names.
    conn.execute("INSERT OR IGNORE INTO identity VALUES ('epoch', ?)", (secrets.token_hex(4),))
    return conn.execute("SELECT value FROM identity WHERE key = 'epoch'").fetchone()[0]


def _migrate(conn: sqlite3.Connection, dedup_streams: Collection[str]) -> None:
    """Bring a spool made by an earlier version forward (its `seen` table kept every stream's ids)."""
    if conn.execute("SELECT 1 FROM sqlite_master WHERE name = 'seen'").fetchone():
        streams = tuple(dedup_streams)
        conn.execute("BEGIN IMMEDIATE")
        conn.execute(
            "INSERT OR IGNORE INTO ids (stream, event_id, ts) SELECT stream, event_id, ts FROM seen "
            f"WHERE stream IN ({','.join('?' * len(streams))}) ORDER BY ts",
            streams,
        )
        conn.execute("DROP TABLE seen")
        conn.execute("COMMIT")
