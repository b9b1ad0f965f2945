"""Batch serving: top-k for every recently active user, written to S3 and loaded into the user store.

After train_recommender, the production recommender ranks every user active in the PRECOMPUTE_DAYS up
to the data day (app users, from curated feedback) and, with PRECOMPUTE_MOVIELENS=1, every MovieLens
user of the snapshot (ids "ml-<userId>"). A user's input is what the online store holds when it can be
read (the same positives /recommend would rank from, so a cached answer is the live one), else the
user's curated events folded the same way. The lists go to `recs/dt=D/recs.jsonl.gz` (user_id,
model_version, items as [tmdb_id, score], computed_at) and into the store with `put_recs_many`, which
stamps each with the user's current seq: /recommend answers from it until the user does something.
While a canary runs, its users (services/core/experiments.arm_of, as serving splits them) are ranked by
the candidate, the version their arm serves, so their answers come from the cache too.
Erasure holds (services/train/feedback/erasure.py's markers): an erased user's events up to the erasure
are not ranked from, so an erased user gets no list, in S3 or in the store, unless active again since.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

import numpy as np
import pyarrow as pa

from services.core import event_table
from services.core.experiments import arm_of, effective_candidate, read_candidates
from services.core.recommender_runtime import load_recommender
from services.core.registry import Registry, RegistryError
from services.core.settings import Settings
from services.core.storage import ObjectStore
from services.core.user_store import UserStore, by_user, fold, now_iso
from services.core.user_store_open import open_user_store
from services.train import raw_store
from services.train.feedback.curated import CURATED_SCHEMA, curated_key
from services.train.feedback.erasure import Erased, drop_erased, erased_users
from services.train.schedule import window

log = logging.getLogger(__name__)

MODEL_NAME = "recommender"
BATCH = 256  # users scored at once: a (256, n_items) float64 score matrix is ~20 MB at 10^4 items
LOAD_ROWS = 5000  # lists per put_recs_many call
MOVIELENS_PREFIX = "ml-"


def recs_key(day: str) -> str:
    """The S3 key of a data day's precomputed lists."""
    return f"recs/dt={day}/recs.jsonl.gz"


@dataclass
class UserInput:
    """What one user is ranked from: liked movies (oldest first) and movies never to recommend."""

    user_id: str
    liked: list[int]
    excluded: set[int]


def app_users(
    store: ObjectStore, day: str, days: int, erased: Erased | None = None
) -> dict[str, list[dict[str, Any]]]:
    """Curated feedback events of every user active in the `days` up to `day`, per user, in time order.

    Events of erased users up to their erasure are left out (a day curated before the marker still has
    them), so a user with nothing after the erasure is not active.
    """
    tables = []
    for d in window(day, days - 1):
        key = curated_key(d)
        if store.exists(key):  # each day is sorted by (ts, event_id)
            tables.append(event_table.read_jsonl_table(store.get_bytes(key), CURATED_SCHEMA))
    if not tables:
        return {}
    table, dropped = drop_erased(pa.concat_tables(tables), erased or {})
    if dropped:
        log.info("precompute %s: %d curated events of erased users left out", day, dropped)
    rows = table.to_pylist()
    grouped: dict[str, list[dict[str, Any]]] = {}
    for r in rows:
        grouped.setdefault(r["user_id"], []).append(r)
    return grouped


def app_inputs(
    grouped: dict[str, list[dict[str, Any]]], users: UserStore | None
) -> tuple[list[UserInput], int]:
    """Each active app user's input: the store's state when it has one, else the curated events; and how many came from the store."""
    from_store = 0
    out = []
    for user_id, records in grouped.items():
        state = None
        if users is not None:
            state = users.get(user_id)
            from_store += state is not None
        if state is None:
            state = fold(user_id, by_user(records)[user_id])
        out.append(UserInput(user_id, [i for i, _ in state.positives], state.excluded()))
    return out, from_store


def movielens_inputs(settings: Settings, copies: int = 1) -> list[UserInput]:
    """The snapshot's MovieLens users, their rated movies in time order (all positives, all seen).

    `copies` > 1 repeats them under distinct ids ("ml-<userId>-<copy>"), for the benchmark.
    """
    from services.train.movies.snapshot import load_links, load_movies, load_ratings
    from services.train.recommender.data import build_interactions

    snap = settings.snapshot_dir
    table = build_interactions(load_ratings(snap), load_links(snap), (m["id"] for m in load_movies(snap)))
    users, items = table["user_id"].to_numpy(), table["tmdb_id"].to_numpy()
    starts = np.flatnonzero(np.r_[True, users[1:] != users[:-1]])
    bounds = [*starts[1:], len(users)]
    base = [(int(users[s]), [int(t) for t in items[s:e]]) for s, e in zip(starts, bounds, strict=True)]
    out = []
    for c in range(copies):
        suffix = f"-{c}" if copies > 1 else ""
        out.extend(UserInput(f"{MOVIELENS_PREFIX}{u}{suffix}", seq, set(seq)) for u, seq in base)
    return out


def rank(rec: Any, inputs: list[UserInput], k: int) -> list[list[tuple[int, float]]]:
    """Top-k (tmdb_id, score) per user, excluded movies left out: batched when the runtime scores batches."""
    if not hasattr(rec, "score_indices"):  # a runtime without batch scoring: one request each
        return [
            [p for p in rec.recommend(u.liked, k + len(u.excluded)) if p[0] not in u.excluded][:k]
            for u in inputs
        ]
    out: list[list[tuple[int, float]]] = [[] for _ in inputs]
    coded = [(n, rec.encode(u.liked)) for n, u in enumerate(inputs)]
    for n, seq in coded:
        if not seq:  # nothing known liked: the popular fallback, as /recommend gives
            out[n] = rec.popular(k, exclude=inputs[n].excluded)
    todo = [(n, seq) for n, seq in coded if seq]
    for start in range(0, len(todo), BATCH):
        part = todo[start : start + BATCH]
        scores = rec.score_indices([seq for _, seq in part])
        scores[:, 0] = -np.inf  # padding
        for row, (n, seq) in enumerate(part):
            s = scores[row]
            s[seq] = -np.inf
            s[[rec.index[t] for t in inputs[n].excluded if t in rec.index]] = -np.inf
            kk = min(k, int(np.isfinite(s).sum()))
            if kk <= 0:
                continue
            top = np.argpartition(-s, kk - 1)[:kk]
            top = top[np.lexsort((top, -s[top]))]  # best first, ties by lower index (as recommend)
            out[n] = [(int(rec.item_ids[i - 1]), float(s[i])) for i in top]
    return out


def load_into_store(users: UserStore, rows: Iterable[dict[str, Any]]) -> int:
    """put_recs_many in slices; how many lists were loaded."""
    rows = list(rows)
    return sum(users.put_recs_many(rows[i : i + LOAD_ROWS]) for i in range(0, len(rows), LOAD_ROWS))


def precompute_recs(
    settings: Settings,
    store: ObjectStore,
    day: str,
    *,
    users: UserStore | None = None,
    movielens_copies: int = 1,
) -> dict[str, Any]:
    """Rank top-k for every active user with the production recommender; write to S3, load into the store.

    `users` is the online store (None: the one the settings name, opened here and closed after).
    """
    started = time.perf_counter()
    registry = Registry(store)
    try:
        manifest = registry.manifest(MODEL_NAME)
    except RegistryError as exc:
        log.warning("precompute %s: no production recommender (%s); nothing ranked", day, exc)
        return {"date": day, "users": 0, "skipped": str(exc)}
    rec = load_recommender({n: registry.read_file(manifest, n) for n in manifest.files}, num_threads=None)
    experiment = effective_candidate(read_candidates(registry, MODEL_NAME), manifest.version)
    candidate = None
    if experiment is not None and experiment.share > 0:
        cm = registry.manifest(MODEL_NAME, experiment.version)
        candidate = load_recommender({n: registry.read_file(cm, n) for n in cm.files}, num_threads=None)
    own = users is None
    store_error = None
    if own:
        try:
            users = open_user_store(settings)
        except Exception as exc:  # noqa: BLE001 - an unreachable store costs the load, not the S3 lists
            store_error, users = f"{type(exc).__name__}: {exc}", None
    opened = users if own else None  # closed here, even when a failure below stops using it
    try:
        erased = erased_users(store)
        grouped = app_users(store, day, settings.precompute_days, erased)
        try:
            inputs, from_store = app_inputs(grouped, users)
        except Exception as exc:  # noqa: BLE001 - the store went away: rank from the curated events
            store_error, users = f"{type(exc).__name__}: {exc}", None
            inputs, from_store = app_inputs(grouped, None)
        n_app = len(inputs)
        if settings.precompute_movielens:
            inputs += [u for u in movielens_inputs(settings, movielens_copies) if u.user_id not in erased]
        ranked_at = time.perf_counter()
        # Each user is ranked by the version the user's arm serves (serving splits users the same way).
        arms = [
            int(candidate is not None and arm_of(experiment.experiment_id, u.user_id, experiment.share) == "candidate")
            for u in inputs
        ]  # fmt: skip
        models = [(rec, manifest.version), (candidate, experiment.version if experiment else None)]
        lists: list[Any] = [None] * len(inputs)
        for a, (model, version) in enumerate(models):
            rows_of = [n for n, x in enumerate(arms) if x == a]
            ranked = rank(model, [inputs[n] for n in rows_of], settings.precompute_k) if rows_of else []
            for n, items in zip(rows_of, ranked, strict=True):
                lists[n] = (version, items)
        rank_s = time.perf_counter() - ranked_at
        computed_at = now_iso()
        # A user erased while the lists were ranked gets none (put_recs_many would make the user anew).
        late = {u for u, t in erased_users(store).items() if erased.get(u) != t}
        rows = [
            {"user_id": u.user_id, "model_version": version, "items": [[t, s] for t, s in items],
             "computed_at": computed_at}
            for u, (version, items) in zip(inputs, lists, strict=True)
            if u.user_id not in late
        ]  # fmt: skip
        key = recs_key(day)
        raw_store.write_jsonl(store, key, rows)
        loaded = 0
        if users is not None:
            try:
                loaded = load_into_store(users, rows)
            except Exception as exc:  # noqa: BLE001 - the lists stay in S3; the next run loads again
                store_error = f"{type(exc).__name__}: {exc}"
    finally:
        if opened is not None:
            opened.close()
    seconds = time.perf_counter() - started
    result = {
        "date": day,
        "model_version": manifest.version,
        "algorithm": manifest.algorithm,
        "users": len(inputs),
        "app_users": n_app,
        "app_users_from_store": from_store,
        "movielens_users": len(inputs) - n_app,
        "candidate_version": experiment.version if candidate is not None else None,
        "candidate_users": sum(arms),
        "k": settings.precompute_k,
        "recs": key,
        "loaded": loaded,
        "store_error": store_error,
        "rank_seconds": round(rank_s, 3),
        "seconds": round(seconds, 3),
        "seconds_per_10k_users": round(seconds / len(inputs) * 10_000, 3) if inputs else None,
        "rank_seconds_per_10k_users": round(rank_s / len(inputs) * 10_000, 3) if inputs else None,
    }
    if store_error:
        log.warning("precompute %s: user store unreachable (%s); lists only in %s", day, store_error, key)
    log.info(
        "precompute %s: %d users (%d app, %d MovieLens) ranked by %s in %.2f s (%.2f s per 10,000), "
        "%.2f s in all; %d loaded into the store",
        day, len(inputs), n_app, len(inputs) - n_app, manifest.version, rank_s,
        result["rank_seconds_per_10k_users"] or 0.0, seconds, loaded,
    )  # fmt: skip
    return result
