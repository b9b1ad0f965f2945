"""A day of an event stream as one Arrow table: the columnar reader both hosts' readers share.

`events.read_day` gives Python dicts, fine for tests and small days; at 10^6+ events a day that costs
gigabytes and minutes. Here every batch under `events/<stream>/dt=D/` (any object name; only the
prefix and the format suffix matter, so writers may name batches as they like) is parsed by Arrow's
JSON reader against a fixed schema, in a few threads, into one table.

A batch with a row Arrow cannot type is parsed again in Python, row by row: rows that fit join the
table, the rest come back as `off_schema` to quarantine. Parquet batches are read too.
"""

from __future__ import annotations

import gzip
import io
import json
import logging
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.json as pa_json
import pyarrow.parquet as pq

from services.core import events
from services.core.storage import ObjectStore

log = logging.getLogger(__name__)

# How the event's user was proven (events.AUTH_KINDS) and by which client key; null before issue 32.
AUTH_FIELDS = [("auth", pa.string()), ("client_id", pa.string())]
FEEDBACK_SCHEMA = pa.schema(
    [
        ("event_id", pa.string()),
        ("ts", pa.string()),
        ("replica", pa.string()),
        ("user_id", pa.string()),
        ("tmdb_id", pa.int64()),
        ("kind", pa.string()),
        ("value", pa.float64()),
        ("request_id", pa.string()),
        ("position", pa.int64()),
        *AUTH_FIELDS,
    ]
)
IMPRESSION_SCHEMA = pa.schema(
    [
        ("event_id", pa.string()),
        ("request_id", pa.string()),
        ("ts", pa.string()),
        ("replica", pa.string()),
        ("user_id", pa.string()),
        ("model_version", pa.string()),
        ("strategy", pa.string()),
        ("fallback", pa.bool_()),
        ("pool", pa.string()),
        ("items", pa.list_(pa.int32())),  # tmdb ids fit; half the memory of int64 at 10^7 shown movies
        ("catalog_size", pa.int64()),
        ("arm", pa.string()),  # "production" or "candidate" (null: served before experiments existed)
        ("experiment_id", pa.string()),  # the running experiment when the response was served
        # Null on older rows: what was ranked from, whether it was a precomputed list, stored positives.
        ("source", pa.string()),
        ("cached", pa.bool_()),
        ("history", pa.int32()),
        *AUTH_FIELDS,
    ]
)
SCHEMAS: dict[str, pa.Schema] = {"feedback": FEEDBACK_SCHEMA, "impressions": IMPRESSION_SCHEMA}
FORMATS = (".jsonl.gz", ".parquet")
READ_THREADS = 4  # S3 GETs wait on the network and Arrow's parser releases the GIL
NO_TIME = np.iinfo(np.int64).max  # sorts after every real time
_ISO_PATTERN = r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d{1,6})?(Z|[+-]\d{2}:\d{2})$"
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


@dataclass
class DayTable:
    """One day of a stream: the rows that fit the schema, in key then line order, and those that did not."""

    table: pa.Table
    off_schema: list[Any] = field(default_factory=list)
    objects: int = 0

    @property
    def rows(self) -> int:
        """Every row read, those off the schema included."""
        return self.table.num_rows + len(self.off_schema)


def _fits(pa_type: pa.DataType) -> Callable[[Any], bool]:
    """Whether a Python value can go in a column of this type (None always can)."""
    if pa.types.is_string(pa_type):
        return lambda v: v is None or isinstance(v, str)
    if pa.types.is_integer(pa_type):
        bound = 2 ** (pa_type.bit_width - 1)
        return lambda v: v is None or (isinstance(v, int) and not isinstance(v, bool) and -bound <= v < bound)
    if pa.types.is_floating(pa_type):
        return lambda v: v is None or (isinstance(v, int | float) and not isinstance(v, bool))
    if pa.types.is_boolean(pa_type):
        return lambda v: v is None or isinstance(v, bool)
    if pa.types.is_list(pa_type):
        item = _fits(pa_type.value_type)
        return lambda v: v is None or (isinstance(v, list) and all(x is not None and item(x) for x in v))
    raise TypeError(f"no Python check for {pa_type}")


def misfit(record: Any, schema: pa.Schema) -> str | None:
    """Why a record does not fit the schema (the first field with a wrong type), or None when it does."""
    if not isinstance(record, dict):
        return "record: not an object"
    for f in schema:
        if not _fits(f.type)(record.get(f.name)):
            return f"{f.name}: not {f.type}"
    return None


def from_records(records: list[Any], schema: pa.Schema) -> tuple[pa.Table, list[Any]]:
    """Records (dicts) as a table of the schema, and the records that do not fit it."""
    checks = [(f.name, _fits(f.type)) for f in schema]
    fit, off = [], []
    for r in records:
        ok = isinstance(r, dict) and all(check(r.get(name)) for name, check in checks)
        (fit if ok else off).append(r)
    return pa.Table.from_pylist(fit, schema=schema), off


def _parse_jsonl(data: bytes, schema: pa.Schema) -> tuple[pa.Table, list[Any]]:
    raw = gzip.decompress(data)
    if not raw.strip():
        return schema.empty_table(), []
    options = pa_json.ParseOptions(explicit_schema=schema, unexpected_field_behavior="ignore")
    try:
        return pa_json.read_json(io.BytesIO(raw), parse_options=options).select(schema.names), []
    except pa.ArrowInvalid as exc:
        log.info("a batch has rows off the event schema (%s): reading it row by row", str(exc)[:120])
    records: list[Any] = []
    for line in raw.decode(errors="replace").splitlines():
        if line.strip():
            try:
                records.append(json.loads(line))
            except ValueError:
                records.append(line)  # kept as text, so a quarantine shows what arrived
    return from_records(records, schema)


def _parse_parquet(data: bytes, schema: pa.Schema) -> pa.Table:
    table = pq.read_table(io.BytesIO(data))
    columns = [
        table[f.name].cast(f.type) if f.name in table.column_names else pa.nulls(table.num_rows, f.type)
        for f in schema
    ]
    return pa.Table.from_arrays(columns, schema=schema)


Transform = Callable[[pa.Table], pa.Table]


def _read_object(
    store: ObjectStore, key: str, schema: pa.Schema, transform: Transform | None
) -> tuple[pa.Table, list[Any]]:
    data = store.get_bytes(key)
    table, off = (
        (_parse_parquet(data, schema), []) if key.endswith(".parquet") else _parse_jsonl(data, schema)
    )
    return (transform(table) if transform else table), off


def batch_keys(store: ObjectStore, stream: str, day: str) -> list[str]:
    """The keys of a day's batches of a stream, in key order: any name, a batch format's suffix."""
    return [o.key for o in store.list(events.stream_prefix(stream, day)) if o.key.endswith(FORMATS)]


def read_day_table(
    store: ObjectStore,
    stream: str,
    day: str,
    schema: pa.Schema | None = None,
    transform: Transform | None = None,
) -> DayTable:
    """Every batch of one day of a stream as one table (duplicates kept), in object key order.

    `schema` narrows the columns parsed (fields absent from a record are null); `transform` runs on
    each batch as it is parsed, so a wide column (a timestamp string, say) can be reduced before the
    day's batches are held together.
    """
    schema = schema or SCHEMAS[stream]
    keys = batch_keys(store, stream, day)
    if not keys:
        empty = schema.empty_table()
        return DayTable(transform(empty) if transform else empty)
    with ThreadPoolExecutor(max_workers=min(READ_THREADS, len(keys))) as pool:
        parts = list(pool.map(lambda k: _read_object(store, k, schema, transform), keys))
    # No combine_chunks: it would copy the whole day once more; compute kernels take chunked columns.
    table = pa.concat_tables([t for t, _ in parts])
    off = [r for _, rows in parts for r in rows]
    del parts
    release_memory()
    return DayTable(table, off, len(keys))


def release_memory() -> None:
    """Hand Arrow's freed buffers back to the OS (its allocator keeps them for reuse otherwise)."""
    pa.default_memory_pool().release_unused()


def timestamps_us(ts: pa.ChunkedArray | pa.Array) -> np.ndarray:
    """Event timestamps as UTC microseconds since the epoch; NO_TIME where one is not a zoned ISO time."""
    chunks = ts.chunks if isinstance(ts, pa.ChunkedArray) else [ts]
    parts = [_chunk_times(c) for c in chunks if len(c)]
    return np.concatenate(parts) if parts else np.zeros(0, dtype=np.int64)


def _chunk_times(ts: pa.Array) -> np.ndarray:
    out = np.full(len(ts), NO_TIME, dtype=np.int64)
    shaped = pc.fill_null(pc.match_substring_regex(ts, _ISO_PATTERN), False).to_numpy(zero_copy_only=False)
    try:
        # The serving host's own form (and any offset): Arrow parses these in C.
        parsed = pc.cast(ts.filter(pa.array(shaped)), pa.timestamp("us", tz="UTC"))
        out[shaped] = parsed.cast(pa.int64()).to_numpy(zero_copy_only=False)
        rest = np.flatnonzero(~shaped)
    except pa.ArrowInvalid:
        rest = np.arange(len(ts))  # a well-shaped but impossible date: judge every row in Python
    if len(rest):
        # Other ISO 8601 spellings Python accepts; a naive time has no UTC day and stays NO_TIME.
        values = ts.take(pa.array(rest)).to_pylist()
        for i, v in zip(rest, values, strict=True):
            when = _python_time(v)
            if when is not None:
                out[i] = when
    return out


def _python_time(value: Any) -> int | None:
    if not isinstance(value, str):
        return None
    try:
        when = events.parse_ts(value)
    except ValueError:
        return None
    if when.tzinfo is None:
        return None
    delta = when.astimezone(UTC) - _EPOCH
    return (delta.days * 86_400 + delta.seconds) * 1_000_000 + delta.microseconds


def first_per_key(keys: pa.Array | pa.ChunkedArray, times_us: np.ndarray) -> np.ndarray:
    """Row indices to keep: per non-empty key the earliest time (then the earliest row); keyless rows too."""
    keys = keys if isinstance(keys, pa.ChunkedArray) else pa.chunked_array([keys], keys.type)
    if len(keys) == 0:
        return np.zeros(0, dtype=np.int64)
    # Encoding a chunked column gives one dictionary shared by every chunk: no copy of the whole column.
    encoded = pc.dictionary_encode(keys)
    chunks = [c for c in encoded.chunks if len(c)]
    codes = np.concatenate(
        [pc.fill_null(c.indices, -1).to_numpy(zero_copy_only=False).astype(np.int64) for c in chunks]
    )
    empty = np.flatnonzero(pc.equal(chunks[0].dictionary, "").to_numpy(zero_copy_only=False))
    del encoded, chunks
    if len(empty):
        codes[np.isin(codes, empty)] = -1
    keyed = np.flatnonzero(codes >= 0)
    order = keyed[np.lexsort((keyed, times_us[keyed], codes[keyed]))]
    sorted_codes = codes[order]
    firsts = order[np.r_[True, sorted_codes[1:] != sorted_codes[:-1]]] if len(order) else order
    return np.sort(np.concatenate([firsts, np.flatnonzero(codes < 0)]))


def encode_table_jsonl(table: pa.Table, slice_rows: int = 100_000) -> bytes:
    """A table as one gzipped JSON-lines object, keys in name order (as `raw_store.write_jsonl` sorts them)."""
    ordered = table.select(sorted(table.column_names))
    # Level 1 for the same reason as events.encode_jsonl; mtime 0 (gzip.compress's) so reruns write
    # identical bytes. Slices keep pandas' copy of the strings and the JSON text small at 10^6+ rows.
    out = io.BytesIO()
    with gzip.GzipFile(fileobj=out, mode="wb", compresslevel=1, mtime=0) as gz:
        for start in range(0, ordered.num_rows, slice_rows):
            # pandas' JSON writer is C: about 3 s per million rows here, against ~15 s for json.dumps.
            # integer_object_nulls: an int column with nulls stays ints (pandas would make 5 into 5.0).
            frame = ordered.slice(start, slice_rows).to_pandas(integer_object_nulls=True)
            gz.write(frame.to_json(orient="records", lines=True, force_ascii=False).encode())
    return out.getvalue()


def count_lines(data: bytes) -> int:
    """How many JSON lines a gzipped JSON-lines object holds (no parsing)."""
    raw = gzip.decompress(data)
    return raw.count(b"\n") + (1 if raw and not raw.endswith(b"\n") else 0)


def read_jsonl_table(data: bytes, schema: pa.Schema) -> pa.Table:
    """A gzipped JSON-lines object this project wrote (all rows fit the schema) as a table."""
    table, off = _parse_jsonl(data, schema)
    if off:
        raise ValueError(f"{len(off)} rows do not fit {schema.names}")
    return table
