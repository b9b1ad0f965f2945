"""The event path both hosts agree on: the streams, their S3 layout, and a reader of day partitions.

Serving writes (a local spool, then a flusher uploads batches); training reads them back by stream
and day. The stream is data, not code: feedback, impressions and prediction logs share this one path.

Layout under the bucket::

    events/<stream>/dt=YYYY-MM-DD/<replica-id>-<epoch>-<first-seq>.jsonl.gz   one uploaded batch
    reports/<what>/dt=YYYY-MM-DD/<name>                                 what a DAG task concluded

A batch's name is its replica, its spool's epoch (a random id made with the spool's database) and
the spool sequence number of its first row. A flusher that crashed between upload and acknowledgement
uploads the same rows (and maybe more) under the same name again, so S3 never holds a row twice;
replicas never share a name, and a new spool (deleted, restored, cloned) never reuses one.
Batches written before epochs existed are named <replica-id>-<first-seq>.jsonl.gz; readers take both.
"""

from __future__ import annotations

import gzip
import json
import re
from datetime import UTC, datetime
from typing import Any, Literal

from services.core.storage import ObjectStore

EVENTS_PREFIX = "events"
REPORTS_PREFIX = "reports"

Stream = Literal["feedback", "impressions", "predictions"]
STREAMS: tuple[str, ...] = ("feedback", "impressions", "predictions")

FeedbackKind = Literal["like", "dislike", "watched", "rating"]
FEEDBACK_KINDS: tuple[str, ...] = ("like", "dislike", "watched", "rating")
# What counts as positive feedback, owned here (is_positive_feedback): these kinds whatever their value,
# and a rating from 3.5 stars up (docs/recommender.md says why). Vectorised readers use the constants.
# How an event's user was proven, stored with every feedback and impression event as `auth` (with the
# key's id as `client_id`): "user" when the caller held that user's own token, "client" when a client
# key with the act-as-user scope named them. None: no user, or an event from before users were verified;
# experiments count only authenticated events (services/train/experiments).
AUTH_USER = "user"
AUTH_CLIENT = "client"
AUTH_KINDS: tuple[str, ...] = (AUTH_USER, AUTH_CLIENT)

POSITIVE_KINDS: tuple[str, ...] = ("like", "watched")
POSITIVE_MIN_RATING = 3.5
# Feedback answers an impression when it names its request and comes within this many minutes.
ANSWER_WINDOW_MIN = 30

_DAY = re.compile(r"^\d{4}-\d{2}-\d{2}$")


def utc_now() -> str:
    """The current UTC time as the events store it: ISO 8601 with milliseconds and a Z."""
    return datetime.now(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def day_of(ts: str) -> str:
    """The UTC day (YYYY-MM-DD) of an event timestamp: the partition it belongs to."""
    return ts[:10]


def parse_ts(ts: str) -> datetime:
    """An event timestamp as an aware datetime."""
    return datetime.fromisoformat(ts.replace("Z", "+00:00"))


def stream_prefix(stream: str, day: str | None = None) -> str:
    """The S3 prefix of a stream, or of one day of it."""
    _check_stream(stream)
    base = f"{EVENTS_PREFIX}/{stream}/"
    return base if day is None else f"{base}dt={day}/"


def batch_key(stream: str, day: str, replica_id: str, first_seq: int, epoch: str | None = None) -> str:
    """The object key of one uploaded batch: <replica>-<epoch>-<first seq>, or <replica>-<first seq>.

    The epoch is the spool's (made with its database), so a new spool never reuses an earlier name.
    Readers list a day's prefix and take every .jsonl.gz in it: they need not parse the name.
    """
    if not _DAY.match(day):
        raise ValueError(f"not a day: {day!r}")
    middle = f"{epoch}-" if epoch else ""
    return f"{stream_prefix(stream, day)}{replica_id}-{middle}{first_seq:012d}.jsonl.gz"


WATERMARKS_PREFIX = f"{EVENTS_PREFIX}/_watermarks/"


def watermark_key(replica_id: str) -> str:
    """Where a replica's flusher records how far S3 has its events (every one before complete_before)."""
    return f"{WATERMARKS_PREFIX}{replica_id}.json"


def read_watermarks(store: ObjectStore) -> list[dict[str, Any]]:
    """Every replica's flush watermark, by replica id."""
    return [store.get_json(o.key) for o in store.list(WATERMARKS_PREFIX) if o.key.endswith(".json")]


def report_key(what: str, day: str, name: str) -> str:
    """The object key of a report a DAG task writes for a day, e.g. reports/online/dt=…/recommender.json."""
    return f"{REPORTS_PREFIX}/{what}/dt={day}/{name}"


def encode_lines(records: list[dict[str, Any]]) -> bytes:
    """Records as one gzipped JSON-lines object, as the flusher uploads them."""
    return encode_jsonl("\n".join(json.dumps(r, ensure_ascii=False, sort_keys=True) for r in records))


def encode_jsonl(text: str) -> bytes:
    """JSON lines that are already text (newline-separated), gzipped as one object."""
    # Level 1: several times faster than gzip's default 9 for a little more size; the flusher shares
    # the request path's CPU, so its time matters more than the bytes.
    return gzip.compress((text + "\n").encode(), compresslevel=1, mtime=0)


def decode_lines(data: bytes) -> list[dict[str, Any]]:
    """Gzipped JSON lines back to records."""
    return [json.loads(line) for line in gzip.decompress(data).decode().splitlines() if line.strip()]


def days(store: ObjectStore, stream: str) -> list[str]:
    """The days that have a partition of a stream, oldest first."""
    return [
        d[3:] for d in store.list_dirs(stream_prefix(stream)) if d.startswith("dt=") and _DAY.match(d[3:])
    ]


def read_day(store: ObjectStore, stream: str, day: str) -> list[dict[str, Any]]:
    """Every record of one day of a stream, batch by batch in key order (duplicates across replicas kept)."""
    out: list[dict[str, Any]] = []
    for obj in store.list(stream_prefix(stream, day)):
        if obj.key.endswith(".jsonl.gz"):
            out.extend(decode_lines(store.get_bytes(obj.key)))
    return out


def is_positive(event: dict[str, Any]) -> bool:
    """Whether a feedback event says the person wants movies like this one."""
    return is_positive_feedback(event.get("kind"), event.get("value"))


def is_positive_feedback(kind: str | None, value: float | None) -> bool:
    """The rule behind is_positive, on a kind and value (the user store's fold has no dicts)."""
    if kind in POSITIVE_KINDS:
        return True
    return kind == "rating" and value is not None and float(value) >= POSITIVE_MIN_RATING


def _check_stream(stream: str) -> None:
    if stream not in STREAMS:
        raise ValueError(f"unknown event stream {stream!r}; expected one of {STREAMS}")
