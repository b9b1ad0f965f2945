"""The prod shape's user store: Redis (its own DB number and password), shared by every API replica.

Per user, two keys with the same TTL: `ue:<id>`, a list of the most recent MAX_EVENTS compact events
(JSON), and `u:<id>`, a hash of seq and the precomputed list (recs, recs_seq). An apply is one
MULTI/EXEC pipeline (RPUSH, LTRIM, HINCRBY, EXPIRE): one round trip, atomic, no read first.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from typing import Any

import redis

from services.core.user_store import MAX_EVENTS, CachedRecs, UserState, by_user, fold

CONNECT_TIMEOUT_S = 0.25  # the request path asks: a dead store must cost little (GuardedStore skips it then)
SOCKET_TIMEOUT_S = 0.5
PUT_RECS_CHUNK = 1000  # rows per pipeline when loading precomputed lists

# seq_at must be the seq the user has when the list lands: read and write in one atomic script.
PUT_RECS = """
local seq = redis.call('HGET', KEYS[1], 'seq') or '0'
redis.call('HSET', KEYS[1], 'recs', ARGV[1], 'recs_seq', seq)
redis.call('EXPIRE', KEYS[1], ARGV[2])
return seq
"""


def _key(user_id: str) -> str:
    return f"u:{user_id}"


def _events_key(user_id: str) -> str:
    return f"ue:{user_id}"


class RedisUserStore:
    """Users in Redis: a list of recent events and a small hash per user, both expiring after the TTL."""

    def __init__(self, url: str, ttl_s: int, max_events: int = MAX_EVENTS) -> None:
        self.ttl_s = ttl_s
        self.max_events = max_events
        self.client = redis.Redis.from_url(
            url, socket_connect_timeout=CONNECT_TIMEOUT_S, socket_timeout=SOCKET_TIMEOUT_S,
            health_check_interval=30, decode_responses=True,
        )  # fmt: skip
        self._put_recs = self.client.register_script(PUT_RECS)

    def get(self, user_id: str) -> UserState | None:
        """The user's state, or None when unknown (or expired): one round trip."""
        pipe = self.client.pipeline(transaction=False)
        pipe.hgetall(_key(user_id))
        pipe.lrange(_events_key(user_id), 0, -1)
        meta, events = pipe.execute()
        if not meta and not events:
            return None
        # One parse of the whole list: 200 json.loads calls cost several times more.
        state = fold(user_id, json.loads("[" + ",".join(events) + "]"), int(meta.get("seq", 0)))
        if meta.get("recs"):
            state.cached_recs = CachedRecs(**json.loads(meta["recs"]), seq_at=int(meta.get("recs_seq", 0)))
        return state

    def apply(self, events: list[dict[str, Any]]) -> None:
        """Append each user's events, keep the last max_events, bump seq, renew the TTL: one round trip."""
        grouped = by_user(events)
        if not grouped:
            return
        pipe = self.client.pipeline(transaction=True)
        for user_id, new in grouped.items():
            key, ev = _key(user_id), _events_key(user_id)
            pipe.rpush(ev, *(json.dumps(e, separators=(",", ":")) for e in new))
            pipe.ltrim(ev, -self.max_events, -1)
            pipe.hincrby(key, "seq", len(new))
            pipe.expire(ev, self.ttl_s)
            pipe.expire(key, self.ttl_s)
        pipe.execute()

    def delete(self, user_id: str) -> bool:
        """Remove both keys of the user; whether there was anything."""
        return self.client.delete(_key(user_id), _events_key(user_id)) > 0

    def put_recs(self, user_id: str, model_version: str, items: list[Any], computed_at: str) -> None:
        """Load a precomputed list for a user, made for the user's current seq."""
        self.put_recs_many(
            [{"user_id": user_id, "model_version": model_version, "items": items, "computed_at": computed_at}]
        )

    def put_recs_many(self, rows: Iterable[dict[str, Any]]) -> int:
        """Load many precomputed lists, PUT_RECS_CHUNK per round trip; how many."""
        n = 0
        pipe = self.client.pipeline(transaction=False)
        for r in rows:
            recs = {
                "model_version": r["model_version"],
                "items": list(r["items"]),
                "computed_at": r["computed_at"],
            }
            self._put_recs(
                keys=[_key(r["user_id"])],
                args=[json.dumps(recs, separators=(",", ":")), self.ttl_s],
                client=pipe,
            )
            n += 1
            if n % PUT_RECS_CHUNK == 0:
                pipe.execute()
        pipe.execute()
        return n

    def user_ids(self) -> list[str]:
        """Every user held (SCAN: never on the request path)."""
        ids = {
            k.split(":", 1)[1] for p in ("u:*", "ue:*") for k in self.client.scan_iter(match=p, count=1000)
        }
        return sorted(ids)

    def clear(self) -> None:
        """Remove every user key of this database."""
        for pattern in ("u:*", "ue:*"):
            batch: list[str] = []
            for key in self.client.scan_iter(match=pattern, count=1000):
                batch.append(key)
                if len(batch) == 1000:
                    self.client.delete(*batch)
                    batch = []
            if batch:
                self.client.delete(*batch)

    def close(self) -> None:
        """Close the connection pool."""
        self.client.close()
