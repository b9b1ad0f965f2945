"""The users CLI behind scripts/users.sh: rebuild the user store from curated feedback, show, delete."""

from __future__ import annotations

import argparse
import json
import logging
import sys
from datetime import UTC, datetime, timedelta
from time import perf_counter
from typing import Any

from services.core.events import utc_now
from services.core.settings import Settings, get_settings
from services.core.storage import ObjectStore
from services.core.user_store import UserStore, erasure_key
from services.core.user_store_open import open_user_store

log = logging.getLogger("users")

APPLY_CHUNK = 5000  # events per store transaction while rebuilding


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="users.sh",
        description="The online user store (USER_STORE_URL: Redis; unset: SQLite at USER_STORE_PATH, by "
        "default users.db in the spool folder): what /recommend knows of each user_id.",
        epilog="Examples: users.sh rebuild --days 30 | users.sh show anon-5f1c | users.sh delete anon-5f1c. "
        "The spool and the curated feedback in S3 are the record of truth; the store can always be rebuilt "
        "from them.",
    )
    sub = parser.add_subparsers(dest="command", required=True)
    rebuild = sub.add_parser(
        "rebuild",
        help="empty the store and refill it from the feedback in S3, curated as the pipeline curates it "
        "(days whose raw events are gone: their curated file); erased users stay out; precomputed lists "
        "are dropped (the next precompute_recs run loads them again)",
    )
    rebuild.add_argument(
        "--days", type=int, default=None, help="days back from today (default: USER_TTL_DAYS)"
    )
    show = sub.add_parser("show", help="print what the store holds for a user, as GET /users/{id} does")
    show.add_argument("user_id")
    delete = sub.add_parser(
        "delete", help="erase a user as DELETE /users/{id} does: marker on S3, then the online state"
    )
    delete.add_argument("user_id")
    return parser


def feedback_since(store: ObjectStore, first_day: str) -> list[dict[str, Any]]:
    """Every curated interaction from first_day on, erased users' dropped, in time order."""
    import pyarrow as pa

    from services.core import event_table, events
    from services.train.feedback import curated
    from services.train.feedback.curate import read_curated_day
    from services.train.feedback.erasure import drop_erased, erased_users

    # A day's raw events, curated here as the DAG's curation does (nothing written), hold everything that
    # reached S3, late batches included; a day whose raw events are gone has only its curated file.
    raw = {d for d in events.days(store, curated.STREAM) if d >= first_day}
    curated_only = {d for d in curated.curated_days(store) if d >= first_day} - raw
    tables = []
    for day in sorted(curated_only | raw):
        if day in raw:
            table = read_curated_day(store, day).interactions
        elif store.exists(curated.curated_key(day)):
            table = event_table.read_jsonl_table(
                store.get_bytes(curated.curated_key(day)), curated.CURATED_SCHEMA
            )
        else:
            continue
        tables.append(table.select(curated.CURATED_SCHEMA.names).cast(curated.CURATED_SCHEMA))
    if not tables:
        return []
    table, dropped = drop_erased(pa.concat_tables(tables), erased_users(store))
    if dropped:
        log.info("rebuild: %d events of erased users left out", dropped)
    # Stable by time alone: events of one request share their ts and keep the order the request gave them.
    rows = table.sort_by([("ts", "ascending")]).to_pylist()
    seen: set[str] = set()
    out = []
    for r in rows:  # an event re-curated on two days counts once
        if r["event_id"] not in seen:
            seen.add(r["event_id"])
            out.append(r)
    return out


def rebuild(settings: Settings, users: UserStore, s3: ObjectStore, days: int | None) -> dict[str, Any]:
    """Empty the store and apply the feedback of the last `days` days (default USER_TTL_DAYS) in time order."""
    start = perf_counter()
    n_days = int(days if days is not None else settings.user_ttl_days)
    first_day = (datetime.now(UTC).date() - timedelta(days=max(n_days - 1, 0))).isoformat()
    rows = feedback_since(s3, first_day)
    users.clear()
    for i in range(0, len(rows), APPLY_CHUNK):
        users.apply(rows[i : i + APPLY_CHUNK])
    return {
        "since": first_day,
        "events": len(rows),
        "users": len({r["user_id"] for r in rows}),
        "seconds": round(perf_counter() - start, 2),
    }


def erase(users: UserStore, s3: ObjectStore, user_id: str) -> bool:
    """The marker on S3 (curation drops the user's events), then the online state; whether any was held."""
    s3.put_json(erasure_key(user_id), {"user_id": user_id, "requested_at": utc_now()})
    return users.delete(user_id)


def main(argv: list[str] | None = None) -> int:
    """Run one command; 0 on success, 1 when the user is unknown (show)."""
    args = _parser().parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    settings = get_settings()
    users = open_user_store(settings)
    try:
        if args.command == "show":
            state = users.get(args.user_id)
            if state is None:
                sys.stderr.write(f"no state is held for user {args.user_id!r}\n")
                return 1
            out: Any = state.to_json()
        elif args.command == "delete":
            held = erase(users, ObjectStore.from_settings(settings), args.user_id)
            out = {"user_id": args.user_id, "online_state_removed": held, "marker": erasure_key(args.user_id)}
        else:
            out = rebuild(settings, users, ObjectStore.from_settings(settings), args.days)
    finally:
        users.close()
    sys.stdout.write(json.dumps(out, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
