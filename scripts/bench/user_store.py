"""The user stores' cost on the request path: one /feedback apply and one /recommend get, SQLite and Redis.

A throw-away SQLite file and a throw-away redis-server (password, DB 1, as the prod shape runs it); users
hold MAX_EVENTS events (the bound), so a get folds the largest state there is.

    .venv/bin/python -m scripts.bench.user_store [--users 2000] [--ops 5000]
"""

from __future__ import annotations

import argparse
import random
import sys
import tempfile
from pathlib import Path
from time import perf_counter

from scripts.bench.record import write_record
from scripts.harness.redis_server import redis_server
from services.core.user_store import MAX_EVENTS, UserStore
from services.core.user_store_local import LocalUserStore
from services.core.user_store_redis import RedisUserStore

KINDS = ("like", "like", "watched", "dislike", "rating")


def _event(user: str, n: int) -> dict:
    kind = KINDS[n % len(KINDS)]
    return {
        "user_id": user, "tmdb_id": 1000 + n, "kind": kind, "value": 4.0 if kind == "rating" else None,
        "ts": f"2026-12-07T10:{n // 60 % 60:02d}:{n % 60:02d}.000Z", "request_id": f"r{n % 7}",
    }  # fmt: skip


def _pct(xs: list[float], q: float) -> float:
    xs = sorted(xs)
    return xs[min(len(xs) - 1, int(q * len(xs)))] * 1e6


def bench(name: str, store: UserStore, users: int, ops: int) -> dict[str, float]:
    """Fill `users` users to the bound, then time single-event applies and gets of random users; the figures."""
    start = perf_counter()
    for u in range(users):
        store.apply([_event(f"u{u}", n) for n in range(MAX_EVENTS)])
    fill = perf_counter() - start
    rng = random.Random(0)
    applies, gets = [], []
    for i in range(ops):
        user = f"u{rng.randrange(users)}"
        t = perf_counter()
        store.apply([_event(user, MAX_EVENTS + i)])
        applies.append(perf_counter() - t)
        t = perf_counter()
        store.get(user)
        gets.append(perf_counter() - t)
    print(
        f"{name:6s} fill {users} users x {MAX_EVENTS} events: {fill:.1f} s | apply 1 event: "
        f"p50 {_pct(applies, 0.5):.0f} us, p99 {_pct(applies, 0.99):.0f} us | get ({MAX_EVENTS} events folded): "
        f"p50 {_pct(gets, 0.5):.0f} us, p99 {_pct(gets, 0.99):.0f} us"
    )
    store.clear()
    store.close()
    return {"fill_s": round(fill, 1), "apply_p50_us": round(_pct(applies, 0.5)), "apply_p99_us": round(_pct(applies, 0.99)),
            "get_p50_us": round(_pct(gets, 0.5)), "get_p99_us": round(_pct(gets, 0.99))}  # fmt: skip


def main() -> None:
    """Run both stores and print one line each."""
    parser = argparse.ArgumentParser(
        prog="python -m scripts.bench.user_store", description=__doc__.splitlines()[0]
    )
    parser.add_argument("--users", type=int, default=2000)
    parser.add_argument("--ops", type=int, default=5000)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        stores = {
            "sqlite": bench(
                "sqlite", LocalUserStore(Path(tmp) / "users.db", ttl_s=86400), args.users, args.ops
            )
        }
        with redis_server(Path(tmp) / "redis") as srv:
            stores["redis"] = bench("redis", RedisUserStore(srv.url(1), ttl_s=86400), args.users, args.ops)
    table = [f"| store | fill {args.users:,} users x {MAX_EVENTS} events, s | apply 1 event p50 / p99, us "
             f"| get ({MAX_EVENTS} events folded) p50 / p99, us |", "|---|---:|---:|---:|"]  # fmt: skip
    table += [f"| {name} | {f['fill_s']:.1f} | {f['apply_p50_us']} / {f['apply_p99_us']} | {f['get_p50_us']} / "
              f"{f['get_p99_us']} |" for name, f in stores.items()]  # fmt: skip
    figures = {"users": args.users, "ops": args.ops, "events_per_user": MAX_EVENTS, "stores": stores}
    write_record("user_store", sys.argv[1:], figures, [], {"stores": "\n".join(table)})


if __name__ == "__main__":
    main()
