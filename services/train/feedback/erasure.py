"""A user's right to erasure on the training host: erased users' events leave the curated data.

`DELETE /users/{id}` removes the online state and writes a marker `users/erasures/<user_id>.json`.
Every feedback curation drops the events of each marked user up to the marker's time (the end of
the second of its S3 LastModified), so a re-curated day never brings them back, while a user who comes
back under the same id after the erasure starts again from nothing. The window's days are filtered as
they are curated;
`sweep_curated` rewrites the older curated days that still hold a newly erased user, and records what
it applied, so a run with no new marker reads no old day.
"""

from __future__ import annotations

import logging
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from services.core import event_table
from services.core.storage import ObjectNotFound, ObjectStore
from services.core.user_store import ERASURES_PREFIX
from services.train import raw_store
from services.train.feedback import curated

log = logging.getLogger(__name__)

# Outside the markers' prefix, so listing the markers never sees it.
APPLIED_KEY = "users/erasure-applied.json"
Erased = dict[str, int]  # user_id -> erased up to this time (UTC microseconds since the epoch)


def erased_users(store: ObjectStore) -> Erased:
    """Every erased user and the time its marker was written (one LIST, no GET per marker)."""
    out: Erased = {}
    for obj in store.list(ERASURES_PREFIX):
        if not obj.key.endswith(".json"):
            continue
        user_id = obj.key[len(ERASURES_PREFIX) : -len(".json")]
        # S3 gives LastModified in whole seconds and the marker is written after the DELETE: the end of
        # that second is the cutoff, so an event in the same second as the DELETE does not survive it.
        out[user_id] = (int(obj.modified.timestamp()) + 1) * 1_000_000 - 1
    return out


def erased_mask(user_ids: pa.ChunkedArray | pa.Array, ts_us: np.ndarray, erased: Erased) -> np.ndarray:
    """Per row, whether it belongs to an erased user and happened no later than the erasure."""
    if not erased or len(user_ids) == 0:
        return np.zeros(len(user_ids), dtype=bool)
    names = list(erased)
    where = pc.index_in(user_ids, value_set=pa.array(names, pa.string()))
    idx = pc.fill_null(where, -1).to_numpy(zero_copy_only=False).astype(np.int64)
    cutoff = np.array([erased[n] for n in names], dtype=np.int64)
    hit = idx >= 0
    # An event with no readable time is dropped too: it cannot be shown to follow the erasure.
    hit[hit] = (ts_us[hit] <= cutoff[idx[hit]]) | (ts_us[hit] == event_table.NO_TIME)
    return hit


def drop_erased(table: pa.Table, erased: Erased, ts_us: np.ndarray | None = None) -> tuple[pa.Table, int]:
    """The table without erased users' events, and how many rows went; times parsed from `ts` unless given."""
    if not erased or table.num_rows == 0:
        return table, 0
    times = event_table.timestamps_us(table["ts"]) if ts_us is None else ts_us
    mask = erased_mask(table["user_id"], times, erased)
    dropped = int(mask.sum())
    return (table.filter(pa.array(~mask)) if dropped else table), dropped


def drop_erased_records(records: list[dict[str, Any]], erased: Erased) -> list[dict[str, Any]]:
    """Quarantined rows ({"reason", "record"}) without those of erased users, whatever their time."""
    if not erased:
        return records
    return [
        q for q in records if not (isinstance(q.get("record"), dict) and q["record"].get("user_id") in erased)
    ]


def _applied(store: ObjectStore) -> Erased:
    try:
        return {str(k): int(v) for k, v in store.get_json(APPLIED_KEY).items()}
    except ObjectNotFound:
        return {}


def sweep_curated(store: ObjectStore, erased: Erased, skip_days: tuple[str, ...] = ()) -> dict[str, Any]:
    """Rewrite every curated feedback day (but `skip_days`, just curated) that holds an erased user's events.

    Only markers not yet applied (new users, or a later erasure of the same user) make it read the days.
    """
    applied = _applied(store)
    pending = {u: t for u, t in erased.items() if applied.get(u) != t}
    if not pending:
        return {"new_markers": 0, "days_read": 0, "days_rewritten": [], "events": 0}
    rewritten, dropped = [], 0
    days = [d for d in curated.curated_days(store) if d not in skip_days]
    for day in days:
        key = curated.curated_key(day)
        if not store.exists(key):
            continue
        table = event_table.read_jsonl_table(store.get_bytes(key), curated.CURATED_SCHEMA)
        kept, n = drop_erased(table, pending)
        qkey = curated.quarantine_key(day)
        quarantined = raw_store.read_jsonl(store, qkey) if store.exists(qkey) else []
        clean = drop_erased_records(quarantined, pending)
        if n:  # same row order and encoding as the curation writes
            store.put_bytes(key, event_table.encode_table_jsonl(kept), "application/gzip")
        if len(clean) != len(quarantined):
            raw_store.write_jsonl(store, qkey, clean)
        if n or len(clean) != len(quarantined):
            rewritten.append(day)
            dropped += n
            log.warning("erasure: curated feedback %s rewritten, %d events of erased users dropped", day, n)
    store.put_json(APPLIED_KEY, {**applied, **pending})
    log.info(
        "erasure: %d new markers, %d older curated days read, %d rewritten, %d events dropped",
        len(pending), len(days), len(rewritten), dropped,
    )  # fmt: skip
    return {
        "new_markers": len(pending),
        "days_read": len(days),
        "days_rewritten": rewritten,
        "events": dropped,
    }
