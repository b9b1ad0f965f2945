"""The embedded default user store: one SQLite file (WAL), persistent across restarts of the replica."""

from __future__ import annotations

import json
import sqlite3
import threading
import time
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from services.core.user_store import MAX_EVENTS, CachedRecs, UserState, by_user, fold

SCHEMA = """
CREATE TABLE IF NOT EXISTS users (
    user_id    TEXT PRIMARY KEY,
    seq        INTEGER NOT NULL,
    touched    REAL NOT NULL,     -- epoch seconds of the last write: the TTL counts from here
    events     TEXT NOT NULL,     -- JSON list of the most recent MAX_EVENTS compact events
    recs       TEXT,              -- JSON {model_version, items, computed_at} or NULL
    recs_seq   INTEGER            -- the seq the list was made for
);
CREATE INDEX IF NOT EXISTS users_touched ON users (touched);
"""


class LocalUserStore:
    """Users in a SQLite file: one row per user, one transaction per /feedback request."""

    def __init__(self, path: Path | str, ttl_s: int, max_events: int = MAX_EVENTS) -> None:
        self.path = Path(path)
        self.ttl_s = ttl_s
        self.max_events = max_events
        self.path.parent.mkdir(parents=True, exist_ok=True)
        # One connection shared under a lock: writes are a few hundred microseconds, and the event loop
        # and worker threads (the CLI, batch loading) all reach it.
        self._conn = sqlite3.connect(self.path, check_same_thread=False, isolation_level=None, timeout=5.0)
        self._conn.execute("PRAGMA journal_mode=WAL")
        # NORMAL: a power cut may lose the last commits; the spool holds every event (rebuild restores them).
        self._conn.execute("PRAGMA synchronous=NORMAL")
        self._conn.executescript(SCHEMA)
        self._lock = threading.Lock()
        self.purge_expired()

    def get(self, user_id: str) -> UserState | None:
        """The user's state, or None when unknown or untouched for longer than the TTL."""
        with self._lock:
            row = self._conn.execute(
                "SELECT seq, touched, events, recs, recs_seq FROM users WHERE user_id = ?", (user_id,)
            ).fetchone()
        if row is None or row[1] < time.time() - self.ttl_s:
            return None
        seq, _, events, recs, recs_seq = row
        state = fold(user_id, json.loads(events), seq)
        if recs is not None:
            state.cached_recs = CachedRecs(**json.loads(recs), seq_at=recs_seq)
        return state

    def apply(self, events: list[dict[str, Any]]) -> None:
        """Append each user's events, keep the last max_events, bump seq: one transaction."""
        grouped = by_user(events)
        if not grouped:
            return
        now = time.time()
        expired = now - self.ttl_s
        with self._lock:
            conn = self._conn
            conn.execute("BEGIN IMMEDIATE")
            try:
                for user_id, new in grouped.items():
                    row = conn.execute(
                        "SELECT seq, touched, events FROM users WHERE user_id = ?", (user_id,)
                    ).fetchone()
                    seq, held = (0, []) if row is None or row[1] < expired else (row[0], json.loads(row[2]))
                    kept = (held + new)[-self.max_events :]
                    conn.execute(
                        "INSERT INTO users (user_id, seq, touched, events) VALUES (?, ?, ?, ?) "
                        "ON CONFLICT (user_id) DO UPDATE SET seq = excluded.seq, touched = excluded.touched, "
                        "events = excluded.events",
                        (user_id, seq + len(new), now, json.dumps(kept, separators=(",", ":"))),
                    )
                conn.execute("COMMIT")
            except BaseException:
                conn.execute("ROLLBACK")
                raise

    def delete(self, user_id: str) -> bool:
        """Remove the user's row; whether there was one."""
        with self._lock:
            return self._conn.execute("DELETE FROM users WHERE user_id = ?", (user_id,)).rowcount > 0

    def put_recs(self, user_id: str, model_version: str, items: list[Any], computed_at: str) -> None:
        """Load a precomputed list for a user, made for the user's current seq."""
        self.put_recs_many(
            [{"user_id": user_id, "model_version": model_version, "items": items, "computed_at": computed_at}]
        )

    def put_recs_many(self, rows: Iterable[dict[str, Any]]) -> int:
        """Load many precomputed lists in one transaction; how many."""
        now = time.time()
        params = [
            (
                r["user_id"],
                now,
                json.dumps(
                    {
                        "model_version": r["model_version"],
                        "items": list(r["items"]),
                        "computed_at": r["computed_at"],
                    },
                    separators=(",", ":"),
                ),
            )
            for r in rows
        ]
        with self._lock:
            conn = self._conn
            conn.execute("BEGIN IMMEDIATE")
            try:
                # seq_at is the seq the row has inside this transaction: an event after it makes the list stale.
                conn.executemany(
                    "INSERT INTO users (user_id, seq, touched, events, recs, recs_seq) "
                    "VALUES (?1, 0, ?2, '[]', ?3, 0) ON CONFLICT (user_id) DO UPDATE SET "
                    "touched = excluded.touched, recs = excluded.recs, recs_seq = users.seq",
                    params,
                )
                conn.execute("COMMIT")
            except BaseException:
                conn.execute("ROLLBACK")
                raise
        return len(params)

    def user_ids(self) -> list[str]:
        """Every user held, sorted."""
        with self._lock:
            return [r[0] for r in self._conn.execute("SELECT user_id FROM users ORDER BY user_id")]

    def clear(self) -> None:
        """Remove every user."""
        with self._lock:
            self._conn.execute("DELETE FROM users")

    def purge_expired(self) -> int:
        """Delete the users untouched for longer than the TTL; how many."""
        with self._lock:
            return self._conn.execute(
                "DELETE FROM users WHERE touched < ?", (time.time() - self.ttl_s,)
            ).rowcount

    def close(self) -> None:
        """Close the connection."""
        with self._lock:
            self._conn.close()
