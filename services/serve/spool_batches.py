"""What a flush uploads: the spool's unflushed rows grouped by stream and day into batches."""

from __future__ import annotations

import sqlite3
from dataclasses import dataclass


@dataclass(frozen=True)
class PendingBatch:
    """Unflushed rows of one stream and day, in spool order, as the JSON-lines text to upload."""

    stream: str
    day: str
    first_seq: int  # names the batch's object
    last_seq: int  # the end of the window it was taken from: every pending row of its group up to here
    size: int  # how many events
    text: str  # their JSON lines, newline-separated


def pending_batches(conn: sqlite3.Connection, mark: int, limit: int) -> list[PendingBatch]:
    """The oldest rows after the watermark mark (at most limit), grouped by stream and day, oldest first."""
    # SQLite joins each group's JSON lines into one string, and the module lets go of the GIL while
    # SQLite works, so the event loop keeps answering; a row-by-row fetch would hold it for ~20 ms.
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
